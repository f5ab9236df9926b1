"""From a checked spec to a plan (nothing written) or a run with its configs and queued jobs."""
import json
from dataclasses import dataclass, field
from pathlib import Path

from .db import dicts, now
from .estimate import estimator_for
from .fields import FIELDS
from .providers import get_provider
from .spec import expand, resolve_seeds

DEFAULT_PROVIDER = "sinkin"
#: `sinkin run` asks before queueing more jobs or credits than this (unless --yes)
CONFIRM_JOBS = 100
CONFIRM_CREDITS = 200.0


@dataclass
class Plan:
    provider: str
    jobs: int
    images: int
    credits: float
    axes: dict
    basis: str
    warnings: list = field(default_factory=list)

    def needs_confirmation(self):
        return self.jobs > CONFIRM_JOBS or self.credits > CONFIRM_CREDITS

    def to_dict(self):
        return {"provider": self.provider, "jobs": self.jobs, "images": self.images,
                "credits": self.credits, "axes": self.axes, "basis": self.basis,
                "warnings": self.warnings, "needs_confirmation": self.needs_confirmation()}


def provider_name(spec, override=None):
    return override or spec.provider or DEFAULT_PROVIDER


def with_defaults(config):
    """A config with every SinkIn field present (defaults filled in)."""
    full = {name: fld.default for name, fld in FIELDS.items()}
    full.update({k: v for k, v in config.items()})
    return full


def make_plan(db, spec, provider=None):
    """What a spec would queue: counts, axes and estimated credits. Writes nothing."""
    provider_obj = get_provider(provider_name(spec, provider))
    estimator = estimator_for(db, provider_obj)
    values = dict(spec.values)
    seeds = spec.random_seeds or (len(values["seed"]) if "seed" in values else 1)
    # estimates depend only on steps, size, images per call and lcm: count combinations of those
    cost_keys = ["steps", "width", "height", "num_images", "lcm"]
    other = 1
    for key, vals in values.items():
        if key not in cost_keys and key != "seed":
            other *= len(vals)
    other *= seeds
    credits = 0.0
    images = 0
    bases = set()
    sub = {k: values.get(k, [FIELDS[k].default]) for k in cost_keys}
    from itertools import product

    for combo in product(*sub.values()):
        config = dict(zip(cost_keys, combo))
        est = estimator.estimate(config)
        bases.add(est.basis)
        credits += est.credits * other
        images += config["num_images"] * other
    jobs = spec.config_count()
    axes = {k: (v if len(v) <= 20 else v[:20] + ["…"]) for k, v in spec.axes().items()}
    warnings = []
    if -1 in values.get("seed", []):
        warnings.append("seed -1 asks SinkIn for a random seed it does not report: those images "
                        "cannot be reproduced; use {random: K} to record concrete seeds")
    return Plan(provider=provider_obj.name, jobs=jobs, images=images, credits=round(credits, 4),
                axes=axes, basis=estimator.describe(bases), warnings=warnings)


def create_run(db, spec, name=None, provider=None, spec_yaml=None, request_key=None,
               init_images=None, rng=None):
    """Create a run, its configs and one queued inference job per config, in one transaction.

    ``init_images`` maps an init_image path in the spec to bytes already read (the web form's
    uploads); otherwise files are read from disk. With ``request_key`` set, a second call with
    the same key returns the first run's id instead of creating another. Returns the run id."""
    from .assets import store_asset

    if request_key:
        row = db.execute("select id from runs where request_key = ?", [request_key]).fetchone()
        if row:
            return row[0]
    provider_obj = get_provider(provider_name(spec, provider))
    estimator = estimator_for(db, provider_obj)
    values = resolve_seeds(spec, rng)
    configs = expand(values)
    run_name = name or spec.name or "run {}".format(now()[:19].replace("T", " "))
    created = now()
    with db.atomic():
        asset_ids = {}
        for path in values.get("init_image", []):
            data = (init_images or {}).get(path)
            if data is None:
                data = Path(path).read_bytes()
            asset_ids[path] = store_asset(db, data, Path(path).name)
        run_id = db["runs"].insert({
            "name": run_name, "provider": provider_obj.name,
            "spec": json.dumps(spec.given, default=str), "spec_yaml": spec_yaml,
            "resolved": json.dumps(values, default=str), "request_key": request_key,
            "created_at": created,
        }).last_pk
        config_rows = []
        for position, config in enumerate(configs):
            row = with_defaults(config)
            init = row.pop("init_image", None)
            if init is None:
                row["image_strength"] = None
                row["controlnet"] = None
            row.update({"run_id": run_id, "init_asset_id": asset_ids.get(init),
                        "fallback_enabled": int(spec.fallback), "position": position})
            for key in ("use_default_neg", "lcm"):
                row[key] = int(bool(row[key]))
            config_rows.append(row)
        first = None
        for row in config_rows:
            config_id = db["configs"].insert(row).last_pk
            first = first or config_id
            db["jobs"].insert({
                "run_id": run_id, "config_id": config_id, "kind": "inference", "status": "queued",
                "provider": provider_obj.name, "credit_estimate": estimator.estimate(row).credits,
                "attempts": 0, "fallback": 0, "created_at": created,
            })
    return run_id


def run_counts(db, run_id=None):
    """Rows of ``run_summary`` as dicts (one run, or all, newest first)."""
    sql = "select * from run_summary"
    params = []
    if run_id is not None:
        sql += " where run_id = ?"
        params.append(run_id)
    sql += " order by run_id desc"
    return dicts(db.execute(sql, params))
