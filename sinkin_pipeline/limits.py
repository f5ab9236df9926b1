"""How many requests may be in flight at once per provider, in one ``work`` session.

``--concurrency N`` is the number of worker threads. A provider may declare a lower default
(``Provider.max_in_flight``: a local web UI on one GPU says 1), which applies when the queue holds
several providers' jobs; a queue of one provider's jobs runs ``--concurrency`` of them (1 unless
the user raised it), and the user may set any provider's limit with ``--provider-concurrency
NAME=N`` (``work``, Run all). A provider at its limit is
skipped when the next job is claimed: the other slots keep running other providers' jobs, so the
queue never waits behind one provider.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class InvalidProviderLimit(ValueError):
    """A ``--provider-concurrency`` value that is not ``NAME=N`` with a known provider and N ≥ 1."""


def parse_provider_limits(items: Iterable[str] | Mapping[str, object] | None) -> dict[str, int]:
    """``{"a1111": 2}`` from ``["a1111=2"]`` (the CLI) or ``{"a1111": 2}`` (the web form).
    InvalidProviderLimit names the bad value and what is expected."""
    from .providers import get_providers

    if not items:
        return {}
    pairs: list[tuple[str, object, str]] = []
    if isinstance(items, Mapping):
        pairs = [(str(k), v, "{}={}".format(k, v)) for k, v in items.items()]
    else:
        for item in items:
            name, sep, value = str(item).partition("=")
            if not sep or not name.strip():
                raise InvalidProviderLimit(
                    "provider concurrency {!r}: expected NAME=N, e.g. a1111=2".format(item)
                )
            pairs.append((name.strip(), value.strip(), str(item)))
    known = get_providers()
    limits: dict[str, int] = {}
    for name, value, given in pairs:
        if name not in known:
            raise InvalidProviderLimit(
                "provider concurrency {!r}: unknown provider {!r}; available: {}".format(
                    given, name, ", ".join(sorted(known))
                )
            )
        number = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and value.isdigit():
            number = int(value)
        if number is None or number < 1:
            raise InvalidProviderLimit(
                "provider concurrency {!r}: the limit must be a whole number of requests, 1 or more".format(
                    given
                )
            )
        limits[name] = number
    return limits


def declared_limit(provider: object) -> int | None:
    """The provider's own default (``max_in_flight``), or None when it declares none (or a value
    that is not a whole number ≥ 1, which is ignored)."""
    value = getattr(provider, "max_in_flight", None)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    return None


class ProviderSlots:
    """The limit of each provider met in a session, and which ones are full right now."""

    def __init__(self, concurrency: int, overrides: Mapping[str, int] | None = None) -> None:
        self.concurrency = max(1, int(concurrency))
        self.overrides = dict(overrides or {})
        self.limits: dict[str, int] = {}
        #: the one provider of the queue when the session started (its own default does not apply:
        #: ``--concurrency`` is then the user's word for it)
        self.sole: str | None = None

    def learn(self, name: str, provider: object) -> int:
        """Record provider ``name``'s limit (the user's, else its own unless it is the queue's only
        provider, at most the concurrency)."""
        own = None if name == self.sole else declared_limit(provider)
        limit = self.overrides.get(name) or own or self.concurrency
        self.limits[name] = min(limit, self.concurrency)
        return self.limits[name]

    def full(self, in_flight: Iterable[str]) -> set[str]:
        """The providers whose calls in flight (one name per call) reach their limit."""
        counts: dict[str, int] = {}
        for name in in_flight:
            counts[name] = counts.get(name, 0) + 1
        return {name for name, n in counts.items() if name in self.limits and n >= self.limits[name]}
