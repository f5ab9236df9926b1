/* The insights page: menus marked sk-autosubmit apply at once (the page also works without JS). */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", () => {
    for (const select of document.querySelectorAll("select.sk-autosubmit")) {
      select.addEventListener("change", () => select.form.submit());
    }
    document.body.dataset.ready = "1";
  });
})();
