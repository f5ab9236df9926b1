"""Rendering the insights page: per-axis bar charts with interval whiskers drawn as server-side SVG
(coloured by CSS variables, so light and dark mode both read), the paired effects, and the
two-axis heatmap whose cells open the gallery filtered to them."""

from html import escape
from urllib.parse import urlencode

from markupsafe import Markup

from .appdb import database_name

CHART_W, CHART_H = 260, 22


def label(value, limit=60, axis=""):
    from sinkin_pipeline.varying import format_value

    text = format_value(axis, value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def filter_value(value):
    """A value as the gallery's (and Datasette's) filters spell it."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def num(x, digits=1):
    return "–" if x is None else "{:.{}f}".format(x, digits).replace("-", "−")


def interval(low, high):
    return "too few ratings" if low is None else "{} to {}".format(num(low), num(high))


def domain(result):
    """The score range the bars are drawn on: 1–10, or symmetric around 0 when normalised."""
    if result["normalize"] != "prompt":
        return 1.0, 10.0
    m = 1.0
    for axis in result["axes"]:
        for v in axis["values"]:
            for x in (v["mean"], v["ci_low"], v["ci_high"]):
                if x is not None:
                    m = max(m, abs(x))
    return -m, m


def bar_svg(value, lo, hi, best):
    """One value's mean as a bar from the domain's origin, its 95% interval as a whisker."""

    def px(x):
        return 4 + (min(max(x, lo), hi) - lo) / (hi - lo) * (CHART_W - 8)

    origin = px(0 if lo < 0 else lo)
    parts = [
        '<svg class="sk-bar" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{a}">'.format(
            w=CHART_W,
            h=CHART_H,
            a=escape("mean {} ({})".format(num(value["mean"]), interval(value["ci_low"], value["ci_high"]))),
        )
    ]
    parts.append(
        '<line class="sk-axisline" x1="{0:.1f}" y1="2" x2="{0:.1f}" y2="{1}"/>'.format(origin, CHART_H - 2)
    )
    if value["mean"] is not None:
        x = px(value["mean"])
        parts.append(
            '<rect class="sk-fill{}" x="{:.1f}" y="5" width="{:.1f}" height="{}" rx="2"/>'.format(
                " sk-best" if best else "", min(origin, x), max(1.0, abs(x - origin)), CHART_H - 10
            )
        )
    if value["ci_low"] is not None:
        a, b, mid = px(value["ci_low"]), px(value["ci_high"]), CHART_H / 2
        parts.append(
            '<path class="sk-whisker" d="M{a:.1f} {m}H{b:.1f}M{a:.1f} {t}V{u}M{b:.1f} {t}V{u}"/>'.format(
                a=a, b=b, m=mid, t=mid - 6, u=mid + 6
            )
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def heat_colour(mean, lo, hi):
    if mean is None:
        return None
    share = (min(max(mean, lo), hi) - lo) / (hi - lo)
    return "hsl({:.0f} 60% 38%)".format(share * 125)


def cell_href(datasette, result, single, filters):
    """The gallery of the run filtered to ``filters`` (any setting, provider options included), or
    across runs the ranking table filtered so (None for a provider option: it has no column there)."""
    from sinkin_pipeline.varying import VARYING_COLUMNS

    if single:
        return (
            datasette.urls.path("/-/sinkin/runs/{}".format(result["run_ids"][0])) + "?" + urlencode(filters)
        )
    if any(key not in VARYING_COLUMNS for key in filters):
        return None
    table = datasette.urls.table(database_name(datasette), "image_table")
    params = {"run_id__in": ",".join(map(str, result["run_ids"]))}
    for key, value in filters.items():
        params[key + "__isnull" if value == "(none)" else key] = "1" if value == "(none)" else value
    return table + "?" + urlencode(params)


async def render_page(datasette, request, result, single):
    lo, hi = domain(result)
    base = "/-/sinkin/runs/{}".format(result["run_ids"][0]) if single else None
    here = request.path
    keep = {k: request.args.get(k) for k in ("runs", "x", "y") if request.args.get(k)}
    axes = []
    for axis in result["axes"]:
        paired = {p["value"]: p for p in axis["paired"]}
        rows = []
        for v in axis["values"]:
            p = paired.get(v["value"])
            rows.append(
                {
                    "v": v,
                    "label": label(v["value"], axis=axis["axis"]),
                    "title": label(v["value"], 10000, axis["axis"]),
                    "best": v["value"] == axis["best"],
                    "bar": bar_svg(v, lo, hi, v["value"] == axis["best"]),
                    "mean": num(v["mean"]),
                    "ci": interval(v["ci_low"], v["ci_high"]),
                    "few": v["ci_low"] is None,
                    "paired": p,
                    "diff": None
                    if not p or p["mean_diff"] is None
                    else "{} ({})".format(
                        num(p["mean_diff"]) if p["mean_diff"] < 0 else "+" + num(p["mean_diff"]),
                        interval(p["ci_low"], p["ci_high"]),
                    ),
                    "href": cell_href(datasette, result, single, {axis["axis"]: filter_value(v["value"])}),
                }
            )
        axes.append(
            {
                "axis": axis["axis"],
                "rows": rows,
                "importance": axis["importance"],
                "best": axis["best"],
                "best_label": label(axis["best"], axis=axis["axis"]),
            }
        )
    heat = None
    if result["heatmap"]:
        h = result["heatmap"]
        cells = {(c["x"], c["y"]): c for c in h["cells"]}
        grid = []
        for yv in h["y_values"]:
            row = []
            for xv in h["x_values"]:
                c = cells.get((xv, yv))
                if c:
                    c = dict(
                        c,
                        colour=heat_colour(c["mean"], lo, hi),
                        mean_text=num(c["mean"]),
                        href=cell_href(
                            datasette, result, single, {h["x"]: filter_value(xv), h["y"]: filter_value(yv)}
                        ),
                    )
                row.append(c)
            grid.append({"label": label(yv, 40, h["y"]), "title": label(yv, 10000, h["y"]), "cells": row})
        heat = {
            "x": h["x"],
            "y": h["y"],
            "x_labels": [(label(v, 30, h["x"]), label(v, 10000, h["x"])) for v in h["x_values"]],
            "rows": grid,
        }
    toggle = dict(keep)
    if result["normalize"] != "prompt":
        toggle["normalize"] = "prompt"
    context = {
        "result": result,
        "axes": axes,
        "heat": heat,
        "single": single,
        "base": base,
        "axis_names": [a["axis"] for a in result["axes"]],
        "normalize_href": here + ("?" + urlencode(toggle) if toggle else ""),
        "json_href": here + ".json" + ("?" + request.query_string if request.query_string else ""),
        "keep": keep,
        "domain": (lo, hi),
        "title": (result["runs"][0]["name"] or "run {}".format(result["run_ids"][0]))
        if single
        else "runs " + ", ".join(map(str, result["run_ids"])),
    }
    from datasette import Response

    return Response.html(await datasette.render_template("sinkin_insights.html", context, request=request))
