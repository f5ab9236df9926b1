"""Which settings win, and how sure we are: for one run (or a set of runs), every setting that
varies, with per-value means and 95% intervals of the scores, paired one-change effects, axes
ranked by the share of score variance they explain, and two-axis heatmaps.

The axes are the config columns of :data:`sinkin_pipeline.varying.VARYING_COLUMNS` (the SinkIn
fields of :mod:`sinkin_pipeline.fields`, and the init image) that take more than one value, so
a new field appears here without code changes. The statistics work on the images grouped in SQL
by their settings and image index (:func:`sinkin_pipeline.rundata.load_groups`: one pass, cached,
patched when scores change), so a run of 100,000 images is one pass. Means are arithmetic means of
the scores (1-10); with ``normalize="prompt"`` each score is first taken as its deviation from the
mean score of its prompt (some prompts are simply easier).
"""

from .rundata import Groups, InsightsError, load_groups, sort_key
from .stats import mean_ci, mean_ci_of

NORMALIZE = ("prompt",)


def scored_rows(groups: Groups, normalize=None):
    """``[(values, index, images, rated, total, total_sq, seconds, timed)]`` with the score sums
    taken as deviations from each prompt's mean score when ``normalize == "prompt"``."""
    if normalize not in (None, "") + NORMALIZE:
        raise InsightsError("normalize must be one of: {}".format(", ".join(NORMALIZE)))
    if normalize != "prompt":
        return [(r[0],) + r[2:] for r in groups.rows]
    sums = {}
    for r in groups.rows:
        acc = sums.setdefault(r[1], [0, 0.0])
        acc[0] += r[4]
        acc[1] += r[5]
    means = {p: (t / n if n else 0.0) for p, (n, t) in sums.items()}
    out = []
    for values, prompt, index, images, rated, total, total_sq, secs, timed in groups.rows:
        m = means[prompt]
        out.append(
            (
                values,
                index,
                images,
                rated,
                total - rated * m,
                total_sq - 2 * m * total + rated * m * m,
                secs,
                timed,
            )
        )
    return out


def _round(x, digits=3):
    return None if x is None else round(x, digits)


def axis_values(rows, k):
    """One row per value of the k-th axis: images, rated, mean, ci_low, ci_high, seconds per image."""
    groups = {}
    for r in rows:
        g = groups.get(r[0][k])
        if g is None:
            g = groups[r[0][k]] = [0, 0, 0.0, 0.0, 0.0, 0]
        g[0] += r[2]
        g[1] += r[3]
        g[2] += r[4]
        g[3] += r[5]
        g[4] += r[6]
        g[5] += r[7]
    out = []
    for value in sorted(groups, key=sort_key):
        images, rated, total, total_sq, secs, timed = groups[value]
        mean, low, high = mean_ci(rated, total, total_sq)
        out.append(
            {
                "value": value,
                "images": images,
                "rated": rated,
                "mean": _round(mean),
                "ci_low": _round(low),
                "ci_high": _round(high),
                "seconds": _round(secs / timed, 2) if timed else None,
                "_sums": (rated, total, total_sq),
            }
        )
    return out


def best_value(values):
    """The value with the highest mean among those with 2+ ratings (else 1+), or None."""
    for least in (2, 1):
        candidates = [v for v in values if v["rated"] >= least and v["mean"] is not None]
        if candidates:
            return max(candidates, key=lambda v: v["mean"])["value"]
    return None


def paired_effects(rows, k, best, order):
    """For each value other than ``best``: images identical in every other setting (and image
    index, so the same seed's noise) paired with the best value's; the mean of the differences
    (value − best) with its 95% interval and the number of pairs."""
    cells = {}
    for r in rows:
        if not r[3]:
            continue
        values = r[0]
        key = (values[:k] + values[k + 1 :], r[1])
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = {}
        acc = cell.get(values[k])
        if acc is None:
            cell[values[k]] = [r[3], r[4]]
        else:  # the same settings in two runs
            acc[0] += r[3]
            acc[1] += r[4]
    diffs = {}
    for by_value in cells.values():
        ref = by_value.get(best)
        if ref is None or len(by_value) < 2:
            continue
        ref_mean = ref[1] / ref[0]
        for value, (n, total) in by_value.items():
            if value != best:
                diffs.setdefault(value, []).append(total / n - ref_mean)
    out = []
    for value in order:
        if value == best:
            continue
        d = diffs.get(value, [])
        mean, low, high = mean_ci_of(d)
        out.append(
            {
                "value": value,
                "pairs": len(d),
                "mean_diff": _round(mean),
                "ci_low": _round(low),
                "ci_high": _round(high),
            }
        )
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
    if sst <= 1e-12:
        return 0.0, spread
    return _round(max(0.0, (ssb - (k - 1) * msw) / (sst + msw))), spread


