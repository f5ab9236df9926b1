/* SinkIn Lab's one set of page helpers, loaded (not deferred) in the <head> of every page of the app,
   Datasette's own pages included:
   - the theme: the remembered light/dark choice is applied before the page paints, and a ◐ toggle
     is put in the header of every page;
   - window.SK = {$, $$, el, plural, toast, send, postJSON, getJSON, csrfToken, isTyping, creditText,
     base, url}, also exposed as the older globals toast, sendJSON, postJSON, csrfToken and creditText;
   - Datasette's base_url: SK.base is the path the server mounted the app under ("" at the root,
     "/lab" with base_url /lab/), read from this script's own URL, which the server built with
     it; SK.url("/-/sinkin/…") prefixes it, and send/postJSON/getJSON apply it to such paths. */
(function () {
  "use strict";
  const THEME_KEY = "sinkin-theme";

  try {
    const t = localStorage.getItem(THEME_KEY);
    if (t === "light" || t === "dark") document.documentElement.setAttribute("data-theme", t);
  } catch (e) { /* private mode: follow the system */ }
  document.documentElement.classList.add("sk-js");

  /* this script is served at <base>/-/sinkin/static/sinkin.js: the base is what precedes */
  const script = document.currentScript && document.currentScript.src;
  const base = script ? new URL(script, location.href).pathname.split("/-/sinkin/static/")[0] : "";
  /* an app path ("/-/sinkin/runs/1") under the server's base_url; other URLs are left alone */
  const url = (path) => (typeof path === "string" && path.startsWith("/-/") ? base + path : path);

  const $ = (selector, root) => (root || document).querySelector(selector);
  const $$ = (selector, root) => [...(root || document).querySelectorAll(selector)];

  /* el("a", {href: "/x", class: "y"}, "text", childNode...) */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  const plural = (n, word, many) => `${n} ${n === 1 ? word : (many || word + "s")}`;

  function toast(message, kind) {
    let box = document.getElementById("sk-toasts");
    if (!box) {
      box = el("div", {id: "sk-toasts", class: "sk-toasts", role: "status", "aria-live": "polite"});
      document.body.append(box);
    }
    const item = el("div", {class: "sk-toast sk-toast-" + (kind || "info")}, message);
    box.append(item);
    setTimeout(() => item.remove(), kind === "error" ? 8000 : 3500);
  }

  /* Credits as sinkin_pipeline/wording.py writes them: rounded like money, "1 credit", "~0.67 credits". */
  function creditText(amount, estimate) {
    const shown = (Math.round(Number(amount || 0) * 100) / 100 + 0).toLocaleString("en-US", {maximumFractionDigits: 2});
    return `${estimate ? "~" : ""}${shown} credit${shown === "1" ? "" : "s"}`;
  }

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrftoken"]');
    return meta ? meta.content : "";
  }

  /* POST JSON with the CSRF header; resolves to {status, body} and never throws (status 0 when
     the server did not answer). ``init`` adds fetch options, e.g. {keepalive: true} for a write
     that must complete even if the page is left. */
  async function send(address, data, init) {
    let response;
    try {
      response = await fetch(url(address), Object.assign({
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken()},
        body: JSON.stringify(data || {}),
      }, init));
    } catch (e) {
      return {status: 0, body: {ok: false, error: "the server did not answer (" + e.message + ")"}};
    }
    let body;
    try { body = await response.json(); } catch (e) { body = {ok: false, error: "HTTP " + response.status}; }
    if (response.status === 403 && body.error) body.error += " (reload the page if this persists)";
    return {status: response.status, body: body};
  }

  /* The same, resolving to the body of a success and throwing an Error with the server's message. */
  async function postJSON(address, data, init) {
    const {status, body} = await send(address, data, init);
    if (status < 200 || status >= 300 || body.ok === false) throw new Error(body.error || "HTTP " + status);
    return body;
  }

  function isTyping(event) {
    const t = event.target;
    return !!t && (t.tagName === "INPUT" && t.type !== "checkbox" && t.type !== "radio" ||
                   t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  }

  function currentTheme() {
    const set = document.documentElement.getAttribute("data-theme");
    if (set) return set;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function toggleTheme() {
    const next = currentTheme() === "dark" ? "light" : "dark";
    document.documentElement.setAttribute("data-theme", next);
    try { localStorage.setItem(THEME_KEY, next); } catch (e) { /* private mode */ }
  }

  function themeButton() {
    return el("button", {type: "button", class: "sk-theme-toggle", title: "Light or dark (remembered)",
                         "aria-label": "Switch between light and dark mode"}, "◐");
  }

  /* Datasette's table pages: the column descriptions folded behind a "columns" disclosure, and
     each description as the tooltip of its column's header. */
  function foldColumnDescriptions() {
    const dl = $("dl.column-descriptions");
    if (!dl) return;
    const details = el("details", {class: "sk-columns"}, el("summary", {}, "Columns"));
    dl.replaceWith(details);
    details.append(dl);
    dl.classList.add("sk-folded");
    const descriptions = {};
    for (const dt of $$("dt", dl)) {
      const dd = dt.nextElementSibling;
      if (dd && dd.tagName === "DD") descriptions[dt.textContent.trim()] = dd.textContent.trim();
    }
    for (const th of $$("table.rows-and-columns th[data-column]")) {
      const text = descriptions[th.dataset.column];
      if (text) th.title = text;
    }
  }

  /* The ranking table: the image id of each row opens the image in the viewer (so does its
     thumbnail, rendered as a link by the plugin). */
  function linkRankingRows() {
    if (!document.body.classList.contains("table-image_table")) return;
    for (const a of $$("table.rows-and-columns td.col-image_id a")) {
      const id = a.textContent.trim();
      if (!/^\d+$/.test(id)) continue;
      a.href = url(`/-/sinkin/images/${id}`);
      a.title = `Open image ${id} in the viewer`;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    /* forms that scripts send (never submitted by the browser; no inline onsubmit under the CSP) */
    document.querySelectorAll("form[data-no-submit]").forEach((form) => {
      form.addEventListener("submit", (event) => event.preventDefault());
    });
    const nav = $("header nav");
    if (nav && !$(".sk-theme-toggle", nav)) nav.prepend(themeButton());
    document.addEventListener("click", (event) => {
      if (event.target.closest && event.target.closest(".sk-theme-toggle")) toggleTheme();
    });
    foldColumnDescriptions();
    linkRankingRows();
  });

  /* GET JSON (same origin), rejecting with the server's message on an error status */
  async function getJSON(address) {
    const response = await fetch(url(address), {credentials: "same-origin"});
    let body;
    try { body = await response.json(); } catch (e) { body = {ok: false, error: "HTTP " + response.status}; }
    if (!response.ok || body.ok === false) throw new Error(body.error || "HTTP " + response.status);
    return body;
  }

  window.SK = {$, $$, el, plural, toast, send, postJSON, getJSON, csrfToken, isTyping, toggleTheme, creditText,
               base, url};
  window.toast = toast;
  window.creditText = creditText;
  window.sendJSON = send;
  window.postJSON = postJSON;
  window.csrfToken = csrfToken;
})();
