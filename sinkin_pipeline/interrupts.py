"""Stopping spending commands gracefully on Ctrl-C, SIGTERM and SIGHUP.

The first signal sets ``stop`` (no new job starts; the requests in flight finish and their answers
are stored); a second one sets ``abandon`` (the jobs still in flight are marked ``interrupted`` at
once). :class:`GracefulStop` installs the handlers for the duration of a ``with`` block (main
thread only) and :meth:`GracefulStop.report` prints the live countdown while stopping.
"""

import signal
import sys
import threading
import time

SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class GracefulStop:
    def __init__(self, stream=None, what="request"):
        self.stop = threading.Event()
        self.abandon = threading.Event()
        self.signum = None
        self.stream = stream or sys.stderr
        self.what = what
        self._previous = {}
        self._last = None
        self._last_time = 0.0

    def _handle(self, signum, frame):
        if self.signum is not None:
            self.abandon.set()
            return
        self.signum = signum
        self.stop.set()

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        # after a signal the command is on its way out with a summary: a late extra Ctrl-C must
        # not turn that into a traceback, so the handlers stay (they only set ``abandon`` now)
        if not self.signalled:
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)
        self._previous = {}
        if self._last is not None:
            self.stream.write("\n")
            self.stream.flush()

    @property
    def signalled(self):
        """True once a signal arrived (``stop`` is also set by a budget or a storage failure)."""
        return self.signum is not None

    @property
    def exit_code(self):
        """128 + the signal number, as shells report a command stopped by a signal."""
        return 128 + int(self.signum or signal.SIGINT)

    def signal_name(self):
        try:
            return signal.Signals(self.signum).name
        except (TypeError, ValueError):
            return "signal"

    def report(self, in_flight, seconds):
        """The live countdown: how many requests are still in flight and for how long we waited."""
        tty = getattr(self.stream, "isatty", lambda: False)()
        now = time.monotonic()
        if self._last == in_flight and (not tty or now - self._last_time < 1.0):
            return
        if self._last is None:
            self.stream.write(
                "\n{} received: no new job starts; waiting for the {} in flight to finish "
                "and store {} answer{} (Ctrl-C again to stop at once and mark {} "
                "interrupted).\n".format(
                    self.signal_name(),
                    _count(in_flight, self.what),
                    "its" if in_flight == 1 else "their",
                    "" if in_flight == 1 else "s",
                    "it" if in_flight == 1 else "them",
                )
            )
        line = "Stopping: {} still in flight, {:.0f} s".format(_count(in_flight, self.what), seconds)
        self.stream.write(("\r" + line + "   ") if tty else (line + "\n"))
        self.stream.flush()
        self._last = in_flight
        self._last_time = now


def _count(n, what):
    return "{} {}{}".format(n, what, "" if n == 1 else "s")
