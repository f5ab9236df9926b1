"""Which settings win, and how sure we are: for one run (or a set of runs), every setting that
varies, with per-value means and 95% intervals of the scores, paired one-change effects, axes
ranked by the share of score variance they explain, and two-axis heatmaps.

The axes are the config columns of :data:`sinkin_pipeline.varying.VARYING_COLUMNS` (the SinkIn
fields of :mod:`sinkin_pipeline.fields`, and the init image) that take more than one value (plus the keys of a JSON object of extra options, when configs has such a
column), so a new field appears here without code changes. Means are arithmetic means of the
scores (1-10); with ``normalize="prompt"`` each score is first taken as its deviation from the
mean score of its prompt (some prompts are simply easier).
"""
import json
from dataclasses import dataclass, field

from .fields import FIELDS
from .stats import mean_ci, mean_ci_of
from .varying import VARYING_COLUMNS

#: configs columns that may hold a JSON object of provider-declared extra options (flattened)
EXTRA_JSON_COLUMNS = ("extra", "extras", "extra_options")
NORMALIZE = ("prompt",)


class InsightsError(ValueError):
    """A request that cannot be answered (unknown axis, bad option); nothing was read."""


@dataclass
class RunData:
    """The settings and scores of a set of runs, loaded once for insights, heatmaps and grids."""

    run_ids: list
    axes: list                      # the settings that vary, in field order
    constants: dict                 # the settings that do not vary: name -> value
    configs: dict                   # config id -> {axis: value} (varying axes and "prompt")
    images: dict                    # config id -> [(image_id, image_index, score)], by id
    seconds: dict = field(default_factory=dict)  # config id -> generation seconds per image
    runs: list = field(default_factory=list)     # [{"id", "name"}]

    @property
    def image_count(self):
        return sum(len(v) for v in self.images.values())


def _in(ids):
    return ",".join("?" for _ in ids)


def _value(name, value):
    fld = FIELDS.get(name)
    if fld is not None and fld.kind == "bool" and value is not None:
        return bool(value)
    return value


def sort_key(value):
    """Numbers ascending, then text, then None (no value)."""
    if value is None:
        return (2, 0, "")
    if isinstance(value, (int, float)):
        return (0, value, "")
    return (1, 0, str(value))


def load(db, run_ids) -> RunData:
    """Read the runs' configs, images, scores and timings. LookupError for a missing run."""
    run_ids = sorted({int(r) for r in run_ids})
    if not run_ids:
        raise InsightsError("choose at least one run")
    found = {r[0]: r[1] for r in db.execute(
        "select id, name from runs where id in ({})".format(_in(run_ids)), run_ids)}
    missing = [r for r in run_ids if r not in found]
    if missing:
        raise LookupError("run {} not found".format(", ".join(map(str, missing))))
    columns = [row[1] for row in db.execute("PRAGMA table_info(configs)")]
    settings = [name for name in VARYING_COLUMNS if name in columns]
    extras = [c for c in columns if c in EXTRA_JSON_COLUMNS]
    cursor = db.execute("select id, {} from configs where run_id in ({})".format(
        ", ".join(settings + extras), _in(run_ids)), run_ids)
    raw = {}
    for row in cursor:
        values = {name: _value(name, v) for name, v in zip(settings, row[1:])}
        for text in row[1 + len(settings):]:
            try:
                extra = json.loads(text) if text else {}
            except ValueError:
                extra = {}
            if isinstance(extra, dict):
                for key, v in extra.items():
                    values.setdefault(key, v if not isinstance(v, (list, dict)) else json.dumps(v))
        raw[row[0]] = values
    names = list(dict.fromkeys(n for values in raw.values() for n in values))
    distinct = {n: {_hashable(values.get(n)) for values in raw.values()} for n in names}
    axes = [n for n in names if len(distinct[n]) > 1]
    constants = {n: next(iter(distinct[n])) for n in names if len(distinct[n]) == 1}
    keep = set(axes) | {"prompt"}
    configs = {cid: {n: _hashable(values.get(n)) for n in keep} for cid, values in raw.items()}
    images = {cid: [] for cid in configs}
    for image_id, config_id, index, score in db.execute(
            "select id, config_id, image_index, score from images where run_id in ({}) order by id"
            .format(_in(run_ids)), run_ids):
        images.setdefault(config_id, []).append((image_id, index, score))
    seconds = {}
    for config_id, secs in db.execute("""
            select config_id, sum((julianday(response_at) - julianday(started_at)) * 86400)
            from jobs where run_id in ({}) and kind = 'inference' and status = 'succeeded'
              and started_at is not null and response_at is not null
            group by config_id""".format(_in(run_ids)), run_ids):
        n = len(images.get(config_id) or ())
        if n and secs is not None:
            seconds[config_id] = max(0.0, secs) / n
    return RunData(run_ids=run_ids, axes=axes, constants=constants, configs=configs, images=images,
                   seconds=seconds, runs=[{"id": r, "name": found[r]} for r in run_ids])


