"""The ranking table and the per-run counters, kept in step with the source tables by triggers.

``image_table`` is a real table (one row per image: its score, run, every setting and file), not a
view: Datasette can then page and stream it by primary key, facet it on indexes, and the review
pages read a run's images in index order. ``run_stats`` holds each run's image and job counts,
so ``run_summary`` (the dashboard, the gallery header) reads one row per run instead of counting.

Both are written only by the triggers created here, in the same transaction as the change that
moves them, so they can never disagree with ``images``/``jobs``. The setting columns come from
:data:`sinkin_pipeline.fields.FIELDS` (those the ``configs`` table has); a migration that
adds a setting column calls :func:`build` again to rebuild the table and its triggers.
"""

import contextlib

from .fields import FIELDS
from .queue import PENDING, JobStatus, sql_in

THUMB_URL = "'/-/sinkin/images/' || images.id || '/thumb'"


#: an image's settings as the ranking table shows them: the model (with its cached title) and every
#: other config field but num_images, in field order (the gallery's details and the zip's CSV)
def image_settings() -> tuple:
    """The settings of :data:`IMAGE_SETTINGS`, read from ``fields.FIELDS`` when called."""
    return ("model_id", "model_title") + tuple(f for f in FIELDS if f not in ("model_id", "num_images"))


IMAGE_SETTINGS = image_settings()

#: every job state, in the order run_stats, run_summary and `sinkin runs` show them
JOB_STATUSES = tuple(JobStatus)
#: SQL fragments on a jobs row (format ``row`` with the table or trigger row name)
_PENDING = "{{row}}status in {}".format(sql_in(PENDING))
_IS = "{row}status = '{status}'"
#: image columns copied as they are, after the settings
IMAGE_TAIL = ("inf_id", "path", "url", "upscale_type", "upscale_path", "scored_at", "created_at")
#: indexes the review pages (gallery order, unrated counts) and Datasette's facets and sorts use
INDEXES = {
    "image_table_run_id": "(run_id, image_id)",
    "image_table_run_score": "(run_id, score, image_id)",
    "image_table_run_best": "(run_id, score is null, score desc, image_id desc)",
    "image_table_run_worst": "(run_id, score is null, score, image_id desc)",
    "image_table_score": "(score, image_id)",
    "image_table_config_id": "(config_id)",
    "image_table_job_id": "(job_id)",
}
#: the ranking table's default facets (metadata.yml): each gets an index for the whole table and
#: one within a run (the gallery's "Ranking table" link filters on run_id), both covering
FACETS = ("scheduler", "steps", "scale", "model_id", "run_name")
for _name in FACETS:
    INDEXES["image_table_" + _name] = "({})".format(_name)
    INDEXES["image_table_run_" + _name] = "(run_id, {})".format(_name)


def ensure_indexes(db):
    """Create the indexes of :data:`INDEXES` that are missing (for a database built earlier)."""
    for name, spec in INDEXES.items():
        db.execute("create index if not exists {} on image_table {}".format(name, spec))


def _types(db, table):
    return {row[1]: row[2] or "" for row in db.execute("pragma table_info({})".format(table)).fetchall()}


def columns(db):
    """``[(name, type, select expression, references)]`` of image_table, in order."""
    config_types = _types(db, "configs")
    image_types = _types(db, "images")
    settings = [name for name in FIELDS if name in config_types]  # read when called
    cols = [
        ("image_id", "INTEGER", "images.id", "images(id)"),
        (
            "thumbnail",
            "TEXT",
            "case when images.thumbnail is null then null else {} end".format(THUMB_URL),
            None,
        ),
        ("score", image_types["score"], "images.score", None),
        ("run_id", "INTEGER", "images.run_id", "runs(id)"),
        ("run_name", "TEXT", "runs.name", None),
    ]
    for name in settings:
        cols.append((name, config_types[name], "configs." + name, None))
        if name == "model_id":
            cols.append(
                ("model_title", "TEXT", "(select title from models where models.id = configs.model_id)", None)
            )
    cols += [
        ("init_asset_id", "INTEGER", "configs.init_asset_id", "assets(id)"),
        ("fallback", "INTEGER", "jobs.fallback", None),
        ("config_id", "INTEGER", "images.config_id", "configs(id)"),
        ("job_id", "INTEGER", "images.job_id", "jobs(id)"),
    ]
    cols += [(name, image_types[name], "images." + name, None) for name in IMAGE_TAIL]
    return cols


