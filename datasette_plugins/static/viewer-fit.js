/* The viewer's picture: fitted to the screen, or actual pixels with pan (z or a double-click, which
   zooms in where you clicked; drag or scroll to pan), and the browser's fullscreen (f). */
(function () {
  "use strict";
  const {$, toast} = window.SK;
  const V = (window.SKViewer = window.SKViewer || {});

  V.fit = function (v) {
    const stage = v.stage;
    v.centre = function (fx, fy) {
      stage.scrollLeft = fx * stage.scrollWidth - stage.clientWidth / 2;
      stage.scrollTop = fy * stage.scrollHeight - stage.clientHeight / 2;
    };
    v.toggleActual = function (event) {
      let fx = 0.5;
      let fy = 0.5;
      if (event && event.clientX !== undefined) {
        const r = v.img.getBoundingClientRect();
        fx = Math.min(1, Math.max(0, (event.clientX - r.left) / r.width));
        fy = Math.min(1, Math.max(0, (event.clientY - r.top) / r.height));
      }
      v.actualSize = !v.actualSize;
      stage.classList.toggle("sk-actual", v.actualSize);
      $("#sk-zoom").setAttribute("aria-pressed", String(v.actualSize));
      if (v.actualSize) v.centre(fx, fy);
    };
    stage.addEventListener("dblclick", (event) => {
      if (!event.target.closest(".sk-flash-box, .sk-score-big")) v.toggleActual(event);
    });
    let drag = null;
    stage.addEventListener("pointerdown", (event) => {
      if (!v.actualSize || event.button !== 0) return;
      drag = {x: event.clientX, y: event.clientY, left: stage.scrollLeft, top: stage.scrollTop};
      stage.setPointerCapture(event.pointerId);
      stage.classList.add("sk-dragging");
    });
    stage.addEventListener("pointermove", (event) => {
      if (!drag) return;
      stage.scrollLeft = drag.left - (event.clientX - drag.x);
      stage.scrollTop = drag.top - (event.clientY - drag.y);
    });
    const endDrag = () => { drag = null; stage.classList.remove("sk-dragging"); };
    stage.addEventListener("pointerup", endDrag);
    stage.addEventListener("pointercancel", endDrag);
    $("#sk-zoom").addEventListener("click", () => v.toggleActual());

    v.toggleFullscreen = function () {
      if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
      else document.documentElement.requestFullscreen().catch((e) => toast(`Fullscreen refused: ${e.message}`, "error"));
    };
    $("#sk-fullscreen").addEventListener("click", v.toggleFullscreen);
  };
})();
