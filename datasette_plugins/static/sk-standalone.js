/* Used only when the shared SinkIn layout (sinkin_base.html + sinkin.js) is not installed:
   a minimal toast(message, kind) so the dashboard and the run form can still report. */
(function () {
  "use strict";
  if (typeof window.toast === "function") return;
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
    item.className = `sk-toast sk-toast-${kind || "info"}`;
    item.textContent = message;
    box.append(item);
    setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
  };
})();
