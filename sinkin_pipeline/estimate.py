"""Credit estimates, learned from the costs already recorded for similar settings.

An inference's cost is driven by its steps, pixels, images per call and LCM. For a config we use,
in order: the mean recorded cost of calls with exactly the same (steps, width×height, num_images,
lcm); else a per-unit rate learned from every recorded call of that provider (cost per image per
30 steps per 512×768 pixels, LCM counted at half), times the config's units; else the provider's
stated fallback rate. Every estimate says which basis it used.
"""
from dataclasses import dataclass
from statistics import median

REFERENCE_PIXELS = 512 * 768
REFERENCE_STEPS = 30


def units(steps, pixels, num_images, lcm):
    """Work units of a call: 1.0 = one 512x768 image at 30 steps without LCM."""
    return (steps / REFERENCE_STEPS) * (pixels / REFERENCE_PIXELS) * num_images * (0.5 if lcm else 1.0)


@dataclass
class Estimate:
    credits: float
    basis: str  # "exact", "rate", "fallback", "free"


class Estimator:
    """Estimates credits for configs of one provider from the ``jobs`` history in ``db``."""

    def __init__(self, db, provider_name, fallback_per_image=1.0, free=False):
        self.free = free
        self.fallback_per_image = fallback_per_image
        self.exact = {}
        self.rate = None
        self.history = 0
        if free:
            return
        rows = db.execute(
            """select c.steps, c.width * c.height, c.num_images, coalesce(c.lcm, 0), j.credit_cost
               from jobs j join configs c on c.id = j.config_id
               where j.kind = 'inference' and j.credit_cost is not null and j.provider = ?
                 and j.fallback = 0""",
            [provider_name],
        ).fetchall()
        groups = {}
        rates = []
        for steps, pixels, n, lcm, cost in rows:
            if not steps or not pixels or not n:
                continue
            groups.setdefault((steps, pixels, n, bool(lcm)), []).append(cost)
            rates.append(cost / units(steps, pixels, n, lcm))
        self.exact = {k: sum(v) / len(v) for k, v in groups.items()}
        self.history = len(rates)
        if rates:
            self.rate = median(rates)
        self._cache = {}

    def estimate(self, config):
        """An :class:`Estimate` for one config dict (SinkIn field names; defaults applied)."""
        if self.free:
            return Estimate(0.0, "free")
        steps = config.get("steps") or 30
        pixels = (config.get("width") or 512) * (config.get("height") or 768)
        n = config.get("num_images") or 1
        lcm = bool(config.get("lcm"))
        key = (steps, pixels, n, lcm)
        cached = self._cache.get(key)
        if cached:
            return cached
        if key in self.exact:
            result = Estimate(round(self.exact[key], 4), "exact")
        elif self.rate is not None:
            result = Estimate(round(self.rate * units(*key), 4), "rate")
        else:
            result = Estimate(round(self.fallback_per_image * units(*key), 4), "fallback")
        self._cache[key] = result
        return result

    def describe(self, bases):
        """A sentence saying how estimates were made, given the set of bases used."""
        if self.free:
            return "this provider costs nothing"
        parts = []
        if "exact" in bases or "rate" in bases:
            parts.append("learned from {} recorded call{}".format(self.history, "" if self.history == 1 else "s"))
        if "fallback" in bases:
            parts.append(
                "no costs recorded yet: assumed {:g} credits per 512x768 image at 30 steps "
                "(LCM half), scaled by steps, pixels and images".format(self.fallback_per_image))
        return "; ".join(parts)


def estimator_for(db, provider):
    """An Estimator for a provider instance (its ``name``, ``free`` and fallback rate)."""
    return Estimator(db, provider.name, provider.fallback_cost_per_image(), free=provider.free)
