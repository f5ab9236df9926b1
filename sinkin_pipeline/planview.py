"""What `sinkin plan` prints: counts, every axis with its true number of values, the seeds, the
estimate – worded like money ("1 job", "~0.67 credits")."""

from .spec import draw_seeds
from .wording import credit_text, plural

#: values of one axis listed before "…"
SHOWN_VALUES = 8


def _values(values):
    shown = ", ".join(str(v) for v in values[:SHOWN_VALUES])
    return shown + (", …" if len(values) > SHOWN_VALUES else "")


def axis_lines(spec, rng=None):
    """One line per setting that varies, counted from the spec (not from a shortened list), plus
    the seeds: random ones are drawn here and shown, with how to keep them."""
    lines = []
    for key, values in spec.values.items():
        if key != "seed" and len(values) > 1:
            lines.append("  {}: {} ({})".format(key, plural(len(values), "value"), _values(values)))
    if spec.random_seeds:
        seeds = draw_seeds(spec.random_seeds, rng)
        lines.append(
            "  seed: {} drawn now: {} (`sinkin run` draws its own and records them; to keep "
            "these, write seed: [{}] in the spec)".format(
                plural(spec.random_seeds, "random value"), _values(seeds), ", ".join(str(s) for s in seeds)
            )
        )
    elif len(spec.values.get("seed", [])) > 1:
        lines.append(
            "  seed: {} ({})".format(plural(len(spec.values["seed"]), "value"), _values(spec.values["seed"]))
        )
    return lines


def plan_lines(spec, plan, rng=None):
    """The lines `sinkin plan` prints for a checked spec and its :class:`runs.Plan`."""
    lines = [
        "{}, {} on provider {}".format(plural(plan.jobs, "job"), plural(plan.images, "image"), plan.provider)
    ]
    axes = axis_lines(spec, rng)
    if axes:
        lines.append("Settings that vary:")
        lines.extend(axes)
    else:
        lines.append("No setting varies: every job uses the same settings.")
    if not spec.random_seeds and "seed" not in spec.values:
        lines.append("Seed: one random seed per job, drawn and recorded by `sinkin run`.")
    lines.append("Estimated: {} ({})".format(credit_text(plan.credits, estimate=True), plan.basis))
    lines.extend("Warning: " + w for w in plan.warnings)
    return lines
