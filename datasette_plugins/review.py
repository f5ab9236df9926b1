"""The review pages: a run's gallery, the keyboard viewer (score, upscale, compare), the image files,
and their JSON endpoints. Writes (score, upscale) go through :func:`security.write_problem`."""

import asyncio
import re
import secrets
from urllib.parse import urlencode

from datasette import NotFound, Response

from sinkin_pipeline.ranking import image_settings
from sinkin_pipeline.remix import a1111_parameters
from sinkin_pipeline.varying import config_label, varying_fields

from .appdb import database_name, database_path, error, json_script, media_file, ok, rows, url_id, with_db
from .blind import blind_image, blind_tile, hides
from .gallery_filters import filter_choices, filter_labels, requested, resolve
from .gallery_order import SORTS, ordered_ids, per_run, window
from .security import write_request

PAGE_SIZE = 48


def setting_fields():
    """The settings the viewer lists (in this order), read when called from ``fields.py``."""
    return ("run_name", *image_settings(), "fallback", "inf_id", "upscale_type", "created_at")


def routes():
    return [
        (r"^/-/sinkin/runs/(?P<run_id>\d+)$", gallery_page),
        (r"^/-/sinkin/runs/(?P<run_id>\d+)/order\.json$", order_view),
        (r"^/-/sinkin/unrated\.json$", unrated_view),
        (r"^/-/sinkin/images/(?P<image_id>\d+)$", viewer_page),
        (r"^/-/sinkin/images/(?P<image_id>\d+)\.json$", image_view),
        (r"^/-/sinkin/images/(?P<image_id>\d+)/(?P<which>full|upscale|thumb)$", image_file),
        (r"^/-/sinkin/images/(?P<image_id>\d+)/score\.json$", score_view),
        (r"^/-/sinkin/images/(?P<image_id>\d+)/upscale\.json$", upscale_view),
    ]


# --- gallery state: unrated only, sort, setting filters, page — all in the URL --------------------


def parse_state(args):
    sort = args.get("sort") or "newest"
    filters = requested(args)  # kept by gallery_filters.resolve when the run has them
    try:
        page = max(1, int(args.get("page") or 1))
    except ValueError:
        page = 1
    blind = args.get("blind") or ""
    blind = int(blind) if blind.isdigit() and 0 < int(blind) < 2**31 else None
    return {
        "unrated": args.get("unrated") == "1",
        "sort": sort if sort in SORTS else "newest",
        # a filter on a setting would tell the setting of every image shown: none in blind mode
        "filters": {} if blind else filters,
        "page": page,
        # blind mode: the seed of this review pass (shuffled order, settings hidden until scored)
        "blind": blind,
    }


def state_params(state, page=None, **changes):
    params = {}
    unrated = changes.get("unrated", state["unrated"])
    if unrated:
        params["unrated"] = "1"
    sort = changes.get("sort", state["sort"])
    if sort != "newest":
        params["sort"] = sort
    params.update(changes.get("filters", state["filters"]))
    blind = changes.get("blind", state.get("blind"))
    if blind:
        params["blind"] = str(blind)
    if page and page > 1:
        params["page"] = str(page)
    return urlencode(params)


def gallery_data(db, run_id, state):
    found = rows(db, "select * from run_summary where run_id = ?", [run_id])
    if not found:
        raise LookupError("run {} not found".format(run_id))
    state = resolve(db, run_id, state)
    order = ordered_ids(db, run_id, state)
    total = len(order)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(state["page"], pages)
    page_ids = list(order[(page - 1) * PAGE_SIZE : page * PAGE_SIZE])
    varying = run_varying(db, run_id)
    extra = "".join(", " + c for c in varying if c != "prompt")
    found_images = rows(
        db,
        "select image_id, score, prompt, upscale_path is not null as upscaled, path is not "
        "null as downloaded{} from image_table where image_id in ({})".format(
            extra, ", ".join("?" * len(page_ids))
        ),
        page_ids,
    )
    by_id = {image["image_id"]: image for image in found_images}
    images = [by_id[i] for i in page_ids if i in by_id]
    for image in images:
        image["label"] = config_label(image, varying)
    choices = filter_choices(db, run_id, state)
    return {
        "run": found[0],
        "total": total,
        "page": page,
        "pages": pages,
        "images": images,
        "choices": choices,
        "filter_labels": filter_labels(choices),
        "varying": varying,
        "state": state,
    }


def run_varying(db, run_id):
    """The settings that vary in the run (:func:`varying_fields`), cached until its configs change."""
    return list(per_run(db, run_id, "varying", lambda: varying_fields(db, run_id), column="config_version"))


# --- pages ------------------------------------------------------------------------------------