def _hashable(value):
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def rated_scores(data: RunData, normalize=None):
    """config id -> [(image_index, score as float, image_id)] of its rated images, with scores
    as deviations from their prompt's mean when ``normalize == "prompt"``."""
    if normalize not in (None, "") + NORMALIZE:
        raise InsightsError("normalize must be one of: {}".format(", ".join(NORMALIZE)))
    scores = {}
    for cid, imgs in data.images.items():
        rated = [(idx, float(s), iid) for iid, idx, s in imgs if s is not None]
        if rated:
            scores[cid] = rated
    if normalize == "prompt":
        sums = {}
        for cid, rated in scores.items():
            acc = sums.setdefault(data.configs[cid]["prompt"], [0, 0.0])
            acc[0] += len(rated)
            acc[1] += sum(s for _, s, _ in rated)
        means = {p: t / n for p, (n, t) in sums.items()}
        scores = {cid: [(idx, s - means[data.configs[cid]["prompt"]], iid) for idx, s, iid in rated]
                  for cid, rated in scores.items()}
    return scores


def _round(x, digits=3):
    return None if x is None else round(x, digits)


def axis_values(data: RunData, axis, scores):
    """One row per value of ``axis``: images, rated, mean, ci_low, ci_high, seconds per image."""
    groups = {}
    for cid, cfg in data.configs.items():
        g = groups.setdefault(cfg[axis], [0, 0, 0.0, 0.0, 0.0, 0])
        g[0] += len(data.images.get(cid) or ())
        for _, s, _ in scores.get(cid, ()):
            g[1] += 1
            g[2] += s
            g[3] += s * s
        if cid in data.seconds:
            n = len(data.images[cid])
            g[4] += data.seconds[cid] * n
            g[5] += n
    out = []
    for value in sorted(groups, key=sort_key):
        images, rated, total, total_sq, secs, timed = groups[value]
        mean, low, high = mean_ci(rated, total, total_sq)
        out.append({"value": value, "images": images, "rated": rated, "mean": _round(mean),
                    "ci_low": _round(low), "ci_high": _round(high),
                    "seconds": _round(secs / timed, 2) if timed else None,
                    "_sums": (rated, total, total_sq)})
    return out


def best_value(values):
    """The value with the highest mean among those with 2+ ratings (else 1+), or None."""
    for least in (2, 1):
        candidates = [v for v in values if v["rated"] >= least and v["mean"] is not None]
        if candidates:
            return max(candidates, key=lambda v: v["mean"])["value"]
    return None


def paired_effects(data: RunData, axis, best, scores, order):
    """For each value other than ``best``: images identical in every other setting (and image
    index, so the same seed's noise) paired with the best value's; the mean of the differences
    (value − best) with its 95% interval and the number of pairs."""
    others = [a for a in data.axes if a != axis]
    cells = {}
    for cid, rated in scores.items():
        cfg = data.configs[cid]
        key = tuple(cfg[a] for a in others)
        for idx, s, _ in rated:
            cells.setdefault((key, idx), {}).setdefault(cfg[axis], []).append(s)
    diffs = {}
    for by_value in cells.values():
        ref = by_value.get(best)
        if ref is None or len(by_value) < 2:
            continue
        ref_mean = sum(ref) / len(ref)
        for value, got in by_value.items():
            if value != best:
                diffs.setdefault(value, []).append(sum(got) / len(got) - ref_mean)
    out = []
    for value in order:
        if value == best:
            continue
        d = diffs.get(value, [])
        mean, low, high = mean_ci_of(d)
        out.append({"value": value, "pairs": len(d), "mean_diff": _round(mean), "ci_low": _round(low),
                    "ci_high": _round(high)})
    return out


def explained(values):
    """The share of score variance the axis explains (omega squared, 0 when it explains
    nothing beyond chance; None with too few ratings), and the spread of the value means."""
    sums = [v["_sums"] for v in values if v["_sums"][0] > 0]
    n = sum(s[0] for s in sums)
    k = len(sums)
    means = [v["mean"] for v in values if v["rated"] >= 1]
    spread = _round(max(means) - min(means)) if len(means) > 1 else None
    if k < 2 or n - k < 1:
        return None, spread
    grand = sum(s[1] for s in sums) / n
    sst = sum(s[2] for s in sums) - n * grand * grand
    ssb = sum(s[0] * (s[1] / s[0] - grand) ** 2 for s in sums)
    msw = max(0.0, sst - ssb) / (n - k)
    if sst <= 0:
        return 0.0, spread
    return _round(max(0.0, (ssb - (k - 1) * msw) / (sst + msw))), spread


