"""``GET /-/sinkin/images/<id>/extras.json``: what the viewer shows around an image besides its
settings – the upscale quote on the image's own provider (estimate, a warning before upscaling
again) and the init image of an img2img image (with the URL of the stored file), left out for an
unscored image in blind mode (``?blind=SEED``). Read-only."""

from .appdb import error, ok, with_db
from .blind import hides
from .review import parse_state


def routes():
    return [(r"^/-/sinkin/images/(?P<image_id>\d+)/extras\.json$", extras_view)]


def _extras(db, image_id, blind):
    from sinkin_pipeline.imagequote import init_image, upscale_quote

    quote = upscale_quote(db, image_id)
    if quote is None:
        return None
    score = db.execute("select score from images where id = ?", [image_id]).fetchone()[0]
    if hides(blind, {"score": score}):  # blind mode: the init image (and its strength…) is a setting
        return {"upscale": quote, "init_image": None, "hidden": True}
    return {"upscale": quote, "init_image": init_image(db, image_id)}


async def extras_view(datasette, request):
    image_id = int(request.url_vars["image_id"])
    found = await with_db(datasette, _extras, image_id, parse_state(request.args)["blind"])
    if found is None:
        return error("image {} not found".format(image_id), status=404)
    init = found["init_image"]
    if init:
        init["url"] = datasette.urls.path("/-/sinkin/assets/{}".format(init["asset_id"]))
    return ok(found)
