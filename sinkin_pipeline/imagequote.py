"""What the viewer shows around one image besides its settings: what an upscale would cost on the
image's own provider (and a warning when the image is upscaled already), and the init image an
img2img image started from."""

from .queue import JobStatus
from .wording import credit_text


def upscale_quote(db, image_id: int) -> dict | None:
    """``{provider, free, ready, estimates: {type: credits}, note, upscaled, warning}`` for an
    upscale of image ``image_id``, or None if there is no such image. ``note`` is the dialog's
    line ("~6 credits per upscale on provider sinkin" / "free on provider simulator"); ``warning``
    is set when the image has been upscaled before (doing it again costs again)."""
    from .providers import ProviderError, get_provider
    from .upscaling import estimate_upscale, upscalers_for

    found = list(
        db.query(
            "select images.id, images.upscale_path, images.upscale_type, runs.provider from images "
            "join runs on runs.id = images.run_id where images.id = ?",
            [image_id],
        )
    )
    if not found:
        return None
    image = found[0]
    name = image["provider"]
    quote = {
        "image_id": image["id"],
        "provider": name,
        "free": False,
        "ready": True,
        "estimates": {},
        "problem": None,
        "upscaled": None,
        "warning": None,
    }
    try:
        provider = get_provider(name)
    except ProviderError as e:
        quote.update(ready=False, problem=str(e), note="provider {} is not available here".format(name))
        return quote
    quote["free"] = bool(provider.free)
    for kind in upscalers_for(name):  # the upscalers offered for this provider's images
        quote["estimates"][kind] = estimate_upscale(db, provider, kind)
    try:
        provider.check_ready()
    except ProviderError as e:
        quote.update(ready=False, problem=str(e))
    if provider.free:
        quote["note"] = "Free on provider {}.".format(name)
    else:
        costs = sorted(set(quote["estimates"].values()))
        each = " or ".join(credit_text(c, estimate=True) for c in costs)
        quote["note"] = "Costs {} on provider {}.".format(each, name)
    done = db.execute(
        "select count(*), coalesce(sum(credit_cost), 0) from jobs where kind = 'upscale' "
        "and image_id = ? and status = ?",
        [image_id, JobStatus.SUCCEEDED],
    ).fetchone()
    if image["upscale_path"] or done[0]:
        quote["upscaled"] = {"type": image["upscale_type"], "times": done[0], "credits": done[1]}
        quote["warning"] = (
            "Image {} is already upscaled{}: upscaling it again {} and replaces the upscale shown.".format(
                image["id"],
                " ({})".format(image["upscale_type"]) if image["upscale_type"] else "",
                "is free" if provider.free else "costs credits again",
            )
        )
    return quote


def init_image(db, image_id: int) -> dict | None:
    """The init image an img2img image started from: ``{asset_id, filename, width, height,
    image_strength, controlnet, fallback}`` (``fallback``: SinkIn refused the img2img call and the
    settings were sent as txt2img, so the init image was not used), or None."""
    found = list(
        db.query(
            "select assets.id as asset_id, assets.filename, assets.width, assets.height, "
            "configs.image_strength, configs.controlnet, coalesce(jobs.fallback, 0) as fallback "
            "from images join configs on configs.id = images.config_id "
            "join assets on assets.id = configs.init_asset_id "
            "left join jobs on jobs.id = images.job_id where images.id = ?",
            [image_id],
        )
    )
    return found[0] if found else None


__all__ = ["upscale_quote", "init_image"]
