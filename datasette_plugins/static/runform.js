/* SinkIn run form (/-/sinkin/new): fills the form (defaults, or a past run to clone), asks the
   server to check it as the user types (debounced), shows "N jobs, M images, ~C credits", the
   problems next to their fields and the equivalent YAML, uploads init images, and creates the run
   once per page load (a request key + a disabled button), with a confirmation for large grids. */
(function () {
  "use strict";
  const { $, $$, plural, send, url } = window.SK;  // sinkin.js: the shared page helpers (base_url applied)
  const form = $("#sk-run-form");
  if (!form) return;
  const data = JSON.parse($("#sinkin-form-data").textContent);
  const fields = data.fields || {};  // every SinkIn field's kind, limits and default (fields.py)
  const limits = data.limits || {};
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

  const notify = (message, kind) => window.SK.toast(message, kind);
  const field = (name) => form.elements.namedItem(name);
  const splitIds = (text) => text.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean);
  const el = window.SK.el;

  /* -- filling the form ------------------------------------------------------------------------ */

  /* the form's starting values: every field's default as fields.py declares it */
  function defaults() {
    const text = (name) => (fields[name] && fields[name].default !== null && fields[name].default !== undefined)
      ? String(fields[name].default) : "";
    const truth = (name) => String(Boolean(fields[name] && fields[name].default));
    const provider = data.providers.includes(data.default_provider) ? data.default_provider : data.providers[0];
    const values = { provider, use_default_neg: truth("use_default_neg"), lcm: truth("lcm"), seed_mode: "random",
      random_seeds: 1, scheduler: fields.scheduler && fields.scheduler.default ? [fields.scheduler.default] : [],
      fallback: true };
    for (const [name, f] of Object.entries(fields)) {
      if ((f.kind === "int" || f.kind === "float") && name !== "seed") values[name] = text(name);
    }
    return values;
  }

  /* -- the chosen provider's own options (Provider.options, passed by the server as Fields) ------ */

  const optionValues = {};  // {provider: {option: value}}: what was typed, kept when switching away
  let optionsShown = null;  // the provider whose options are on the page

  function catalogueLists(provider) {
    const catalogue = (data.catalogues || {})[provider];
    return (data.models_by_catalogue || {})[catalogue] || {};
  }

  function optionInput(provider, f) {
    const id = `f-opt-${f.name}`;
    const hint = [];
    if ((f.kind === "int" || f.kind === "float") && f.min !== null && f.max !== null) hint.push(`${f.min}–${f.max}`);
    if (f.default !== null && f.default !== undefined && f.kind !== "bool") hint.push(`default ${f.default}`);
    const box = el("div", { class: "sk-field sk-option", "data-field": f.name, "data-option": f.name });
    if (f.kind === "choice") {
      const labelId = `l-opt-${f.name}`;
      box.append(el("span", { class: "sk-label", id: labelId }, f.label, " ", el("span", { class: "sk-hint" }, f.help || "")));
      box.append(el("div", { class: "sk-checks", role: "group", "aria-labelledby": labelId },
        ...f.choices.map((c) => el("label", {}, el("input", { type: "checkbox", name: `opt-${f.name}`, value: c }), ` ${c}`))));
    } else if (f.kind === "bool") {
      box.append(el("label", { for: id }, f.label, " ", el("span", { class: "sk-hint" }, f.help || "")));
      const select = el("select", { id, name: `opt-${f.name}` },
        el("option", { value: "" }, f.default === null || f.default === undefined ? "provider default" : `default (${f.default ? "on" : "off"})`),
        el("option", { value: "true" }, "on"), el("option", { value: "false" }, "off"), el("option", { value: "both" }, "both (an axis)"));
      box.append(select);
    } else {
      const numeric = f.kind === "int" || f.kind === "float";
      hint.push("several: comma separated");
      box.append(el("label", { for: id }, f.label, " ", el("span", { class: "sk-hint" }, hint.join(", "))));
      const menu = f.menu ? (catalogueLists(provider)[`${f.menu}s`] || []) : [];
      const input = el("input", { id, name: `opt-${f.name}`, type: "text", autocomplete: "off",
        inputmode: numeric ? (f.kind === "int" ? "numeric" : "decimal") : null,
        list: f.menu ? `sk-menu-${f.name}` : null, "aria-describedby": f.help ? `h-opt-${f.name}` : null });
      box.append(input);
      if (f.menu) box.append(el("datalist", { id: `sk-menu-${f.name}` }, ...menu.map((m) => new Option(m.title || m.id, m.id))));
      if (f.help) box.append(el("p", { class: "sk-hint", id: `h-opt-${f.name}` }, f.help));
    }
    return box;
  }

  function optionFields(provider) {
    return ((data.provider_options || {})[provider] || []);
  }

  function readOptions() {
    const values = {};
    for (const f of optionFields(optionsShown)) {
      if (f.kind === "choice") {
        const chosen = $$(`input[name="opt-${f.name}"]:checked`).map((box) => box.value);
        if (chosen.length) values[f.name] = chosen;
      } else {
        const input = field(`opt-${f.name}`);
        if (input && input.value.trim() !== "") values[f.name] = input.value;
      }
    }
    return values;
  }

  function writeOptions(values) {
    for (const f of optionFields(optionsShown)) {
      const value = values[f.name];
      if (f.kind === "choice") {
        const chosen = Array.isArray(value) ? value.map(String) : String(value ?? "").split(",").map((v) => v.trim());
        $$(`input[name="opt-${f.name}"]`).forEach((box) => { box.checked = chosen.includes(box.value); });
      } else if (field(`opt-${f.name}`)) {
        field(`opt-${f.name}`).value = value === undefined || value === null ? "" : (Array.isArray(value) ? value.join(", ") : String(value));
      }
    }
  }

  /* show the options of `provider` only (another provider's are hidden and never sent) */
  function renderOptions(provider, values) {
    if (optionsShown !== null) optionValues[optionsShown] = readOptions();
    optionsShown = provider;
    const declared = optionFields(provider);
    $("#sk-options-provider").textContent = provider;
    $("#sk-options-fields").replaceChildren(...declared.map((f) => optionInput(provider, f)));
    $("#sk-provider-options").hidden = declared.length === 0;
    writeOptions(values || optionValues[provider] || {});
  }

  /* the menus of the options (e.g. a1111's sampler_name: the web UI's samplers) follow the cache */
  function refreshOptionMenus() {
    for (const f of optionFields(optionsShown)) {
      const list = f.menu && $(`#sk-menu-${f.name}`);
      if (list) list.replaceChildren(...(catalogueLists(optionsShown)[`${f.menu}s`] || []).map((m) => new Option(m.title || m.id, m.id)));
    }
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
    renderOptions(field("provider").value, values.options || {});
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
      options: readOptions(),
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
        Object.assign(document.createElement("strong"), { textContent: `${plural(plan.jobs, "job")}, ${plural(plan.images, "image")}, ${window.SK.creditText(plan.credits, true)}` }),
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
      img.src = url(`/-/sinkin/assets/${asset.id}`);
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
    const maxUpload = limits.upload_bytes || Infinity;
    if (file.size > maxUpload) {
      uploadError = `init_image: ${file.name} is ${(file.size / 1e6).toFixed(1)} MB; the limit is ${Math.round(maxUpload / 1048576)} MB`;
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
    data.models = lists.models || [];
    data.loras = lists.loras || [];
    $("#f-model_other").value = renderModels(data.models, chosen).join(", ");
    renderLoras(data.loras);
    renderOptions(field("provider").value);
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
    const lists = {};
    for (const m of body.models) (lists[`${m.kind}s`] = lists[`${m.kind}s`] || []).push(m);
    data.models = lists.models || [];
    data.loras = lists.loras || [];
    if (data.models_by_catalogue && data.catalogues) {
      data.models_by_catalogue[data.catalogues[field("provider").value]] = lists;
    }
    $("#f-model_other").value = renderModels(data.models, chosen).join(", ");
    renderLoras(data.loras);
    refreshOptionMenus();
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