def compute(data: RunData, normalize=None):
    """The insights of loaded runs (see :func:`insights`)."""
    scores = rated_scores(data, normalize)
    rated = sum(len(r) for r in scores.values())
    axes = []
    for axis in data.axes:
        values = axis_values(data, axis, scores)
        best = best_value(values)
        order = [v["value"] for v in values]
        share, spread = explained(values)
        for v in values:
            del v["_sums"]
        axes.append({"axis": axis, "values": values, "best": best, "importance": share, "spread": spread,
                     "paired": paired_effects(data, axis, best, scores, order) if best is not None else []})
    axes.sort(key=lambda a: (a["importance"] is None, -(a["importance"] or 0), -(a["spread"] or 0)))
    result = {"run_id": data.run_ids[0] if len(data.run_ids) == 1 else None, "run_ids": data.run_ids,
              "runs": data.runs, "images": data.image_count, "rated": rated,
              "normalize": normalize or None, "constants": data.constants, "axes": axes}
    result["summary"] = summary(result)
    return result


def insights(db, run_ids, normalize=None):
    """Per-setting insights of one run (an int) or several (a list of ints), as a JSON-ready dict:
    ``{"run_id", "run_ids", "images", "rated", "summary", "axes": [{"axis", "best", "importance",
    "spread", "values": [{"value", "images", "rated", "mean", "ci_low", "ci_high", "seconds"}],
    "paired": [{"value", "pairs", "mean_diff", "ci_low", "ci_high"}]}]}``, axes ranked by how
    much of the score variance they explain. LookupError for a missing run."""
    if isinstance(run_ids, int):
        run_ids = [run_ids]
    return compute(load(db, run_ids), normalize)


def fmt(x, digits=1):
    return "–" if x is None else "{:.{}f}".format(x, digits)


def fmt_ci(low, high):
    if low is None:
        return "too few ratings"
    return "{} to {}".format(fmt(low), fmt(high)) if low < 0 else "{}–{}".format(fmt(low), fmt(high))


def summary(result):
    """One plain-language line: which setting matters most, best vs worst value with intervals."""
    if not result["axes"]:
        return "Nothing varies in {}: there is no setting to compare.".format(
            "this run" if len(result["run_ids"]) == 1 else "these runs")
    if not result["rated"]:
        return "No image is rated yet: score some in the viewer (keys 1–9, 0 = 10)."
    top = result["axes"][0]
    rated = [v for v in top["values"] if v["mean"] is not None]
    if top["importance"] is None or len(rated) < 2:
        return "Too few ratings to tell which setting matters: rate more images of each value."
    best = next(v for v in rated if v["value"] == top["best"])
    sure = [v for v in rated if v["rated"] >= 2 and v["value"] != best["value"]]
    worst = min(sure or [v for v in rated if v["value"] != best["value"]], key=lambda v: v["mean"])
    pairs = next((p["pairs"] for p in top["paired"] if p["value"] == worst["value"]), 0)
    lead = "{} matters most".format(top["axis"]) if top["importance"] > 0 else \
        "No setting clearly matters yet ({} differs most)".format(top["axis"])
    return "{}: {} {} ({}) vs {} {} ({}), {} pair{}".format(
        lead, best["value"], fmt(best["mean"]), fmt_ci(best["ci_low"], best["ci_high"]),
        worst["value"], fmt(worst["mean"]), fmt_ci(worst["ci_low"], worst["ci_high"]),
        pairs, "" if pairs == 1 else "s")


def heatmap(data: RunData, x, y, normalize=None):
    """Two axes crossed: per cell the images, rated, mean score and the best image (the highest
    score, else the first image) — ``{"x", "y", "x_values", "y_values", "cells": [...]}``."""
    for axis in (x, y):
        if axis not in data.axes:
            raise InsightsError("{!r} is not a setting that varies here (choose from: {})".format(
                axis, ", ".join(data.axes) or "none"))
    if x == y:
        raise InsightsError("choose two different settings for the heatmap")
    scores = rated_scores(data, normalize)
    raw = {iid: s for imgs in data.images.values() for iid, _, s in imgs if s is not None}
    cells = {}
    for cid, cfg in data.configs.items():
        c = cells.setdefault((cfg[x], cfg[y]), {"images": 0, "rated": [], "best": None})
        imgs = data.images.get(cid) or ()
        c["images"] += len(imgs)
        c["rated"].extend(s for _, s, _ in scores.get(cid, ()))
        for iid, _, _ in imgs:
            best = c["best"]
            if best is None or (raw.get(iid) or 0) > (raw.get(best) or 0):
                c["best"] = iid
    xs = sorted({k[0] for k in cells}, key=sort_key)
    ys = sorted({k[1] for k in cells}, key=sort_key)
    out = []
    for (xv, yv), c in cells.items():
        mean, _, _ = mean_ci_of(c["rated"])
        out.append({"x": xv, "y": yv, "images": c["images"], "rated": len(c["rated"]), "mean": _round(mean),
                    "best_image_id": c["best"], "best_score": raw.get(c["best"])})
    xi = {v: i for i, v in enumerate(xs)}
    yi = {v: i for i, v in enumerate(ys)}
    out.sort(key=lambda c: (yi[c["y"]], xi[c["x"]]))
    return {"x": x, "y": y, "x_values": xs, "y_values": ys, "cells": out}
