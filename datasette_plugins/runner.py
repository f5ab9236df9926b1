"""The dashboard's "Run all": ``sinkin_pipeline.worker.work`` in a background thread of the server
process, at most one per database file, stoppable, with its progress kept for the status poll.

This is the same function ``sinkin work`` calls; only the thread around it lives here. When the
server stops, :func:`shutdown` (run at exit) stops every active "Run all" the way Ctrl-C stops
``sinkin work``: no new job starts, the requests in flight finish and store their answers; a
second Ctrl-C (or SIGTERM) marks them interrupted at once.
"""

import atexit
import datetime
import os
import signal
import sys
import threading
import time

from sinkin_pipeline.queue import OUTCOMES

_lock = threading.Lock()
_runners = {}  # resolved db path -> Runner (the latest one, running or finished)
_atexit_registered = False

#: how long :func:`start` waits for an immediate failure (no API key, budget too small)
START_WAIT = 1.0


class AlreadyRunning(Exception):
    def __init__(self, runner):
        self.runner = runner
        super().__init__(
            "“Run all” is already running on this database (started {}, {} job{} done so far): "
            "stop it or wait for it to finish".format(
                runner.started_at[11:19], runner.jobs, "" if runner.jobs == 1 else "s"
            )
        )


def _now():
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


class Runner:
    """One "Run all": its options, live counters and outcome."""

    def __init__(self, db_path, run_id=None, concurrency=1, budget=None, limit=None, provider_limits=None):
        self.db_path = db_path
        self.run_id = run_id
        self.concurrency = concurrency
        self.provider_limits = dict(provider_limits or {})
        self.budget = budget
        self.limit = limit
        self.stop_event = threading.Event()
        self.abandon_event = threading.Event()
        self.in_flight = None  # requests still in flight while stopping
        self.settled = threading.Event()  # set on first progress, an error, or the end
        self.started_at = _now()
        self.finished_at = None
        self.jobs = self.succeeded = self.failed = self.interrupted = self.images = 0
        self.credits = 0.0
        self.error = None
        self.stopped = None
        self.messages = []
        self.thread = None

    @property
    def active(self):
        return self.finished_at is None

    def progress(self, summary):
        """The ``progress`` callback given to ``worker.work`` (called from worker threads)."""
        for name in ("jobs", *OUTCOMES, "images"):
            setattr(self, name, getattr(summary, name, getattr(self, name)) or 0)
        self.credits = getattr(summary, "spent", self.credits) or 0.0
        self.settled.set()

    def stopping(self, in_flight, seconds):
        """The ``on_stopping`` callback: how many requests are still in flight."""
        self.in_flight = in_flight

    def run(self):
        from sinkin_pipeline.providers import ConfigurationError
        from sinkin_pipeline.session import BudgetTooSmall, InvalidBudget
        from sinkin_pipeline.worker import work

        try:
            summary = work(
                self.db_path,
                run_id=self.run_id,
                concurrency=self.concurrency,
                budget=self.budget,
                limit=self.limit,
                provider_limits=self.provider_limits,
                progress=self.progress,
                stop_event=self.stop_event,
                abandon_event=self.abandon_event,
                on_stopping=self.stopping,
            )
        except (BudgetTooSmall, ConfigurationError, InvalidBudget) as e:
            self.error = str(e)
        except Exception as e:  # shown on the dashboard rather than lost in a thread
            self.error = "“Run all” stopped by an unexpected error: {}: {}".format(type(e).__name__, e)
        else:
            self.progress(summary)
            self.stopped = getattr(summary, "stopped", None) or None
            self.error = getattr(summary, "error", None) or None
            self.messages = list(getattr(summary, "messages", None) or [])
        finally:
            if self.stop_event.is_set() and not self.stopped and not self.error:
                self.stopped = "Stopped from the dashboard."
            self.finished_at = _now()
            self.settled.set()

    def to_dict(self):
        return {
            "active": self.active,
            "run_id": self.run_id,
            "concurrency": self.concurrency,
            "provider_concurrency": self.provider_limits,
            "budget": self.budget,
            "limit": self.limit,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "jobs": self.jobs,
            **{str(s): getattr(self, s) for s in OUTCOMES},  # jobs succeeded, failed, interrupted
            "images": self.images,
            "credits": round(self.credits, 4),
            "error": self.error,
            "stopped": self.stopped,
            "stopping": self.active and self.stop_event.is_set(),
            "in_flight": self.in_flight,
            "messages": self.messages[-20:],
        }


def _key(db_path):
    return os.path.realpath(db_path)


def current(db_path):
    """The latest Runner for this database (running or finished), or None."""
    with _lock:
        return _runners.get(_key(db_path))


def start(
    db_path, run_id=None, concurrency=1, budget=None, limit=None, wait=START_WAIT, provider_limits=None
):
    """Start a "Run all" thread; raises :class:`AlreadyRunning` when one is active.

    Waits up to ``wait`` seconds so that an immediate failure (no API key, a budget too small
    for the next job) comes back with the request; the Runner is returned either way."""
    with _lock:
        existing = _runners.get(_key(db_path))
        if existing is not None and existing.active:
            raise AlreadyRunning(existing)
        runner = Runner(
            db_path,
            run_id=run_id,
            concurrency=concurrency,
            budget=budget,
            limit=limit,
            provider_limits=provider_limits,
        )
        global _atexit_registered
        if not _atexit_registered:
            atexit.register(shutdown)
            _atexit_registered = True
        runner.thread = threading.Thread(target=runner.run, name="sinkin-run-all", daemon=True)
        _runners[_key(db_path)] = runner
        runner.thread.start()
    runner.settled.wait(wait)
    return runner


def stop(db_path):
    """Ask the active Runner to stop (jobs in flight finish); returns it, or None if none runs."""
    runner = current(db_path)
    if runner is None or not runner.active:
        return None
    runner.stop_event.set()
    return runner


def shutdown(timeout=None, stream=None):
    """The server is stopping: stop every active "Run all", let the requests in flight finish
    (printing a countdown), and on Ctrl-C / SIGTERM meanwhile, or after ``timeout`` seconds, mark
    the jobs still in flight interrupted. Returns how many runners were active."""
    stream = stream or sys.stderr
    with _lock:
        active = [r for r in _runners.values() if r.active]
    if not active:
        return 0
    for r in active:
        r.stop_event.set()
    stream.write(
        "Stopping “Run all”: no new job starts; waiting for the requests in flight to finish "
        "and store their answers (Ctrl-C again to stop at once and mark them interrupted).\n"
    )
    previous = {}
    if threading.current_thread() is threading.main_thread():

        def interrupt(signum, frame):
            raise KeyboardInterrupt

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, interrupt)
    started = time.monotonic()
    last = None
    try:
        for r in active:
            while r.thread.is_alive():
                if timeout is not None and time.monotonic() - started > timeout:
                    raise TimeoutError
                n = sum(x.in_flight or 0 for x in active if x.active)
                if n != last:
                    stream.write(
                        "  {} request{} in flight, {:.0f} s\n".format(
                            n, "" if n == 1 else "s", time.monotonic() - started
                        )
                    )
                    stream.flush()
                    last = n
                r.thread.join(0.1)
    except (KeyboardInterrupt, TimeoutError):
        for r in active:
            r.abandon_event.set()
        for r in active:
            r.thread.join(5)
        stream.write("Stopped at once: the jobs in flight are marked interrupted.\n")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return len(active)
