"""From a checked spec to a plan (nothing written) or a run with its configs and queued jobs."""

import itertools
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from .db import now, write_transaction
from .estimate import estimator_for
from .fields import FIELDS
from .providers import DEFAULT_PROVIDER, get_provider, provider_options
from .queue import JobStatus, insert_queued_jobs
from .ranking import bulk_job_inserts
from .spec import expand, resolve_seeds

#: every job state, in the order `runs` shows them
JOB_STATES = tuple(JobStatus)

__all__ = [
    "DEFAULT_PROVIDER",
    "Plan",
    "make_plan",
    "create_run",
    "run_counts",
    "provider_name",
    "GridTooLarge",
]
#: `sinkin run` asks before queueing more jobs or credits than this (unless --yes)
CONFIRM_JOBS = 100
CONFIRM_CREDITS = 200.0
#: the largest grid one run may queue, unless --max-jobs or $SINKIN_MAX_JOBS raise it
DEFAULT_MAX_JOBS = 100_000
#: configs (and jobs) inserted per statement batch when a run is created
CHUNK = 5000


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
        return {
            "provider": self.provider,
            "jobs": self.jobs,
            "images": self.images,
            "credits": self.credits,
            "axes": self.axes,
            "basis": self.basis,
            "warnings": self.warnings,
            "needs_confirmation": self.needs_confirmation(),
        }


def provider_name(spec, override=None):
    return override or spec.provider or DEFAULT_PROVIDER


def with_defaults(config):
    """A config with every SinkIn field present (defaults filled in)."""
    full = {name: fld.default for name, fld in FIELDS.items()}
    full.update({k: v for k, v in config.items()})
    return full


def make_plan(db, spec, provider=None, max_jobs_override=None):
    """What a spec would queue: counts, axes and estimated credits. Writes nothing. The configs
    are counted through the same expansion as :func:`create_run` (the ``expand_spec`` hook), with
    placeholder seeds. Raises :class:`GridTooLarge` when the grid is above the ceiling
    (:func:`max_jobs`)."""
    ceiling = max_jobs(max_jobs_override)
    check_grid_size(spec.config_count(), ceiling)
    provider_obj = get_provider(provider_name(spec, provider))
    estimator = estimator_for(db, provider_obj)
    values = resolve_seeds(spec, random.Random(0))
    # estimates depend only on a few settings (steps, size, images per call, lcm): cache by them
    cost_keys = ("steps", "width", "height", "num_images", "lcm")
    defaults = {k: FIELDS[k].default for k in cost_keys}
    estimates = {}
    jobs = images = 0
    credits = 0.0
    for config in expand(values):
        key = tuple(config.get(k, defaults[k]) for k in cost_keys)
        estimate = estimates.get(key)
        if estimate is None:
            estimate = estimates[key] = estimator.estimate(dict(zip(cost_keys, key)))
        jobs += 1
        if jobs > ceiling:
            raise GridTooLarge(ceiling, ceiling, exact=False)
        images += int(key[3] or 1)
        credits += estimate.credits
    axes = {k: (v if len(v) <= 20 else v[:20] + ["…"]) for k, v in spec.axes().items()}
    warnings = []
    if -1 in values.get("seed", []):
        warnings.append(
            "seed -1 asks SinkIn for a random seed it does not report: those images "
            "cannot be reproduced; use {random: K} to record concrete seeds"
        )
    return Plan(
        provider=provider_obj.name,
        jobs=jobs,
        images=images,
        credits=round(credits, 4),
        axes=axes,
        basis=estimator.describe({e.basis for e in estimates.values()}),
        warnings=warnings,
    )


class GridTooLarge(ValueError):
    """A grid with more jobs than the ceiling; nothing was written."""

    def __init__(self, jobs, ceiling, exact=True):
        self.jobs = jobs
        self.ceiling = ceiling
        super().__init__(
            "this grid has {}{:,} jobs, more than the ceiling of {:,}: split it into smaller runs, or "
            "raise the ceiling with --max-jobs N or SINKIN_MAX_JOBS=N".format(
                "" if exact else "more than ", jobs, ceiling
            )
        )


