/* The X/Y/Z grid: arrows move the focus across images (left/right along a row of cells, up/down to
   the nearest image of the next row), 1-9 and 0 (= 10) score the focused image through the viewer's
   score route, Enter opens it in the viewer (whose Esc comes back here, to the same image), PgUp/PgDn change the Z page, Esc goes to the insights. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", () => {
    const table = document.getElementById("sk-xyz");
    if (!table) return;
    const boot = JSON.parse(document.getElementById("sk-grid-boot").textContent);
    const images = Array.from(table.querySelectorAll("a.sk-gimg"));
    const rows = [];
    for (const a of images) (rows[+a.dataset.row] = rows[+a.dataset.row] || []).push(a);
    let current = null;

    function focus(a) {
      if (!a) return;
      if (current) current.tabIndex = -1;
      current = a;
      a.tabIndex = 0;
      a.focus();
      a.scrollIntoView({block: "nearest", inline: "nearest"});
    }
    if (images.length) images[0].tabIndex = 0;
    /* back from the viewer (Esc): the image it showed has the focus again, if it is on this page */
    const back = location.hash.match(/^#img-(\d+)$/);
    if (back) focus(images.find((a) => a.dataset.id === back[1]));
    table.addEventListener("focusin", (e) => {
      const a = e.target.closest("a.sk-gimg");
      if (a && a !== current) { if (current) current.tabIndex = -1; current = a; a.tabIndex = 0; }
    });

    function vertical(step) {
      const r = +current.dataset.row;
      let target = null;
      for (let i = r + step; i >= 0 && i < rows.length && !target; i += step) {
        if (!rows[i] || !rows[i].length) continue;
        const x = current.getBoundingClientRect().left;
        target = rows[i].reduce((best, a) =>
          Math.abs(a.getBoundingClientRect().left - x) < Math.abs(best.getBoundingClientRect().left - x) ? a : best);
      }
      return target;
    }

    async function score(a, value) {
      const badge = a.querySelector("[data-score]");
      const before = badge.textContent;
      badge.textContent = value;
      badge.classList.remove("sk-unscored");
      const {status, body} = await window.sendJSON(`${boot.images}${a.dataset.id}/score.json`, {score: value},
                                                   {keepalive: true});  // completes if the page is left
      if (status !== 200 || body.ok === false) {
        badge.textContent = before;
        if (before === "–") badge.classList.add("sk-unscored");
        window.toast("Not scored: " + (body.error || "HTTP " + status), "error");
        return;
      }
      a.dataset.scored = String(body.score);
    }

    document.addEventListener("keydown", (e) => {
      if (e.altKey || e.ctrlKey || e.metaKey) return;
      if (e.target.closest("input, select, textarea")) return;
      const key = e.key;
      if (key === "PageDown" && boot.next) { e.preventDefault(); location.href = boot.next; return; }
      if (key === "PageUp" && boot.prev) { e.preventDefault(); location.href = boot.prev; return; }
      if (key === "Escape") { location.href = boot.insights; return; }
      if (!images.length) return;
      if (!current || !document.activeElement || !document.activeElement.closest("a.sk-gimg")) {
        if (key.startsWith("Arrow")) { e.preventDefault(); focus(current || images[0]); }
        return;
      }
      const i = images.indexOf(current);
      if (key === "ArrowRight") { e.preventDefault(); focus(images[i + 1]); }
      else if (key === "ArrowLeft") { e.preventDefault(); focus(images[i - 1]); }
      else if (key === "ArrowDown") { e.preventDefault(); focus(vertical(1)); }
      else if (key === "ArrowUp") { e.preventDefault(); focus(vertical(-1)); }
      else if (/^[0-9]$/.test(key)) { e.preventDefault(); score(current, key === "0" ? 10 : +key); }
    });
    document.body.dataset.gridReady = "1";
  });
})();
