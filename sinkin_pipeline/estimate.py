"""Credit estimates, learned from the costs already recorded, and the ceiling a budget relies on.

A call's cost is modelled as ``fixed + rate × units``, where ``units`` measures the work (steps ×
pixels × images per call, LCM counted at half; 1.0 = one 512×768 image at 30 steps) and both
parts are ≥ 0. Two numbers come out of the recorded calls of a provider:

* :meth:`Estimator.ceiling` – the highest cost the recorded answers make plausible. Under the
  model, a call of ``u`` units costs at most ``c × max(1, u / u₀)`` for any recorded call of
  ``u₀`` units that cost ``c`` (all of the cost fixed, or all of it proportional), so the ceiling
  is the smallest such bound over the recorded sizes (plus one rounding step for a size not
  recorded itself). Once enough
  answers of at least two sizes are known (:data:`MIN_FIT`) and ``u`` lies between them, the fitted
  line plus its worst observed error is used when that is lower. Budgets reserve this.
* :meth:`Estimator.estimate` – what plans and queues show: the mean for a size already seen; the
  fitted fixed part + rate once the fit is trustworthy; otherwise the ceiling (said so).

With no recorded cost at all, the provider's stated fallback rate is all there is: its price is
unknown beforehand, and :meth:`Estimator.known` says so (a budgeted session then keeps at most one
such call in flight).
"""

from dataclasses import dataclass

REFERENCE_PIXELS = 512 * 768
REFERENCE_STEPS = 30
#: answers (of at least two sizes) needed before the fitted line replaces the ceiling
MIN_FIT = 8
#: one rounding step of the prices SinkIn reports
ROUNDING = 0.01


def units(steps, pixels, num_images, lcm):
    """Work units of a call: 1.0 = one 512x768 image at 30 steps without LCM."""
    return (steps / REFERENCE_STEPS) * (pixels / REFERENCE_PIXELS) * num_images * (0.5 if lcm else 1.0)


def cost_key(config):
    """``(steps, pixels, num_images, lcm)`` of a config dict (SinkIn field names; defaults applied)."""
    steps = config.get("steps") or 30
    pixels = (config.get("width") or 512) * (config.get("height") or 768)
    return steps, pixels, config.get("num_images") or 1, bool(config.get("lcm"))


@dataclass
class Estimate:
    credits: float
    basis: str  # "exact", "fit", "ceiling", "fallback", "free"


class _Size:
    """The recorded calls of one size: how many, their total, lowest and highest cost."""

    __slots__ = ("n", "total", "low", "high")

    def __init__(self):
        self.n, self.total, self.low, self.high = 0, 0.0, float("inf"), 0.0

    def add(self, cost, n=1, total=None, low=None, high=None):
        self.n += n
        self.total += cost * n if total is None else total
        self.low = min(self.low, cost if low is None else low)
        self.high = max(self.high, cost if high is None else high)