def max_jobs(override=None):
    """The largest grid one run may queue: ``override``, else $SINKIN_MAX_JOBS, else the default."""
    if override is not None:
        value = override
    else:
        raw = os.environ.get("SINKIN_MAX_JOBS", "").strip()
        if not raw:
            return DEFAULT_MAX_JOBS
        try:
            value = int(raw)
        except ValueError:
            raise ValueError("SINKIN_MAX_JOBS must be a whole number of jobs, got {!r}".format(raw))
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("the job ceiling must be a whole number of at least 1, got {!r}".format(value))
    return value


def check_grid_size(jobs, ceiling=None):
    """Raise :class:`GridTooLarge` when ``jobs`` is above the ceiling (see :func:`max_jobs`)."""
    ceiling = max_jobs(ceiling)
    if jobs > ceiling:
        raise GridTooLarge(jobs, ceiling)


def _chunks(iterable, size):
    iterator = iter(iterable)
    while True:
        chunk = list(itertools.islice(iterator, size))
        if not chunk:
            return
        yield chunk


def create_run(
    db,
    spec,
    name=None,
    provider=None,
    spec_yaml=None,
    request_key=None,
    init_images=None,
    rng=None,
    max_jobs_override=None,
):
    """Create a run, its configs and one queued inference job per config, in one transaction.

    Configs are generated lazily and inserted in chunks, so memory stays flat whatever the size
    of the grid; more jobs than the ceiling (:func:`max_jobs`) raise :class:`GridTooLarge` and
    write nothing. ``init_images`` maps an init_image path in the spec to bytes already read
    (the web form's uploads); otherwise files are read from disk. With ``request_key`` set, a
    second call with the same key returns the first run's id instead of creating another.
    Returns the run id."""
    ceiling = max_jobs(max_jobs_override)
    check_grid_size(spec.config_count(), ceiling)
    provider_obj = get_provider(provider_name(spec, provider))
    values = resolve_seeds(spec, rng)
    run_name = name or spec.name or "run {}".format(now()[:19].replace("T", " "))
    created = now()
    init_data = {}
    for path in values.get("init_image", []):
        data = (init_images or {}).get(path)
        init_data[path] = data if data is not None else Path(path).read_bytes()
    conn = db.conn
    # the rows below reference only the run and configs made here: foreign key checks would
    # only triple the time of a big grid (the pragma can change outside a transaction only)
    checks = not conn.in_transaction and conn.execute("pragma foreign_keys").fetchone()[0]
    if checks:
        conn.execute("pragma foreign_keys = off")
    try:
        return _create(
            db, spec, provider_obj, values, run_name, created, spec_yaml, request_key, init_data, ceiling
        )
    finally:
        if checks:
            conn.execute("pragma foreign_keys = on")


def _create(db, spec, provider_obj, values, run_name, created, spec_yaml, request_key, init_data, ceiling):
    from .assets import store_asset

    with write_transaction(db):
        if request_key:
            row = db.execute("select id from runs where request_key = ?", [request_key]).fetchone()
            if row:
                return row[0]
        estimator = estimator_for(db, provider_obj)
        asset_ids = {path: store_asset(db, data, Path(path).name) for path, data in init_data.items()}
        run_id = (
            db["runs"]
            .insert(
                {
                    "name": run_name,
                    "provider": provider_obj.name,
                    "spec": json.dumps(spec.given, default=str),
                    "spec_yaml": spec_yaml,
                    "resolved": json.dumps(values, default=str),
                    "request_key": request_key,
                    "created_at": created,
                }
            )
            .last_pk
        )
        with bulk_job_inserts(db, run_id):
            _insert_configs_and_jobs(
                db,
                run_id,
                expand(values),
                asset_ids,
                spec,
                provider_obj.name,
                estimator,
                created,
                ceiling,
                provider_options(provider_obj.name),
            )
    return run_id


