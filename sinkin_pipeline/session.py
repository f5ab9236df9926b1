"""One ``work`` session's shared state: the budget (a cap, with reservations for the calls in
flight), the per-provider limits of calls in flight, the throttled providers and the running
:class:`WorkSummary`. The threads of :mod:`sinkin_pipeline.worker` share one :class:`Session`."""

import math
import threading
from dataclasses import dataclass, field

from .db import open_db
from .estimate import ROUNDING, estimator_for
from .limits import ProviderSlots
from .providers import get_provider
from .queue import BudgetStop, JobStatus, mark_interrupted
from .ratelimit import AdaptiveLimit, Throttled
from .storage import StorageError
from .wording import credit_text, money


class BudgetTooSmall(Exception):
    """The budget cannot cover even the next job."""


class InvalidBudget(ValueError):
    """A budget that is not a finite number of credits ≥ 0."""


class _Full(Exception):
    """Raised inside a claim: the job's provider has as many calls in flight as it may; claim
    again at once without that provider."""

    def __init__(self, provider):
        self.provider = provider


class _Wait(Exception):
    """Raised inside a claim: the next job fits once a call in flight settles; try again then."""

    def __init__(self, generation):
        self.generation = generation


def check_budget(budget):
    """``budget`` as a float (None stays None); InvalidBudget when negative, NaN or infinite."""
    if budget is None:
        return None
    try:
        value = float(budget)
    except (TypeError, ValueError):
        raise InvalidBudget("budget must be a number of credits, got {!r}".format(budget))
    if not math.isfinite(value) or value < 0:
        raise InvalidBudget("budget must be a finite number of credits, 0 or more, got {!r}".format(budget))
    return value


@dataclass
class WorkSummary:
    jobs: int = 0
    succeeded: int = 0
    failed: int = 0
    interrupted: int = 0
    images: int = 0
    credits: float = 0.0  # charged for answers received in this session
    uncertain: float = 0.0  # estimated cost of calls sent without an answer (may have been charged)
    budget: float | None = None
    abandoned: int = 0
    stopped: str | None = None
    error: str | None = None  # what stopped the session early (a database or disk failure)
    storage_error: str | None = None  # the first disk/database failure, when that is what it was
    unsaved: int = 0  # paid images kept only as URLs because their files could not be saved
    messages: list = field(default_factory=list)

    @property
    def spent(self):
        """What counts against the budget: charges plus calls that may have been charged."""
        return round(self.credits + self.uncertain, 6)

    def spending(self):
        """``"2.5 credits"`` or ``"2.5 of 3 credits budget"``, with the share that is uncertain."""
        text = credit_text(self.spent)
        if self.budget is not None:
            text = "{} of a {}-credit budget".format(money(self.spent), money(self.budget))
        if self.uncertain:
            text += " (~{} of it for calls sent without an answer, counted as charged)".format(
                money(self.uncertain)
            )
        return text


@dataclass
class _Reservation:
    credits: float
    provider: str
    config: dict | None
    unknown_price: bool


