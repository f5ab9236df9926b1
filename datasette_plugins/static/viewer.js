/* The viewer: one image filling the screen, driven by the keyboard. Its parts, each in its own file
   loaded before this one: viewer-core.js (state, loading, the gallery's order, showing an image),
   viewer-panel.js (settings, init image, Remix, parameter line), viewer-fit.js (fit / 1:1 with
   pan, fullscreen), viewer-strip.js (filmstrip), viewer-score.js (scores, feedback, undo, end of
   the run) and viewer-dialogs.js (upscale, compare). This file binds the keys and starts it.
   ←/→ move through the gallery's order and filter; 1–9 and 0 score; Backspace / Ctrl+Z undo; a
   auto-advance; z or a double-click fit / actual pixels; f fullscreen; i the settings panel; r
   Remix; p copy the parameter line; u upscale; c compare; ? the shortcuts; Esc back to where the
   viewer was opened from (the gallery, or the X/Y/Z grid). Helpers from sinkin.js. */
(function () {
  "use strict";
  const {$, toast, isTyping} = window.SK;
  const V = window.SKViewer;

  function viewer() {
    const v = V.core();
    V.panel(v);
    V.fit(v);
    V.filmstrip(v);
    V.scoring(v);
    V.dialogs(v);

    const help = () => { const d = $("#sk-help"); if (d && !d.open) d.showModal(); };
    $("#sk-help-open").addEventListener("click", help);

    document.addEventListener("keydown", (event) => {
      if (V.dialogOpen() || isTyping(event)) return;
      const key = event.key;
      if ((event.ctrlKey || event.metaKey) && !event.altKey && key.toLowerCase() === "z" && !event.shiftKey) {
        v.undoLast();
        event.preventDefault();
        return;
      }
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      if (key === "ArrowRight") v.show(v.index + 1);
      else if (key === "ArrowLeft") v.show(v.index - 1);
      else if (/^[0-9]$/.test(key)) v.score(key === "0" ? 10 : Number(key));
      else if (key === "Backspace") v.undoLast();
      else if (key === "Delete") v.score(null);
      else if (key === "a") v.toggleAuto();
      else if (key === "z") v.toggleActual();
      else if (key === "r") v.remix();
      else if (key === "p") v.copyParameters();
      else if (key === "f") v.toggleFullscreen();
      else if (key === "i") v.togglePanel();
      else if (key === "u") v.openUpscale();
      else if (key === "c") v.openCompare();
      else if (key === "?") help();
      else if (key === "Escape") location.href = v.backHref();
      else return;
      event.preventDefault();
    });

    const boot = v.boot;
    v.info(boot.image_id).then((image) => {
      v.current = image;
      if (!v.scores.has(image.image_id)) v.scores.set(image.image_id, image.score);
      v.renderSettings(image);
    }).catch(() => {});
    v.orderWindow(boot.image_id)
      .then((body) => {
        v.ids = body.ids;
        v.index = body.index;
        v.offset = body.offset;
        v.total = body.total;
        if (v.index === -1) { v.ids = [boot.image_id].concat(body.ids); v.index = 0; v.total += 1; }
        $("#sk-back").href = v.backHref();
        v.updatePosition();
        v.updateProgress();
        if (v.scores.has(v.shown())) v.showScore(v.scores.get(v.shown()));
        v.strip();
        v.preload(v.ids[v.index + 1]);
        v.preload(v.ids[v.index - 1]);
        document.body.dataset.ready = "1";
      })
      .catch((e) => toast(`Could not load the gallery order: ${e.message}`, "error"));
  }

  document.addEventListener("DOMContentLoaded", () => {
    const page = document.querySelector("[data-page]");
    if (page && page.dataset.page === "viewer") viewer();
  });
})();
