"""The X/Y/Z grid of a run (``/-/sinkin/runs/<id>/grid?x=AXIS&y=AXIS&z=AXIS&zpage=N``) with score
badges and keyboard scoring, and its "Download grid" PNG (``grid.png``, same parameters). Scores are
written by the viewer's own route (``/-/sinkin/images/<id>/score.json``), so the grid adds no
write path of its own."""

import re

from datasette import Response
from datasette.utils.asgi import BadRequest, NotFound

from .appdb import json_script, url_id, with_db


def routes():
    return [
        (r"^/-/sinkin/runs/(?P<run_id>\d+)/grid$", grid_page),
        (r"^/-/sinkin/runs/(?P<run_id>\d+)/grid\.png$", grid_png),
    ]


def _axes(data, args):
    from sinkin_pipeline.grid import default_axes

    if not any(k in args for k in ("x", "y", "z")):
        return default_axes(data)
    return tuple((args.get(k) or None) for k in ("x", "y", "z"))


def _grid(db, run_id, args):
    from sinkin_pipeline.grid import grid, meta

    data = meta(db, run_id)
    x, y, z = _axes(data, args)
    result = grid(db, data, x, y, z, args.get("zpage") or 1)
    result["axes"] = data.axes
    result["run"] = data.runs[0]
    result["images"] = data.image_count
    return result


def _png(db, run_id, args):
    from sinkin_pipeline.gridpng import render, thumbnails
    from sinkin_pipeline.varying import format_value

    result = _grid(db, run_id, args)
    title = "SinkIn Lab · run {} · {}".format(run_id, result["run"]["name"] or "")
    if result["z"]:
        title += " · {} {}".format(result["z"], format_value(result["z"], result["z_value"]))
    return result, render(result, thumbnails(db, result), title)


async def _load(datasette, request, fn):
    """``fn``'s result; bad axes are Datasette's BadRequest, a missing run its NotFound (rendered by
    ``appdb.guarded``: JSON on ``.json`` paths, Datasette's error page otherwise)."""
    from sinkin_pipeline.rundata import InsightsError

    run_id = url_id(request, "run_id")
    try:
        return await with_db(datasette, fn, run_id, request.args)
    except InsightsError as e:
        raise BadRequest(str(e))
    except LookupError as e:
        raise NotFound(e.args[0] if e.args else str(e))


def _query(result, **changes):
    from urllib.parse import urlencode

    params = {"x": result["x"] or "", "y": result["y"] or "", "z": result["z"] or ""}
    params.update(changes)
    if params.get("zpage") in (1, "1"):
        params.pop("zpage")
    return urlencode(params)


def cells_html(result, images_path, viewer_query):
    """Each cell's images as HTML, ``[[Markup] per x value] per y value``: a link to the viewer with
    the thumbnail and the score badge. Written here rather than in the template: a page holds up to
    PAGE_LIMIT images and a template loop costs about ten times as much per image."""
    from html import escape

    from markupsafe import Markup

    query = escape(viewer_query)
    captions: dict = {}
    out = []
    for j, row in enumerate(result["rows"]):
        html_row = []
        for cell in row:
            parts = []
            for img in cell:
                caption = img["caption"]
                if caption not in captions:
                    text = escape(caption)
                    captions[caption] = (" · " + text, ", " + text) if caption else ("", "")
                title, alt = captions[caption]
                score = img["score"]
                parts.append(
                    '<a class="sk-gimg" href="{p}{id}?{q}" data-id="{id}" data-row="{j}" tabindex="-1" '
                    'title="image {id}{title}"><img src="{p}{id}/thumb" alt="image {id}{alt}" '
                    'loading="lazy" width="96" height="96"><span class="sk-badge{unscored}" data-score>'
                    "{score}</span></a>".format(
                        p=images_path,
                        id=int(img["id"]),
                        q=query,
                        j=j,
                        title=title,
                        alt=alt,
                        unscored=" sk-unscored" if score is None else "",
                        score="–" if score is None else int(score),
                    )
                )
            html_row.append(Markup("".join(parts) or '<span class="sk-void">–</span>'))
        out.append(html_row)
    return out


async def grid_page(datasette, request):
    from urllib.parse import urlencode

    from sinkin_pipeline.varying import format_value

    result = await _load(datasette, request, _grid)
    run_id = result["run"]["id"]
    base = "/-/sinkin/runs/{}".format(run_id)

    def fmt(axis, values):
        return [format_value(axis, v) for v in values]

    pages = [
        {"n": i + 1, "label": format_value(result["z"], v), "href": "?" + _query(result, zpage=i + 1)}
        for i, v in enumerate(result["z_values"])
    ]
    context = {
        "g": result,
        "base": base,
        "x_labels": fmt(result["x"], result["x_values"]),
        "y_labels": fmt(result["y"], result["y_values"]) or [""],
        "pages": pages,
        "png_href": datasette.urls.path(base + "/grid.png") + "?" + _query(result, zpage=result["z_page"]),
        # the viewer opened from here comes back here (Esc): same axes, same Z page, same image
        "cells": cells_html(
            result,
            datasette.urls.path("/-/sinkin/images/"),
            urlencode({"grid": _query(result, zpage=result["z_page"])}),
        ),
        "boot": json_script(
            {
                "run_id": run_id,
                "z_page": result["z_page"],
                "z_pages": result["z_pages"],
                "prev": pages[result["z_page"] - 2]["href"] if result["z_page"] > 1 else None,
                "next": pages[result["z_page"]]["href"] if result["z_page"] < len(pages) else None,
                "insights": datasette.urls.path(base + "/insights"),
                "images": datasette.urls.path("/-/sinkin/images/"),
            }
        ),
    }
    return Response.html(await datasette.render_template("sinkin_grid.html", context, request=request))


async def grid_png(datasette, request):
    result, data = await _load(datasette, request, _png)
    name = "-".join(
        ["run", str(result["run"]["id"]), "grid"] + [a for a in (result["x"], result["y"], result["z"]) if a]
    )
    if result["z"]:
        name += "-{}".format(result["z_page"])
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".png"
    return Response(
        data,
        content_type="image/png",
        headers={
            "Content-Disposition": 'attachment; filename="{}"'.format(name),
            "Cache-Control": "no-store",
        },
    )
