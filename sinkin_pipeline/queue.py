"""The job queue, and the one owner of every job state change: :class:`JobStatus` is declared
here, and every write to ``jobs.status`` goes through this module (creating queued jobs, claiming,
finishing, interrupting, retrying, cancelling, and recovering jobs left ``running`` by a worker
process that no longer exists)."""

import enum
import os
import socket

from .db import dicts, now, write_transaction


class JobStatus(enum.StrEnum):
    """A job's state (``jobs.status``). A ``str`` enum: members compare equal to, format as and are
    stored as their text, so SQL and JSON see ``'queued'``… Derive lists from this, never repeat."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"


#: states of a job not finished yet (its credits are still an estimate)
PENDING = (JobStatus.QUEUED, JobStatus.RUNNING)
#: states ``retry`` puts back in the queue
RETRYABLE = (JobStatus.FAILED, JobStatus.INTERRUPTED)
#: how running a job ends (a worker's summary counts each)
OUTCOMES = (JobStatus.SUCCEEDED,) + RETRYABLE


def sql_in(statuses):
    """``statuses`` as an SQL list literal, e.g. ``('queued', 'running')``."""
    return "({})".format(", ".join("'{}'".format(JobStatus(s)) for s in statuses))


#: SQL conditions on ``jobs`` (unqualified) used across the package
QUEUED_SQL = "status = '{}'".format(JobStatus.QUEUED)
RUNNING_SQL = "status = '{}'".format(JobStatus.RUNNING)


class BudgetStop(Exception):
    """Raised by a budget check inside :func:`claim_job` to leave the job queued."""


def this_host():
    return socket.gethostname()


def pid_alive(pid):
    """True if a process with this pid exists on this host (zombies count as gone)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/{}/stat".format(pid)) as fp:
            state = fp.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True


#: the order queued jobs are claimed in (list_queue shows the same order)
CLAIM_ORDER = "priority desc, id"


#: one queued inference job; parameters ``(id, run_id, config_id, provider, credit_estimate,
#: created_at)`` (see :func:`insert_queued_jobs`)
_QUEUED_INFERENCE_INSERT = (
    "insert into jobs (id, run_id, config_id, kind, status, provider, credit_estimate, "
    "attempts, fallback, created_at) values (?, ?, ?, 'inference', '{}', ?, ?, 0, 0, ?)"
).format(JobStatus.QUEUED)


def insert_queued_jobs(conn, rows):
    """Insert queued inference jobs, rows ``(id, run_id, config_id, provider, credit_estimate,
    created_at)``, in the caller's transaction."""
    conn.executemany(_QUEUED_INFERENCE_INSERT, rows)


def start_upscale_job(db, row, lease_owner):
    """Insert an upscale job already ``running`` in this process under ``lease_owner`` (an upscale
    asked for now, not queued) and commit; ``row`` holds its other columns. Returns its id."""
    from .leases import expiry

    job_id = (
        db["jobs"]
        .insert(
            dict(
                row,
                kind="upscale",
                status=JobStatus.RUNNING,
                attempts=1,
                fallback=0,
                worker_pid=os.getpid(),
                worker_host=this_host(),
                created_at=now(),
                started_at=now(),
                lease_owner=lease_owner,
                lease_expires=expiry(),
            )
        )
        .last_pk
    )
    db.conn.commit()
    return job_id


def get_job(db, job_id):
    found = list(db.query("select * from jobs where id = ?", [job_id]))
    return found[0] if found else None


def update_job(db, job_id, **fields):
    """Set columns of one job (not its status: see :func:`finish_job`) and commit at once."""
    if "status" in fields:
        raise ValueError("a job's status changes through finish_job or the queue functions")
    _update(db, job_id, fields)


def finish_job(db, job_id, status, error=None, **fields):
    """End a job in ``status`` (succeeded, failed or interrupted) with its error and other columns,
    and commit at once (each state change is durable on its own). Returns the status."""
    status = JobStatus(status)
    _update(db, job_id, dict(fields, status=status, error=error, finished_at=now()))
    return status


def set_final_status(db, job_id, status, error=None, **fields):
    """End a job in ``status`` with its error and other columns inside the caller's write
    transaction (no commit of its own: the images and the status land together)."""
    status = JobStatus(status)
    db.execute(
        "update jobs set {} where id = ?".format(
            ", ".join("{} = ?".format(k) for k in ("status", "error", "finished_at", *fields))
        ),
        [status, error, now(), *fields.values(), job_id],
    )
    return status


def fail_unstarted(db, job_id, error):
    """Mark a claimed job ``failed`` before anything was sent (e.g. its provider is unavailable)."""
    _update(db, job_id, {"status": JobStatus.FAILED, "error": error})
    return JobStatus.FAILED


def _update(db, job_id, fields):
    sets = ", ".join("{} = ?".format(k) for k in fields)
    db.execute("update jobs set {} where id = ?".format(sets), list(fields.values()) + [job_id])
    db.conn.commit()


