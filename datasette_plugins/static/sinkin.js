/* SinkIn Lab shared helpers: toast(message, kind), postJSON(url, data) with the CSRF header, and the
   light/dark toggle (remembered in localStorage). */
(function () {
  "use strict";
  window.toast = function (message, kind) {
    let box = document.getElementById("sk-toasts");
    if (!box) {
      box = document.createElement("div");
      box.id = "sk-toasts";
      box.className = "sk-toasts";
      box.setAttribute("role", "status");
      box.setAttribute("aria-live", "polite");
      document.body.append(box);
    }
    const item = document.createElement("div");
    item.className = "sk-toast sk-toast-" + (kind || "info");
    item.textContent = message;
    box.append(item);
    setTimeout(() => item.remove(), kind === "error" ? 8000 : 3500);
  };

  window.csrfToken = function () {
    const meta = document.querySelector('meta[name="csrftoken"]');
    return meta ? meta.content : "";
  };

  window.postJSON = async function (url, data) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": window.csrfToken()},
        body: JSON.stringify(data || {}),
      });
    } catch (e) {
      throw new Error("the server did not answer (" + e.message + ")");
    }
    let body = null;
    try { body = await response.json(); } catch (e) { /* not JSON */ }
    if (!response.ok || (body && body.ok === false)) {
      throw new Error((body && body.error) || ("HTTP " + response.status));
    }
    return body;
  };

  function currentTheme() {
    const set = document.documentElement.getAttribute("data-theme");
    if (set) return set;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  document.addEventListener("DOMContentLoaded", () => {
    const button = document.getElementById("sk-theme-toggle");
    if (!button) return;
    button.addEventListener("click", () => {
      const next = currentTheme() === "dark" ? "light" : "dark";
      document.documentElement.setAttribute("data-theme", next);
      try { localStorage.setItem("sinkin-theme", next); } catch (e) { /* private mode */ }
    });
  });
})();
