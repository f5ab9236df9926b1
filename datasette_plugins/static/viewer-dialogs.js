/* The viewer's dialogs: upscale (u: the upscalers offered for the run's provider with their options,
   the estimate on the image's own provider and a warning before upscaling again; it runs in the
   server, then shows the result) and the comparison with the upscale (c: side by side or a slider,
   s; ←/→ move the divider; + - or the wheel zoom both together). */
(function () {
  "use strict";
  const {$, toast, postJSON} = window.SK;
  const V = (window.SKViewer = window.SKViewer || {});

  V.dialogs = function (v) {
    /* ------------------------------------------------------------ upscale */
    v.upscaling = false;
    const busy = $("#sk-busy");
    const upDialog = $("#sk-upscale");
    const upForm = $("#sk-upscale-form");
    v.openUpscale = async function () {
      if (v.upscaling) { toast("An upscale is already running", "info"); return; }
      const id = v.shown();
      const note = $("#sk-upscale-note");
      const warning = $("#sk-upscale-warning");
      note.textContent = "Checking the cost…";
      warning.hidden = true;
      upDialog.showModal();
      const checked = upForm.querySelector("input[name=type]:checked");
      if (checked) checked.focus();
      try {  // the image's own provider, the estimate, and a warning before upscaling it again
        const {upscale} = await v.extras(id);
        if (v.shown() !== id) return;
        note.textContent = upscale.note;
        const warn = [upscale.warning, upscale.problem].filter(Boolean).join(" ");
        warning.textContent = warn;
        warning.hidden = !warn;
      } catch (e) {
        note.textContent = `The cost could not be checked: ${e.message}`;
      }
    };
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
      const id = v.shown();
      v.upscaling = true;
      busy.hidden = false;
      try {
        const result = await postJSON(`/-/sinkin/images/${id}/upscale.json${v.blind}`, body);
        v.cache.set(id, Promise.resolve(result.image));
        if (v.shown() === id) { v.current = result.image; v.renderSettings(result.image); }
        toast(`Image ${id} upscaled`, "ok");
        if (v.shown() === id) v.openCompare();  // show the new image beside the original
      } catch (e) {
        toast(`Upscale failed: ${e.message}`, "error");
      } finally {
        v.upscaling = false;
        busy.hidden = true;
      }
    });

    /* ------------------------------------------------------------ comparison with the upscale */
    const cmpDialog = $("#sk-compare");
    const cmpBody = $("#sk-compare-body");
    const divider = $("#sk-divider");
    const modeButton = $("#sk-compare-mode");
    let zoom = 1;
    function setSplit(value) {
      divider.value = value;
      cmpBody.style.setProperty("--sk-split", `${value}%`);
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
    v.openCompare = function () {
      if (!v.current || !v.current.upscale_url_local) { toast("No upscale yet: press u to make one", "info"); return; }
      $("#sk-cmp-a").src = v.current.full_url;
      $("#sk-cmp-b").src = v.current.upscale_url_local;
      setSplit(50);
      setZoom(1, 50, 50);
      cmpDialog.showModal();
      cmpBody.focus();
    };
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
    $("#sk-upscale-open").addEventListener("click", v.openUpscale);
    $("#sk-compare-open").addEventListener("click", v.openCompare);
  };
})();
