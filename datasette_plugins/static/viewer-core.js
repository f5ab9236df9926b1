/* The viewer's core (the other viewer-*.js files add to it, viewer.js starts it): the shared state
   and helpers, loading an image's data and its neighbours, the gallery's order (a window grown as
   you move), and showing an image. Helpers from sinkin.js. */
(function () {
  "use strict";
  const {$, toast, url} = window.SK;  // url(): an app path under Datasette's base_url
  const V = (window.SKViewer = window.SKViewer || {});

  V.remember = (key, value) => { try { localStorage.setItem(key, value); } catch (e) { /* private */ } };
  V.recall = (key) => { try { return localStorage.getItem(key); } catch (e) { return null; } };
  V.dialogOpen = () => document.querySelector("dialog[open]");
  V.getJSON = window.SK.getJSON;  // under base_url, rejecting with the server's message
  /* resolves once the next frame has been painted (a task queued from its animation frame) */
  const afterPaint = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  V.BLIND_HINT = "Blind mode: score this image first — its settings stay hidden until then";

  /* The shared state: every part of the viewer reads and changes this one object. */
  V.core = function () {
    const boot = JSON.parse($("#sk-boot").textContent);
    const query = new URLSearchParams(boot.state);  // the gallery's state, and the grid to go back to
    if (boot.grid !== null && boot.grid !== undefined) query.set("grid", boot.grid);
    const v = {
      boot,
      img: $("#sk-image"),
      stage: $("#sk-stage"),
      scoreBox: $("#sk-score"),
      state: query.toString() ? "?" + query : "",
      /* blind mode: the server leaves an unscored image's settings out of everything it sends */
      blind: query.get("blind") ? "?blind=" + encodeURIComponent(query.get("blind")) : "",
      cache: new Map(),     // id -> Promise of the image's info
      pictures: new Map(),  // id -> preloaded Image
      scores: new Map(),    // id -> score (from the gallery order, then every change)
      ids: [boot.image_id], // a window of the gallery's order, grown as you move
      index: 0,
      offset: 0,            // position of ids[0] in the whole order
      total: 1,
      current: null,        // the data of the image shown
      progress: null,       // {total, rated} of the whole run
      actualSize: false,    // 1:1 with pan rather than fitted (viewer-fit.js)
      growing: null,
    };
    v.shown = () => v.ids[v.index];

    v.info = function (id) {
      if (!v.cache.has(id)) {
        v.cache.set(id, V.getJSON(`/-/sinkin/images/${id}.json${v.blind}`).then((b) => b.image)
          .catch((e) => { v.cache.delete(id); throw e; }));
      }
      return v.cache.get(id);
    };

    v.preload = function (id) {
      if (id === undefined || v.pictures.has(id)) return;
      const picture = new Image();
      picture.decoding = "async";
      picture.src = url(`/-/sinkin/images/${id}/full`);
      picture.decode().catch(() => {});  // decoded ahead, so showing it is a swap
      v.pictures.set(id, picture);
      v.info(id).catch(() => {});
    };

    v.setAspect = function (w, h) {
      if (w > 0 && h > 0) v.img.style.setProperty("--sk-ar", String(w / h));
    };
    v.img.addEventListener("load", () => v.setAspect(v.img.naturalWidth, v.img.naturalHeight));
    v.setAspect(boot.width, boot.height);

    v.showScore = function (score) {
      v.scoreBox.textContent = score === null || score === undefined ? "–" : String(score);
      $("#sk-viewer").classList.toggle("sk-unscored-now", score === null || score === undefined);  // blind mode
    };

    v.updatePosition = function () {
      $("#sk-position").textContent = v.total > 1 ? `${v.offset + v.index + 1} of ${v.total}` : "";
    };
    v.updateProgress = function () {
      if (v.progress) $("#sk-progress").textContent = `${v.progress.rated} of ${v.progress.total} rated`;
    };

    /* where Esc and the bar's back link go: the grid the viewer was opened from, or the gallery's
       page that holds the image shown */
    v.backHref = function () {
      if (boot.grid !== null && boot.grid !== undefined) {
        return url(`/-/sinkin/runs/${boot.run_id}/grid`) + (boot.grid ? "?" + boot.grid : "") + `#img-${v.shown()}`;
      }
      const page = Math.floor((v.offset + v.index) / boot.page_size) + 1;
      const params = new URLSearchParams(boot.state);
      if (page > 1) params.set("page", page); else params.delete("page");
      const q = params.toString();
      return url(`/-/sinkin/runs/${boot.run_id}`) + (q ? "?" + q : "") + `#img-${v.shown()}`;
    };

    /* opened from the X/Y/Z grid, the order is that grid page's (rows, then columns) */
    v.orderWindow = function (around) {
      const q = new URLSearchParams(boot.state);
      if (boot.grid !== null && boot.grid !== undefined) q.set("grid", boot.grid);
      q.set("around", around);
      return V.getJSON(`/-/sinkin/runs/${boot.run_id}/order.json?` + q).then((body) => {
        body.ids.forEach((id, k) => { if (!v.scores.has(id)) v.scores.set(id, body.scores[k]); });
        if (body.progress) v.progress = body.progress;
        return body;
      });
    };

    /* fetch the next part of the order past the known window's end (dir 1) or start (-1) */
    v.grow = function (dir) {
      if (v.growing) return v.growing;
      const edge = dir > 0 ? v.ids[v.ids.length - 1] : v.ids[0];
      v.growing = v.orderWindow(edge).then((body) => {
        const at = body.ids.indexOf(edge);
        v.total = body.total;
        if (at === -1) return;
        const known = new Set(v.ids);
        if (dir > 0) v.ids = v.ids.concat(body.ids.slice(at + 1).filter((id) => !known.has(id)));
        else {
          const before = body.ids.slice(0, at).filter((id) => !known.has(id));
          v.ids = before.concat(v.ids);
          v.index += before.length;
          v.offset = body.offset;
        }
      }).catch((e) => toast(`Could not load the gallery order: ${e.message}`, "error"))
        .finally(() => { v.growing = null; });
      return v.growing;
    };

    /* Show image i of the window. On the critical path of a key press only what the next frame
       shows: the (already decoded) picture and its score. Everything else — the URL, the back link,
       the settings panel, the filmstrip, loading the neighbours — waits until that frame is painted. */
    v.show = async function (i) {
      if (i >= v.ids.length && v.offset + v.ids.length < v.total) await v.grow(1);
      if (i < 0 && v.offset > 0) { const before = v.index; await v.grow(-1); i += v.index - before; }
      if (i < 0 || i >= v.ids.length) {
        if (i >= v.ids.length && v.progress && v.progress.rated === v.progress.total) v.finished();
        else toast(i < 0 ? "This is the first image" : "That was the last image", "info");
        return;
      }
      v.index = i;
      const id = v.shown();
      const picture = v.pictures.get(id);
      if (picture && picture.naturalWidth) v.setAspect(picture.naturalWidth, picture.naturalHeight);
      v.img.src = picture ? picture.src : url(`/-/sinkin/images/${id}/full`);
      v.img.alt = `image ${id}`;
      if (v.actualSize) v.centre(0.5, 0.5);
      v.showScore(v.scores.has(id) ? v.scores.get(id) : null);
      v.updatePosition();
      await afterPaint();
      if (v.shown() !== id) return;  // another key was pressed meanwhile: that one finishes the job
      history.replaceState(null, "", url(`/-/sinkin/images/${id}`) + v.state);
      $("#sk-back").href = v.backHref();
      v.strip();
      v.preload(v.ids[v.index + 1]);
      v.preload(v.ids[v.index - 1]);
      v.preload(v.ids[v.index + 2]);
      v.preload(v.ids[v.index + 3]);
      if (v.index > v.ids.length - 20 && v.offset + v.ids.length < v.total) v.grow(1);
      else if (v.index < 20 && v.offset > 0) v.grow(-1);
      try {
        v.current = await v.info(id);
        if (v.shown() === id) {
          if (!picture || !picture.naturalWidth) v.setAspect(v.current.width, v.current.height);
          v.renderSettings(v.current);
        }
      } catch (e) {
        toast(`Could not load image ${id}: ${e.message}`, "error");
      }
    };
    return v;
  };
})();
