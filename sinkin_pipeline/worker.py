"""Draining the queue: ``work`` (many jobs, N threads, an optional credit budget) and ``run_next``
(exactly one job). Several processes may work on one database at once: jobs are claimed
atomically (see :func:`sinkin_pipeline.queue.claim_job`)."""
import threading
from dataclasses import dataclass, field

from .db import open_db
from .jobs import Outcome, remove_partial_files, run_job
from .plugins import load_plugins
from .providers import get_provider
from .queue import BudgetStop, claim_job, get_job, recover_stale


class BudgetTooSmall(Exception):
    """The budget cannot cover even the next job."""


@dataclass
class WorkSummary:
    jobs: int = 0
    succeeded: int = 0
    failed: int = 0
    interrupted: int = 0
    images: int = 0
    credits: float = 0.0
    stopped: str | None = None
    messages: list = field(default_factory=list)


class Session:
    """What one ``work`` call has started and spent, shared by its threads under a lock."""

    def __init__(self, budget=None, limit=None, stop_event=None):
        self.budget = budget
        self.limit = limit
        self.stop_event = stop_event or threading.Event()
        self.lock = threading.Lock()
        self.summary = WorkSummary()
        self.claimed = 0
        self.in_flight = {}  # job id -> estimate
        self.providers = {}

    def provider(self, name):
        with self.lock:
            if name not in self.providers:
                provider = get_provider(name)
                provider.check_ready()
                self.providers[name] = provider
            return self.providers[name]

    def take_slot(self):
        with self.lock:
            if self.stop_event.is_set() or (self.limit is not None and self.claimed >= self.limit):
                return False
            self.claimed += 1
            return True

    def give_back_slot(self):
        with self.lock:
            self.claimed -= 1

    def budget_check(self, job):
        """Called inside the claim transaction: raise to leave ``job`` queued."""
        if self.budget is None:
            return
        estimate = float(job.get("credit_estimate") or 0)
        with self.lock:
            committed = self.summary.credits + sum(self.in_flight.values())
            if committed + estimate > self.budget + 1e-9:
                if not self.summary.jobs and not self.in_flight:
                    raise BudgetTooSmall(
                        "budget of {:g} credits is too small for the next job (job {}, ~{:g} credits "
                        "estimated)".format(self.budget, job["id"], estimate))
                self.summary.stopped = ("Stopped: the budget of {:g} credits is reached (next job ~{:g} "
                                        "credits estimated); the rest stays queued".format(self.budget, estimate))
                raise BudgetStop()
            self.in_flight[job["id"]] = estimate

    def finished(self, job, outcome):
        with self.lock:
            self.in_flight.pop(job["id"], None)
            s = self.summary
            s.jobs += 1
            s.images += outcome.images
            s.credits = round(s.credits + (outcome.credit_cost or 0), 6)
            if outcome.status == "succeeded":
                s.succeeded += 1
            elif outcome.status == "interrupted":
                s.interrupted += 1
            else:
                s.failed += 1
            if outcome.error and outcome.status != "succeeded":
                s.messages.append("job {}: {}".format(job["id"], outcome.error))
            s.messages.extend(m for m in outcome.messages if m not in s.messages)
            return WorkSummary(**{**s.__dict__, "messages": list(s.messages)})


def _check_providers(db, session, run_id):
    sql = "select distinct provider from jobs where status = 'queued'"
    params = []
    if run_id is not None:
        sql += " and run_id = ?"
        params.append(run_id)
    for (name,) in db.execute(sql, params).fetchall():
        session.provider(name)


def _worker_loop(db_path, session, run_id, progress, errors):
    db = open_db(db_path)
    try:
        while session.take_slot():
            try:
                job = claim_job(db, run_id=run_id, budget_check=session.budget_check)
            except BudgetStop:
                job = None
            except BudgetTooSmall as e:
                errors.append(e)
                session.stop_event.set()
                job = None
            if job is None:
                session.give_back_slot()
                return
            try:
                provider = session.provider(job["provider"])
            except Exception as e:
                from .queue import update_job

                update_job(db, job["id"], status="failed", error=str(e))
                outcome = Outcome("failed", error=str(e))
            else:
                outcome = run_job(db, job, provider)
            snapshot = session.finished(job, outcome)
            if progress is not None:
                progress(snapshot)
    finally:
        db.conn.close()


def work(db_path, run_id=None, concurrency=1, budget=None, limit=None, progress=None, stop_event=None):
    """Run queued jobs with ``concurrency`` threads until the queue (of ``run_id``) is empty, the
    ``limit`` of jobs is reached, the ``budget`` would be exceeded, or ``stop_event`` is set.
    Returns a :class:`WorkSummary`. Raises BudgetTooSmall when not even the first job fits, and
    ConfigurationError when a provider cannot run (no API key)."""
    load_plugins()
    session = Session(budget, limit, stop_event)
    db = open_db(db_path)
    try:
        recover_stale(db)
        remove_partial_files(db_path)
        _check_providers(db, session, run_id)
    finally:
        db.conn.close()
    errors = []
    threads = [threading.Thread(target=_worker_loop, args=(db_path, session, run_id, progress, errors),
                                name="sinkin-worker-{}".format(i), daemon=True)
               for i in range(max(1, int(concurrency)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors and not session.summary.jobs:
        raise errors[0]
    if stop_event is not None and stop_event.is_set() and not session.summary.stopped and not errors:
        session.summary.stopped = "Stopped on request; the rest stays queued"
    return session.summary


def run_next(db_path, run_id=None):
    """Run exactly one queued job ("Run next"). Returns the finished job as a dict with an
    ``images`` count, or None when nothing is queued."""
    load_plugins()
    db = open_db(db_path)
    try:
        recover_stale(db)
        job = claim_job(db, run_id=run_id)
        if job is None:
            return None
        try:
            provider = get_provider(job["provider"])
            provider.check_ready()
        except Exception:
            db.execute("update jobs set status = 'queued', attempts = attempts - 1, worker_pid = null, "
                       "worker_host = null, started_at = null where id = ?", [job["id"]])
            db.conn.commit()
            raise
        outcome = run_job(db, job, provider)
        result = get_job(db, job["id"])
        result["images"] = outcome.images
        return result
    finally:
        db.conn.close()
