"""Which settings win, and how sure we are: for one run (or a set of runs), every setting that
varies, with per-value means and 95% intervals of the scores, paired one-change effects, axes
ranked by the share of score variance they explain, and two-axis heatmaps.

The axes are the config columns of :data:`sinkin_pipeline.varying.VARYING_COLUMNS` (the SinkIn
fields of :mod:`sinkin_pipeline.fields`, and the init image) that take more than one value, so
a new field appears here without code changes. The statistics work on the images grouped in SQL
by their settings and image index (:func:`load_groups`), so a run of 100,000 images is one pass. Means are arithmetic means of the
scores (1-10); with ``normalize="prompt"`` each score is first taken as its deviation from the
mean score of its prompt (some prompts are simply easier).
"""

import os
import re
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from .fields import FIELDS
from .queue import JobStatus
from .stats import mean_ci, mean_ci_of
from .varying import VARYING_COLUMNS

NORMALIZE = ("prompt",)
#: loaded runs kept in memory (a server answers again at once until a run's images, scores or
#: configs change: ``run_stats`` counters, bumped by triggers whichever process writes)
CACHE_SIZE = 8
_cache = OrderedDict()
_lock = threading.Lock()


class InsightsError(ValueError):
    """A request that cannot be answered (unknown axis, bad option); nothing was read."""


@dataclass
class Groups:
    """A set of runs' images grouped by their varying settings and image index (one SQL pass):
    ``rows`` holds ``(values, prompt, image_index, images, rated, total, total_sq, seconds, timed)``
    with ``values`` a tuple in ``axes`` order."""

    run_ids: list
    runs: list
    axes: list
    constants: dict
    rows: list

    @property
    def image_count(self):
        return sum(r[3] for r in self.rows)


@dataclass
class RunData:
    """One run's images per config, for grids: ``configs`` maps a config id to its varying
    settings; ``images`` a config id to ``[(image_id, image_index, score)]`` by id."""

    run_ids: list
    axes: list
    constants: dict
    configs: dict
    images: dict
    runs: list = field(default_factory=list)

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


_OPTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _column_sql(name, alias=""):
    """The SQL for setting ``name``: a configs column, or a provider-declared option read from the
    ``provider_options`` JSON (names are checked identifiers, see :func:`_option_names`)."""
    prefix = alias + "." if alias else ""
    if name in VARYING_COLUMNS:
        return prefix + name
    return "json_extract({}provider_options, '$.{}')".format(prefix, name)


def _option_names(db, run_ids, columns):
    """The provider options set in the runs' configs (e.g. a1111's ``clip_skip``), sorted."""
    if "provider_options" not in columns:
        return []
    names = db.execute(
        "select distinct o.key from configs, json_each(configs.provider_options) o "
        "where configs.run_id in ({}) and json_valid(configs.provider_options)".format(_in(run_ids)),
        run_ids,
    ).fetchall()
    return sorted(
        n for (n,) in names if isinstance(n, str) and _OPTION_NAME.match(n) and n not in VARYING_COLUMNS
    )


def _settings(db, run_ids):
    """``(runs, axes, constants)``: the runs' names, the setting columns with more than one value
    among their configs (one aggregate query) and the values of the others. LookupError for a
    missing run."""
    run_ids = sorted({int(r) for r in run_ids})
    if not run_ids:
        raise InsightsError("choose at least one run")
    found = {
        r[0]: r[1]
        for r in db.execute("select id, name from runs where id in ({})".format(_in(run_ids)), run_ids)
    }
    missing = [r for r in run_ids if r not in found]
    if missing:
        raise LookupError("run {} not found".format(", ".join(map(str, missing))))
    columns = {row[1] for row in db.execute("PRAGMA table_info(configs)")}
    settings = [name for name in VARYING_COLUMNS if name in columns] + _option_names(db, run_ids, columns)
    counts = db.execute(
        "select {} from configs where run_id in ({})".format(
            ", ".join(
                "count(distinct {0}) + (count(*) > count({0}))".format(_column_sql(c)) for c in settings
            ),
            _in(run_ids),
        ),
        run_ids,
    ).fetchone()
    axes = [c for c, n in zip(settings, counts) if n > 1]
    fixed = [c for c in settings if c not in axes]
    first = db.execute(
        "select {} from configs where run_id in ({}) limit 1".format(
            ", ".join(_column_sql(c) for c in fixed) or "1", _in(run_ids)
        ),
        run_ids,
    ).fetchone() or [None] * len(fixed)
    constants = {c: _value(c, v) for c, v in zip(fixed, first)}
    return [{"id": r, "name": found[r]} for r in run_ids], axes, constants


