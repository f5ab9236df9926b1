/* The viewer's scoring: 1–9 and 0 (= 10) save at once (one write after another, in order), a brief
   confirmation on the image being left, auto-advance (a, remembered), Backspace / Ctrl+Z undo the
   last score and go back to it, the run's progress, and the "every image is rated" end state. */
(function () {
  "use strict";
  const {$, el, plural, toast, send, postJSON, url} = window.SK;
  const V = (window.SKViewer = window.SKViewer || {});

  V.scoring = function (v) {
    const auto = $("#sk-auto");
    const undo = [];  // [{id, previous, value}]
    let writes = Promise.resolve();  // score writes are sent one after another, in order
    auto.checked = V.recall("sinkin-auto-advance") !== "off";
    auto.addEventListener("change", () => V.remember("sinkin-auto-advance", auto.checked ? "on" : "off"));
    v.toggleAuto = function () {
      auto.checked = !auto.checked;
      auto.dispatchEvent(new Event("change"));
      toast(`Auto-advance ${auto.checked ? "on" : "off"}`);
    };

    const flash = $("#sk-flash");
    function confirmScore(id, value) {
      $("#sk-flash-thumb").src = url(`/-/sinkin/images/${id}/thumb`);
      $("#sk-flash-text").textContent = value === null ? `image ${id}: score cleared`
        : `image ${id} scored ${value}`;
      flash.dataset.score = value === null ? "" : String(value);
      flash.getAnimations().forEach((a) => a.cancel());
      flash.animate([{opacity: 1, transform: "scale(1)"}, {opacity: 1, offset: 0.7}, {opacity: 0, transform: "scale(0.96)"}],
                    {duration: 1400, easing: "ease-out"});
      v.scoreBox.animate([{outline: "4px solid var(--sk-ok)"}, {outline: "4px solid transparent"}], {duration: 500});
    }

    function applyScore(id, value) {
      const before = v.scores.has(id) ? v.scores.get(id) : null;
      v.scores.set(id, value);
      if (v.progress) v.progress.rated += (value !== null) - (before !== null);
      v.updateProgress();
      if (v.shown() === id) v.showScore(value);
      v.strip();
      v.info(id).then((entry) => { entry.score = value; }).catch(() => {});
    }

    /* Writes go out one after another, in order. Those not yet sent when the page is left (a link,
       Esc, the back button while the server is slow) are sent at once with keepalive, which the
       browser completes after the page is gone: a score typed is never lost by navigating. */
    const unsent = [];  // [{id, value}] queued behind the write in flight
    let pending = 0;  // writes not yet answered
    const scoreURL = (id) => `/-/sinkin/images/${id}/score.json`;
    addEventListener("pagehide", () => {
      for (const e of unsent.splice(0)) { e.sent = true; send(scoreURL(e.id), {score: e.value}, {keepalive: true}); }
    });
    function save(id, value, previous) {
      const entry = {id, value, sent: false};
      unsent.push(entry);
      pending += 1;
      const request = writes.then(() => {
        if (entry.sent) return null;  // already sent as the page was left
        unsent.splice(unsent.indexOf(entry), 1);
        entry.sent = true;
        return postJSON(scoreURL(id), {score: value}, {keepalive: true});
      });
      writes = request.catch(() => {});
      request.finally(() => { pending -= 1; }).catch(() => {});
      return request.catch((e) => {
        toast(`Score not saved for image ${id}: ${e.message}`, "error");
        applyScore(id, previous);
        throw e;
      });
    }
    v.savesPending = () => pending;

    /* blind mode: once a score is saved, the image's settings are fetched again (shown if scored) */
    function reveal(id) {
      if (!v.blind) return;
      v.cache.delete(id);
      v.info(id).then((image) => {
        if (v.shown() === id) { v.current = image; v.renderSettings(image); }
      }).catch(() => {});
    }

    v.score = function (value) {
      const id = v.shown();
      const previous = v.scores.has(id) ? v.scores.get(id) : null;
      if (previous === value) { confirmScore(id, value); if (auto.checked && value !== null) advance(); return; }
      applyScore(id, value);
      undo.push({id, previous, value});
      $("#sk-undo").disabled = false;
      confirmScore(id, value);
      const saving = save(id, value, previous).then(() => {
        reveal(id);
        if (v.progress && v.progress.total && v.progress.rated === v.progress.total && value !== null) v.finished();
      }, () => { undo.pop(); $("#sk-undo").disabled = !undo.length; });
      if (auto.checked && value !== null) advance();
      return saving;
    };

    function advance() {
      if (v.index < v.ids.length - 1 || v.offset + v.ids.length < v.total) v.show(v.index + 1);
    }

    v.undoLast = function () {
      const last = undo.pop();
      $("#sk-undo").disabled = !undo.length;
      if (!last) { toast("Nothing to undo", "info"); return; }
      const i = v.ids.indexOf(last.id);
      if (i !== -1 && i !== v.index) v.show(i);
      applyScore(last.id, last.previous);
      save(last.id, last.previous, last.value).then(() => {
        reveal(last.id);
        toast(`Undone: image ${last.id} is ${last.previous === null ? "unrated" : "scored " + last.previous} again`, "info");
      }, () => {});
    };
    $("#sk-undo").addEventListener("click", v.undoLast);

    /* the run is fully rated: say so, point to its insights and to the runs with unrated images */
    let doneShown = false;
    v.finished = async function () {
      const dialog = $("#sk-done");
      if (pending) { await writes; if (pending) return; }  // said once every score is saved
      if (dialog.open || (doneShown && v.offset + v.index < v.total - 1)) return;
      doneShown = true;
      $("#sk-done-summary").textContent = `All ${plural(v.progress.total, "image")} of this run have a score.`;
      const others = $("#sk-done-others");
      others.replaceChildren(el("p", {class: "sk-hint"}, "Looking for unrated images in other runs…"));
      if (!V.dialogOpen()) dialog.showModal();
      try {
        const runs = (await V.getJSON("/-/sinkin/unrated.json")).runs.filter((r) => r.run_id !== v.boot.run_id);
        if (!runs.length) {
          others.replaceChildren(el("p", {}, "No other run has unrated images."));
          return;
        }
        const list = el("ul", {class: "sk-done-runs"});
        for (const run of runs) {
          list.append(el("li", {}, el("a", {href: url(`/-/sinkin/images/${run.first_image}?unrated=1`)},
            `${run.name || "run " + run.run_id}`), ` — ${plural(run.unrated, "unrated image")}`));
        }
        others.replaceChildren(el("p", {}, "Other runs with unrated images:"), list);
        const first = list.querySelector("a");
        if (first) first.focus();
      } catch (e) {
        others.replaceChildren(el("p", {}, `Could not list the other runs: ${e.message}`));
      }
    };
  };
})();
