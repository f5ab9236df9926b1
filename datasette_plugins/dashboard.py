"""The dashboard ``/-/sinkin``: every run with its counts and progress, the upcoming jobs, and the
queue actions "Run next", "Run all" (with Pause), retry, cancel (a job, a run, the whole queue) and
"to the front" (a run's or a job's queued jobs are claimed next).

Every action calls the library function the CLI calls (``worker.run_next``, ``worker.work``,
``queue.retry_jobs``, ``queue.cancel_jobs``, ``queue.move_to_front``, after ``queue.recover_stale``), in a thread. Every
POST goes through :func:`security.write_problem` first, so a cross-site or token-less request
gets 403 before anything is read, written or spent. The page polls ``status.json`` about once a
second; it reads the database, so jobs run by a ``sinkin work`` process show up too.
"""

import asyncio
import json

from datasette import Response

from sinkin_pipeline.queue import RETRYABLE, JobStatus, sql_in
from sinkin_pipeline.wording import plural

from . import runner
from .appdb import (
    database_name,
    database_path,
    error,
    json_script,
    ok,
    optional_float,
    optional_int,
    rows,
    with_db,
)
from .security import write_request

#: how many upcoming jobs the dashboard lists (the counts and the estimate cover all of them)
QUEUE_SHOWN = 200
MAX_CONCURRENCY = 32


def routes():
    from .imageextras import routes as image_extras_routes  # the viewer's upscale quote, init image

    return image_extras_routes() + [
        (r"^/-/sinkin$", dashboard_page),
        (r"^/-/sinkin/status\.json$", status_view),
        (r"^/-/sinkin/queue/next\.json$", run_next_view),
        (r"^/-/sinkin/queue/run-all\.json$", run_all_view),
        (r"^/-/sinkin/queue/stop\.json$", stop_view),
        (r"^/-/sinkin/queue/retry\.json$", retry_view),
        (r"^/-/sinkin/queue/cancel\.json$", cancel_view),
        (r"^/-/sinkin/queue/front\.json$", front_view),
    ]


MENU_LINKS = [
    {"href": "/-/sinkin", "label": "SinkIn dashboard"},
    {"href": "/-/sinkin/new", "label": "New SinkIn run"},
]


def read_status(db, db_path):
    """Everything the dashboard shows, from the database (plus this process's "Run all")."""
    from sinkin_pipeline.queue import list_queue
    from sinkin_pipeline.runs import run_counts

    runs = run_counts(db)
    # counters kept by triggers (sinkin_pipeline/ranking.py): no scan of the jobs on each poll
    progress = {
        r["run_id"]: r
        for r in rows(
            db,
            """
        select run_id, jobs as inference_jobs, inference_finished, inference_succeeded,
               inference_cancelled from run_stats""",
        )
    }
    for run in runs:
        p = progress.get(run["run_id"], {})
        for name in ("inference_jobs", "inference_finished", "inference_succeeded", "inference_cancelled"):
            run[name] = p.get(name) or 0
    queue = list_queue(db, run_id=None, limit=QUEUE_SHOWN)
    label_varying(db, queue)
    queued, estimate = db.execute(
        "select coalesce(sum(queued), 0), coalesce(sum(credits_queued), 0) from run_stats"
    ).fetchone()
    problems = rows(
        db,
        """
        select jobs.id, jobs.run_id, runs.name as run_name, jobs.kind, jobs.status, jobs.error,
               jobs.attempts, jobs.finished_at, jobs.image_id
        from jobs join runs on runs.id = jobs.run_id
        where jobs.status in {} order by jobs.id desc limit 100""".format(sql_in(RETRYABLE)),
    )
    running = rows(
        db,
        """
        select id, run_id, kind, worker_pid, worker_host, started_at from jobs
        where status = ? order by id""",
        [JobStatus.RUNNING],
    )
    recent = rows(
        db,
        """
        select jobs.id, jobs.run_id, jobs.kind, jobs.status, jobs.error, jobs.credit_cost,
               jobs.finished_at, (select count(*) from images where images.job_id = jobs.id) as images
        from jobs where jobs.finished_at is not null and jobs.status != ?
        order by jobs.finished_at desc, jobs.id desc limit 20""",
        [JobStatus.CANCELLED],
    )
    spent = db.execute("select coalesce(sum(credits), 0) from run_stats").fetchone()[0]
    current = runner.current(db_path)
    return {
        "runs": runs,
        "queue": queue,
        "queue_count": queued,
        "queue_estimate": round(estimate, 4),
        "credits_spent": round(spent or 0, 4),
        "problems": problems,
        JobStatus.RUNNING: running,  # the jobs running now
        "recent": recent,
        "runner": current.to_dict() if current else None,
    }


