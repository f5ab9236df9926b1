"""Batch actions on a run's best images: upscale every image scored at least N (estimate first,
then only what was confirmed), and download the top images as a zip with a CSV of their settings."""

import asyncio

from datasette import Response

from .appdb import database_path, error, ok, with_db
from .security import write_request


def routes():
    return [
        (r"^/-/sinkin/runs/(?P<run_id>\d+)/upscale-batch\.json$", upscale_batch_view),
        (r"^/-/sinkin/runs/(?P<run_id>\d+)/top\.zip$", top_zip_view),
    ]


async def upscale_batch_view(datasette, request):
    """POST ``{"min_score": 8, "type": "esrgan", "options": {"scale": 2}}`` → the plan (images,
    skipped, estimated credits, and the upscale types offered for the run's provider with their
    options), spending nothing; ``type`` left out is the first offered (``scale``/``strength`` may
    also be given at the top level). Add ``"confirm": true, "expect": <images>`` to run it."""
    from sinkin_pipeline.batch import BatchError, plan_upscale_batch, upscale_batch
    from sinkin_pipeline.providers import ConfigurationError
    from sinkin_pipeline.upscaling import UpscaleError

    data, refused = await write_request(request)
    if refused:
        return refused
    run_id = int(request.url_vars["run_id"])
    args = (
        run_id,
        data.get("min_score"),
        data.get("type") or None,
        data.get("scale"),
        data.get("strength"),
    )
    options = data.get("options")
    try:
        if data.get("confirm") is not True:
            return ok({"plan": await with_db(datasette, plan_upscale_batch, *args, options=options)})
        if not isinstance(data.get("expect"), int) or isinstance(data.get("expect"), bool):
            return error('send "expect": the number of images the estimate listed', 400)
        result = await asyncio.to_thread(
            upscale_batch, database_path(datasette), *args, expect=data["expect"], options=options
        )
    except (BatchError, UpscaleError, ConfigurationError) as e:
        return error(str(e), 400)
    except LookupError as e:
        return error(e.args[0], 404)
    return ok({"result": result})


async def top_zip_view(datasette, request):
    """GET ``?min_score=8&limit=50`` → a zip of the run's images scored at least ``min_score`` (best
    first, at most ``limit``) and their upscales, with ``settings.csv``."""
    from sinkin_pipeline.batch import BatchError, top_images_zip

    run_id = int(request.url_vars["run_id"])
    try:
        data, count = await asyncio.to_thread(
            top_images_zip,
            database_path(datasette),
            run_id,
            request.args.get("min_score") or 1,
            request.args.get("limit") or 50,
        )
    except BatchError as e:
        return Response.text(str(e), status=400)
    except LookupError as e:
        return Response.text(e.args[0], status=404)
    if not count:
        return Response.text(
            "no image of run {} is scored at least {}".format(run_id, request.args.get("min_score") or 1),
            status=404,
        )
    name = "run{}-top{}.zip".format(run_id, count)
    return Response(
        data,
        content_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="{}"'.format(name)},
    )
