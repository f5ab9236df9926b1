/* The viewer's settings panel: the image's settings (the ones that vary in the run in bold), its
   init image, Remix (r) and the A1111 parameter line (p), both held back for an unscored image in
   blind mode; i folds the panel away (remembered). */
(function () {
  "use strict";
  const {$, el, toast, url} = window.SK;
  const V = (window.SKViewer = window.SKViewer || {});

  V.panel = function (v) {
    /* the viewer's extras (upscale quote, init image) from /extras.json, fetched when needed */
    v.extras = (id) => V.getJSON(`/-/sinkin/images/${id}/extras.json${v.blind}`);

    v.renderSettings = function (image) {
      const dl = $("#sk-settings");
      const varying = new Set(image.varying || []);
      dl.replaceChildren();
      for (const [key, value] of image.settings) {
        dl.append(el("dt", {class: varying.has(key) ? "sk-vary" : null}, key), el("dd", {}, String(value)));
      }
      $("#sk-varies").textContent = image.label || "";
      $("#sk-image-id").textContent = image.image_id;
      document.title = `Image ${image.image_id} – ${image.run_name}`;
      $("#sk-compare-open").disabled = !image.upscale_url_local;
      const remix = $("#sk-remix");
      if (image.hidden) { remix.removeAttribute("href"); remix.setAttribute("aria-disabled", "true"); }
      else { remix.href = url(`/-/sinkin/new?image=${image.image_id}`); remix.removeAttribute("aria-disabled"); }
      $("#sk-copy").disabled = Boolean(image.hidden);
      showInit(image);
    };

    /* an img2img image: the init image it started from, in the settings panel */
    function showInit(image) {
      const box = $("#sk-init");
      box.dataset.for = image.image_id;
      if (!image.init_asset_id) { box.hidden = true; return; }
      v.extras(image.image_id).then(({init_image: init}) => {
        if (box.dataset.for !== String(image.image_id)) return;
        if (!init) { box.hidden = true; return; }
        $("#sk-init-img").src = init.url;
        $("#sk-init-caption").textContent = `Init image: ${init.filename} · ${init.width}×${init.height}` +
          (init.image_strength !== null ? ` · strength ${init.image_strength}` : "") +
          (init.controlnet ? ` · ControlNet ${init.controlnet}` : "") +
          (init.fallback ? " · not used: SinkIn refused img2img, so it was sent as txt2img" : "");
        box.hidden = false;
      }).catch(() => { box.hidden = true; });
    }

    /* the A1111 parameter line of the image shown, to the clipboard */
    v.copyParameters = async function () {
      const id = v.shown();
      const found = await v.info(id).catch((e) => { toast(`Could not load image ${id}: ${e.message}`, "error"); });
      if (!found) return;
      if (found.hidden) { toast(V.BLIND_HINT, "info"); return; }
      const text = found.a1111;
      try {
        await navigator.clipboard.writeText(text);
      } catch (e) {  // no clipboard permission: select the text in a box the user can copy from
        const box = el("textarea", {class: "sk-copy-box", readonly: true, rows: 4}, text);
        $("#sk-panel").append(box);
        box.select();
        const copied = document.execCommand && document.execCommand("copy");
        if (!copied) { toast("Select the text and copy it", "info"); return; }
        box.remove();
      }
      toast(`Parameters of image ${id} copied`, "ok");
    };

    /* Remix: the run form prefilled with this image's settings (not before a score in blind mode) */
    v.remix = function () {
      const link = $("#sk-remix");
      if (link.hasAttribute("href")) location.href = link.href;
      else toast(V.BLIND_HINT, "info");
    };
    $("#sk-remix").addEventListener("click", (event) => {
      if (!event.currentTarget.hasAttribute("href")) { event.preventDefault(); toast(V.BLIND_HINT, "info"); }
    });
    $("#sk-copy").addEventListener("click", v.copyParameters);

    const panel = $("#sk-panel");
    const panelButton = $("#sk-panel-toggle");
    v.setPanel = function (open) {
      panel.hidden = !open;
      panelButton.setAttribute("aria-expanded", String(open));
      V.remember("sinkin-viewer-panel", open ? "open" : "closed");
    };
    v.togglePanel = () => v.setPanel(panel.hidden);
    v.setPanel(V.recall("sinkin-viewer-panel") !== "closed");
    panelButton.addEventListener("click", v.togglePanel);
  };
})();