def _interrupted_error(reason, has_answer):
    if has_answer:
        return (
            "{}: SinkIn had answered and the answer is stored, so `sinkin retry` only downloads "
            "the images, with no new charge"
        ).format(reason)
    return (
        "{}: the request may have been sent, so it may have been charged; `sinkin retry --resend` "
        "sends it again"
    ).format(reason)


def mark_interrupted(db, job_ids, reason):
    """Mark these jobs ``interrupted`` (those still ``running``), saying whether their answer is
    stored. Returns how many were marked."""
    n = 0
    for job_id in job_ids:
        row = db.execute("select raw_response is not null from jobs where id = ?", [job_id]).fetchone()
        if row is None:
            continue
        cursor = db.conn.execute(
            "update jobs set status = ?, error = ?, finished_at = ? where id = ? and " + RUNNING_SQL,
            [JobStatus.INTERRUPTED, _interrupted_error(reason, row[0]), now(), job_id],
        )
        n += cursor.rowcount
    db.conn.commit()
    return n


def requeue_claimed(db, job_id):
    """Put a job claimed by this process back in the queue as if it had never been claimed."""
    db.execute(
        "update jobs set status = ?, attempts = attempts - 1, worker_pid = null, "
        "worker_host = null, started_at = null where id = ? and " + RUNNING_SQL,
        [JobStatus.QUEUED, job_id],
    )
    db.conn.commit()


def recover_stale(db, force=False):
    """Mark ``interrupted`` every running job whose lease has run out (its worker stopped renewing
    it, wherever it ran); with ``force``, every running job. Returns how many."""
    from .leases import stale_ids

    if force:
        ids = [r[0] for r in db.execute("select id from jobs where " + RUNNING_SQL).fetchall()]
        return mark_interrupted(db, ids, "freed by `sinkin recover --force`")
    return mark_interrupted(db, stale_ids(db), "its worker stopped (no heartbeat: the lease ran out)")


def claim_job(db, run_id=None, budget_check=None, lease_owner=None, prepare=None, skip_providers=()):
    """Atomically take the first queued job (of ``run_id`` if given; not of ``skip_providers``,
    those at their limit of calls in flight) and mark it running for this process, under
    ``lease_owner``'s lease (see :mod:`sinkin_pipeline.leases`).
    ``budget_check(job, conn)`` may raise to leave it queued; ``prepare(job, conn)`` returns more
    columns to store with the claim (in its transaction). Returns the job dict or None."""
    from .leases import expiry, new_owner

    lease_owner = lease_owner or new_owner()
    conn = db.conn
    if conn.in_transaction:
        conn.commit()
    conn.execute("BEGIN IMMEDIATE")
    try:
        sql = "select * from jobs where " + QUEUED_SQL
        params = []
        if run_id is not None:
            sql += " and run_id = ?"
            params.append(run_id)
        if skip_providers:
            sql += " and provider not in ({})".format(", ".join("?" for _ in skip_providers))
            params.extend(sorted(skip_providers))
        found = dicts(conn.execute(sql + " order by " + CLAIM_ORDER + " limit 1", params))
        if not found:
            conn.execute("COMMIT")
            return None
        job = found[0]
        if budget_check is not None:
            budget_check(job, conn)
        started = now()
        extra = prepare(job, conn) if prepare is not None else {}
        conn.execute(
            "update jobs set status = ?, attempts = attempts + 1, worker_pid = ?, "
            "worker_host = ?, started_at = ?, finished_at = null, lease_owner = ?, lease_expires = ?"
            + "".join(", {} = ?".format(k) for k in extra)
            + " where id = ? and "
            + QUEUED_SQL,
            [
                JobStatus.RUNNING,
                os.getpid(),
                this_host(),
                started,
                lease_owner,
                expiry(),
                *extra.values(),
                job["id"],
            ],
        )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    job.update(
        extra,
        status=JobStatus.RUNNING,
        attempts=(job["attempts"] or 0) + 1,
        worker_pid=os.getpid(),
        worker_host=this_host(),
        started_at=started,
        lease_owner=lease_owner,
    )
    return job


def list_queue(db, run_id=None, limit=None):
    """Queued jobs in the order they will run, with their settings (every SinkIn field of
    ``fields.FIELDS`` the configs table has, and the init image), the first ``limit``."""
    from .fields import FIELDS

    have = {r[1] for r in db.execute("pragma table_info(configs)").fetchall()}
    settings = [name for name in FIELDS if name in have] + ["init_asset_id"]
    sql = (
        "select jobs.id, jobs.run_id, jobs.kind, jobs.image_id, jobs.credit_estimate, jobs.provider, "
        "jobs.priority, {} from jobs left join configs on configs.id = jobs.config_id "
        "where jobs.{}".format(", ".join("configs." + name for name in settings), QUEUED_SQL)
    )
    params = []
    if run_id is not None:
        sql += " and jobs.run_id = ?"
        params.append(run_id)
    sql += " order by jobs.priority desc, jobs.id"
    if limit is not None:
        sql += " limit ?"
        params.append(int(limit))
    return list(db.query(sql, params))