async def gallery_page(datasette, request):
    run_id = url_id(request, "run_id")
    state = parse_state(request.args)
    try:
        data = await with_db(datasette, gallery_data, run_id, state)
    except LookupError as e:
        raise NotFound(str(e).strip("'\""))
    state = data["state"]  # only the filters this run has
    if state["blind"]:  # no caption, prompt or filter menu tells an unscored image's settings
        data["choices"] = {}
        data["images"] = [blind_tile(i) if hides(state["blind"], i) else i for i in data["images"]]
    page = data["page"]
    links = {
        "prev": "?" + state_params(state, page - 1) if page > 1 else None,
        "next": "?" + state_params(state, page + 1) if page < data["pages"] else None,
        "unrated": "?" + state_params(state, unrated=not state["unrated"]),
        "sorts": {key: "?" + state_params(state, sort=key) for key in SORTS},
        "clear": "?" + state_params(state, filters={}),
        # each time blind mode is turned on, a new review pass with its own shuffle
        "blind": "?"
        + state_params(state, blind=None if state["blind"] else secrets.randbelow(2**31 - 1) + 1, filters={}),
    }
    return Response.html(
        await datasette.render_template(
            "sinkin_gallery.html",
            {
                "state": state,
                "state_query": state_params(state),
                "data": data,
                "links": links,
                "sorts": SORTS,
                "table_url": datasette.urls.table(database_name(datasette), "image_table"),
            },
            request=request,
        )
    )


def grid_return(args):
    """The X/Y/Z grid the viewer was opened from (``?grid=x%3D…%26zpage%3D2``), as the grid's own
    query (axes and Z page only, each checked), or None: Esc goes back there instead of the gallery."""
    from urllib.parse import parse_qsl

    raw = args.get("grid")
    if raw is None:
        return None
    kept = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        if key in ("x", "y", "z") and re.fullmatch(r"[A-Za-z0-9_]{0,64}", value):
            kept[key] = value
        elif key == "zpage" and value.isdigit() and int(value) < 10**6:
            kept[key] = value
    return urlencode(kept)


async def viewer_page(datasette, request):
    image_id = url_id(request, "image_id")
    found = await with_db(datasette, rows, "select * from image_table where image_id = ?", [image_id])
    if not found:
        raise NotFound("Image {} not found".format(image_id))
    image = found[0]
    image.pop("thumbnail", None)
    varying = await with_db(datasette, run_varying, image["run_id"])
    state = await with_db(datasette, resolve, image["run_id"], parse_state(request.args))
    grid = grid_return(request.args)
    hidden = hides(state["blind"], image)  # blind mode: no setting of an unscored image in the page
    upscalers = await with_db(datasette, run_upscalers, image["run_id"])
    return Response.html(
        await datasette.render_template(
            "sinkin_viewer.html",
            {
                "image": image,
                "settings": setting_fields(),
                "varying": varying,
                "label": "" if hidden else config_label(image, varying),
                "upscalers": upscalers,
                "state_query": state_params(state),
                "blind": state["blind"],
                "hidden": hidden,
                "grid": grid,
                "boot": json_script(
                    {
                        "image_id": image_id,
                        "run_id": image["run_id"],
                        "state": state_params(state),
                        "grid": grid,
                        "page_size": PAGE_SIZE,
                        "width": image["width"],
                        "height": image["height"],
                    }
                ),
            },
            request=request,
        )
    )


def run_upscalers(db, run_id):
    """The upscalers (as JSON: name, description, declared options) offered for a run's images."""
    from sinkin_pipeline.upscalers import upscalers_for

    row = db.execute("select provider from runs where id = ?", [run_id]).fetchone()
    return [u.as_json() for u in upscalers_for(row[0]).values()] if row else []


# --- JSON reads -------------------------------------------------------------------------------


def image_info(db, image_id):
    found = rows(db, "select * from image_table where image_id = ?", [image_id])
    if not found:
        return None
    image = found[0]
    image.pop("thumbnail", None)
    base = "/-/sinkin/images/{}".format(image_id)
    image["full_url"] = base + "/full" if image["path"] else None
    image["upscale_url_local"] = base + "/upscale" if image["upscale_path"] else None
    image["settings"] = [[k, image.get(k)] for k in setting_fields() if image.get(k) not in (None, "")]
    image["varying"] = run_varying(db, image["run_id"])
    image["label"] = config_label(image, image["varying"])
    image["a1111"] = a1111_parameters(image, image.get("model_title"))
    return image


def with_base(datasette, image):
    """The image's file URLs under Datasette's base_url (image_info writes them from the root)."""
    for key in ("full_url", "upscale_url_local"):
        if image.get(key):
            image[key] = datasette.urls.path(image[key])
    return image


def grid_order(db, run_id, grid):
    """The image ids of the X/Y/Z grid page ``grid`` (as :func:`grid_return` gives it) in reading
    order (rows, then columns, then the images of a cell), or None when that grid cannot be drawn
    (an axis the run no longer varies): the gallery's order is used then."""
    from urllib.parse import parse_qsl

    from sinkin_pipeline.rundata import InsightsError

    from .grid import _grid

    try:
        result = _grid(db, run_id, dict(parse_qsl(grid)))
    except (InsightsError, LookupError):
        return None
    return [image["id"] for row in result["rows"] for cell in row for image in cell]


