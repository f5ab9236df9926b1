/* The gallery and the viewer: everything works from the keyboard.
   Viewer: ←/→ move through the gallery's order and filter (ids fetched once, images preloaded,
   the <img> swapped without a reload), 1–9 and 0 score (saved at once), a toggles auto-advance
   (remembered), u upscales, c compares, ? lists the shortcuts, Esc goes back to the gallery. */
(function () {
  "use strict";
  const toast = (m, k) => (window.toast ? window.toast(m, k) : console.log(m));
  const path = (p) => p; // routes are absolute; Datasette's base_url is not used by this project
  const dialogOpen = () => document.querySelector("dialog[open]");

  function isTyping(event) {
    const t = event.target;
    return t && (t.tagName === "INPUT" && t.type !== "checkbox" && t.type !== "radio" || t.tagName === "TEXTAREA" || t.tagName === "SELECT");
  }

  function help() {
    const dlg = document.getElementById("sk-help");
    if (dlg && !dlg.open) dlg.showModal();
  }

  /* ---------------------------------------------------------------- gallery */
  function gallery() {
    const form = document.getElementById("sk-filters");
    form.querySelectorAll("select").forEach((select) => select.addEventListener("change", () => {
      const params = new URLSearchParams(new FormData(form));
      for (const [k, v] of [...params]) if (!v || (k === "sort" && v === "newest")) params.delete(k);
      location.search = params.toString();
    }));
    const tiles = [...document.querySelectorAll(".sk-tile")];
    let selected = 0;
    const hash = location.hash.match(/^#img-(\d+)$/);
    if (hash) selected = Math.max(0, tiles.findIndex((t) => t.dataset.id === hash[1]));
    function select(i) {
      if (!tiles.length) return;
      selected = Math.max(0, Math.min(tiles.length - 1, i));
      tiles.forEach((t, j) => t.classList.toggle("sk-selected", j === selected));
      tiles[selected].focus({preventScroll: false});
    }
    if (tiles.length) select(selected);
    const columns = () => {
      if (tiles.length < 2) return 1;
      const top = tiles[0].getBoundingClientRect().top;
      const n = tiles.findIndex((t) => t.getBoundingClientRect().top !== top);
      return n === -1 ? tiles.length : n;
    };
    document.addEventListener("keydown", (event) => {
      if (isTyping(event) || dialogOpen() || event.ctrlKey || event.metaKey || event.altKey) return;
      const key = event.key;
      if (key === "ArrowRight") select(selected + 1);
      else if (key === "ArrowLeft") select(selected - 1);
      else if (key === "ArrowDown") select(selected + columns());
      else if (key === "ArrowUp") select(selected - columns());
      else if (key === "Enter" && tiles.length) location.href = tiles[selected].href;
      else if (key === "u") document.getElementById("sk-unrated").click();
      else if (key === "n" && document.getElementById("sk-next")) document.getElementById("sk-next").click();
      else if (key === "p" && document.getElementById("sk-prev")) document.getElementById("sk-prev").click();
      else if (key === "?") help();
      else return;
      event.preventDefault();
    });
  }

  /* ---------------------------------------------------------------- viewer */
  function viewer() {
    const boot = JSON.parse(document.getElementById("sk-boot").textContent);
    const img = document.getElementById("sk-image");
    const scoreBox = document.getElementById("sk-score");
    const position = document.getElementById("sk-position");
    const auto = document.getElementById("sk-auto");
    const compareButton = document.getElementById("sk-compare-open");
    const busy = document.getElementById("sk-busy");
    const state = boot.state ? "?" + boot.state : "";
    const cache = new Map(); // id -> image info
    const pictures = new Map(); // id -> preloaded Image
    let ids = [boot.image_id]; // a window of the gallery's order, grown as you move
    let index = 0;
    let offset = 0; // position of ids[0] in the whole order
    let total = 1;
    let growing = null;
    let current = null;
    let upscaling = false;

    try { auto.checked = localStorage.getItem("sinkin-auto-advance") !== "off"; } catch (e) { /* ignore */ }
    auto.addEventListener("change", () => {
      try { localStorage.setItem("sinkin-auto-advance", auto.checked ? "on" : "off"); } catch (e) { /* ignore */ }
    });

    async function info(id) {
      if (!cache.has(id)) {
        cache.set(id, fetch(path(`/-/sinkin/images/${id}.json`), {credentials: "same-origin"})
          .then((r) => r.json()).then((b) => { if (!b.ok) throw new Error(b.error); return b.image; })
          .catch((e) => { cache.delete(id); throw e; }));
      }
      return cache.get(id);
    }

    function preload(id) {
      if (id === undefined || pictures.has(id)) return;
      const picture = new Image();
      picture.decoding = "async";
      picture.src = path(`/-/sinkin/images/${id}/full`);
      picture.decode().catch(() => {}); // decoded ahead: the swap only paints
      pictures.set(id, picture);
      info(id).catch(() => {});
    }

    function showScore(score) {
      scoreBox.textContent = score === null || score === undefined ? "–" : String(score);
    }

    function renderSettings(image) {
      const dl = document.getElementById("sk-settings");
      dl.replaceChildren();
      for (const [key, value] of image.settings) {
        const dt = document.createElement("dt");
        dt.textContent = key;
        const dd = document.createElement("dd");
        dd.textContent = value;
        dl.append(dt, dd);
      }
      document.getElementById("sk-image-id").textContent = image.image_id;
      document.title = `Image ${image.image_id} – ${image.run_name}`;
      compareButton.disabled = !image.upscale_url_local;
    }

    function updatePosition() {
      position.textContent = total > 1 ? `${offset + index + 1} of ${total}` : "";
    }

    function backHref() {
      const page = Math.floor((offset + index) / boot.page_size) + 1;
      const params = new URLSearchParams(boot.state);
      if (page > 1) params.set("page", page); else params.delete("page");
      const q = params.toString();
      return path(`/-/sinkin/runs/${boot.run_id}`) + (q ? "?" + q : "") + `#img-${ids[index]}`;
    }

    function orderWindow(around) {
      const q = new URLSearchParams(boot.state);
      q.set("around", around);
      return fetch(path(`/-/sinkin/runs/${boot.run_id}/order.json?`) + q, {credentials: "same-origin"})
        .then((r) => r.json()).then((body) => { if (!body.ok) throw new Error(body.error); return body; });
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
      if (i >= ids.length && offset + ids.length < total) { await grow(1); }
      if (i < 0 && offset > 0) { const before = index; await grow(-1); i += index - before; }
      if (i < 0 || i >= ids.length) {
        toast(i < 0 ? "This is the first image" : "That was the last image", "info");
        return;
      }
      index = i;
      const id = ids[index];
      const picture = pictures.get(id);
      img.src = picture ? picture.src : path(`/-/sinkin/images/${id}/full`);
      img.alt = `image ${id}`;
      history.replaceState(null, "", path(`/-/sinkin/images/${id}`) + state);
      document.getElementById("sk-back").href = backHref();
      updatePosition();
      const cached = cache.get(id);
      showScore(null);
      try {
        current = await info(id);
        if (ids[index] === id) { showScore(current.score); renderSettings(current); }
      } catch (e) {
        toast(`Could not load image ${id}: ${e.message}`, "error");
      }
      preload(ids[index + 1]);
      preload(ids[index - 1]);
      preload(ids[index + 2]);
      if (index > ids.length - 20 && offset + ids.length < total) grow(1);
      else if (index < 20 && offset > 0) grow(-1);
      return cached;
    }

    async function score(value) {
      const id = ids[index];
      const previous = current && current.image_id === id ? current.score : null;
      showScore(value);
      scoreBox.classList.add("sk-flash");
      setTimeout(() => scoreBox.classList.remove("sk-flash"), 250);
      const saving = postJSON(path(`/-/sinkin/images/${id}/score.json`), {score: value});
      if (auto.checked && value !== null && (index < ids.length - 1 || offset + ids.length < total)) show(index + 1);
      try {
        const result = await saving;
        const entry = await info(id).catch(() => null);
        if (entry) entry.score = result.score;
      } catch (e) {
        toast(`Score not saved for image ${id}: ${e.message}`, "error");
        if (ids[index] === id) showScore(previous);
      }
    }

    /* upscale dialog */
    const upDialog = document.getElementById("sk-upscale");
    const upForm = document.getElementById("sk-upscale-form");
    function openUpscale() {
      if (upscaling) { toast("An upscale is already running", "info"); return; }
      upDialog.showModal();
      upForm.querySelector("input[name=type]:checked").focus();
    }
    document.getElementById("sk-upscale-cancel").addEventListener("click", () => upDialog.close());
    upForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const data = new FormData(upForm);
      const body = {type: data.get("type")};
      if (body.type === "esrgan") body.scale = Number(data.get("scale"));
      else body.strength = Number(data.get("strength"));
      upDialog.close();
      const id = ids[index];
      upscaling = true;
      busy.hidden = false;
      try {
        const result = await postJSON(path(`/-/sinkin/images/${id}/upscale.json`), body);
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

    /* comparison */
    const cmpDialog = document.getElementById("sk-compare");
    const cmpBody = document.getElementById("sk-compare-body");
    const divider = document.getElementById("sk-divider");
    const modeButton = document.getElementById("sk-compare-mode");
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
      document.getElementById("sk-cmp-a").src = current.full_url;
      document.getElementById("sk-cmp-b").src = current.upscale_url_local;
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

    document.getElementById("sk-upscale-open").addEventListener("click", openUpscale);
    compareButton.addEventListener("click", openCompare);
    document.getElementById("sk-help-open").addEventListener("click", help);

    document.addEventListener("keydown", (event) => {
      if (dialogOpen() || isTyping(event) || event.ctrlKey || event.metaKey || event.altKey) return;
      const key = event.key;
      if (key === "ArrowRight") show(index + 1);
      else if (key === "ArrowLeft") show(index - 1);
      else if (/^[0-9]$/.test(key)) score(key === "0" ? 10 : Number(key));
      else if (key === "Backspace" || key === "Delete") score(null);
      else if (key === "a") { auto.checked = !auto.checked; auto.dispatchEvent(new Event("change")); toast(`Auto-advance ${auto.checked ? "on" : "off"}`); }
      else if (key === "u") openUpscale();
      else if (key === "c") openCompare();
      else if (key === "?") help();
      else if (key === "Escape") location.href = backHref();
      else return;
      event.preventDefault();
    });

    info(boot.image_id).then((image) => { current = image; renderSettings(image); showScore(image.score); }).catch(() => {});
    orderWindow(boot.image_id)
      .then((body) => {
        ids = body.ids;
        index = body.index;
        offset = body.offset;
        total = body.total;
        if (index === -1) { ids = [boot.image_id].concat(body.ids); index = 0; total += 1; }
        document.getElementById("sk-back").href = backHref();
        updatePosition();
        preload(ids[index + 1]);
        preload(ids[index - 1]);
        document.body.dataset.ready = "1";
      })
      .catch((e) => toast(`Could not load the gallery order: ${e.message}`, "error"));
  }

  document.addEventListener("DOMContentLoaded", () => {
    const page = document.querySelector("[data-page]");
    if (!page) return;
    if (page.dataset.page === "gallery") gallery();
    if (page.dataset.page === "viewer") viewer();
  });
})();