class Session:
    """What one ``work`` call has started and spent, shared by its threads under a lock."""

    def __init__(
        self, budget=None, limit=None, stop_event=None, concurrency=1, guard=None, provider_limits=None
    ):
        self.budget = check_budget(budget)
        self.concurrency = max(1, int(concurrency))
        self.slots = ProviderSlots(self.concurrency, provider_limits)
        self.guard = guard
        self.limit = limit
        self.stop_event = stop_event or threading.Event()
        self.lock = threading.Condition()
        self.summary = WorkSummary(budget=self.budget)
        self.claimed = 0
        self.generation = 0  # bumped whenever a call settles
        self.in_flight = {}  # job id -> _Reservation
        self.abandoned = False
        self.errors = []
        self.providers = {}
        self.estimators = {}

    def provider(self, name):
        with self.lock:
            if name not in self.providers:
                provider = get_provider(name)
                provider.check_ready()
                ceiling = self.slots.learn(name, provider)  # its own limit of calls in flight
                # 429s shrink the calls in flight instead of failing jobs (ratelimit.py)
                self.providers[name] = Throttled(provider, AdaptiveLimit(ceiling, self.stop_event))
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

    def full_providers(self):
        """Providers with as many calls in flight as their limit: the next claim skips them."""
        with self.lock:
            return self.slots.full(r.provider for r in self.in_flight.values())

    def wait_for_change(self, generation, timeout=1.0):
        with self.lock:
            self.lock.wait_for(lambda: self.generation != generation or self.stop_event.is_set(), timeout)

    # --- the budget ---------------------------------------------------------------------------
    def _ceiling(self, job, conn):
        """``(credits, config, price_known)`` to reserve for one call of ``job``."""
        if job.get("raw_response"):
            return 0.0, None, True  # the answer is stored: only downloads, free
        provider = self.provider(job["provider"])
        if job["kind"] == "upscale":
            row = conn.execute(
                "select max(credit_cost) from jobs where kind = 'upscale' and provider = ? "
                "and credit_cost is not null and raw_response is not null",
                [provider.name],
            ).fetchone()
            recorded = row[0] if row and row[0] is not None else None
            if provider.free:
                return 0.0, None, True
            known = recorded is not None
            return max(float(job.get("credit_estimate") or 0), (recorded or 0) + ROUNDING), None, known
        found = conn.execute(
            "select steps, width, height, num_images, lcm from configs where id = ?", [job["config_id"]]
        ).fetchone()
        config = dict(zip(("steps", "width", "height", "num_images", "lcm"), found or ()))
        estimator = self.estimators.get(provider.name)
        if estimator is None:
            estimator = self.estimators[provider.name] = estimator_for(conn, provider)
        # never below the estimate stored when the job was queued
        credits = max(estimator.ceiling(config), float(job.get("credit_estimate") or 0))
        return credits, config, estimator.known()

    def admit(self, job, conn):
        """Called inside the claim transaction: raise to leave ``job`` queued."""
        with self.lock:
            if self.stop_event.is_set() or self.abandoned:
                raise BudgetStop()
            if self.guard is not None:
                self.guard.check()  # StorageError: nothing more is paid for
            if job["provider"] not in self.slots.limits:  # first met in this session: learn its limit
                try:
                    self.provider(job["provider"])
                except Exception:
                    pass  # it cannot run: _run_claimed fails the job with the reason
            if job["provider"] in self.slots.full(r.provider for r in self.in_flight.values()):
                raise _Full(job["provider"])  # taken by another thread since the claim began
            if self.budget is None:
                self.in_flight[job["id"]] = _Reservation(0.0, job["provider"], None, False)
                return
            credits, config, known = self._ceiling(job, conn)
            reserved = sum(r.credits for r in self.in_flight.values())
            if not known and any(r.unknown_price for r in self.in_flight.values()):
                raise _Wait(self.generation)  # one call of unknown price at a time
            if self.summary.spent + reserved + credits > self.budget + 1e-9:
                if self.in_flight:
                    raise _Wait(self.generation)  # calls in flight may cost less than reserved
                if not self.summary.jobs:
                    raise BudgetTooSmall(
                        "budget of {} is too small for the next job (job {}, up to {})".format(
                            credit_text(self.budget), job["id"], credit_text(credits, estimate=True)
                        )
                    )
                self.summary.stopped = (
                    "Stopped: the budget of {} is reached ({} spent; the next job may cost up to {}); "
                    "the rest stays queued".format(
                        credit_text(self.budget),
                        money(self.summary.spent),
                        credit_text(credits, estimate=True),
                    )
                )
                raise BudgetStop()
            self.in_flight[job["id"]] = _Reservation(credits, job["provider"], config, not known)

    def finished(self, job, outcome):
        with self.lock:
            reservation = self.in_flight.pop(job["id"], None)
            if reservation is None and self.abandoned:
                return None  # counted as interrupted when the session was abandoned
            self.generation += 1
            self.lock.notify_all()
            s = self.summary
            s.jobs += 1
            s.images += outcome.images
            s.credits = round(s.credits + (outcome.credit_cost or 0), 6)
            if outcome.charge_unknown and reservation is not None:
                s.uncertain = round(s.uncertain + reservation.credits, 6)
            if outcome.paid and reservation is not None and reservation.config is not None:
                estimator = self.estimators.get(reservation.provider)
                if estimator is not None:
                    estimator.add(reservation.config, outcome.credit_cost)
            if outcome.status == JobStatus.SUCCEEDED:
                s.succeeded += 1
            elif outcome.status == JobStatus.INTERRUPTED:
                s.interrupted += 1
            else:
                s.failed += 1
            if outcome.error and outcome.status != JobStatus.SUCCEEDED:
                s.messages.append("job {}: {}".format(job["id"], outcome.error))
            s.messages.extend(m for m in outcome.messages if m not in s.messages)
            s.unsaved += outcome.unsaved
            if outcome.storage_error:
                self.errors.append(StorageError("job {}: {}".format(job["id"], outcome.storage_error)))
                self.stop_event.set()
            return self.snapshot()

    def snapshot(self):
        s = self.summary
        return WorkSummary(**{**s.__dict__, "messages": list(s.messages)})

    def abandon(self, db_path):
        """Mark every job still in flight ``interrupted`` now; returns how many were marked."""
        with self.lock:
            self.abandoned = True
            self.stop_event.set()
            ids = list(self.in_flight)
            reserved = sum(r.credits for r in self.in_flight.values())
            self.in_flight.clear()
            self.lock.notify_all()
        db = open_db(db_path)
        try:
            n = mark_interrupted(db, ids, "stopped at once (a second Ctrl-C or signal)")
        finally:
            db.conn.close()
        with self.lock:
            s = self.summary
            s.abandoned = len(ids)
            s.jobs += len(ids)
            s.interrupted += len(ids)
            s.uncertain = round(s.uncertain + reserved, 6)
            s.stopped = (
                "Stopped at once: {} job{} in flight marked interrupted; `sinkin retry` fetches "
                "those already answered at no cost".format(n, "" if n == 1 else "s")
            )
        return n