def _select(cols, where):
    return (
        "select {} from images join configs on configs.id = images.config_id "
        "join runs on runs.id = images.run_id left join jobs on jobs.id = images.job_id where {}".format(
            ", ".join(expr for _, _, expr, _ in cols), where
        )
    )


def _insert(cols, where):
    return "insert into image_table ({}) {}".format(", ".join(c[0] for c in cols), _select(cols, where))


def _job_deltas(row, sign):
    """SET terms adding (sign '+') or removing (sign '-') one jobs row's share of the counters."""
    pending = _PENDING.format(row=row + ".")
    terms = ["jobs = jobs {} ({}.kind = 'inference')".format(sign, row)]
    terms += ["{0} = {0} {1} ({2}.status = '{0}')".format(s, sign, row) for s in JOB_STATUSES]
    terms += [
        "inference_finished = inference_finished {0} ({1}.kind = 'inference' and not {2})".format(
            sign, row, pending
        ),
        "inference_succeeded = inference_succeeded {0} ({1}.kind = 'inference' and {2})".format(
            sign, row, _is(JobStatus.SUCCEEDED, row)
        ),
        "inference_cancelled = inference_cancelled {0} ({1}.kind = 'inference' and {2})".format(
            sign, row, _is(JobStatus.CANCELLED, row)
        ),
        "credits = credits {} coalesce({}.credit_cost, 0)".format(sign, row),
        "credits_pending = credits_pending {0} (case when {2} then "
        "coalesce({1}.credit_estimate, 0) else 0 end)".format(sign, row, pending),
        "credits_queued = credits_queued {0} (case when {2} then "
        "coalesce({1}.credit_estimate, 0) else 0 end)".format(sign, row, _is(JobStatus.QUEUED, row)),
    ]
    return terms


def _image_deltas(row, sign):
    return [
        "images = images {} 1".format(sign),
        "unrated = unrated {} ({}.score is null)".format(sign, row),
        "upscaled = upscaled {} ({}.upscale_path is not null)".format(sign, row),
    ]


RUN_STATS_COLUMNS = (
    (
        ("images", "Images"),
        ("unrated", "Images without a score"),
        ("upscaled", "Images with an upscale"),
        ("jobs", "Inference jobs"),
    )
    + tuple((s, "Jobs {} (inference and upscale)".format(s)) for s in JOB_STATUSES)
    + (
        ("inference_finished", "Inference jobs no longer queued or running"),
        ("inference_succeeded", "Inference jobs succeeded"),
        ("inference_cancelled", "Inference jobs cancelled"),
        ("credits", "Credits charged (every job)"),
        ("credits_pending", "Credits estimated for queued and running jobs"),
        ("credits_queued", "Credits estimated for queued jobs"),
        ("version", "Goes up when the run's images change, other than their scores (for caches)"),
        ("score_version", "Goes up when a score of the run changes (for caches)"),
        ("config_version", "Goes up when the run's configs change (for caches)"),
    )
)


def drop(db):
    for (name,) in db.execute(
        "select name from sqlite_master where type = 'trigger' and name like 'sinkin_rank_%'"
    ).fetchall():
        db.execute("drop trigger {}".format(name))
    kinds = dict(
        db.execute("select name, type from sqlite_master where type in ('table', 'view')").fetchall()
    )
    for name in ("image_table", "run_summary", "run_stats"):  # a view in older databases, or a table
        if name in kinds:
            db.execute("drop {} {}".format(kinds[name], name))


def build(db):
    """(Re)create image_table, run_stats, run_summary and their triggers, filled from the sources."""
    drop(db)
    cols = columns(db)
    defs = []
    for name, type_, _, ref in cols:
        text = '"{}" {}'.format(name, type_)
        if name == "image_id":
            text += " PRIMARY KEY"
        if ref:
            text += " REFERENCES {}".format(ref)
        defs.append(text)
    db.execute("create table image_table (\n  {}\n)".format(",\n  ".join(defs)))
    db.execute(_insert(cols, "1"))
    for name, spec in INDEXES.items():
        db.execute("create index {} on image_table {}".format(name, spec))
    _triggers(db, cols)
    _run_stats(db)
    db.execute(RUN_SUMMARY_SQL)
    build_values(db)


