/* SinkIn run form (/-/sinkin/new): fills the form (defaults, or a past run to clone), asks the
   server to check it as the user types (debounced), shows "N jobs, M images, ~C credits", the
   problems next to their fields and the equivalent YAML, uploads init images, and creates the run
   once per page load (a request key + a disabled button), with a confirmation for large grids. */
(function () {
  "use strict";
  const $ = (selector) => document.querySelector(selector);
  const $$ = (selector) => Array.from(document.querySelectorAll(selector));
  const form = $("#sk-run-form");
  if (!form) return;
  const data = JSON.parse($("#sinkin-form-data").textContent);
  const base = (document.querySelector(".sk-form-layout") || {}).dataset?.base || "";
  const MAX_UPLOAD = 20 * 1024 * 1024;
  const requestKey = (window.crypto && crypto.randomUUID) ? crypto.randomUUID()
    : Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
  let assets = (data.assets || []).slice();
  let lastCheck = null;
  let checkSeq = 0;
  let timer = null;
  let creating = false;
  let uploadError = null;  // the last refused upload's message
  // problems show next to a field once it has been touched (all of them after "Create" or for a clone)
  const touched = new Set();
  let showAll = Boolean(data.form);

  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const notify = (message, kind) => {
    if (typeof window.toast === "function") window.toast(message, kind);
    else console.log(`[${kind}] ${message}`);
  };
  const field = (name) => form.elements.namedItem(name);
  const splitIds = (text) => text.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean);

  const send = (path, data) => window.sendJSON(base + path, data);  // sinkin.js: CSRF header, {status, body}

  /* -- filling the form ------------------------------------------------------------------------ */

  function defaults() {
    const d = data.defaults || {};
    const provider = data.providers.includes(data.default_provider) ? data.default_provider : data.providers[0];
    return { provider, use_default_neg: "true", lcm: "false", seed_mode: "random", random_seeds: 1,
      steps: String(d.steps ?? 30), scale: String(d.scale ?? 7.5), width: String(d.width ?? 512),
      height: String(d.height ?? 768), num_images: String(d.num_images ?? 1),
      lora_scale: String(d.lora_scale ?? 0.75), image_strength: String(d.image_strength ?? 0.75),
      scheduler: [d.scheduler || "DPMSolverMultistep"], fallback: true };
  }

  function renderModels(models, chosen) {
    const select = $("#f-models");
    const known = new Set(models.map((m) => m.id));
    select.replaceChildren(...models.map((m) => {
      const option = new Option(m.title ? `${m.title} (${m.id})` : m.id, m.id);
      option.selected = chosen.includes(m.id);
      return option;
    }));
    $("#sk-no-models").hidden = models.length > 0;
    return chosen.filter((id) => !known.has(id));
  }

  function renderLoras(loras) {
    $("#sk-loras").replaceChildren(...loras.map((m) => new Option(m.title || m.id, m.id)));
  }

  function fill(values) {
    for (const name of ["name", "prompt", "negative_prompt", "lora", "lora_scale", "version", "steps", "scale",
      "width", "height", "num_images", "image_strength", "seed", "random_seeds"]) {
      if (values[name] !== undefined && field(name)) field(name).value = values[name];
    }
    for (const name of ["provider", "use_default_neg", "lcm"]) {
      if (values[name] !== undefined) field(name).value = String(values[name]);
    }
    for (const name of ["scheduler", "controlnet"]) {
      const chosen = values[name] || [];
      $$(`input[name="${name}"]`).forEach((box) => { box.checked = chosen.includes(box.value); });
    }
    $$('input[name="seed_mode"]').forEach((radio) => { radio.checked = radio.value === (values.seed_mode || "random"); });
    $("#f-fallback").checked = values.fallback !== false;
    const ids = Array.isArray(values.model_id) ? values.model_id : splitIds(values.model_id || "");
    $("#f-model_other").value = renderModels(data.models || [], ids).join(", ");
    renderLoras(data.loras || []);
  }

  function collect() {
    const chosenModels = Array.from($("#f-models").selectedOptions, (o) => o.value);
    const models = [...new Set([...chosenModels, ...splitIds($("#f-model_other").value)])];
    const checked = (name) => $$(`input[name="${name}"]:checked`).map((box) => box.value);
    const value = (name) => field(name).value;
    return {
      name: value("name"), provider: value("provider"), prompt: value("prompt"),
      negative_prompt: value("negative_prompt"), use_default_neg: value("use_default_neg"),
      model_id: models, lora: value("lora"), lora_scale: value("lora_scale"), version: value("version"),
      scheduler: checked("scheduler"), steps: value("steps"), scale: value("scale"), lcm: value("lcm"),
      seed_mode: (checked("seed_mode")[0] || "random"), random_seeds: value("random_seeds"), seed: value("seed"),
      width: value("width"), height: value("height"), num_images: value("num_images"),
      init_image: assets.map((a) => a.id), image_strength: value("image_strength"),
      controlnet: checked("controlnet"), fallback: $("#f-fallback").checked,
    };
  }

  /* -- checking ------------------------------------------------------------------------------------ */

  function fieldBox(key) {
    return form.querySelector(`[data-field="${key}"]`);
  }

  function showProblems(problems) {
    if (uploadError) {  // a refused upload stays shown until the next upload, whatever checks come back
      touched.add("init_image");
      problems = Object.assign({}, problems, { init_image: [...((problems || {}).init_image || []), uploadError] });
    }
    $$(".sk-field-error").forEach((node) => node.remove());
    $$("[aria-invalid]").forEach((node) => node.removeAttribute("aria-invalid"));
    $$(".sk-field.sk-invalid").forEach((node) => node.classList.remove("sk-invalid"));
    const general = [];
    const pending = [];
    for (const [key, lines] of Object.entries(problems || {})) {
      const box = fieldBox(key);
      if (!box) { general.push(...lines); continue; }
      // an untouched, empty field is "still to fill in"; a field holding a value shows its problem
      if (!showAll && !touched.has(key) && isEmpty(box)) { pending.push(key); continue; }
      box.classList.add("sk-invalid");
      const message = document.createElement("p");
      message.className = "sk-field-error";
      message.id = `err-${key}`;
      message.textContent = lines.join(" · ");
      box.append(message);
      box.querySelectorAll("input:not([type=checkbox]):not([type=radio]), textarea, select").forEach((input) => {
        input.setAttribute("aria-invalid", "true");
        input.setAttribute("aria-describedby", message.id);
      });
    }
    $("#sk-general").replaceChildren(...general.map((line) => Object.assign(document.createElement("li"), { textContent: line })));
    $("#sk-pending").textContent = pending.length ? `Still to fill in: ${pending.map(labelOf).join(", ")}.` : "";
  }

  function isEmpty(box) {
    const inputs = Array.from(box.querySelectorAll("input, textarea, select"));
    return !inputs.some((input) => (input.type === "checkbox" || input.type === "radio") ? input.checked
      : input.type !== "file" && input.value.trim() !== "");
  }

  function labelOf(key) {
    const box = fieldBox(key);
    const label = box && box.querySelector("label, .sk-label");
    return label ? label.firstChild.textContent.trim() : key;
  }

  function showResult(result) {
    lastCheck = result;
    showProblems(result.problems);
    const plan = result.plan;
    const count = Object.values(result.problems || {}).reduce((n, lines) => n + lines.length, 0);
    if (plan) {
      $("#sk-plan").replaceChildren(
        Object.assign(document.createElement("strong"), { textContent: `${plural(plan.jobs, "job")}, ${plural(plan.images, "image")}, ${window.creditText(plan.credits, true)}` }),
        ` on ${plan.provider}`);
      const axes = Object.entries(plan.axes || {}).map(([key, values]) => `${key} (${values.length})`);
      $("#sk-basis").textContent = (axes.length ? `Varies: ${axes.join(" × ")}. ` : "No axis varies. ") + (plan.basis ? `Estimate: ${plan.basis}.` : "");
    } else {
      $("#sk-plan").textContent = `${plural(count, "problem")} to fix before this run can be queued`;
      $("#sk-basis").textContent = "";
    }
    $("#sk-warnings").replaceChildren(...((plan && plan.warnings) || []).map((w) => Object.assign(document.createElement("li"), { textContent: w })));
    // cautions (no API key, unknown model ids) never hide the plan; "Create" asks before queueing
    $("#sk-cautions").replaceChildren(...(result.cautions || []).map((w) => Object.assign(document.createElement("li"), { textContent: w })));
    $("#sk-yaml").textContent = result.yaml || "";
    $("#sk-create").disabled = creating;
    if (!creating) $("#sk-create").textContent = plan ? `Create run (${plural(plan.jobs, "job")})` : "Create run";
  }

  let inflight = null;  // the check under way, if any
  let dirty = true;      // the form changed since the last finished check

  function check() {
    clearTimeout(timer);
    const seq = ++checkSeq;
    dirty = false;
    inflight = (async () => {
      const { body } = await send("/-/sinkin/new/check.json", { form: collect() });
      if (seq !== checkSeq) return;  // a newer check is under way
      if (body.error && body.problems === undefined) {
        showResult({ ok: false, problems: { _general: [body.error] }, yaml: "", plan: null });
      } else {
        showResult(body);
      }
      form.dataset.checked = String(seq);
    })();
    return inflight;
  }

  async function settled() {
    // wait until the last finished check is of what the form holds now
    for (;;) {
      if (dirty) check();
      const current = inflight;
      if (!current) return;
      await current;
      if (!dirty && inflight === current) { inflight = null; return; }
    }
  }

  function scheduleCheck(event) {
    const box = event && event.target && event.target.closest && event.target.closest("[data-field]");
    if (box) touched.add(box.dataset.field);
    hideConfirm();
    dirty = true;
    clearTimeout(timer);
    timer = setTimeout(check, 300);
  }
  form.addEventListener("input", scheduleCheck);
  form.addEventListener("change", scheduleCheck);

  /* -- creating ----------------------------------------------------------------------------------- */

  function hideConfirm() { $("#sk-confirm").hidden = true; }

  async function create(confirm) {
    if (creating) return;  // a second click while the first is under way does nothing
    creating = true;
    const button = $("#sk-create");
    button.disabled = true;
    button.textContent = "Creating…";
    await settled();
    if (lastCheck && !lastCheck.ok) {  // show every problem instead of sending a form known to be wrong
      creating = false;
      showAll = true;
      showResult(lastCheck);
      const first = form.querySelector(".sk-invalid input, .sk-invalid textarea, .sk-invalid select");
      if (first) first.focus();
      return;
    }
    hideConfirm();
    const payload = { form: collect(), request_key: requestKey };
    if (confirm) payload.confirm = true;
    const { status, body } = await send("/-/sinkin/new/create.json", payload);
    if (body.ok) {
      notify(body.message, "ok");
      for (const caution of body.cautions || []) notify(caution, "info");
      window.location.assign(body.redirect);
      return;  // the button stays disabled: this form load has made its run
    }
    creating = false;
    button.disabled = false;
    button.textContent = "Create run";
    if (status === 409 && body.needs_confirmation) {
      const reasons = body.reasons || [body.error];
      $("#sk-confirm-text").textContent = reasons.length > 1 ? "Before queueing, note:" : reasons[0];
      $("#sk-confirm-reasons").replaceChildren(...(reasons.length > 1 ? reasons : []).map(
        (line) => Object.assign(document.createElement("li"), { textContent: line })));
      $("#sk-confirm").hidden = false;
      $("#sk-confirm-yes").textContent = (body.cautions || []).length ? `Queue anyway (${plural(body.plan.jobs, "job")})`
        : `Queue ${plural(body.plan.jobs, "job")}`;
      $("#sk-confirm-yes").focus();
      return;
    }
    if (body.problems) {
      showAll = true;
      showResult(Object.assign({}, lastCheck || {}, { ok: false, problems: body.problems, plan: null }));
    }
    notify(body.error || "The run could not be created", "error");
  }

  $("#sk-create").addEventListener("click", () => create(false));
  $("#sk-confirm-yes").addEventListener("click", () => create(true));
  $("#sk-confirm-no").addEventListener("click", () => { hideConfirm(); $("#sk-create").disabled = false; field("prompt").focus(); });

  /* -- init images -------------------------------------------------------------------------------- */

  function renderAssets() {
    $("#sk-assets").replaceChildren(...assets.map((asset) => {
      const item = document.createElement("li");
      const img = document.createElement("img");
      img.src = `${base}/-/sinkin/assets/${asset.id}`;
      img.alt = `init image ${asset.filename}`;
      const label = document.createElement("span");
      label.textContent = `${asset.filename} · ${asset.width}×${asset.height}`;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "sk-button sk-small";
      remove.textContent = "Remove";
      remove.addEventListener("click", () => { assets = assets.filter((a) => a.id !== asset.id); renderAssets(); scheduleCheck(); });
      item.append(img, label, remove);
      return item;
    }));
    $("#sk-img2img").classList.toggle("sk-disabled", !assets.length);
    $$("#sk-img2img input").forEach((input) => { input.disabled = !assets.length; });
  }

  function readAsDataURL(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
  }

  $("#f-init-file").addEventListener("change", async (event) => {
    event.stopPropagation();
    const input = event.currentTarget;
    const file = input.files[0];
    if (!file) return;
    if (file.size > MAX_UPLOAD) {
      uploadError = `init_image: ${file.name} is ${(file.size / 1e6).toFixed(1)} MB; the limit is 20 MB`;
      showProblems(lastCheck?.problems);
      input.value = "";
      return;
    }
    input.disabled = true;
    const { body } = await send("/-/sinkin/new/upload.json", { filename: file.name, data: await readAsDataURL(file) });
    input.disabled = false;
    input.value = "";
    if (!body.ok) {
      notify(body.error, "error");
      uploadError = body.error;
      showProblems(lastCheck?.problems);
      return;
    }
    uploadError = null;
    if (!assets.some((a) => a.id === body.asset.id)) assets.push(body.asset);
    renderAssets();
    notify(`${body.message}: ${body.asset.filename}`, "ok");
    scheduleCheck();
  });

  /* -- models, YAML ------------------------------------------------------------------------------- */

  // the model and LoRA menus show the cached list of the chosen provider's catalogue
  field("provider").addEventListener("change", () => {
    const catalogue = (data.catalogues || {})[field("provider").value];
    const lists = (data.models_by_catalogue || {})[catalogue] || { models: [], loras: [] };
    const chosen = [...Array.from($("#f-models").selectedOptions, (o) => o.value), ...splitIds($("#f-model_other").value)];
    data.models = lists.models;
    data.loras = lists.loras;
    $("#f-model_other").value = renderModels(data.models, chosen).join(", ");
    renderLoras(data.loras);
  });
  $("#sk-refresh-models").addEventListener("click", async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    button.textContent = "Refreshing…";
    const { body } = await send("/-/sinkin/models/refresh.json", { provider: field("provider").value });
    button.disabled = false;
    button.textContent = "Refresh model list";
    if (!body.ok) return notify(body.error, "error");
    const chosen = [...Array.from($("#f-models").selectedOptions, (o) => o.value), ...splitIds($("#f-model_other").value)];
    data.models = body.models.filter((m) => m.kind === "model");
    data.loras = body.models.filter((m) => m.kind === "lora");
    if (data.models_by_catalogue && data.catalogues) {
      data.models_by_catalogue[data.catalogues[field("provider").value]] = { models: data.models, loras: data.loras };
    }
    $("#f-model_other").value = renderModels(data.models, chosen).join(", ");
    renderLoras(data.loras);
    notify(body.message, "ok");
    scheduleCheck();
  });

  $("#sk-copy-yaml").addEventListener("click", async () => {
    const text = $("#sk-yaml").textContent;
    try {
      await navigator.clipboard.writeText(text);
      notify("Spec copied: save it as spec.yml and run `sinkin run spec.yml`", "ok");
    } catch (err) {
      const range = document.createRange();
      range.selectNodeContents($("#sk-yaml"));
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      notify("Press Ctrl+C to copy the selected spec", "info");
    }
  });

  fill(Object.assign(defaults(), data.form || {}));  // a clone: settings its spec left out had their defaults
  renderAssets();
  form.dataset.requestKey = requestKey;
  check();
})();
