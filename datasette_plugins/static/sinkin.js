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

  /* Credits as sinkin_pipeline/wording.py writes them: rounded like money, "1 credit", "~0.67 credits". */
  window.creditText = function (amount, estimate) {
    const shown = (Math.round(Number(amount || 0) * 100) / 100 + 0).toLocaleString("en-US", { maximumFractionDigits: 2 });
    return `${estimate ? "~" : ""}${shown} credit${shown === "1" ? "" : "s"}`;
  };

  window.csrfToken = function () {
    const meta = document.querySelector('meta[name="csrftoken"]');
    return meta ? meta.content : "";
  };

  /* POST JSON with the CSRF header; resolves to {status, body} and never throws (status 0 when
     the server did not answer). */
  window.sendJSON = async function (url, data) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": window.csrfToken()},
        body: JSON.stringify(data || {}),
      });
    } catch (e) {
      return {status: 0, body: {ok: false, error: "the server did not answer (" + e.message + ")"}};
    }
    let body;
    try { body = await response.json(); } catch (e) { body = {ok: false, error: "HTTP " + response.status}; }
    if (response.status === 403 && body.error) body.error += " (reload the page if this persists)";
    return {status: response.status, body: body};
  };

  /* The same, resolving to the body of a success and throwing an Error with the server's message. */
  window.postJSON = async function (url, data) {
    const {status, body} = await window.sendJSON(url, data);
    if (status < 200 || status >= 300 || body.ok === false) throw new Error(body.error || "HTTP " + status);
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