def label_varying(db, queue):
    """Give each queued job ``varies``: exactly the settings that vary in its run, e.g.
    ``"negative_prompt blurry · steps 20"`` ("" for a run of one config or an upscale)."""
    from sinkin_pipeline.varying import config_label

    ids = [job["id"] for job in queue if job.get("kind") == "inference"]
    if not ids:
        return queue
    from .review import run_varying  # cached per run version: no scan of the configs per poll

    varying = {run_id: run_varying(db, run_id) for run_id in {job["run_id"] for job in queue}}
    configs = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for row in rows(
            db,
            "select jobs.id as job_id, configs.* from jobs join configs on configs.id = "
            "jobs.config_id where jobs.id in ({})".format(",".join("?" * len(chunk))),
            chunk,
        ):
            configs[row["job_id"]] = row
    for job in queue:
        config = configs.get(job["id"])
        job["varies"] = config_label(config, varying.get(job["run_id"], [])) if config else ""
    return queue


async def _status(datasette):
    return await with_db(datasette, read_status, database_path(datasette))


async def dashboard_page(datasette, request):
    status = await _status(datasette)  # no database: appdb.guarded answers 503
    context = {
        "status_json": json_script(status),
        "table_url": datasette.urls.table(database_name(datasette), "image_table"),
        "created": request.args.get("created"),
        "max_concurrency": MAX_CONCURRENCY,
        "job_states": json.dumps({s.name: s.value for s in JobStatus}),
    }
    return Response.html(await datasette.render_template("dashboard.html", context, request=request))


async def status_view(datasette, request):
    return ok(await _status(datasette))  # no database: appdb.guarded answers 503


def _run_id(db, data):
    """The optional ``run_id`` of a request, checked to exist (ValueError otherwise)."""
    run_id = optional_int(data, "run_id", minimum=1)
    if run_id is not None and not db.execute("select 1 from runs where id = ?", [run_id]).fetchone():
        raise LookupError("run {} not found".format(run_id))
    return run_id


def _prepare(db, data):
    """Check the run id and mark jobs left running by a dead worker as interrupted."""
    from sinkin_pipeline.queue import recover_stale

    run_id = _run_id(db, data)
    recovered = recover_stale(db)
    return run_id, recovered


async def run_next_view(datasette, request):
    """Run exactly one queued job (of one run, if given) in a thread; answer with the job."""
    from sinkin_pipeline.providers import ConfigurationError, ProviderError
    from sinkin_pipeline.worker import run_next

    data, refusal = await write_request(request)
    if refusal:
        return refusal
    try:
        run_id, _ = await with_db(datasette, _prepare, data)
    except (ValueError, LookupError) as e:
        return error(str(e).strip("'\""), status=404 if isinstance(e, LookupError) else 400)
    try:
        job = await asyncio.to_thread(run_next, database_path(datasette), run_id=run_id)
    except ConfigurationError as e:
        return error(str(e))
    except ProviderError as e:
        return error("the job could not run: {}".format(e), status=502)
    if job is None:
        return ok({"job": None, "message": "The queue is empty."})
    job = {
        k: job.get(k)
        for k in ("id", "run_id", "kind", "status", "error", "credit_cost", "images", "fallback", "image_id")
    }
    return ok({"job": job, "message": _job_message(job)})


def _job_message(job):
    from sinkin_pipeline.wording import credit_text, plural

    text = "Job {} {}: {}, {}".format(
        job.get("id"),
        job.get("status"),
        plural(job.get("images") or 0, "image"),
        credit_text(job.get("credit_cost")),
    )
    if job.get("error"):
        text += " – " + str(job["error"])
    return text


def _provider_limits(value):
    """``{"a1111": 2}`` from the request's ``provider_concurrency``: a mapping, or text such as
    ``"a1111=2, sinkin=4"`` (the dashboard's field); ValueError (InvalidProviderLimit) when bad."""
    from sinkin_pipeline.limits import InvalidProviderLimit, parse_provider_limits

    if value in (None, "", {}):
        return {}
    if isinstance(value, str):
        value = [item for item in value.replace(";", ",").replace(" ", ",").split(",") if item]
    if not isinstance(value, (dict, list)):
        raise InvalidProviderLimit(
            "provider concurrency {!r}: expected NAME=N pairs, e.g. a1111=2".format(value)
        )
    return parse_provider_limits(value)