SECONDS_SQL = """case when j.status = '{}' and j.started_at is not null and j.response_at is not null
  then max(0, julianday(j.response_at) - julianday(j.started_at)) * 86400.0 / max(c.num_images, 1) end""".format(
    JobStatus.SUCCEEDED
)


def _cache_key(db, kind, run_ids):
    """What identifies the loaded data: the database file, the runs and their run_stats
    counters; None when they cannot be read (no cache)."""
    ids = sorted({int(r) for r in run_ids})
    try:
        counters = db.execute(
            "select run_id, version, score_version, config_version from run_stats "
            "where run_id in ({})".format(_in(ids)),
            ids,
        ).fetchall()
        path = db.execute("PRAGMA database_list").fetchone()[2]
        inode = os.stat(path).st_ino
    except (sqlite3.Error, OSError, TypeError):
        return None
    if len(counters) != len(ids) or not ids:
        return None
    return (kind, path, inode, tuple(sorted(counters)))


def cached(db, kind, run_ids, build):
    """``build()``, or what it returned for the same runs while their counters stood still."""
    key = _cache_key(db, kind, run_ids)
    if key is not None:
        with _lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _cache[key]
    value = build()
    if key is not None:
        with _lock:
            _cache[key] = value
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    return value


def load_groups(db, run_ids) -> Groups:
    """The runs' images grouped by varying settings and image index, with counts, score sums
    and generation seconds (SinkIn's answer time of the job divided by its images). Cached
    until the runs change."""
    return cached(db, "groups", run_ids, lambda: _load_groups(db, run_ids))


def _load_groups(db, run_ids) -> Groups:
    runs, axes, constants = _settings(db, run_ids)
    ids = [r["id"] for r in runs]
    cols = [_column_sql(a, "c") for a in axes] + ["c.prompt", "i.image_index"]
    sql = """select {cols}, count(*), count(i.score), total(i.score), total(i.score * i.score),
                    total({secs}), count({secs})
             from images i join configs c on c.id = i.config_id left join jobs j on j.id = i.job_id
             where i.run_id in ({ids}) group by {cols}""".format(
        cols=", ".join(cols), secs=SECONDS_SQL, ids=_in(ids)
    )
    k = len(axes)
    rows = []
    for r in db.execute(sql, ids):
        values = tuple(_value(a, v) for a, v in zip(axes, r[:k]))
        rows.append((values,) + tuple(r[k:]))
    return Groups(run_ids=ids, runs=runs, axes=axes, constants=constants, rows=rows)


def load(db, run_ids) -> RunData:
    """Per config and per image, for grids (cached until the runs change). LookupError for a
    missing run."""
    return cached(db, "images", run_ids, lambda: _load(db, run_ids))


def _load(db, run_ids) -> RunData:
    runs, axes, constants = _settings(db, run_ids)
    ids = [r["id"] for r in runs]
    configs = {}
    for row in db.execute(
        "select id, {} from configs where run_id in ({})".format(
            ", ".join(_column_sql(a) for a in axes + ["prompt"]), _in(ids)
        ),
        ids,
    ):
        configs[row[0]] = {a: _value(a, v) for a, v in zip(axes + ["prompt"], row[1:])}
    images = {}
    for image_id, config_id, index, score in db.execute(
        "select id, config_id, image_index, score from images where run_id in ({}) order by id".format(
            _in(ids)
        ),
        ids,
    ):
        images.setdefault(config_id, []).append((image_id, index, score))
    return RunData(run_ids=ids, axes=axes, constants=constants, configs=configs, images=images, runs=runs)


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
    score, else the first image) — ``{"x", "y", "x_values", "y_values", "cells": [...]}``."""
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
    for r in scored_rows(groups, normalize):
        c = cells.get((r[0][kx], r[0][ky]))
        if c is None:
            c = cells[(r[0][kx], r[0][ky])] = [0, 0, 0.0, 0.0]
        c[0] += r[2]
        c[1] += r[3]
        c[2] += r[4]
        c[3] += r[5]
    best = cached(db, ("best", x, y), groups.run_ids, lambda: _best_images(db, groups.run_ids, x, y))
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


def _best_images(db, ids, x, y):
    """(x value, y value) -> (id, score) of the highest-scored image (any image if none is)."""
    best = {}
    for xv, yv, image_id, score in db.execute(
        """
            select {x} as sk_x, {y} as sk_y, i.id, max(coalesce(i.score, 0)) from images i
            join configs c on c.id = i.config_id where i.run_id in ({ids})
            group by sk_x, sk_y""".format(x=_column_sql(x, "c"), y=_column_sql(y, "c"), ids=_in(ids)),
        ids,
    ):
        best[(_value(x, xv), _value(y, yv))] = (image_id, score or None)
    return best
