"""Upscaling an image: ``upscale_image`` records an ``upscale`` job and runs it with the same
discipline as an inference (payload stored first, answer committed before the download, cost
recorded). The upscale types come from the registry (:mod:`sinkin_pipeline.upscalers`); the
built-in ones are defined in ``plugins/upscalers.py``."""

import json

from .db import open_db
from .jobs import run_job
from .leases import Lease
from .providers import ConfigurationError, ProviderError, ServiceError, get_provider
from .queue import JobStatus, get_job, start_upscale_job
from .upscalers import UpscaleError, Upscaler, get_upscalers, upscalers_for

#: credits assumed for an upscale when none is recorded yet (SinkIn's documented example)
FALLBACK_UPSCALE_COST = 6.0


def estimate_upscale(db, provider, upscale_type):
    if provider.free:
        return 0.0
    row = db.execute(
        "select avg(credit_cost) from jobs where kind = 'upscale' and provider = ? "
        "and credit_cost is not null and options like ?",
        [provider.name, '%"type": "{}"%'.format(upscale_type)],
    ).fetchone()
    return round(row[0], 4) if row and row[0] is not None else FALLBACK_UPSCALE_COST


def check_upscale(db, image_id, upscale_type=None, scale=None, strength=None, options=None):
    """Validate a request; returns ``(image, params)``. ``options`` holds the upscaler's options by
    name (``scale`` and ``strength`` may also be given as arguments); ``upscale_type`` None picks
    the first upscaler offered for the image's provider. Raises UpscaleError or LookupError."""
    try:
        image_id = int(image_id)
    except (TypeError, ValueError):
        raise UpscaleError("image id must be a whole number, got {!r}".format(image_id))
    given = dict(options or {})
    given.pop("type", None)
    if scale is not None:
        given["scale"] = scale
    if strength is not None:
        given["strength"] = strength
    upscalers = get_upscalers()
    if upscale_type is not None and (not isinstance(upscale_type, str) or upscale_type not in upscalers):
        raise UpscaleError(
            "unknown upscale type {!r}; use one of {}".format(upscale_type, ", ".join(sorted(upscalers)))
        )
    found = list(
        db.query(
            "select images.*, runs.provider as provider from images join runs on runs.id = images.run_id "
            "where images.id = ?",
            [image_id],
        )
    )
    if not found:
        if upscale_type is not None:
            upscalers[upscale_type].validate(given)
        raise LookupError("image {} not found".format(image_id))
    image = found[0]
    offered = upscalers_for(image["provider"])
    if upscale_type is None:
        if not offered:
            raise UpscaleError(
                "images of provider {} cannot be upscaled (no upscaler applies to it)".format(
                    image["provider"]
                )
            )
        upscale_type = next(iter(offered))
    params = upscalers[upscale_type].validate(given)
    if upscale_type not in offered:
        raise UpscaleError(
            "{} does not apply to images of provider {}; {}".format(
                upscale_type,
                image["provider"],
                "use one of " + ", ".join(offered) if offered else "none applies to it",
            )
        )
    if offered[upscale_type].source == "url" and not (image["inf_id"] and image["url"]):
        raise UpscaleError("image {} has no inference id and URL, so it cannot be upscaled".format(image_id))
    if offered[upscale_type].source == "file" and not image["path"]:
        raise UpscaleError("image {} has no downloaded file, so it cannot be upscaled".format(image_id))
    image.pop("provider")
    return image, params


def upscale_image(db_path, image_id, upscale_type=None, scale=None, strength=None, options=None):
    """Upscale one image now; returns its updated ``images`` row. Raises UpscaleError, LookupError,
    ConfigurationError, ServiceError (SinkIn's message) or ProviderError."""
    db = open_db(db_path)
    try:
        image, params = check_upscale(db, image_id, upscale_type, scale, strength, options)
        provider_name = db.execute("select provider from runs where id = ?", [image["run_id"]]).fetchone()[0]
        provider = get_provider(provider_name)
        provider.check_ready()
        lease = Lease(db_path)
        job_id = start_upscale_job(
            db,
            {
                "run_id": image["run_id"],
                "config_id": image["config_id"],
                "image_id": image["id"],
                "provider": provider.name,
                "credit_estimate": estimate_upscale(db, provider, params["type"]),
                "options": json.dumps(params),
            },
            lease.owner,
        )
        with lease:  # renewed while the call runs, so no other process takes it for stale
            outcome = run_job(db, get_job(db, job_id), provider)
        if outcome.status != JobStatus.SUCCEEDED:
            if outcome.service_error:
                raise ServiceError(outcome.error)
            raise ProviderError(outcome.error)
        return db["images"].get(image["id"])
    finally:
        db.conn.close()


__all__ = [
    "Upscaler",
    "UpscaleError",
    "get_upscalers",
    "upscalers_for",
    "upscale_image",
    "check_upscale",
    "ConfigurationError",
]
