"""Draining the queue: ``work`` (many jobs, N threads, an optional credit budget) and ``run_next``
(exactly one job). Several processes may work on one database at once: jobs are claimed
atomically (see :func:`sinkin_pipeline.queue.claim_job`).

Stopping: setting ``stop_event`` stops claiming; the jobs in flight finish and keep their answers.
Setting ``abandon_event`` as well marks the jobs still in flight ``interrupted`` at once and
returns (their threads are left to the process's exit). The budget is a cap: a call starts only
when the budget minus what is spent and reserved for the calls in flight (each at the highest cost
it could plausibly have, see :mod:`sinkin_pipeline.estimate`) covers it.
"""

import threading
import time

from .db import open_db
from .jobs import Outcome, claim_payload, remove_partial_files, run_job
from .leases import Lease
from .plugins import load_plugins
from .queue import (
    QUEUED_SQL,
    BudgetStop,
    JobStatus,
    claim_job,
    fail_unstarted,
    get_job,
    mark_interrupted,
    recover_stale,
    requeue_claimed,
)
from .session import BudgetTooSmall, Session, _Full, _Wait
from .storage import StorageError, StorageGuard, is_storage_failure


def _check_providers(db, session, run_id):
    sql = "select distinct provider from jobs where " + QUEUED_SQL
    params = []
    if run_id is not None:
        sql += " and run_id = ?"
        params.append(run_id)
    names = [name for (name,) in db.execute(sql, params).fetchall()]
    if len(names) == 1:  # one provider's queue: --concurrency applies to it, whatever its own default
        session.slots.sole = names[0]
    for name in names:
        session.provider(name)


def _run_claimed(db, session, job):
    """Run one claimed job and account for it; never raises for a provider problem."""
    try:
        provider = session.provider(job["provider"])
    except Exception as e:
        outcome = Outcome(fail_unstarted(db, job["id"], str(e)), error=str(e))
    else:
        outcome = run_job(db, job, provider)
    return outcome, session.finished(job, outcome)


def _open(db_path, session):
    db = open_db(db_path)
    db.sinkin_guard = session.guard  # lets jobs.py check the file is still the same before storing
    return db


def _worker_loop(db_path, session, run_id, progress, lease):
    job = None
    db = None
    try:
        db = _open(db_path, session)
        skip = set()
        while session.take_slot():
            generation = session.generation
            full = session.full_providers() | skip
            skip = set()
            try:
                job = claim_job(
                    db,
                    run_id=run_id,
                    budget_check=session.admit,
                    lease_owner=lease.owner,
                    prepare=claim_payload,
                    skip_providers=full,
                )
            except _Full as busy:  # claim again at once, without that provider
                session.give_back_slot()
                skip = {busy.provider}
                continue
            except _Wait as wait:
                session.give_back_slot()
                session.wait_for_change(wait.generation)
                continue
            except BudgetStop:
                job = full = None  # the budget or a stop: no waiting for a provider's slot
            except BudgetTooSmall as e:
                session.errors.append(e)
                session.stop_event.set()
                job = None
            if job is None and full and not session.stop_event.is_set():
                # only providers at their limit have queued jobs: wait for a call to settle
                session.give_back_slot()
                session.wait_for_change(generation)
                continue
            if job is None:
                session.give_back_slot()
                return
            _, snapshot = _run_claimed(db, session, job)
            job = None
            if progress is not None and snapshot is not None:
                progress(snapshot)
    except Exception as e:  # the database or the disk failed: stop everything, say why
        session.errors.append(e)
        session.stop_event.set()
        if job is not None:
            session.finished(
                job,
                Outcome(
                    JobStatus.INTERRUPTED,
                    error="{}: {}".format(type(e).__name__, e),
                    charge_unknown=not job.get("raw_response"),
                ),
            )
            try:
                mark_interrupted(db, [job["id"]], "stopped by an error: {}: {}".format(type(e).__name__, e))
            except Exception:
                pass  # recovered later: its lease runs out
    finally:
        if db is not None:
            db.conn.close()


def _supervise(threads, session, db_path, abandon_event=None, on_stopping=None):
    """Wait for ``threads``; while stopping, report the calls in flight; abandon them on request."""
    stopping_since = None
    while True:
        alive = [t for t in threads if t.is_alive()]
        if not alive:
            return
        if abandon_event is not None and abandon_event.is_set():
            session.abandon(db_path)
            return
        if session.stop_event.is_set():
            if stopping_since is None:
                stopping_since = time.monotonic()
            if on_stopping is not None:
                with session.lock:
                    n = len(session.in_flight)
                on_stopping(n, time.monotonic() - stopping_since)
        alive[0].join(0.1)


