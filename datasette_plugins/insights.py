"""What wins: the insights page of a run (``/-/sinkin/runs/<id>/insights``, and ``.json``), the
same across runs (``/-/sinkin/insights?runs=1,3``). Read-only: the numbers come from
:mod:`sinkin_pipeline.insights`, exactly what ``sinkin insights`` prints."""

from urllib.parse import urlencode

from datasette import Response
from datasette.utils.asgi import BadRequest, NotFound

from .appdb import ok, with_db

MENU_LINKS = [{"href": "/-/sinkin/insights", "label": "What wins (insights)"}]


def routes():
    from .grid import routes as grid_routes

    return grid_routes() + [
        (r"^/-/sinkin/runs/(?P<run_id>\d+)/insights(?P<as_json>\.json)?$", run_insights),
        (r"^/-/sinkin/insights(?P<as_json>\.json)?$", runs_insights),
    ]


def parse_runs(text):
    ids = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit():
            raise BadRequest("runs: {!r} is not a run id; give ids such as ?runs=1,3".format(part[:40]))
        ids.append(int(part))
    if not ids:
        raise BadRequest("choose the runs to compare, e.g. ?runs=1,3")
    if len(ids) > 100:
        raise BadRequest("runs: at most 100 runs at once")
    return ids


def parse_normalize(args):
    value = args.get("normalize") or None
    if value not in (None, "prompt"):
        raise BadRequest("normalize: expected 'prompt' (or nothing), got {!r}".format(value[:40]))
    return value


def page_data(db, run_ids, normalize, x=None, y=None):
    """The insights plus, when two axes vary, a heatmap (``x``/``y`` or the two top axes)."""
    from sinkin_pipeline.insights import compute, heatmap, load_groups

    data = load_groups(db, run_ids)
    result = compute(data, normalize)
    result["suggestion"] = next_run(db, data, result, normalize) if len(run_ids) == 1 else None
    result["heatmap"] = None
    if len(data.axes) >= 2:
        ranked = [a["axis"] for a in result["axes"]]
        x = x or next(a for a in ranked if a != y)
        y = y or next(a for a in ranked if a != x)
        result["heatmap"] = heatmap(db, data, x, y, normalize)
    return result


def next_run(db, data, result, normalize=None):
    """The suggested next run of a single run, judged on the scores as the page shows them
    (normalised or not), or ``{"error"}`` when none can be made."""
    from sinkin_pipeline.spec import SpecError
    from sinkin_pipeline.suggest import suggest

    try:
        proposal = suggest(db, data.run_ids[0], data, result, normalize)
    except SpecError as e:
        return {"error": "no suggestion: " + "; ".join(e.problems)}
    return {k: proposal[k] for k in ("spec", "reasons", "yaml")}


async def _answer(datasette, request, run_ids, single):
    """The insights as JSON or as the page; bad input is Datasette's BadRequest/NotFound (rendered
    as JSON on ``.json`` paths and as its error page otherwise, see ``appdb.guarded``)."""
    from sinkin_pipeline.insights import InsightsError

    normalize = parse_normalize(request.args)
    x, y = request.args.get("x") or None, request.args.get("y") or None
    try:
        result = await with_db(datasette, page_data, run_ids, normalize, x, y)
    except InsightsError as e:
        raise BadRequest(str(e))
    except LookupError as e:
        raise NotFound(e.args[0] if e.args else str(e))
    if request.url_vars.get("as_json"):
        return ok(result)
    from .insights_page import render_page

    return await render_page(datasette, request, result, single)


async def run_insights(datasette, request):
    return await _answer(datasette, request, [int(request.url_vars["run_id"])], True)


async def runs_insights(datasette, request):
    if not request.args.get("runs") and not request.url_vars.get("as_json"):
        return await choose_runs(datasette, request)
    run_ids = parse_runs(",".join(request.args.getlist("runs")))
    return await _answer(datasette, request, run_ids, False)


def query(**params):
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


async def choose_runs(datasette, request):
    """Without ``?runs=``: every run with its counts, to open one or compare several."""
    from sinkin_pipeline.runs import run_counts

    runs = await with_db(datasette, run_counts)  # no database: appdb.guarded answers 503
    return Response.html(
        await datasette.render_template("sinkin_insights_runs.html", {"runs": runs}, request=request)
    )
