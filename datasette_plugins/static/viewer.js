/* The viewer: one image filling the screen, driven by the keyboard.
   ←/→ move through the gallery's order and filter (ids fetched once, neighbours preloaded, the <img>
   swapped without a reload); 1–9 and 0 score (saved at once, confirmed on the image being left);
   Backspace / Ctrl+Z undo the last score and go back to it; a toggles auto-advance; z or a
   double-click toggles fit-to-screen / actual pixels (drag to pan); f fullscreen; i the settings
   panel; u upscale; c compare; ? the shortcuts; Esc back to the gallery. Helpers from sinkin.js. */
(function () {
  "use strict";
  const {$, el, plural, toast, postJSON, isTyping} = window.SK;
  const STRIP_SIDE = 7;  // neighbours shown on each side in the filmstrip
  const remember = (key, value) => { try { localStorage.setItem(key, value); } catch (e) { /* private */ } };
  const recall = (key) => { try { return localStorage.getItem(key); } catch (e) { return null; } };
  const dialogOpen = () => document.querySelector("dialog[open]");
  const getJSON = (url) => fetch(url, {credentials: "same-origin"}).then((r) => r.json())
    .then((b) => { if (!b.ok) throw new Error(b.error); return b; });

  function viewer() {
    const boot = JSON.parse($("#sk-boot").textContent);
    const img = $("#sk-image");
    const stage = $("#sk-stage");
    const scoreBox = $("#sk-score");
    const auto = $("#sk-auto");
    const query = new URLSearchParams(boot.state);  // the gallery's state, and the grid to go back to
    if (boot.grid !== null && boot.grid !== undefined) query.set("grid", boot.grid);
    const state = query.toString() ? "?" + query : "";
    /* blind mode: the server leaves an unscored image's settings out of everything it sends */
    const blind = query.get("blind") ? "?blind=" + encodeURIComponent(query.get("blind")) : "";
    const cache = new Map();     // id -> Promise of the image's info
    const pictures = new Map();  // id -> preloaded Image
    const scores = new Map();    // id -> score (from the gallery order, then every change)
    const undo = [];             // [{id, previous, value}]
    let ids = [boot.image_id];   // a window of the gallery's order, grown as you move
    let index = 0;
    let offset = 0;              // position of ids[0] in the whole order
    let total = 1;
    let growing = null;
    let current = null;
    let progress = null;         // {total, rated} of the whole run
    let upscaling = false;
    let writes = Promise.resolve();  // score writes are sent one after another, in order

    auto.checked = recall("sinkin-auto-advance") !== "off";
    auto.addEventListener("change", () => remember("sinkin-auto-advance", auto.checked ? "on" : "off"));

    /* ------------------------------------------------------------ loading and showing */
    function info(id) {
      if (!cache.has(id)) {
        cache.set(id, getJSON(`/-/sinkin/images/${id}.json${blind}`).then((b) => b.image)
          .catch((e) => { cache.delete(id); throw e; }));
      }
      return cache.get(id);
    }

    function preload(id) {
      if (id === undefined || pictures.has(id)) return;
      const picture = new Image();
      picture.decoding = "async";
      picture.src = `/-/sinkin/images/${id}/full`;
      picture.decode().catch(() => {});  // decoded ahead, so showing it is a swap
      pictures.set(id, picture);
      info(id).catch(() => {});
    }

    function setAspect(w, h) {
      if (w > 0 && h > 0) img.style.setProperty("--sk-ar", String(w / h));
    }
    img.addEventListener("load", () => setAspect(img.naturalWidth, img.naturalHeight));
    setAspect(boot.width, boot.height);

    function showScore(score) {
      scoreBox.textContent = score === null || score === undefined ? "–" : String(score);
      $("#sk-viewer").classList.toggle("sk-unscored-now", score === null || score === undefined);  // blind mode
    }

    function renderSettings(image) {
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
      else { remix.href = `/-/sinkin/new?image=${image.image_id}`; remix.removeAttribute("aria-disabled"); }
      $("#sk-copy").disabled = Boolean(image.hidden);
      showInit(image);
    }

    /* the viewer's extras (upscale quote, init image) from /extras.json, fetched when needed */
    const extras = (id) => getJSON(`/-/sinkin/images/${id}/extras.json${blind}`);

    /* an img2img image: the init image it started from, in the settings panel */
    function showInit(image) {
      const box = $("#sk-init");
      box.dataset.for = image.image_id;
      if (!image.init_asset_id) { box.hidden = true; return; }
      extras(image.image_id).then(({init_image: init}) => {
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
    async function copyParameters() {
      const id = ids[index];
      const found = await info(id).catch((e) => { toast(`Could not load image ${id}: ${e.message}`, "error"); });
      if (!found) return;
      if (found.hidden) { toast(BLIND_HINT, "info"); return; }
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
    }

    const BLIND_HINT = "Blind mode: score this image first — its settings stay hidden until then";
    function remix() {
      const link = $("#sk-remix");
      if (link.hasAttribute("href")) location.href = link.href;
      else toast(BLIND_HINT, "info");
    }

    function updatePosition() {
      $("#sk-position").textContent = total > 1 ? `${offset + index + 1} of ${total}` : "";
    }

    function updateProgress() {
      if (progress) $("#sk-progress").textContent = `${progress.rated} of ${progress.total} rated`;
    }

    function backHref() {
      if (boot.grid !== null && boot.grid !== undefined) {  // opened from the X/Y/Z grid: back there
        return `/-/sinkin/runs/${boot.run_id}/grid` + (boot.grid ? "?" + boot.grid : "") + `#img-${ids[index]}`;
      }
      const page = Math.floor((offset + index) / boot.page_size) + 1;
      const params = new URLSearchParams(boot.state);
      if (page > 1) params.set("page", page); else params.delete("page");
      const q = params.toString();
      return `/-/sinkin/runs/${boot.run_id}` + (q ? "?" + q : "") + `#img-${ids[index]}`;
    }

    function orderWindow(around) {
      const q = new URLSearchParams(boot.state);
      q.set("around", around);
      return getJSON(`/-/sinkin/runs/${boot.run_id}/order.json?` + q).then((body) => {
        body.ids.forEach((id, k) => { if (!scores.has(id)) scores.set(id, body.scores[k]); });
        if (body.progress) progress = body.progress;
        return body;
      });
    }

    /* fetch the next part of the order past the known window's end (dir 1) or start (-1) */
    function grow(dir) {
      if (growing) return growing;
      const edge = dir > 0 ? ids[ids.length - 1] : ids[0];
      growing = orderWindow(edge).then((body) => {
        const at = body.ids.indexOf(edge);
        total = body.total;
        if (at === -1) return;
        const known = new Set(ids);
        if (dir > 0) ids = ids.concat(body.ids.slice(at + 1).filter((id) => !known.has(id)));
        else {
          const before = body.ids.slice(0, at).filter((id) => !known.has(id));
          ids = before.concat(ids);
          index += before.length;
          offset = body.offset;
        }
      }).catch((e) => toast(`Could not load the gallery order: ${e.message}`, "error"))
        .finally(() => { growing = null; });
      return growing;
    }

    async function show(i) {
      if (i >= ids.length && offset + ids.length < total) await grow(1);
      if (i < 0 && offset > 0) { const before = index; await grow(-1); i += index - before; }
      if (i < 0 || i >= ids.length) {
        if (i >= ids.length && progress && progress.rated === progress.total) finished();
        else toast(i < 0 ? "This is the first image" : "That was the last image", "info");
        return;
      }
      index = i;
      const id = ids[index];
      const picture = pictures.get(id);
      if (picture && picture.naturalWidth) setAspect(picture.naturalWidth, picture.naturalHeight);
      img.src = picture ? picture.src : `/-/sinkin/images/${id}/full`;
      img.alt = `image ${id}`;
      if (actualSize) centre(0.5, 0.5);
      history.replaceState(null, "", `/-/sinkin/images/${id}` + state);
      $("#sk-back").href = backHref();
      updatePosition();
      showScore(scores.has(id) ? scores.get(id) : null);
      strip();
      try {
        current = await info(id);
        if (ids[index] === id) {
          if (!picture || !picture.naturalWidth) setAspect(current.width, current.height);
          renderSettings(current);
        }
      } catch (e) {
        toast(`Could not load image ${id}: ${e.message}`, "error");
      }
      preload(ids[index + 1]);
      preload(ids[index - 1]);
      preload(ids[index + 2]);
      if (index > ids.length - 20 && offset + ids.length < total) grow(1);
      else if (index < 20 && offset > 0) grow(-1);
    }

    /* ------------------------------------------------------------ filmstrip */
    /* A sliding window of the neighbours: an item is made once per image and moved, never reloaded,
       and the strip is updated after the main image has been painted. */
    const filmstrip = $("#sk-filmstrip");
    const items = new Map();  // id -> <a>
    function item(id) {
      let link = items.get(id);
      if (!link) {
        link = el("a", {class: "sk-strip-item", href: `/-/sinkin/images/${id}` + state},
                  el("img", {src: `/-/sinkin/images/${id}/thumb`, alt: "", width: 64, height: 64, draggable: "false"}),
                  el("span", {class: "sk-strip-score"}));
        link.addEventListener("click", (event) => {
          event.preventDefault();
          const i = ids.indexOf(id);
          if (i !== -1) show(i);
        });
        items.set(id, link);
      }
      return link;
    }
    let stripQueued = false;
    function strip() {
      if (stripQueued) return;
      stripQueued = true;
      requestAnimationFrame(() => setTimeout(() => { stripQueued = false; drawStrip(); }, 0));
    }
    function drawStrip() {
      const shown = [];
      for (let i = Math.max(0, index - STRIP_SIDE); i <= Math.min(ids.length - 1, index + STRIP_SIDE); i++) {
        const id = ids[i];
        const link = item(id);
        const score = scores.get(id);
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

    /* ------------------------------------------------------------ scoring, feedback, undo */
    const flash = $("#sk-flash");
    function confirmScore(id, value) {
      $("#sk-flash-thumb").src = `/-/sinkin/images/${id}/thumb`;
      $("#sk-flash-text").textContent = value === null ? `image ${id}: score cleared`
        : `image ${id} scored ${value}`;
      flash.dataset.score = value === null ? "" : String(value);
      flash.getAnimations().forEach((a) => a.cancel());
      flash.animate([{opacity: 1, transform: "scale(1)"}, {opacity: 1, offset: 0.7}, {opacity: 0, transform: "scale(0.96)"}],
                    {duration: 1400, easing: "ease-out"});
      scoreBox.animate([{outline: "4px solid var(--sk-ok)"}, {outline: "4px solid transparent"}], {duration: 500});
    }

    function applyScore(id, value) {
      const before = scores.has(id) ? scores.get(id) : null;
      scores.set(id, value);
      if (progress) progress.rated += (value !== null) - (before !== null);
      updateProgress();
      if (ids[index] === id) showScore(value);
      strip();
      info(id).then((entry) => { entry.score = value; }).catch(() => {});
    }

    function save(id, value, previous) {
      const request = writes.then(() => postJSON(`/-/sinkin/images/${id}/score.json`, {score: value}));
      writes = request.catch(() => {});
      return request.catch((e) => {
        toast(`Score not saved for image ${id}: ${e.message}`, "error");
        applyScore(id, previous);
        throw e;
      });
    }

    function score(value) {
      const id = ids[index];
      const previous = scores.has(id) ? scores.get(id) : null;
      if (previous === value) { confirmScore(id, value); if (auto.checked && value !== null) advance(); return; }
      applyScore(id, value);
      undo.push({id, previous, value});
      $("#sk-undo").disabled = false;
      confirmScore(id, value);
      const saving = save(id, value, previous).then(() => {
        reveal(id);
        if (progress && progress.total && progress.rated === progress.total && value !== null) finished();
      }, () => { undo.pop(); $("#sk-undo").disabled = !undo.length; });
      if (auto.checked && value !== null) advance();
      return saving;
    }

    /* blind mode: once a score is saved, the image's settings are fetched again (shown if scored) */
    function reveal(id) {
      if (!blind) return;
      cache.delete(id);
      info(id).then((image) => {
        if (ids[index] === id) { current = image; renderSettings(image); }
      }).catch(() => {});
    }

    function advance() {
      if (index < ids.length - 1 || offset + ids.length < total) show(index + 1);
    }

    function undoLast() {
      const last = undo.pop();
      $("#sk-undo").disabled = !undo.length;
      if (!last) { toast("Nothing to undo", "info"); return; }
      const i = ids.indexOf(last.id);
      if (i !== -1 && i !== index) show(i);
      applyScore(last.id, last.previous);
      save(last.id, last.previous, last.value).then(() => {
        reveal(last.id);
        toast(`Undone: image ${last.id} is ${last.previous === null ? "unrated" : "scored " + last.previous} again`, "info");
      }, () => {});
    }

    /* ------------------------------------------------------------ the run is fully rated */
    let doneShown = false;
    async function finished() {
      const dialog = $("#sk-done");
      if (dialog.open || (doneShown && offset + index < total - 1)) return;
      doneShown = true;
      $("#sk-done-summary").textContent = `All ${plural(progress.total, "image")} of this run have a score.`;
      const others = $("#sk-done-others");
      others.replaceChildren(el("p", {class: "sk-hint"}, "Looking for unrated images in other runs…"));
      if (!dialogOpen()) dialog.showModal();
      try {
        const runs = (await getJSON("/-/sinkin/unrated.json")).runs.filter((r) => r.run_id !== boot.run_id);
        if (!runs.length) {
          others.replaceChildren(el("p", {}, "No other run has unrated images."));
          return;
        }
        const list = el("ul", {class: "sk-done-runs"});
        for (const run of runs) {
          list.append(el("li", {}, el("a", {href: `/-/sinkin/images/${run.first_image}?unrated=1`},
            `${run.name || "run " + run.run_id}`), ` — ${plural(run.unrated, "unrated image")}`));
        }
        others.replaceChildren(el("p", {}, "Other runs with unrated images:"), list);
        const first = list.querySelector("a");
        if (first) first.focus();
      } catch (e) {
        others.replaceChildren(el("p", {}, `Could not list the other runs: ${e.message}`));
      }
    }

    /* ------------------------------------------------------------ fit, 1:1 with pan, fullscreen, panel */
    let actualSize = false;
    function centre(fx, fy) {
      stage.scrollLeft = fx * stage.scrollWidth - stage.clientWidth / 2;
      stage.scrollTop = fy * stage.scrollHeight - stage.clientHeight / 2;
    }
    function toggleActual(event) {
      let fx = 0.5;
      let fy = 0.5;
      if (event && event.clientX !== undefined) {
        const r = img.getBoundingClientRect();
        fx = Math.min(1, Math.max(0, (event.clientX - r.left) / r.width));
        fy = Math.min(1, Math.max(0, (event.clientY - r.top) / r.height));
      }
      actualSize = !actualSize;
      stage.classList.toggle("sk-actual", actualSize);
      $("#sk-zoom").setAttribute("aria-pressed", String(actualSize));
      if (actualSize) centre(fx, fy);
    }
    stage.addEventListener("dblclick", (event) => {
      if (!event.target.closest(".sk-flash-box, .sk-score-big")) toggleActual(event);
    });
    let drag = null;
    stage.addEventListener("pointerdown", (event) => {
      if (!actualSize || event.button !== 0) return;
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

    function toggleFullscreen() {
      if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
      else document.documentElement.requestFullscreen().catch((e) => toast(`Fullscreen refused: ${e.message}`, "error"));
    }

    const panel = $("#sk-panel");
    const panelButton = $("#sk-panel-toggle");
    function setPanel(open) {
      panel.hidden = !open;
      panelButton.setAttribute("aria-expanded", String(open));
      remember("sinkin-viewer-panel", open ? "open" : "closed");
    }
    setPanel(recall("sinkin-viewer-panel") !== "closed");

    /* ------------------------------------------------------------ upscale dialog */
    const busy = $("#sk-busy");
    const upDialog = $("#sk-upscale");
    const upForm = $("#sk-upscale-form");
    async function openUpscale() {
      if (upscaling) { toast("An upscale is already running", "info"); return; }
      const id = ids[index];
      const note = $("#sk-upscale-note");
      const warning = $("#sk-upscale-warning");
      note.textContent = "Checking the cost…";
      warning.hidden = true;
      upDialog.showModal();
      const checked = upForm.querySelector("input[name=type]:checked");
      if (checked) checked.focus();
      try {  // the image's own provider, the estimate, and a warning before upscaling it again
        const {upscale} = await extras(id);
        if (ids[index] !== id) return;
        note.textContent = upscale.note;
        const warn = [upscale.warning, upscale.problem].filter(Boolean).join(" ");
        warning.textContent = warn;
        warning.hidden = !warn;
      } catch (e) {
        note.textContent = `The cost could not be checked: ${e.message}`;
      }
    }
    $("#sk-upscale-cancel").addEventListener("click", () => upDialog.close());
    upForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const checked = upForm.querySelector("input[name=type]:checked");
      if (!checked) return;
      /* the options the chosen upscaler declares (rendered by the server from the registry) */
      const body = {type: checked.value};
      for (const input of upForm.querySelectorAll(`[data-upscaler="${CSS.escape(checked.value)}"]`)) {
        const kind = input.dataset.kind;
        if (kind === "bool") body[input.name] = input.checked;
        else if (kind === "number") { if (input.value !== "") body[input.name] = Number(input.value); }
        else body[input.name] = input.value;
      }
      upDialog.close();
      const id = ids[index];
      upscaling = true;
      busy.hidden = false;
      try {
        const result = await postJSON(`/-/sinkin/images/${id}/upscale.json${blind}`, body);
        cache.set(id, Promise.resolve(result.image));
        if (ids[index] === id) { current = result.image; renderSettings(result.image); }
        toast(`Image ${id} upscaled`, "ok");
        if (ids[index] === id) openCompare();  // show the new image beside the original
      } catch (e) {
        toast(`Upscale failed: ${e.message}`, "error");
      } finally {
        upscaling = false;
        busy.hidden = true;
      }
    });

    /* ------------------------------------------------------------ comparison with the upscale */
    const cmpDialog = $("#sk-compare");
    const cmpBody = $("#sk-compare-body");
    const divider = $("#sk-divider");
    const modeButton = $("#sk-compare-mode");
    let zoom = 1;
    function setSplit(v) {
      divider.value = v;
      cmpBody.style.setProperty("--sk-split", `${v}%`);
    }
    function setZoom(z, ox, oy) {
      zoom = Math.max(1, Math.min(8, z));
      cmpBody.style.setProperty("--sk-zoom", zoom);
      if (ox !== undefined) { cmpBody.style.setProperty("--sk-ox", `${ox}%`); cmpBody.style.setProperty("--sk-oy", `${oy}%`); }
    }
    function toggleMode() {
      const slider = cmpBody.classList.toggle("sk-slider");
      cmpBody.classList.toggle("sk-side", !slider);
      modeButton.textContent = slider ? "Side by side" : "Slider";
    }
    function openCompare() {
      if (!current || !current.upscale_url_local) { toast("No upscale yet: press u to make one", "info"); return; }
      $("#sk-cmp-a").src = current.full_url;
      $("#sk-cmp-b").src = current.upscale_url_local;
      setSplit(50);
      setZoom(1, 50, 50);
      cmpDialog.showModal();
      cmpBody.focus();
    }
    modeButton.addEventListener("click", toggleMode);
    divider.addEventListener("input", () => setSplit(divider.value));
    cmpBody.addEventListener("wheel", (event) => {
      event.preventDefault();
      const rect = event.target.getBoundingClientRect();
      setZoom(zoom * (event.deltaY < 0 ? 1.25 : 0.8), ((event.clientX - rect.left) / rect.width) * 100,
              ((event.clientY - rect.top) / rect.height) * 100);
    }, {passive: false});
    cmpDialog.addEventListener("keydown", (event) => {
      if (event.key === "s") toggleMode();
      else if (event.key === "ArrowLeft") setSplit(Math.max(0, Number(divider.value) - 5));
      else if (event.key === "ArrowRight") setSplit(Math.min(100, Number(divider.value) + 5));
      else if (event.key === "+" || event.key === "=") setZoom(zoom * 1.25);
      else if (event.key === "-") setZoom(zoom * 0.8);
      else return;
      event.preventDefault();
      event.stopPropagation();
    });

    /* ------------------------------------------------------------ buttons and keys */
    const help = () => { const d = $("#sk-help"); if (d && !d.open) d.showModal(); };
    $("#sk-upscale-open").addEventListener("click", openUpscale);
    $("#sk-compare-open").addEventListener("click", openCompare);
    $("#sk-help-open").addEventListener("click", help);
    $("#sk-undo").addEventListener("click", undoLast);
    $("#sk-copy").addEventListener("click", copyParameters);
    $("#sk-remix").addEventListener("click", (event) => {
      if (!event.currentTarget.hasAttribute("href")) { event.preventDefault(); toast(BLIND_HINT, "info"); }
    });
    $("#sk-zoom").addEventListener("click", () => toggleActual());
    $("#sk-fullscreen").addEventListener("click", toggleFullscreen);
    panelButton.addEventListener("click", () => setPanel(panel.hidden));

    document.addEventListener("keydown", (event) => {
      if (dialogOpen() || isTyping(event)) return;
      const key = event.key;
      if ((event.ctrlKey || event.metaKey) && !event.altKey && key.toLowerCase() === "z" && !event.shiftKey) {
        undoLast();
        event.preventDefault();
        return;
      }
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      if (key === "ArrowRight") show(index + 1);
      else if (key === "ArrowLeft") show(index - 1);
      else if (/^[0-9]$/.test(key)) score(key === "0" ? 10 : Number(key));
      else if (key === "Backspace") undoLast();
      else if (key === "Delete") score(null);
      else if (key === "a") {
        auto.checked = !auto.checked;
        auto.dispatchEvent(new Event("change"));
        toast(`Auto-advance ${auto.checked ? "on" : "off"}`);
      }
      else if (key === "z") toggleActual();
      else if (key === "r") remix();
      else if (key === "p") copyParameters();
      else if (key === "f") toggleFullscreen();
      else if (key === "i") setPanel(panel.hidden);
      else if (key === "u") openUpscale();
      else if (key === "c") openCompare();
      else if (key === "?") help();
      else if (key === "Escape") location.href = backHref();
      else return;
      event.preventDefault();
    });

    info(boot.image_id).then((image) => {
      current = image;
      if (!scores.has(image.image_id)) scores.set(image.image_id, image.score);
      renderSettings(image);
    }).catch(() => {});
    orderWindow(boot.image_id)
      .then((body) => {
        ids = body.ids;
        index = body.index;
        offset = body.offset;
        total = body.total;
        if (index === -1) { ids = [boot.image_id].concat(body.ids); index = 0; total += 1; }
        $("#sk-back").href = backHref();
        updatePosition();
        updateProgress();
        if (scores.has(ids[index])) showScore(scores.get(ids[index]));
        strip();
        preload(ids[index + 1]);
        preload(ids[index - 1]);
        document.body.dataset.ready = "1";
      })
      .catch((e) => toast(`Could not load the gallery order: ${e.message}`, "error"));
  }

  document.addEventListener("DOMContentLoaded", () => {
    const page = document.querySelector("[data-page]");
    if (page && page.dataset.page === "viewer") viewer();
  });
})();