def _triggers(db, cols):
    own = [
        c
        for c in cols
        if c[2].startswith("images.") and c[0] not in ("image_id", "run_id", "config_id", "job_id")
    ]
    settings = [c for c in cols if c[2].startswith("configs.") or c[0] == "model_title"]
    new = lambda expr: expr.replace("images.", "new.").replace("configs.", "new.")  # noqa: E731
    triggers = {
        "image_insert": "after insert on images begin {}; end".format(_insert(cols, "images.id = new.id")),
        "image_delete": "after delete on images begin delete from image_table where image_id = old.id; end",
        # a move to another run, config or job: the row is made again from its sources
        "image_move": "after update of run_id, config_id, job_id on images begin "
        "delete from image_table where image_id = old.id; {}; end".format(
            _insert(cols, "images.id = new.id")
        ),
        "image_update": "after update of {} on images begin update image_table set {} where image_id = new.id; "
        "end".format(
            ", ".join(c[2][len("images.") :] for c in own),
            ", ".join("{} = {}".format(c[0], new(c[2])) for c in own),
        ),
        "thumbnail": "after update of thumbnail on images begin update image_table set thumbnail = {} "
        "where image_id = new.id; end".format(
            new("case when images.thumbnail is null then null else " + THUMB_URL + " end")
        ),
        "config_update": "after update on configs begin update image_table set {} where config_id = new.id; "
        "end".format(", ".join("{} = {}".format(c[0], new(c[2])) for c in settings)),
        "run_name": "after update of name on runs begin update image_table set run_name = new.name "
        "where run_id = new.id; end",
        "fallback": "after update of fallback on jobs when old.fallback is not new.fallback begin "
        "update image_table set fallback = new.fallback where job_id = new.id; end",
        "model_insert": "after insert on models begin update image_table set model_title = new.title "
        "where model_id = new.id; end",
        "model_update": "after update on models begin "
        "update image_table set model_title = null where model_id = old.id; "
        "update image_table set model_title = new.title where model_id = new.id; end",
        "model_delete": "after delete on models begin update image_table set model_title = null "
        "where model_id = old.id; end",
    }
    for name, body in triggers.items():
        db.execute("create trigger sinkin_rank_{} {}".format(name, body))


def _is(status, row=None):
    return _IS.format(status=JobStatus(status), row=row + "." if row else "")


def _job_sums(rounded):
    """The counters after the per-status ones (recount_jobs, recount), as SQL sums over ``jobs``
    (credits rounded to 6 places if ``rounded``)."""
    pending = _PENDING.format(row="")

    def r(expr):
        return "round({}, 6)".format(expr) if rounded else expr

    return ", ".join(
        [
            "coalesce(sum(kind = 'inference' and not {}), 0)".format(pending),
            "coalesce(sum(kind = 'inference' and {}), 0)".format(_is(JobStatus.SUCCEEDED)),
            "coalesce(sum(kind = 'inference' and {}), 0)".format(_is(JobStatus.CANCELLED)),
            r("coalesce(sum(credit_cost), 0)"),
            r("coalesce(sum(case when {} then credit_estimate else 0 end), 0)".format(pending)),
            r("coalesce(sum(case when {} then credit_estimate else 0 end), 0)".format(_is(JobStatus.QUEUED))),
        ]
    )


def recount_jobs(db, run_id=None):
    """Recompute the job counters of run_stats from ``jobs`` (every run, or one)."""
    statuses = ", ".join("coalesce(sum(status = '{0}'), 0)".format(s) for s in JOB_STATUSES)
    db.execute(
        """
        update run_stats set (jobs, {names}, inference_finished, inference_succeeded, inference_cancelled,
                              credits, credits_pending, credits_queued) = (
          select coalesce(sum(kind = 'inference'), 0), {statuses},
            {job_sums}
          from jobs where jobs.run_id = run_stats.run_id)
        where exists (select 1 from jobs where jobs.run_id = run_stats.run_id){one}""".format(
            names=", ".join(JOB_STATUSES),
            statuses=statuses,
            job_sums=_job_sums(rounded=False),
            one=" and run_id = ?" if run_id is not None else "",
        ),
        [run_id] if run_id is not None else [],
    )