class Estimator:
    """Estimates credits for configs of one provider from the ``jobs`` history in ``db`` (a
    sqlite_utils Database or a sqlite3 connection); :meth:`add` learns from new answers."""

    def __init__(self, db, provider_name, fallback_per_image=1.0, free=False):
        self.free = free
        self.fallback_per_image = fallback_per_image
        self.sizes = {}  # units -> _Size
        self._fit = None
        self._cache = {}
        if free or db is None:
            return
        rows = db.execute(
            """select c.steps, c.width * c.height, c.num_images, coalesce(c.lcm, 0),
                      count(*), sum(j.credit_cost), min(j.credit_cost), max(j.credit_cost)
               from jobs j join configs c on c.id = j.config_id
               where j.kind = 'inference' and j.credit_cost is not null and j.provider = ?
                 and j.fallback = 0
               group by 1, 2, 3, 4""",
            [provider_name],
        ).fetchall()
        for steps, pixels, n, lcm, count, total, low, high in rows:
            if steps and pixels and n:
                self.sizes.setdefault(units(steps, pixels, n, lcm), _Size()).add(
                    0.0, n=count, total=total, low=low, high=high
                )

    @property
    def history(self):
        """How many recorded calls the estimates are learned from."""
        return sum(s.n for s in self.sizes.values())

    def known(self):
        """True when at least one cost is recorded (the price of a call can be bounded)."""
        return self.free or bool(self.sizes)

    def add(self, config, cost):
        """Learn from one more answer: ``config`` (SinkIn field names) cost ``cost`` credits."""
        if self.free or cost is None:
            return
        self.sizes.setdefault(units(*cost_key(config)), _Size()).add(float(cost))
        self._fit = None
        self._cache = {}

    # --- the model ----------------------------------------------------------------------------
    def fit(self):
        """``(fixed, rate, worst_error)`` fitted by least squares with both parts ≥ 0, or None
        until :data:`MIN_FIT` answers of at least two sizes are recorded."""
        if self._fit is not None:
            return self._fit or None
        n = self.history
        if n < MIN_FIT or len(self.sizes) < 2:
            self._fit = ()
            return None
        su = sum(s.n * u for u, s in self.sizes.items())
        suu = sum(s.n * u * u for u, s in self.sizes.items())
        sc = sum(s.total for s in self.sizes.values())
        suc = sum(u * s.total for u, s in self.sizes.items())
        det = n * suu - su * su
        rate = (n * suc - su * sc) / det if det else 0.0
        fixed = (sc - rate * su) / n
        if fixed < 0:
            fixed, rate = 0.0, suc / suu
        if rate < 0:
            fixed, rate = sc / n, 0.0
        error = max(
            max(s.high - (fixed + rate * u), (fixed + rate * u) - s.low) for u, s in self.sizes.items()
        )
        self._fit = (fixed, rate, max(0.0, error))
        return self._fit

    def _bound(self, u, slack=ROUNDING):
        """The highest cost the recorded sizes allow for ``u`` units (None when nothing is recorded)."""
        if not self.sizes:
            return None
        return min(
            (s.high + (0.0 if u == u0 else slack)) * (max(1.0, u / u0) if u0 else 1.0)
            for u0, s in self.sizes.items()
        )

    def _fallback(self, u):
        return self.fallback_per_image * u

    def ceiling(self, config):
        """The highest plausible cost of one call for ``config``: what a budget reserves."""
        if self.free:
            return 0.0
        u = units(*cost_key(config))
        bound = self._bound(u)
        if bound is None:
            return round(self._fallback(u), 4)
        fit = self.fit()
        if fit is not None and min(self.sizes) <= u <= max(self.sizes):
            fixed, rate, error = fit
            bound = min(bound, fixed + rate * u + error + ROUNDING)
        return round(bound, 4)

    def estimate(self, config):
        """An :class:`Estimate` for one config dict (SinkIn field names; defaults applied)."""
        if self.free:
            return Estimate(0.0, "free")
        key = cost_key(config)
        cached = self._cache.get(key)
        if cached:
            return cached
        u = units(*key)
        size = self.sizes.get(u)
        fit = self.fit()
        if size is not None:
            result = Estimate(round(size.total / size.n, 4), "exact")
        elif fit is not None:
            result = Estimate(round(fit[0] + fit[1] * u, 4), "fit")
        elif self.sizes:
            result = Estimate(round(self._bound(u, slack=0.0), 4), "ceiling")
        else:
            result = Estimate(round(self._fallback(u), 4), "fallback")
        self._cache[key] = result
        return result

    def describe(self, bases):
        """A sentence saying how estimates were made, given the set of bases used."""
        if self.free:
            return "this provider costs nothing"
        parts = []
        if bases & {"exact", "fit", "ceiling"}:
            parts.append(
                "learned from {} recorded call{}".format(self.history, "" if self.history == 1 else "s")
            )
        if "fit" in bases:
            fixed, rate, _ = self.fit()
            parts.append(
                "{:g} credits per call + {:g} per 512x768 image at 30 steps".format(
                    round(fixed, 4), round(rate, 4)
                )
            )
        if "ceiling" in bases:
            parts.append(
                "sizes not recorded yet are estimated at the most they could cost "
                "(the split between a per-call and a per-pixel-step price is not known yet)"
            )
        if "fallback" in bases:
            parts.append(
                "no costs recorded yet: assumed {:g} credits per 512x768 image at 30 steps "
                "(LCM half), scaled by steps, pixels and images".format(self.fallback_per_image)
            )
        return "; ".join(parts)


def estimator_for(db, provider):
    """An Estimator for a provider instance (its ``name``, ``free`` and fallback rate)."""
    return Estimator(db, provider.name, provider.fallback_cost_per_image(), free=provider.free)
