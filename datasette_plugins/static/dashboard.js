/* SinkIn dashboard (/-/sinkin): renders the status JSON, polls it about once a second, and sends
   the queue actions (Run next, Run all, Pause/Resume, Retry, Cancel a job, a run or the queue, To the
   front) as JSON POSTs with the CSRF token. Everything is built with textContent: no server text is
   ever parsed as HTML. The tables are rebuilt on each poll; the focused button keeps the focus. */
(function () {
  "use strict";
  const { $, plural, send, url } = window.SK;  // sinkin.js: one set of helpers; url() honours base_url
  const root = $(".sk-dash");
  if (!root) return;
  const JOB = JSON.parse(root.dataset.jobStates);  // the job states, from the server (JobStatus)
  const tableUrl = root.dataset.tableUrl;
  let status = JSON.parse($("#sinkin-status-data").textContent);
  const seen = new Set((status.recent || []).map((j) => j.id));
  let runnerActive = Boolean(status.runner && status.runner.active);
  let pollTimer = null;
  let lostContact = false;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const creditText = (x, estimate) => window.creditText(x, estimate);  // sinkin.js: "1 credit", "~0.67 credits"
  const credits = (x) => (Math.round(Number(x || 0) * 100) / 100).toLocaleString("en-US", { maximumFractionDigits: 2 });
  const notify = (message, kind) => {
    if (typeof window.toast === "function") window.toast(message, kind);
    else console.log(`[${kind}] ${message}`);
  };

  function bar(done, total, label) {
    const pct = total ? Math.round((100 * done) / total) : 0;
    return el("div", { class: "sk-bar", role: "progressbar", "aria-label": label,
      "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": pct },
    el("span", { style: `width:${pct}%` }));
  }

  /* -- rendering ------------------------------------------------------------------------- */

  function renderTotals() {
    const running = (status.running || []).length;
    $("#sk-totals").replaceChildren(
      el("strong", {}, plural(status.queue_count, "job")), " queued · ",
      el("strong", {}, creditText(status.queue_estimate, true)), " estimated · ",
      el("strong", {}, creditText(status.credits_spent)), " spent so far",
      running ? ` · ${running} running now` : "");
    const scope = $("#sk-scope");
    const chosen = scope.value;
    const options = [el("option", { value: "" }, "every run")];
    for (const run of status.runs) {
      options.push(el("option", { value: run.run_id, selected: String(run.run_id) === chosen },
        `run ${run.run_id}: ${run.name || "(unnamed)"} (${run.queued} queued)`));
    }
    scope.replaceChildren(...options);
    const others = (status.running || []).filter((j) => j.worker_pid);
    const info = $("#sk-running");
    info.hidden = !others.length;
    if (others.length) {
      const workers = [...new Set(others.map((j) => `pid ${j.worker_pid} on ${j.worker_host || "?"}`))];
      info.textContent = `Running now: ${plural(others.length, "job")} (${workers.join(", ")}).`;
    }
  }

  function renderRuns() {
    const rows = status.runs.map((run) => {
      const cancelled = run.inference_cancelled || 0;  // neither done nor to do
      const finished = (run.inference_finished || 0) - cancelled;
      const total = (run.inference_jobs || 0) - cancelled;
      const problems = (run.failed || 0) + (run.interrupted || 0);
      return el("tr", { dataset: { runId: run.run_id } },
        el("td", {}, el("a", { href: url(`/-/sinkin/runs/${run.run_id}`) }, run.name || `run ${run.run_id}`),
          el("div", { class: "sk-hint" }, `#${run.run_id} · ${(run.created_at || "").slice(0, 16).replace("T", " ")}`)),
        el("td", {}, run.provider),
        el("td", { class: "sk-progress-col" }, bar(finished, total, `run ${run.run_id} progress`),
          el("span", { class: "sk-hint" }, `${finished} / ${plural(total, "job")} done` +
            (cancelled ? ` · ${cancelled} cancelled` : ""))),
        el("td", { class: "sk-num sk-total" }, run.total),
        el("td", { class: "sk-num" }, run.unrated),
        el("td", { class: "sk-num" }, run.upscaled),
        el("td", { class: "sk-num sk-queued" }, run.queued),
        el("td", { class: "sk-num" + (problems ? " sk-bad" : "") }, problems),
        el("td", { class: "sk-num" }, credits(run.credits)),
        el("td", { class: "sk-links" },
          el("a", { href: url(`/-/sinkin/runs/${run.run_id}`) }, "Gallery"), " · ",
          el("a", { href: url(`/-/sinkin/runs/${run.run_id}/insights`), title: "Which settings win, and how sure" }, "Insights"), " · ",
          el("a", { href: `${tableUrl}?run_id=${encodeURIComponent(run.run_id)}` }, "Rows"), " · ",
          el("a", { href: url(`/-/sinkin/new?from=${run.run_id}`), title: "Open this run in the form to change and queue it again" }, "Clone")),
        el("td", { class: "sk-actions" }, run.queued ? [
          el("button", { type: "button", class: "sk-button sk-small sk-front", dataset: { focus: `front-run-${run.run_id}` },
            title: `Run the ${plural(run.queued, "queued job")} of this run before every other queued job`,
            onclick: () => queueChange("front", { run_id: run.run_id }) }, "To the front"),
          el("button", { type: "button", class: "sk-button sk-small sk-cancel", dataset: { focus: `cancel-run-${run.run_id}` },
            onclick: () => cancelRun(run) }, "Cancel queued")] : ""));
    });
    $("#sk-runs").replaceChildren(...rows);
    $("#sk-no-runs").hidden = status.runs.length > 0;
  }

  function renderProblems() {
    const problems = status.problems || [];
    $("#sk-problems-section").hidden = !problems.length;
    $("#sk-problems").replaceChildren(...problems.map((job) => el("tr", { dataset: { jobId: job.id } },
      el("td", {}, `${job.id}${job.kind === "upscale" ? " (upscale)" : ""}`),
      el("td", {}, el("a", { href: url(`/-/sinkin/runs/${job.run_id}`) }, job.run_name || `run ${job.run_id}`)),
      el("td", {}, el("span", { class: `sk-status sk-${job.status}` }, job.status)),
      el("td", { class: "sk-message" }, job.error || "(no message)"),
      el("td", { class: "sk-actions" },
        el("button", { type: "button", class: "sk-button sk-small", dataset: { focus: `retry-job-${job.id}` },
          onclick: () => queueChange("retry", { job_ids: [job.id] }) }, "Retry"),
        el("button", { type: "button", class: "sk-button sk-small", dataset: { focus: `cancel-problem-${job.id}` },
          onclick: () => queueChange("cancel", { job_ids: [job.id] }) }, "Cancel")))));
  }

  function renderUpcoming() {
    const rows = (status.queue || []).map((job, i) => el("tr", { dataset: { jobId: job.id } },
      el("td", { class: "sk-num" }, i + 1),
      el("td", {}, job.kind === "upscale" ? `${job.id} (upscale of image ${job.image_id})` : job.id),
      el("td", {}, job.run_id),
      el("td", { class: "sk-varies", title: job.varies || "" }, job.varies || ""),
      el("td", {}, job.model_id || ""),
      el("td", { class: "sk-prompt", title: job.prompt || "" }, job.prompt || ""),
      el("td", {}, job.width ? `${job.width}×${job.height}` : ""),
      el("td", { class: "sk-num" }, job.steps ?? ""),
      el("td", { class: "sk-num" }, job.scale ?? ""),
      el("td", {}, job.scheduler || ""),
      el("td", { class: "sk-num" }, job.seed ?? ""),
      el("td", { class: "sk-num" }, job.num_images ?? ""),
      el("td", { class: "sk-num" }, credits(job.credit_estimate)),
      el("td", { class: "sk-actions" },
        i ? el("button", { type: "button", class: "sk-button sk-small sk-front", dataset: { focus: `front-job-${job.id}` },
          title: "Run this job next", "aria-label": `Run job ${job.id} next`, onclick: () => queueChange("front", { job_ids: [job.id] }) }, "Next") : "",
        el("button", { type: "button", class: "sk-button sk-small sk-cancel", dataset: { focus: `cancel-job-${job.id}` },
          "aria-label": `Cancel job ${job.id}`, onclick: () => queueChange("cancel", { job_ids: [job.id] }) }, "Cancel"))));
    $("#sk-upcoming").replaceChildren(...rows);
    $("#sk-upcoming").closest("table").hidden = !rows.length;
    const shown = rows.length;
    $("#sk-upcoming-note").textContent = !status.queue_count ? "The queue is empty."
      : `${plural(status.queue_count, "job")}, ${creditText(status.queue_estimate, true)} estimated in total` +
        (shown < status.queue_count ? ` (the first ${shown} are listed).` : ".");
  }

  function renderRunner() {
    const runner = status.runner;
    const box = $("#sk-runner");
    $("#sk-stop").hidden = !(runner && runner.active);
    $("#sk-stop").disabled = Boolean(runner && runner.stopping);
    $("#sk-run-all").disabled = Boolean(runner && runner.active);
    $("#sk-resume").hidden = !resumable(runner);
    $("#sk-cancel-queue").disabled = !status.queue_count;
    if (!runner) { box.hidden = true; return; }
    box.hidden = false;
    const scopeQueued = runner.run_id
      ? ((status.runs.find((r) => r.run_id === runner.run_id) || {}).queued || 0) : status.queue_count;
    let total = runner.jobs + (runner.active ? scopeQueued + (status.running || []).length : 0);
    if (runner.limit) total = Math.min(total, runner.limit);
    const b = bar(runner.jobs, Math.max(total, runner.jobs), "Run all progress");
    b.id = "sk-runner-bar";
    $("#sk-runner-bar").replaceWith(b);
    const what = `${plural(runner.jobs, "job")} done` +
      (runner.failed ? ` (${runner.failed} failed)` : "") +
      (runner.interrupted ? ` (${runner.interrupted} interrupted)` : "") +
      `, ${plural(runner.images, "image")}, ${creditText(runner.credits)}`;
    const scope = runner.run_id ? ` on run ${runner.run_id}` : "";
    let text;
    if (runner.active) text = `${runner.stopping ? "Pausing (the jobs in flight finish)" : "Running all"}${scope}: ${what}` +
      ` · concurrency ${runner.concurrency}` + (runner.budget !== null ? ` · budget ${creditText(runner.budget)}` : "");
    else if (runner.error) text = `Run all${scope} stopped: ${runner.error}`;
    else if (resumable(runner)) text = `Run all${scope} paused: ${what}. ${plural(queuedIn(runner), "job")} still queued: Resume continues.`;
    else text = `Run all${scope} finished: ${what}.` + (runner.stopped ? ` ${runner.stopped}` : "");
    $("#sk-runner-text").textContent = text;
    box.classList.toggle("sk-error", Boolean(runner.error));
  }

  function queuedIn(runner) {
    return runner.run_id ? ((status.runs.find((r) => r.run_id === runner.run_id) || {}).queued || 0) : status.queue_count;
  }

  /* a finished "Run all" that was paused (or stopped early) with jobs still queued in its scope */
  function resumable(runner) {
    return Boolean(runner && !runner.active && runner.stopped && !runner.error && queuedIn(runner) > 0);
  }

  function render() {
    const focused = document.activeElement && document.activeElement.dataset && document.activeElement.dataset.focus;
    renderTotals();
    renderRuns();
    renderProblems();
    renderUpcoming();
    renderRunner();
    if (focused && document.activeElement === document.body) {
      const again = document.querySelector(`[data-focus="${CSS.escape(focused)}"]`);
      if (again) again.focus();
    }
  }

  /* -- toasts from what changed ---------------------------------------------------------------- */

  function announce(previousRunnerActive) {
    const fresh = (status.recent || []).filter((j) => !seen.has(j.id)).reverse();
    fresh.forEach((j) => seen.add(j.id));
    if (fresh.length > 3) {
      const bad = fresh.filter((j) => j.status !== JOB.SUCCEEDED).length;
      notify(`${fresh.length} jobs finished` + (bad ? `, ${bad} failed` : ""), bad ? "error" : "ok");
    } else {
      for (const job of fresh) {
        if (job.status === JOB.SUCCEEDED) notify(`Job ${job.id} finished: ${plural(job.images, "image")}`, "ok");
        else notify(`Job ${job.id} ${job.status}: ${job.error || "no message"}`, "error");
      }
    }
    const runner = status.runner;
    if (previousRunnerActive && runner && !runner.active) {
      if (runner.error) notify(runner.error, "error");
      else notify(`Run all finished: ${plural(runner.jobs, "job")}, ${plural(runner.images, "image")}`, "ok");
    }
  }

  async function refresh() {
    try {
      const response = await fetch(url("/-/sinkin/status.json"), { credentials: "same-origin", cache: "no-store" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const body = await response.json();
      const was = runnerActive;
      status = body;
      runnerActive = Boolean(status.runner && status.runner.active);
      render();
      announce(was);
      if (lostContact) notify("Connected to the server again", "ok");
      lostContact = false;
    } catch (err) {
      if (!lostContact) notify(`Lost contact with the server (${err.message}); retrying…`, "error");
      lostContact = true;
    }
  }

  function schedule() {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(async () => { await refresh(); schedule(); }, document.hidden ? 5000 : 1000);
  }
  document.addEventListener("visibilitychange", () => { if (!document.hidden) { refresh(); schedule(); } });

  /* -- actions ----------------------------------------------------------------------------------- */


  function scope() {
    const value = $("#sk-scope").value;
    return value ? { run_id: Number(value) } : {};
  }

  async function withButton(button, busyLabel, action) {
    const label = button.textContent;
    button.disabled = true;
    button.textContent = busyLabel;
    button.setAttribute("aria-busy", "true");
    try { await action(); } finally {
      button.disabled = false;
      button.textContent = label;
      button.removeAttribute("aria-busy");
      await refresh();
    }
  }

  $("#sk-run-next").addEventListener("click", (event) => withButton(event.currentTarget, "Running…", async () => {
    const { body } = await send("/-/sinkin/queue/next.json", scope());
    if (!body.ok) return notify(body.error, "error");
    if (!body.job) return notify(body.message, "info");
    seen.add(body.job.id);
    notify(body.message, body.job.status === JOB.SUCCEEDED ? "ok" : "error");
  }));

  $("#sk-run-all").addEventListener("click", (event) => withButton(event.currentTarget, "Starting…", async () => {
    const data = scope();
    data.concurrency = $("#sk-concurrency").value || 1;
    const perProvider = $("#sk-provider-concurrency").value.trim();  // "a1111=2, sinkin=4"
    if (perProvider) data.provider_concurrency = perProvider;
    const budget = $("#sk-budget").value.trim();
    if (budget !== "") data.budget = budget;
    const { body } = await send("/-/sinkin/queue/run-all.json", data);
    if (!body.ok) return notify(body.error, "error");
    runnerActive = Boolean(body.runner && body.runner.active);
    notify(body.message, "ok");
  }));

  $("#sk-stop").addEventListener("click", (event) => withButton(event.currentTarget, "Pausing…", async () => {
    const { body } = await send("/-/sinkin/queue/stop.json", {});
    notify(body.ok ? body.message : body.error, body.ok ? "info" : "error");
  }));

  /* Resume: "Run all" again with the paused one's scope and concurrency, and what is left of its budget */
  $("#sk-resume").addEventListener("click", (event) => withButton(event.currentTarget, "Resuming…", async () => {
    const runner = status.runner;
    if (!runner) return;
    const data = { concurrency: runner.concurrency || 1, provider_concurrency: runner.provider_concurrency || {} };
    if (runner.run_id) data.run_id = runner.run_id;
    if (runner.budget !== null && runner.budget !== undefined) data.budget = Math.max(0, runner.budget - (runner.credits || 0));
    if (runner.limit) data.limit = Math.max(1, runner.limit - runner.jobs);
    const { body } = await send("/-/sinkin/queue/run-all.json", data);
    if (!body.ok) return notify(body.error, "error");
    runnerActive = Boolean(body.runner && body.runner.active);
    notify("Run all resumed", "ok");
  }));

  async function queueChange(kind, data) {
    let { body } = await send(`/-/sinkin/queue/${kind}.json`, data || {});
    if (!body.ok && body.needs_confirmation) {
      // jobs sent without an answer may have been paid for: re-send only when the user says so
      if (!window.confirm(body.error)) return notify("Nothing was re-sent.", "info");
      ({ body } = await send(`/-/sinkin/queue/${kind}.json`, { ...(data || {}), resend: true }));
    }
    notify(body.ok ? body.message : body.error, body.ok ? "ok" : "error");
    await refresh();
  }

  function cancelRun(run) {
    const what = `${plural(run.queued, "queued job")} of run ${run.run_id} “${run.name || ""}”`;
    if (window.confirm(`Cancel the ${what}? Cancelled jobs are not run and cost nothing.`)) {
      queueChange("cancel", { run_id: run.run_id });
    }
  }

  $("#sk-controls").addEventListener("submit", (event) => event.preventDefault());
  $("#sk-cancel-queue").addEventListener("click", () => {
    const chosen = scope();
    const run = chosen.run_id && status.runs.find((r) => r.run_id === chosen.run_id);
    if (run) return cancelRun(run);
    if (!status.queue_count) return notify("The queue is empty.", "info");
    if (window.confirm(`Cancel all ${plural(status.queue_count, "queued job")} (${creditText(status.queue_estimate, true)} estimated)? ` +
      "Jobs running now finish.")) queueChange("cancel", {});
  });
  $("#sk-retry-all").addEventListener("click", () => queueChange("retry", { job_ids: (status.problems || []).map((j) => j.id) }));
  $("#sk-cancel-all").addEventListener("click", () => queueChange("cancel", { job_ids: (status.problems || []).map((j) => j.id) }));

  render();
  const created = root.dataset.created;
  if (created) {
    const run = status.runs.find((r) => String(r.run_id) === created);
    if (run) notify(`Run ${run.run_id} “${run.name}” queued: ${plural(run.queued, "job")}`, "ok");
    history.replaceState(null, "", location.pathname);
  }
  schedule();
})();