@contextlib.contextmanager
def bulk_job_inserts(db, run_id):
    """Insert many configs and jobs of one run without the per-row run_stats triggers (a 10^6-job
    grid would spend most of its time in them): inside the caller's write transaction they are
    dropped, then recreated, and their effect applied once (the run's job counters recounted, its
    config_version bumped). An error rolls it all back, triggers included."""
    saved = {
        name: sql
        for name, sql in db.execute(
            "select name, sql from sqlite_master where type = 'trigger' and name in "
            "('sinkin_rank_job_insert', 'sinkin_configs_insert')"
        ).fetchall()
    }
    for name in saved:
        db.execute("drop trigger {}".format(name))
    yield
    for sql in saved.values():
        db.execute(sql)
    if "sinkin_rank_job_insert" in saved:
        recount_jobs(db, run_id)
    if "sinkin_configs_insert" in saved:  # what the per-config trigger does, once for the batch
        db.execute("update run_stats set config_version = config_version + 1 where run_id = ?", [run_id])


def _run_stats(db):
    cols = ", ".join(
        "{} {} not null default 0".format(name, "REAL" if name.startswith("credits") else "INTEGER")
        for name, _ in RUN_STATS_COLUMNS
    )
    db.execute("create table run_stats (run_id INTEGER PRIMARY KEY REFERENCES runs(id), {})".format(cols))
    db.execute("""insert into run_stats (run_id) select id from runs""")
    db.execute("""
        update run_stats set (images, unrated, upscaled) = (select count(*), coalesce(sum(score is null), 0),
          coalesce(sum(upscale_path is not null), 0) from image_table where image_table.run_id = run_stats.run_id)""")
    recount_jobs(db)
    job_add = ", ".join(_job_deltas("new", "+"))
    job_remove = ", ".join(_job_deltas("old", "-"))
    img_add = ", ".join(_image_deltas("new", "+") + ["version = version + 1"])
    img_remove = ", ".join(_image_deltas("old", "-") + ["version = version + 1"])
    scored = "(old.score is not new.score or old.scored_at is not new.scored_at)"
    img_change = ", ".join(
        _image_deltas("new", "+")
        + ["version = version + not {}".format(scored), "score_version = score_version + {}".format(scored)]
    )
    img_unchange = ", ".join(_image_deltas("old", "-"))
    triggers = {
        "run_insert": "after insert on runs begin insert into run_stats (run_id) values (new.id); end",
        "run_delete": "after delete on runs begin delete from run_stats where run_id = old.id; end",
        "job_insert": "after insert on jobs begin update run_stats set {} where run_id = new.run_id; end".format(
            job_add
        ),
        "job_delete": "after delete on jobs begin update run_stats set {} where run_id = old.run_id; end".format(
            job_remove
        ),
        "job_update": "after update of run_id, kind, status, credit_cost, credit_estimate on jobs begin "
        "update run_stats set {} where run_id = old.run_id; "
        "update run_stats set {} where run_id = new.run_id; end".format(job_remove, job_add),
        "stats_image_insert": "after insert on image_table begin update run_stats set {} "
        "where run_id = new.run_id; end".format(img_add),
        "stats_image_delete": "after delete on image_table begin update run_stats set {} "
        "where run_id = old.run_id; end".format(img_remove),
        "stats_image_update": "after update on image_table begin "
        "update run_stats set {} where run_id = old.run_id; "
        "update run_stats set {} where run_id = new.run_id; end".format(img_unchange, img_change),
    }
    for name, body in triggers.items():
        db.execute("create trigger sinkin_rank_{} {}".format(name, body))


RUN_SUMMARY_SQL = """
create view run_summary as
select
  runs.id as run_id,
  runs.name as name,
  runs.provider as provider,
  runs.created_at as created_at,
  run_stats.images as total,
  run_stats.unrated as unrated,
  run_stats.upscaled as upscaled,
  run_stats.jobs as jobs,
{statuses}
  round(run_stats.credits, 6) as credits,
  round(run_stats.credits_pending, 6) as credits_pending
from runs join run_stats on run_stats.run_id = runs.id
""".format(statuses="\n".join("  run_stats.{0} as {0},".format(s) for s in JOB_STATUSES))