def move_to_front(db, run_id=None, job_ids=None):
    """Give queued jobs (of a run, or the listed ids) a priority above every other queued job, so
    they are claimed next (in their own order). Returns how many moved."""
    where, params = _where(run_id, job_ids)
    with write_transaction(db):  # read then write: take the write lock first
        top = db.execute("select coalesce(max(priority), 0) from jobs where " + QUEUED_SQL).fetchone()[0]
        db.execute("update jobs set priority = ? where " + QUEUED_SQL + where, [top + 1] + params)
        return db.conn.execute("select changes()").fetchone()[0]


def queue_totals(db, run_id=None):
    """``(jobs, estimated credits)`` of the queued jobs (of ``run_id``), counted in SQL."""
    sql = "select count(*), coalesce(sum(credit_estimate), 0) from jobs where " + QUEUED_SQL
    params = []
    if run_id is not None:
        sql += " and run_id = ?"
        params.append(run_id)
    count, total = db.execute(sql, params).fetchone()
    return count, round(total, 4)


def _where(run_id, job_ids):
    clauses, params = [], []
    if run_id is not None:
        clauses.append("run_id = ?")
        params.append(run_id)
    if job_ids is not None:
        ids = [int(i) for i in job_ids]
        clauses.append("id in ({})".format(", ".join("?" * len(ids)) or "null"))
        params.extend(ids)
    return "".join(" and " + c for c in clauses), params


#: failed or interrupted jobs, by what retrying them costs (SQL conditions on ``jobs``)
_SUPERSEDED = (
    "kind = 'upscale' and raw_response is null and exists (select 1 from jobs later "
    "where later.image_id = jobs.image_id and later.kind = 'upscale' and later.status = '{}' "
    "and later.id != jobs.id)".format(JobStatus.SUCCEEDED)
)
_REQUEUE = "update jobs set status = '{}', ".format(JobStatus.QUEUED)
RETRY_KINDS = {
    "download": "raw_response is not null",
    "superseded": _SUPERSEDED,
    "unknown": "raw_response is null and status = '{}' and not ({})".format(
        JobStatus.INTERRUPTED, _SUPERSEDED
    ),
    "unpaid": "raw_response is null and status = '{}' and not ({})".format(JobStatus.FAILED, _SUPERSEDED),
}


def retry_plan(db, run_id=None, job_ids=None):
    """What ``retry`` would do, without doing it: ``{kind: (jobs, estimated credits)}`` for the
    failed and interrupted jobs – ``download`` (paid, answer stored: fetching is free), ``unknown``
    (sent, no answer: may have been charged), ``unpaid`` (refused or never sent) and
    ``superseded`` (a failed upscale whose image was upscaled again since: never re-sent)."""
    where, params = _where(run_id, job_ids)
    plan = {}
    for kind, condition in RETRY_KINDS.items():
        count, credits = db.execute(
            "select count(*), coalesce(sum(credit_estimate), 0) from jobs where status in "
            + sql_in(RETRYABLE)
            + " and "
            + condition
            + where,
            params,
        ).fetchone()
        plan[kind] = (count, round(credits, 4))
    return plan


def retry_jobs(db, run_id=None, job_ids=None, resend=True):
    """Re-queue failed and interrupted jobs; returns how many. A job whose answer is stored keeps
    it (the next run only downloads, free). With ``resend`` (the default for the dashboard's
    explicit Retry), jobs without an answer are re-queued too and will be sent – and paid – again
    (their fallback state is reset); ``sinkin retry`` passes ``resend=False`` unless told.
    A failed upscale whose image was upscaled again since is never re-sent."""
    where, params = _where(run_id, job_ids)
    reset = (
        "worker_pid = null, worker_host = null, lease_owner = null, lease_expires = null, finished_at = null"
    )
    with write_transaction(db):
        n = 0
        if resend:
            n += db.conn.execute(
                _REQUEUE + reset + ", fallback = 0, raw_payload = null, error = null "
                "where status in "
                + sql_in(RETRYABLE)
                + " and (("
                + RETRY_KINDS["unknown"]
                + ") or ("
                + RETRY_KINDS["unpaid"]
                + "))"
                + where,
                params,
            ).rowcount
        n += db.conn.execute(
            _REQUEUE
            + reset
            + " where status in "
            + sql_in(RETRYABLE)
            + " and "
            + RETRY_KINDS["download"]
            + where,
            params,
        ).rowcount
    return n


def cancel_jobs(db, run_id=None, job_ids=None):
    """Cancel queued jobs; returns how many. Running jobs finish. Jobs named in ``job_ids`` are
    cancelled when failed or interrupted too (the dashboard's "Cancel" on a failed job)."""
    where, params = _where(run_id, job_ids)
    statuses = (JobStatus.QUEUED,) + (RETRYABLE if job_ids is not None else ())
    with db.atomic():
        db.execute(
            "update jobs set status = ?, finished_at = ? where status in " + sql_in(statuses) + where,
            [JobStatus.CANCELLED, now()] + params,
        )
        n = db.conn.execute("select changes()").fetchone()[0]
    return n