class _ConfigRows:
    """Builds ``configs`` rows (lists in table column order) from config dicts, cheaply: a
    template with every default, then the config's own values (10^6 configs a run)."""

    def __init__(self, columns, run_id, asset_ids, fallback, estimator, options=None):
        self.index = {c: i for i, c in enumerate(columns)}
        #: the provider's own options: stored together as JSON in ``provider_options``
        self.options = options or {}
        self.option_defaults = {n: f.default for n, f in self.options.items() if f.default is not None}
        self.template = [None] * len(columns)
        for name, fld in FIELDS.items():
            if name in self.index:
                self.template[self.index[name]] = fld.default
        self.template[self.index["run_id"]] = run_id
        self.template[self.index["fallback_enabled"]] = fallback
        self.asset_ids = asset_ids
        self.estimator = estimator
        self.estimates = {}
        self.cost_keys = [self.index[k] for k in ("steps", "width", "height", "num_images", "lcm")]

    def row(self, config, config_id, position):
        row = self.template.copy()
        index = self.index
        init = None
        extra = dict(self.option_defaults) if self.options else None
        for key, value in config.items():
            if key == "init_image":
                init = value
                continue
            if extra is not None and key in self.options:
                extra[key] = value
                continue
            i = index.get(key)
            if i is None or key in ("id", "run_id", "position", "init_asset_id", "fallback_enabled"):
                raise ValueError("config key {!r} is not a setting (no such column in configs)".format(key))
            row[i] = value
        if init is None:
            row[index["image_strength"]] = None
            row[index["controlnet"]] = None
        else:
            row[index["init_asset_id"]] = self.asset_ids.get(init)
        for key in ("use_default_neg", "lcm"):
            row[index[key]] = int(bool(row[index[key]]))
        if extra:
            row[index["provider_options"]] = json.dumps(extra)
        row[index["id"]] = config_id
        row[index["position"]] = position
        return row

    def estimate(self, row):
        key = tuple(row[i] for i in self.cost_keys)
        credits = self.estimates.get(key)
        if credits is None:
            steps, width, height, num_images, lcm = key
            credits = self.estimator.estimate(
                {"steps": steps, "width": width, "height": height, "num_images": num_images, "lcm": lcm}
            ).credits
            self.estimates[key] = credits
        return credits


def _insert_configs_and_jobs(
    db, run_id, configs, asset_ids, spec, provider, estimator, created, ceiling, options=None
):
    """Insert configs with their queued jobs, ``CHUNK`` at a time, with ids assigned here (the
    caller holds the write lock, so nobody else inserts meanwhile)."""
    conn = db.conn
    columns = [r[1] for r in conn.execute("pragma table_info(configs)").fetchall()]
    maker = _ConfigRows(columns, run_id, asset_ids, int(spec.fallback), estimator, options)
    config_sql = "insert into configs ({}) values ({})".format(
        ", ".join(columns), ", ".join("?" * len(columns))
    )
    next_config = conn.execute("select coalesce(max(id), 0) + 1 from configs").fetchone()[0]
    next_job = conn.execute("select coalesce(max(id), 0) + 1 from jobs").fetchone()[0]
    position = 0
    for chunk in _chunks(configs, CHUNK):
        if position + len(chunk) > ceiling:
            raise GridTooLarge(ceiling, ceiling, exact=False)
        config_rows, job_rows = [], []
        for config in chunk:
            row = maker.row(config, next_config, position)
            config_rows.append(row)
            job_rows.append((next_job, run_id, next_config, provider, maker.estimate(row), created))
            next_config += 1
            next_job += 1
            position += 1
        conn.executemany(config_sql, config_rows)
        insert_queued_jobs(conn, job_rows)


def run_counts(db, run_id=None):
    """Rows of ``run_summary`` as dicts (one run, or all, newest first), with a count for every
    job state (:data:`JOB_STATES`)."""
    sql = "select * from run_summary"
    params = []
    if run_id is not None:
        sql += " where run_id = ?"
        params.append(run_id)
    sql += " order by run_id desc"
    return list(db.query(sql, params))