def recount(db):
    """run_stats as a full recount would give it (for tests and `sinkin` checks): {run_id: dict}."""
    out = {}
    for (run_id,) in db.execute("select id from runs").fetchall():
        images = db.execute(
            "select count(*), coalesce(sum(score is null), 0), coalesce(sum(upscale_path is not "
            "null), 0) from images where run_id = ?",
            [run_id],
        ).fetchone()
        jobs = db.execute(
            "select coalesce(sum(kind = 'inference'), 0), {}, {} from jobs where run_id = ?".format(
                ", ".join("coalesce(sum(status = '{}'), 0)".format(s) for s in JOB_STATUSES),
                _job_sums(rounded=True),
            ),
            [run_id],
        ).fetchone()
        names = [n for n, _ in RUN_STATS_COLUMNS if not n.endswith("version")]
        out[run_id] = dict(zip(names, list(images) + list(jobs)))
    return out


def value_fields(db):
    """The columns of image_table counted per value in run_values: the settings, the init image
    and the upscale type (what the gallery filters on and captions show)."""
    have = {r[1] for r in db.execute("pragma table_info(image_table)").fetchall()}
    return [c for c in FIELDS if c in have] + ["init_asset_id", "upscale_type"]  # FIELDS read when called


def build_values(db):
    """(Re)create run_values (per run, setting and value: how many images) with its triggers, and
    the triggers that bump ``run_stats.config_version``. Idempotent."""
    for (name,) in db.execute(
        "select name from sqlite_master where type = 'trigger' and (name like "
        "'sinkin_values_%' or name like 'sinkin_configs_%')"
    ).fetchall():
        db.execute("drop trigger {}".format(name))
    db.execute("drop table if exists run_values")
    if "config_version" not in {r[1] for r in db.execute("pragma table_info(run_stats)").fetchall()}:
        db.execute("alter table run_stats add column config_version INTEGER not null default 0")
    db.execute(
        "create table run_values (run_id INTEGER REFERENCES runs(id), field TEXT, vkey TEXT, value, "
        "images INTEGER not null default 0, primary key (run_id, field, vkey))"
    )
    fields = value_fields(db)
    for field in fields:
        db.execute(
            "insert into run_values (run_id, field, vkey, value, images) select run_id, '{0}', "
            "quote({0}), {0}, count(*) from image_table group by run_id, quote({0})".format(field)
        )

    def change(row, field, sign):
        return (
            "insert or ignore into run_values (run_id, field, vkey, value) values ({0}.run_id, '{1}', "
            "quote({0}.{1}), {0}.{1}); update run_values set images = images {2} 1 where run_id = {0}.run_id "
            "and field = '{1}' and vkey = quote({0}.{1});".format(row, field, sign)
        )

    triggers = {
        "values_insert": "after insert on image_table begin {} end".format(
            " ".join(change("new", f, "+") for f in fields)
        ),
        "values_delete": "after delete on image_table begin {} end".format(
            " ".join(change("old", f, "-") for f in fields)
        ),
    }
    for field in fields:
        triggers["values_update_" + field] = (
            "after update of run_id, {0} on image_table when old.{0} is not new.{0} or old.run_id != new.run_id "
            "begin {1} {2} end".format(field, change("old", field, "-"), change("new", field, "+"))
        )
    for event, row in (("insert", "new"), ("update", "new"), ("delete", "old")):
        triggers["configs_" + event] = (
            "after {} on configs begin update run_stats set config_version = config_version + 1 "
            "where run_id = {}.run_id; end".format(event, row)
        )
    for name, body in triggers.items():
        db.execute("create trigger sinkin_{} {}".format(name, body))


def value_counts(db, run_id):
    """``{field: {value: images}}`` for one run, from run_values (no scan of the images)."""
    out = {}
    for field, value, images in db.execute(
        "select field, value, images from run_values where run_id = ? and images > 0", [run_id]
    ).fetchall():
        out.setdefault(field, {})[value] = images
    return out
