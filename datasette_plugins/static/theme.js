/* The remembered light/dark choice, applied before the page paints (loaded without defer in
   <head>; the Content-Security-Policy allows no inline script). */
(function () {
  try {
    var t = localStorage.getItem("sinkin-theme");
    if (t === "light" || t === "dark") document.documentElement.setAttribute("data-theme", t);
  } catch (e) {}
})();