def order_window(db, run_id, state, around, span, grid=None):
    """A window of the gallery's order, or of the grid page the viewer was opened from."""
    order = grid_order(db, run_id, grid) if grid is not None else None
    if order is None:
        order = ordered_ids(db, run_id, resolve(db, run_id, state))
    ids, offset, index = window(order, around, span)
    scores = (
        dict(
            db.execute(
                "select image_id, score from image_table where image_id in ({})".format(
                    ", ".join("?" * len(ids))
                ),
                ids,
            ).fetchall()
        )
        if ids
        else {}
    )
    stats = db.execute("select images, unrated from run_stats where run_id = ?", [run_id]).fetchone()
    return {
        "run_id": run_id,
        "ids": ids,
        "offset": offset,
        "index": index,
        "total": len(order),
        "scores": [scores.get(i) for i in ids],
        "progress": {"total": stats[0], "rated": stats[0] - stats[1]} if stats else None,
    }


def unrated_runs(db, limit=10):
    """Runs that still have unrated images, most unrated first: name, count, the first unrated id."""
    found = rows(
        db,
        "select run_stats.run_id, runs.name, run_stats.unrated from run_stats join runs on "
        "runs.id = run_stats.run_id where run_stats.unrated > 0 "
        "order by run_stats.unrated desc, run_stats.run_id desc limit ?",
        [limit],
    )
    for run in found:
        run["first_image"] = db.execute(
            "select min(image_id) from image_table where run_id = ? and score is null", [run["run_id"]]
        ).fetchone()[0]
    return found


async def order_view(datasette, request):
    """A window of the gallery's order: ``span`` ids (default 100, at most 500) each side of
    ``around`` (an image id), with ``offset`` (the position of ``ids[0]``), ``index`` (where
    ``around`` is in ``ids``, -1 if it is not in the order) and ``total``."""
    run_id = int(request.url_vars["run_id"])
    state = parse_state(request.args)
    try:
        around = int(request.args["around"]) if request.args.get("around") else None
        span = int(request.args.get("span") or 100)
    except ValueError:
        return error("around and span must be whole numbers", 400)
    if not 1 <= span <= 500:
        return error("span must be from 1 to 500", 400)
    grid = grid_return(request.args)
    return ok(await with_db(datasette, order_window, run_id, state, around, span, grid))


async def unrated_view(datasette, request):
    return ok({"runs": await with_db(datasette, unrated_runs)})


async def image_view(datasette, request):
    image = await with_db(datasette, image_info, int(request.url_vars["image_id"]))
    if image is None:
        return error("image {} not found".format(request.url_vars["image_id"]), 404)
    image = with_base(datasette, image)
    return ok({"image": blind_image(image) if hides(parse_state(request.args)["blind"], image) else image})


async def image_file(datasette, request):
    image_id = url_id(request, "image_id")
    which = request.url_vars["which"]
    column = {"full": "path", "upscale": "upscale_path", "thumb": "thumbnail"}[which]
    sql = "select {} as value from images where id = ?".format(column)
    found = await with_db(datasette, rows, sql, [image_id])
    if not found or found[0]["value"] is None:
        raise NotFound("no such image")
    headers = {"Cache-Control": "private, max-age=86400"}
    if which == "thumb":
        return Response(found[0]["value"], content_type="image/jpeg", headers=headers)
    return await media_file(datasette, found[0]["value"], "image")


# --- writes -----------------------------------------------------------------------------------


async def score_view(datasette, request):
    from sinkin_pipeline.scoring import ScoreError, score_image

    data, refused = await write_request(request)
    if refused:
        return refused
    if "score" not in data:
        return error('send {"score": 1..10} (or null to clear it)', 400)
    try:
        result = await with_db(datasette, score_image, int(request.url_vars["image_id"]), data["score"])
    except ScoreError as e:
        return error(str(e), 400)
    except LookupError as e:
        return error(e.args[0], 404)
    return ok(result)


async def upscale_view(datasette, request):
    from sinkin_pipeline.providers import ConfigurationError, ProviderError, ServiceError
    from sinkin_pipeline.upscaling import UpscaleError, check_upscale, upscale_image

    data, refused = await write_request(request)
    if refused:
        return refused
    image_id = int(request.url_vars["image_id"])
    kind = data.get("type") or None
    options = {k: v for k, v in data.items() if k != "type"}
    try:  # validate before anything is written or spent
        await with_db(datasette, check_upscale, image_id, kind, None, None, options)
        await asyncio.to_thread(upscale_image, database_path(datasette), image_id, kind, None, None, options)
    except UpscaleError as e:
        return error(str(e), 400)
    except LookupError as e:
        return error(e.args[0], 404)
    except ConfigurationError as e:
        return error(str(e), 400)
    except ServiceError as e:
        return error("SinkIn refused the upscale: {}".format(e), 502)
    except ProviderError as e:
        return error(str(e), 502)
    image = with_base(datasette, await with_db(datasette, image_info, image_id))
    return ok({"image": blind_image(image) if hides(parse_state(request.args)["blind"], image) else image})
