/* The gallery: everything works from the keyboard. Arrows move the selection, Enter opens it, u
   toggles "Unrated only", n / p change page, x picks 2-4 images and c compares them side by side
   (one zoom for all), ? lists the shortcuts. "Upscale the best…" upscales every image scored at least
   N after showing the estimate. Helpers from sinkin.js. */
(function () {
  "use strict";
  const {$, el, isTyping, plural, postJSON, toast, creditText, url} = window.SK;
  const MAX_PICKED = 4;
  const dialogOpen = () => document.querySelector("dialog[open]");

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
    /* pick 2-4 images (x) and compare them side by side with one zoom */
    const picked = [];
    const tray = $("#sk-tray");
    function pick(tile) {
      const id = tile.dataset.id;
      const at = picked.indexOf(id);
      if (at !== -1) picked.splice(at, 1);
      else if (picked.length >= MAX_PICKED) { toast(`Compare at most ${MAX_PICKED} images`, "info"); return; }
      else picked.push(id);
      tile.classList.toggle("sk-picked", at === -1);
      tile.setAttribute("aria-pressed", String(at === -1));
      tray.hidden = !picked.length;
      $("#sk-tray-count").textContent = `${plural(picked.length, "image")} picked`;
    }
    const multi = $("#sk-multi");
    const multiBody = $("#sk-multi-body");
    let zoom = 1;
    function setZoom(z, ox, oy) {
      zoom = Math.max(1, Math.min(8, z));
      multiBody.style.setProperty("--sk-zoom", zoom);
      if (ox !== undefined) { multiBody.style.setProperty("--sk-ox", `${ox}%`); multiBody.style.setProperty("--sk-oy", `${oy}%`); }
    }
    function compare() {
      if (picked.length < 2) { toast("Pick 2 to 4 images with x first", "info"); return; }
      multiBody.replaceChildren(...picked.map((id) => el("div", {class: "sk-pane"},
        el("img", {src: url(`/-/sinkin/images/${id}/full`), alt: `image ${id}`, draggable: "false"}),
        el("span", {class: "sk-tag"}, `image ${id}`))));
      multiBody.style.setProperty("--sk-n", picked.length);
      setZoom(1, 50, 50);
      multi.showModal();
      multiBody.focus();
    }
    multiBody.addEventListener("wheel", (event) => {
      event.preventDefault();
      const rect = event.target.getBoundingClientRect();
      setZoom(zoom * (event.deltaY < 0 ? 1.25 : 0.8), ((event.clientX - rect.left) / rect.width) * 100,
              ((event.clientY - rect.top) / rect.height) * 100);
    }, {passive: false});
    multi.addEventListener("keydown", (event) => {
      if (event.key === "+" || event.key === "=") setZoom(zoom * 1.25);
      else if (event.key === "-") setZoom(zoom * 0.8);
      else if (event.key === "0") setZoom(1, 50, 50);
      else return;
      event.preventDefault();
      event.stopPropagation();
    });
    $("#sk-tray-compare").addEventListener("click", compare);
    $("#sk-tray-clear").addEventListener("click", () => {
      for (const tile of tiles) if (tile.classList.contains("sk-picked")) pick(tile);
    });

    /* upscale every image scored at least N: the estimate, then the confirmed count */
    const batch = $("#sk-batch-dialog");
    const batchForm = $("#sk-batch-form");
    const batchGo = $("#sk-batch-go");
    const runId = location.pathname.match(/\/runs\/(\d+)/)[1];
    let plan = null;
    let optionsOf = null;  // the upscaler whose option inputs are shown
    const typeSelect = $("#sk-batch-type");
    /* the upscale types offered for this run's provider and their options, as the server's
       registry declares them (the plan answers with them) */
    function renderUpscalers(upscalers, chosen) {
      const names = upscalers.map((u) => u.name).join("\n");
      if (typeSelect.dataset.names !== names) {
        typeSelect.replaceChildren(...upscalers.map((u) => new Option(u.name, u.name)));
        typeSelect.dataset.names = names;
      }
      typeSelect.value = chosen;
      const upscaler = upscalers.find((u) => u.name === chosen);
      $("#sk-batch-about").textContent = upscaler ? upscaler.description : "";
      if (!upscaler || optionsOf === chosen) return;
      optionsOf = chosen;
      $("#sk-batch-options").replaceChildren(...upscaler.options.map((f) => {
        const numeric = f.kind === "int" || f.kind === "float";
        const input = f.kind === "choice"
          ? el("select", {name: f.name}, ...f.choices.map((c) => new Option(c, c, c === f.default, c === f.default)))
          : el("input", {name: f.name, type: numeric ? "number" : "text", min: f.min ?? null, max: f.max ?? null,
                         step: numeric ? (f.step ?? (f.kind === "int" ? 1 : "any")) : null,
                         value: f.default ?? "", "data-kind": f.kind});
        const range = numeric && f.min !== null && f.max !== null ? ` (${f.min}–${f.max})` : "";
        return el("label", {}, `${f.label}${range} `, input, f.help ? el("span", {class: "sk-hint"}, ` ${f.help}`) : null);
      }));
    }
    function batchBody() {
      const data = new FormData(batchForm);
      const body = {min_score: Number(data.get("min_score")), options: {}};
      if (typeSelect.value) body.type = typeSelect.value;
      for (const input of $("#sk-batch-options").querySelectorAll("input, select")) {
        if (input.value === "") continue;
        const numeric = input.dataset.kind === "int" || input.dataset.kind === "float";
        body.options[input.name] = numeric ? Number(input.value) : input.value;
      }
      return body;
    }
    async function estimate() {
      plan = null;
      batchGo.disabled = true;
      const text = $("#sk-batch-plan");
      text.textContent = "Estimating…";
      try {
        plan = (await postJSON(`/-/sinkin/runs/${runId}/upscale-batch.json`, batchBody())).plan;
      } catch (e) {
        text.textContent = e.message;
        return;
      }
      renderUpscalers(plan.upscalers, plan.type);
      const skipped = [plan.already.length ? `${plural(plan.already.length, "image")} already upscaled (skipped)` : "",
                       plan.unusable.length ? `${plural(plan.unusable.length, "image")} with ${plan.unusable_reason} (skipped)` : ""]
        .filter(Boolean).join("; ");
      text.textContent = plan.images.length
        ? `${plural(plan.images.length, "image")} to upscale on provider ${plan.provider}: ` +
          `${creditText(plan.credits, true)} estimated.` + (skipped ? ` ${skipped}.` : "")
        : `No image scored ${plan.min_score} or more is left to upscale.` + (skipped ? ` ${skipped}.` : "");
      batchGo.textContent = `Upscale ${plural(plan.images.length, "image")}`;
      batchGo.disabled = !plan.images.length;
    }
    typeSelect.addEventListener("change", () => { optionsOf = null; });  // its own options, at their defaults
    batchForm.addEventListener("change", (event) => {
      if (event.target === typeSelect) $("#sk-batch-options").replaceChildren();
      estimate();
    });
    $("#sk-batch-open").addEventListener("click", () => { batch.showModal(); estimate(); });
    $("#sk-batch-cancel").addEventListener("click", () => batch.close());
    batchForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!plan || !plan.images.length) return;
      batchGo.disabled = true;
      $("#sk-batch-plan").textContent = `Upscaling ${plural(plan.images.length, "image")}…`;
      try {
        const {result} = await postJSON(`/-/sinkin/runs/${runId}/upscale-batch.json`,
                                        Object.assign(batchBody(), {confirm: true, expect: plan.images.length}));
        batch.close();
        toast(`${plural(result.done.length, "image")} upscaled` +
              (result.failed.length ? `, ${result.failed.length} failed: ${result.failed[0][1]}` : ""),
              result.failed.length ? "error" : "ok");
        setTimeout(() => location.reload(), 800);
      } catch (e) {
        $("#sk-batch-plan").textContent = e.message;
        estimate();
      }
    });

    document.addEventListener("keydown", (event) => {
      if (isTyping(event) || dialogOpen() || event.ctrlKey || event.metaKey || event.altKey) return;
      const key = event.key;
      if (key === "ArrowRight") select(selected + 1);
      else if (key === "ArrowLeft") select(selected - 1);
      else if (key === "ArrowDown") select(selected + columns());
      else if (key === "ArrowUp") select(selected - columns());
      else if (key === "Enter" && tiles.length) location.href = tiles[selected].href;
      else if (key === "u") document.getElementById("sk-unrated").click();
      else if (key === "x" && tiles.length) pick(tiles[selected]);
      else if (key === "c") compare();
      else if (key === "n" && document.getElementById("sk-next")) document.getElementById("sk-next").click();
      else if (key === "p" && document.getElementById("sk-prev")) document.getElementById("sk-prev").click();
      else if (key === "?") help();
      else return;
      event.preventDefault();
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const page = document.querySelector("[data-page]");
    if (!page) return;
    if (page.dataset.page === "gallery") gallery();
  });
})();