def work(
    db_path,
    run_id=None,
    concurrency=1,
    budget=None,
    limit=None,
    progress=None,
    stop_event=None,
    abandon_event=None,
    on_stopping=None,
    provider_limits=None,
):
    """Run queued jobs with ``concurrency`` threads until the queue (of ``run_id``) is empty, the
    ``limit`` of jobs is reached, the ``budget`` is reached, or ``stop_event`` is set (jobs in
    flight then finish; ``abandon_event`` marks them interrupted at once). ``on_stopping(in_flight,
    seconds)`` is called about ten times a second while stopping. ``provider_limits`` (``{name: n}``,
    see :mod:`sinkin_pipeline.limits`) caps the calls in flight per provider, over each provider's
    own ``max_in_flight``; the other threads keep taking other providers' jobs meanwhile.
    Returns a :class:`WorkSummary`.
    Raises InvalidBudget, BudgetTooSmall when not even the first job fits, and
    ConfigurationError when a provider cannot run (no API key)."""
    load_plugins()
    session = Session(
        budget, limit, stop_event, concurrency, guard=StorageGuard(db_path), provider_limits=provider_limits
    )
    db = open_db(db_path)
    try:
        recover_stale(db)
        remove_partial_files(db_path)
        _check_providers(db, session, run_id)
    finally:
        db.conn.close()
    with Lease(db_path) as lease:
        threads = [
            threading.Thread(
                target=_worker_loop,
                args=(db_path, session, run_id, progress, lease),
                name="sinkin-worker-{}".format(i),
                daemon=True,
            )
            for i in range(max(1, int(concurrency)))
        ]
        for t in threads:
            t.start()
        _supervise(threads, session, db_path, abandon_event, on_stopping)
    summary = session.summary
    if session.errors:
        error = session.errors[0]
        if isinstance(error, BudgetTooSmall) and not summary.jobs:
            raise error
        storage = [e for e in session.errors if is_storage_failure(e)]
        if storage:
            _storage_summary(summary, storage[0])
        elif not isinstance(error, BudgetTooSmall):
            summary.error = "{}: {}".format(type(error).__name__, error)
            summary.stopped = summary.stopped or "Stopped by an error: " + summary.error
    if session.stop_event.is_set() and not summary.stopped:
        summary.stopped = "Stopped on request; the jobs in flight finished, the rest stays queued"
    return summary


def _storage_summary(summary, error):
    """One clear message for a disk or database failure: what happened and what is paid for."""
    cause = str(error) if isinstance(error, StorageError) else "{}: {}".format(type(error).__name__, error)
    summary.error = summary.storage_error = cause
    if summary.unsaved:
        kept = (
            "{} paid for and stored as URLs; free space, then `sinkin retry` fetches them at no cost".format(
                "1 image is" if summary.unsaved == 1 else "{} images are".format(summary.unsaved)
            )
        )
    else:
        kept = "nothing paid for is lost; free space (or fix the folder), then run `sinkin work` again"
    summary.stopped = "Stopped spending: {}. {}.".format(cause, kept)


def run_next(db_path, run_id=None, stop_event=None, abandon_event=None, on_stopping=None):
    """Run exactly one queued job ("Run next"). Returns the finished job as a dict with an
    ``images`` count, or None when nothing is queued (or ``stop_event`` was set before a job
    started). ``abandon_event`` marks the job interrupted at once, as in :func:`work`. A 429 makes
    the call wait and go again, as in :func:`work`: the job never fails for being rate-limited."""
    load_plugins()
    session = Session(limit=1, stop_event=stop_event, guard=StorageGuard(db_path))
    db = open_db(db_path)
    try:
        recover_stale(db)
    finally:
        db.conn.close()
    result = {}
    lease = Lease(db_path)

    def one():
        db = _open(db_path, session)
        try:
            job = claim_job(
                db, run_id=run_id, budget_check=session.admit, lease_owner=lease.owner, prepare=claim_payload
            )
            if job is None:
                return
            result["id"] = job["id"]
            try:
                session.provider(job["provider"])  # throttled on 429 like `work` (ratelimit.py)
            except Exception as e:
                requeue_claimed(db, job["id"])
                with session.lock:
                    session.in_flight.pop(job["id"], None)
                result["error"] = e
                return
            outcome, _ = _run_claimed(db, session, job)
            result["images"] = outcome.images
            result["credits"] = outcome.credit_cost
        except BudgetStop:
            return
        except Exception as e:
            result["error"] = e
        finally:
            db.conn.close()

    thread = threading.Thread(target=one, name="sinkin-next", daemon=True)
    with lease:
        thread.start()
        _supervise([thread], session, db_path, abandon_event, on_stopping)
    if "error" in result and not session.abandoned:
        raise result["error"]
    if "id" not in result:
        return None
    db = open_db(db_path)
    try:
        job = get_job(db, result["id"])
    finally:
        db.conn.close()
    job["images"] = result.get("images", 0)
    job["new_credits"] = result.get("credits", 0.0)
    return job
