/* The viewer's filmstrip: a sliding window of the image's neighbours in the gallery's order, with
   their scores (click one to go there). An item is made once per image and moved, never reloaded,
   and the strip is updated after the main image has been painted. */
(function () {
  "use strict";
  const {$, el, url} = window.SK;
  const V = (window.SKViewer = window.SKViewer || {});
  const STRIP_SIDE = 7;  // neighbours shown on each side in the filmstrip

  V.filmstrip = function (v) {
    const filmstrip = $("#sk-filmstrip");
    const items = new Map();  // id -> <a>
    function item(id) {
      let link = items.get(id);
      if (!link) {
        link = el("a", {class: "sk-strip-item", href: url(`/-/sinkin/images/${id}`) + v.state},
                  el("img", {src: url(`/-/sinkin/images/${id}/thumb`), alt: "", width: 64, height: 64, draggable: "false"}),
                  el("span", {class: "sk-strip-score"}));
        link.addEventListener("click", (event) => {
          event.preventDefault();
          const i = v.ids.indexOf(id);
          if (i !== -1) v.show(i);
        });
        items.set(id, link);
      }
      return link;
    }
    let queued = false;
    v.strip = function () {
      if (queued) return;
      queued = true;
      requestAnimationFrame(() => setTimeout(() => { queued = false; draw(); }, 0));
    };
    function draw() {
      const shown = [];
      const {ids, index} = v;
      for (let i = Math.max(0, index - STRIP_SIDE); i <= Math.min(ids.length - 1, index + STRIP_SIDE); i++) {
        const id = ids[i];
        const link = item(id);
        const score = v.scores.get(id);
        const badge = link.lastChild;
        const text = score === null || score === undefined ? "" : String(score);
        if (badge.textContent !== text) badge.textContent = text;
        link.classList.toggle("sk-current", i === index);
        link.setAttribute("aria-label", `image ${id}` + (text ? `, score ${text}` : ", unrated"));
        if (i === index) link.setAttribute("aria-current", "true"); else link.removeAttribute("aria-current");
        shown.push(link);
      }
      const children = filmstrip.children;
      if (children.length !== shown.length || shown.some((link, k) => children[k] !== link)) {
        filmstrip.replaceChildren(...shown);
      }
      for (const [id, link] of items) if (!link.isConnected && items.size > 8 * STRIP_SIDE) items.delete(id);
    }
  };
})();