def compute(groups: Groups, normalize=None):
    """The insights of loaded runs (see :func:`insights`)."""
    rows = scored_rows(groups, normalize)
    rated = sum(r[3] for r in rows)
    axes = []
    for k, axis in enumerate(groups.axes):
        values = axis_values(rows, k)
        best = best_value(values)
        order = [v["value"] for v in values]
        share, spread = explained(values)
        for v in values:
            del v["_sums"]
        axes.append(
            {
                "axis": axis,
                "values": values,
                "best": best,
                "importance": share,
                "spread": spread,
                "paired": paired_effects(rows, k, best, order) if best is not None else [],
            }
        )
    axes.sort(key=lambda a: (a["importance"] is None, -(a["importance"] or 0), -(a["spread"] or 0)))
    result = {
        "run_id": groups.run_ids[0] if len(groups.run_ids) == 1 else None,
        "run_ids": groups.run_ids,
        "runs": groups.runs,
        "images": groups.image_count,
        "rated": rated,
        "normalize": normalize or None,
        "constants": groups.constants,
        "axes": axes,
    }
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
    return compute(load_groups(db, run_ids), normalize)


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
            "this run" if len(result["run_ids"]) == 1 else "these runs"
        )
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
    lead = (
        "{} matters most".format(top["axis"])
        if top["importance"] > 0
        else "No setting clearly matters yet ({} differs most)".format(top["axis"])
    )
    return "{}: {} {} ({}) vs {} {} ({}), {} pair{}".format(
        lead,
        best["value"],
        fmt(best["mean"]),
        fmt_ci(best["ci_low"], best["ci_high"]),
        worst["value"],
        fmt(worst["mean"]),
        fmt_ci(worst["ci_low"], worst["ci_high"]),
        pairs,
        "" if pairs == 1 else "s",
    )


def heatmap(db, groups: Groups, x, y, normalize=None):
    """Two axes crossed: per cell the images, rated, mean score and the best image (the highest
    score, the lowest id on ties; any image when none is rated) — ``{"x", "y", "x_values", "y_values", "cells": [...]}``."""
    for axis in (x, y):
        if axis not in groups.axes:
            raise InsightsError(
                "{!r} is not a setting that varies here (choose from: {})".format(
                    axis, ", ".join(groups.axes) or "none"
                )
            )
    if x == y:
        raise InsightsError("choose two different settings for the heatmap")
    kx, ky = groups.axes.index(x), groups.axes.index(y)
    cells = {}
    best = {}
    for r, (image_id, score) in zip(scored_rows(groups, normalize), groups.best):
        key = (r[0][kx], r[0][ky])
        c = cells.get(key)
        if c is None:
            c = cells[key] = [0, 0, 0.0, 0.0]
        c[0] += r[2]
        c[1] += r[3]
        c[2] += r[4]
        c[3] += r[5]
        top = best.get(key)
        if top is None or (score or 0, -image_id) > (top[1] or 0, -top[0]):
            best[key] = (image_id, score)
    xs = sorted({k[0] for k in cells}, key=sort_key)
    ys = sorted({k[1] for k in cells}, key=sort_key)
    out = []
    for yv in ys:
        for xv in xs:
            c = cells.get((xv, yv))
            if c is None:
                continue
            mean, _, _ = mean_ci(c[1], c[2], c[3])
            image_id, score = best.get((xv, yv), (None, None))
            out.append(
                {
                    "x": xv,
                    "y": yv,
                    "images": c[0],
                    "rated": c[1],
                    "mean": _round(mean),
                    "best_image_id": image_id,
                    "best_score": score,
                }
            )
    return {"x": x, "y": y, "x_values": xs, "y_values": ys, "cells": out}
