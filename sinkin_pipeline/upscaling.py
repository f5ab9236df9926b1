"""Upscaling an image: the upscalers plugins register (``esrgan``, ``hires_fix``) and
``upscale_image``, which records an ``upscale`` job and runs it with the same discipline as an
inference (payload stored first, answer committed before the download, cost recorded)."""
import json
import os

from .db import now, open_db
from .fields import UPSCALE_RANGES
from .jobs import run_job
from .leases import Lease, expiry
from .plugins import load_plugins, pm
from .providers import ConfigurationError, ProviderError, ServiceError, get_provider
from .queue import get_job, rows_as_dicts, this_host

#: credits assumed for an upscale when none is recorded yet (SinkIn's documented example)
FALLBACK_UPSCALE_COST = 6.0


class UpscaleError(ValueError):
    """Upscale options or an image that cannot be upscaled; nothing was written or spent."""


class Upscaler:
    """An upscale type and its options: ``options`` maps a name to (min, max, default)."""

    def __init__(self, name, options, description=""):
        self.name = name
        self.options = options
        self.description = description

    def validate(self, given):
        """The API params for ``given`` options (None = default); UpscaleError when out of range."""
        params = {"type": self.name}
        for key, value in given.items():
            if value is not None and key not in self.options:
                raise UpscaleError("{} does not take the option {} (it takes: {})".format(
                    self.name, key, ", ".join(self.options) or "none"))
        for key, (low, high, default) in self.options.items():
            value = given.get(key)
            if value is None:
                value = default
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise UpscaleError("{} must be a number from {:g} to {:g}, got {!r}".format(key, low, high, value))
            if not low <= value <= high or value != value:
                raise UpscaleError("{} must be from {:g} to {:g} for {}, got {:g}".format(key, low, high, self.name, value))
            params[key] = value
        return params


def default_upscalers():
    return [
        Upscaler("esrgan", {"scale": UPSCALE_RANGES["scale"]}, "ESRGAN: 2x to 4x"),
        Upscaler("hires_fix", {"strength": UPSCALE_RANGES["strength"]}, "Hires fix: re-detail at 2x"),
    ]


def get_upscalers():
    load_plugins()
    upscalers = {}

    def register(upscaler):
        upscalers[upscaler.name] = upscaler

    pm.hook.register_upscalers(register=register)
    return upscalers


def estimate_upscale(db, provider, upscale_type):
    if provider.free:
        return 0.0
    row = db.execute("select avg(credit_cost) from jobs where kind = 'upscale' and provider = ? "
                     "and credit_cost is not null and options like ?",
                     [provider.name, '%"type": "{}"%'.format(upscale_type)]).fetchone()
    return round(row[0], 4) if row and row[0] is not None else FALLBACK_UPSCALE_COST


def check_upscale(db, image_id, upscale_type="esrgan", scale=None, strength=None):
    """Validate a request; returns ``(image, params)``. Raises UpscaleError or LookupError."""
    upscalers = get_upscalers()
    if not isinstance(upscale_type, str) or upscale_type not in upscalers:
        raise UpscaleError("unknown upscale type {!r}; use one of {}".format(upscale_type, ", ".join(sorted(upscalers))))
    options = {}
    if scale is not None:
        options["scale"] = scale
    if strength is not None:
        options["strength"] = strength
    params = upscalers[upscale_type].validate(options)
    try:
        image_id = int(image_id)
    except (TypeError, ValueError):
        raise UpscaleError("image id must be a whole number, got {!r}".format(image_id))
    found = rows_as_dicts(db.execute("select * from images where id = ?", [image_id]))
    if not found:
        raise LookupError("image {} not found".format(image_id))
    image = found[0]
    if not image["inf_id"] or not image["url"]:
        raise UpscaleError("image {} has no SinkIn inference id and URL, so it cannot be upscaled".format(image_id))
    return image, params


def upscale_image(db_path, image_id, upscale_type="esrgan", scale=None, strength=None):
    """Upscale one image now; returns its updated ``images`` row. Raises UpscaleError, LookupError,
    ConfigurationError, ServiceError (SinkIn's message) or ProviderError."""
    db = open_db(db_path)
    try:
        image, params = check_upscale(db, image_id, upscale_type, scale, strength)
        provider_name = db.execute("select provider from runs where id = ?", [image["run_id"]]).fetchone()[0]
        provider = get_provider(provider_name)
        provider.check_ready()
        lease = Lease(db_path)
        job_id = db["jobs"].insert({
            "run_id": image["run_id"], "config_id": image["config_id"], "image_id": image["id"],
            "kind": "upscale", "status": "running", "provider": provider.name,
            "credit_estimate": estimate_upscale(db, provider, params["type"]),
            "options": json.dumps(params), "attempts": 1, "fallback": 0, "worker_pid": os.getpid(),
            "worker_host": this_host(), "created_at": now(), "started_at": now(),
            "lease_owner": lease.owner, "lease_expires": expiry(),
        }).last_pk
        db.conn.commit()
        with lease:  # renewed while the call runs, so no other process takes it for stale
            outcome = run_job(db, get_job(db, job_id), provider)
        if outcome.status != "succeeded":
            if outcome.service_error:
                raise ServiceError(outcome.error)
            raise ProviderError(outcome.error)
        return rows_as_dicts(db.execute("select * from images where id = ?", [image["id"]]))[0]
    finally:
        db.conn.close()


__all__ = ["Upscaler", "UpscaleError", "get_upscalers", "upscale_image", "check_upscale",
           "ConfigurationError"]