async def run_all_view(datasette, request):
    """Start draining the queue (or one run's part) in a background thread of the server."""
    data, refusal = await write_request(request)
    if refusal:
        return refusal
    try:
        concurrency = optional_int(data, "concurrency", minimum=1, maximum=MAX_CONCURRENCY) or 1
        budget = optional_float(data, "budget", minimum=0)
        limit = optional_int(data, "limit", minimum=1)
        provider_limits = _provider_limits(data.get("provider_concurrency"))
        run_id, _ = await with_db(datasette, _prepare, data)
    except (ValueError, LookupError) as e:
        return error(str(e).strip("'\""), status=404 if isinstance(e, LookupError) else 400)
    path = database_path(datasette)
    try:
        started = await asyncio.to_thread(
            runner.start,
            path,
            run_id=run_id,
            concurrency=concurrency,
            budget=budget,
            limit=limit,
            provider_limits=provider_limits,
        )
    except runner.AlreadyRunning as e:
        return error(str(e), status=409, runner=e.runner.to_dict())
    state = started.to_dict()
    if started.error:
        return error(started.error, status=400, runner=state)
    return ok(
        {
            "runner": state,
            "message": "Run started"
            if state["active"]
            else "Run finished: {}".format(plural(state["jobs"], "job")),
        },
        status=202 if state["active"] else 200,
    )


async def stop_view(datasette, request):
    """Pause "Run all": no new job is claimed; jobs in flight finish and are kept. The page resumes
    it by starting "Run all" again with the same options."""
    data, refusal = await write_request(request)
    if refusal:
        return refusal
    stopped = runner.stop(database_path(datasette))
    if stopped is None:
        return error("nothing is running", status=409)
    return ok(
        {"runner": stopped.to_dict(), "message": "Pausing: the jobs in flight finish, no new job starts"}
    )


def _job_ids(data):
    ids = data.get("job_ids")
    if ids is None:
        return None
    if (
        not isinstance(ids, list)
        or not ids
        or not all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in ids)
    ):
        raise ValueError("job_ids: expected a non-empty list of job ids")
    return ids


class MayHaveBeenCharged(Exception):
    """A retry would re-send jobs that may already have been paid for: asked to confirm."""

    def __init__(self, count, credits):
        super().__init__(count, credits)
        self.count, self.credits = count, credits


def _retry(db, data):
    """Re-queue the chosen jobs. Jobs whose answer is stored only download again (free); jobs
    that were sent without an answer ("may have been charged") are re-sent only when the request
    says ``"resend": true`` – otherwise nothing changes and the caller is asked to confirm."""
    from sinkin_pipeline.queue import retry_jobs, retry_plan

    run_id, _ = _prepare(db, data)
    job_ids = _job_ids(data)
    resend = data.get("resend")
    if resend not in (None, True, False):
        raise ValueError("resend: expected true or false")
    unknown, credits = retry_plan(db, run_id=run_id, job_ids=job_ids)["unknown"]
    if unknown and resend is not True:
        raise MayHaveBeenCharged(unknown, credits)
    return retry_jobs(db, run_id=run_id, job_ids=job_ids, resend=True)


def _cancel(db, data):
    from sinkin_pipeline.queue import cancel_jobs

    run_id, _ = _prepare(db, data)
    return cancel_jobs(db, run_id=run_id, job_ids=_job_ids(data))


def _front(db, data):
    from sinkin_pipeline.queue import move_to_front

    run_id, _ = _prepare(db, data)
    job_ids = _job_ids(data)
    if run_id is None and job_ids is None:
        raise ValueError("name a run_id or job_ids to move to the front of the queue")
    return move_to_front(db, run_id=run_id, job_ids=job_ids)


async def _queue_change(datasette, request, fn, verb):
    data, refusal = await write_request(request)
    if refusal:
        return refusal
    try:
        n = await with_db(datasette, fn, data)
    except MayHaveBeenCharged as e:
        from sinkin_pipeline.wording import credit_text

        return error(
            "{} sent without an answer and may have been charged already: sending {} again "
            "costs {} more. Confirm to re-send.".format(
                plural(e.count, "job was", "jobs were"),
                "it" if e.count == 1 else "them",
                credit_text(e.credits, estimate=True),
            ),
            status=409,
            needs_confirmation=True,
            may_have_been_charged=e.count,
            credits=e.credits,
        )
    except (ValueError, LookupError) as e:
        return error(str(e).strip("'\""), status=404 if isinstance(e, LookupError) else 400)
    return ok({"count": n, "message": "{} {}".format(plural(n, "job"), verb)})


async def retry_view(datasette, request):
    """Failed and interrupted jobs (all, one run's, or the listed ids) back to the queue."""
    return await _queue_change(datasette, request, _retry, "re-queued")


async def cancel_view(datasette, request):
    """Cancel queued, failed or interrupted jobs (all, one run's, or the listed ids)."""
    return await _queue_change(datasette, request, _cancel, JobStatus.CANCELLED)


async def front_view(datasette, request):
    """Move a run's (or the listed) queued jobs to the front: they are claimed next."""
    return await _queue_change(datasette, request, _front, "moved to the front of the queue")
