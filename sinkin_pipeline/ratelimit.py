"""Adaptive concurrency for calls that cost credits: when SinkIn answers 429 (too many requests at
once), fewer calls are sent at a time instead of failing the job.

A :class:`AdaptiveLimit` is shared by the worker threads of one ``work`` call for one provider. It
lets at most ``limit`` inference/upscale calls be in flight. A 429 means nothing was processed, so
the call waits for a slot and is sent again; the limit drops to the number of calls SinkIn was
still serving when the 429 came back (multiplicative decrease), and grows by one after ``limit``
calls in a row succeed (additive increase, up to the ``--concurrency`` asked for). A job is never
failed for being rate-limited unless SinkIn keeps refusing for :data:`GIVE_UP_AFTER` seconds.
"""

import random
import threading
import time
from collections.abc import Callable
from typing import Any

from .providers import TransientError

#: seconds of 429 answers in a row (for one call) after which the job fails as not sent
GIVE_UP_AFTER = 600.0
#: pause before re-sending a call refused with 429 and no Retry-After (seconds, jittered)
RETRY_PAUSE = (0.05, 0.25)


class AdaptiveLimit:
    """How many calls may be in flight at once (see the module docstring). Thread-safe."""

    def __init__(self, ceiling: int, stop_event: threading.Event | None = None):
        self.ceiling = max(1, int(ceiling))
        self.limit = self.ceiling
        self.in_flight = 0
        self.lowest = self.ceiling
        self.refusals = 0
        self._streak = 0
        self._cond = threading.Condition()
        self._stop = stop_event

    def _acquire(self) -> None:
        with self._cond:
            while self.in_flight >= self.limit:
                self._cond.wait(0.5)
            self.in_flight += 1

    def _release(self, refused: bool) -> None:
        with self._cond:
            self.in_flight -= 1
            if refused:
                self.refusals += 1
                self._streak = 0
                # SinkIn is serving the calls still in flight: allow that many (at least one)
                self.limit = max(1, min(self.limit, self.in_flight))
                self.lowest = min(self.lowest, self.limit)
            else:
                self._streak += 1
                if self._streak >= self.limit and self.limit < self.ceiling:
                    self.limit += 1
                    self._streak = 0
            self._cond.notify_all()

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` within the limit; a 429 (TransientError with status 429) is sent again."""
        first_refusal = None
        while True:
            self._acquire()
            try:
                result = fn(*args)
            except TransientError as e:
                if e.status != 429:
                    self._release(False)
                    raise
                self._release(True)
                now = time.monotonic()
                first_refusal = first_refusal or now
                if now - first_refusal > GIVE_UP_AFTER or (self._stop is not None and self._stop.is_set()):
                    raise
                time.sleep(
                    min(float(e.retry_after), 20.0)
                    if e.retry_after is not None
                    else random.uniform(*RETRY_PAUSE)
                )
                continue
            except BaseException:
                self._release(False)
                raise
            self._release(False)
            return result


class Throttled:
    """A provider whose inference and upscale calls go through an :class:`AdaptiveLimit`; every
    other attribute is the provider's own."""

    def __init__(self, provider: Any, limit: AdaptiveLimit):
        self._provider = provider
        self.rate_limit = limit

    def __getattr__(self, name: str) -> Any:
        return getattr(self._provider, name)

    def inference(self, payload: dict, init_image: Any = None) -> Any:
        return self.rate_limit.call(self._provider.inference, payload, init_image)

    def upscale(self, payload: dict, *image: Any) -> Any:  # image: (filename, bytes) when given
        return self.rate_limit.call(self._provider.upscale, payload, *image)
