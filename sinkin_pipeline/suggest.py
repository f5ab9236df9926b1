"""The suggested next run, from a run's insights: keep the values whose interval overlaps the best
one, drop the clearly worse, refine numeric settings around the best within SinkIn's ranges (steps
best at 35 of 20, 35 → 30, 35, 40), and draw fresh seeds to confirm. Every decision comes with a
one-line reason; the result is a spec that ``sinkin plan`` / ``sinkin run`` accept unchanged."""

import json
import math

import yaml

from .fields import FIELDS
from .insights import compute, fmt, fmt_ci, load_groups, sort_key
from .varying import format_value

#: settings kept whole: the subjects of the images, not something to tune
KEEP_ALL = ("prompt",)
#: numeric settings that are counts or identities, not dials to refine
NOT_REFINED = ("seed", "num_images")
MIN_SEEDS, MAX_SEEDS = 2, 8


def nice_step(gap: float, fld) -> float:
    """About half ``gap``, rounded down to 1, 2 or 5 × a power of ten (a multiple of the field's
    ``multiple_of``; at least 1 for whole numbers)."""
    target = gap / 2.0
    if fld.multiple_of:
        m = fld.multiple_of
        return max(m, int(round(target / m)) * m)
    if target <= 0:
        return 1 if fld.kind == "int" else 0.05
    power = 10 ** math.floor(math.log10(target))
    step = max(c * power for c in (1, 2, 5) if c * power <= target + 1e-12)
    if fld.kind == "int":
        return max(1, int(step))
    return max(0.05, round(step, 4))


def refine(axis, values, best):
    """``(new values, reason)`` for a numeric setting: the best value and one step either side."""
    fld = FIELDS[axis]
    numbers = sorted(v for v in values if v is not None)
    i = numbers.index(best)
    gaps = [abs(numbers[j] - best) for j in (i - 1, i + 1) if 0 <= j < len(numbers)]
    step = nice_step(min(gaps), fld)
    new = []
    for x in (best - step, best, best + step):
        x = int(round(x)) if fld.kind == "int" else round(x, 4)
        if fld.min <= x <= fld.max and (not fld.multiple_of or x % fld.multiple_of == 0) and x not in new:
            new.append(x)
    shown = ", ".join(format_value(axis, v) for v in numbers)
    return new, "{}: best at {} of {} → try {}".format(
        axis, format_value(axis, best), shown, ", ".join(format_value(axis, v) for v in new)
    )


def judge(axis_info):
    """``(kept values, reason)`` for a categorical setting: drop a value when its paired
    difference to the best is below 0 with 95% confidence (2+ pairs), or, without pairs, when
    its interval lies wholly below the best's."""
    best = axis_info["best"]
    name = axis_info["axis"]
    by_value = {v["value"]: v for v in axis_info["values"]}
    paired = {p["value"]: p for p in axis_info["paired"]}
    top = by_value[best]
    kept, dropped = ["{} (best, {})".format(format_value(name, best), fmt(top["mean"]))], []
    values = [best]
    for v in axis_info["values"]:
        if v["value"] == best:
            continue
        p = paired.get(v["value"])
        label = format_value(name, v["value"])
        if p and p["pairs"] >= 2 and p["ci_high"] is not None and p["ci_high"] < 0:
            dropped.append(
                "{} ({:+.1f}, {} over {} pairs)".format(
                    label, p["mean_diff"], fmt_ci(p["ci_low"], p["ci_high"]), p["pairs"]
                )
            )
        elif v["ci_high"] is not None and top["ci_low"] is not None and v["ci_high"] < top["ci_low"]:
            dropped.append(
                "{} ({}, {} below the best's interval)".format(
                    label, fmt(v["mean"]), fmt_ci(v["ci_low"], v["ci_high"])
                )
            )
        else:
            values.append(v["value"])
            kept.append(
                "{} ({})".format(
                    label,
                    "too few ratings to judge"
                    if v["ci_low"] is None and not (p and p["ci_low"] is not None)
                    else "interval overlaps the best",
                )
            )
    reason = "{}: keep {}".format(name, ", ".join(kept))
    if dropped:
        reason += "; drop {} as clearly worse".format(", ".join(dropped))
    return sorted(values, key=sort_key), reason


def suggest(db, run_id: int, data=None, result=None, normalize=None) -> dict:
    """``{"run_id", "spec", "reasons", "yaml", "init_asset_ids"}`` for the next run after
    ``run_id``, judged on its insights: with ``normalize="prompt"``, on the scores as deviations
    from each prompt's mean, as the insights page and ``sinkin insights --normalize prompt`` show
    them (``data``/``result``: its already loaded Groups and insights, computed the same way).
    LookupError for a missing run; InsightsError for an unknown normalisation."""
    from .db import db_path_of
    from .media import resolve_media
    from .spec import check_spec

    data = data or load_groups(db, [run_id])
    result = result or compute(data, normalize)
    run = db.execute("select name, provider, spec from runs where id = ?", [run_id]).fetchone()
    try:
        given = json.loads(run[2] or "{}")
    except ValueError:
        given = {}
    chosen, reasons = {}, []
    if normalize:
        reasons.append("scores taken as deviations from each prompt's mean (--normalize prompt)")
    for axis_info in result["axes"]:
        name = axis_info["axis"]
        values = [v["value"] for v in axis_info["values"]]
        if name == "seed":
            continue
        if name in KEEP_ALL or name not in FIELDS and name != "init_asset_id":
            chosen[name] = values
            reasons.append(
                "{}: keep all {} values (the subjects, not a setting to tune)".format(name, len(values))
                if name in KEEP_ALL
                else "{}: keep all {} values".format(name, len(values))
            )
            continue
        if axis_info["best"] is None:
            chosen[name] = values
            reasons.append("{}: keep all {} values (no ratings yet)".format(name, len(values)))
            continue
        fld = FIELDS.get(name)
        if fld is not None and fld.kind in ("int", "float") and name not in NOT_REFINED:
            chosen[name], reason = refine(name, values, axis_info["best"])
        else:
            chosen[name], reason = judge(axis_info)
        reasons.append(reason)
    seed_axis = next((a for a in result["axes"] if a["axis"] == "seed"), None)
    seeds = len(seed_axis["values"]) if seed_axis else 1
    seeds = min(MAX_SEEDS, max(MIN_SEEDS, seeds))
    reasons.append("seed: {} fresh random seeds, to confirm on new noise".format(seeds))
    spec = {"name": "{} · next".format(run[0] or "run {}".format(run_id)), "provider": run[1]}
    for name in FIELDS:
        if name == "seed":
            spec["seed"] = {"random": seeds}
            continue
        values = chosen.get(name, [data.constants.get(name)])
        values = [v for v in values if v is not None]
        if values:
            spec[name] = values[0] if len(values) == 1 else values
    from .providers import ProviderError, provider_options

    try:  # the provider's own options (a1111's clip_skip...): kept like the run had them
        options = provider_options(run[1])
    except ProviderError:
        options = {}
    for name, fld in options.items():
        values = [v for v in chosen.get(name, [data.constants.get(name)]) if v is not None]
        if fld.kind == "bool":  # SQLite's json_extract gives 0/1
            values = list(dict.fromkeys(bool(v) for v in values))
        if values:
            spec[name] = values[0] if len(values) == 1 else values
    asset_ids = [
        a for a in chosen.get("init_asset_id", [data.constants.get("init_asset_id")]) if a is not None
    ]
    if asset_ids:
        root = db_path_of(db)
        paths = dict(
            db.execute(
                "select id, path from assets where id in ({})".format(",".join("?" for _ in asset_ids)),
                asset_ids,
            ).fetchall()
        )
        images = [str(resolve_media(root, paths[a])) for a in asset_ids if a in paths]
        spec["init_image"] = images[0] if len(images) == 1 else images
    else:
        for name, fld in FIELDS.items():
            if fld.img2img_only:
                spec.pop(name, None)
    if "lora" not in spec:
        spec.pop("lora_scale", None)
    if given.get("fallback") is False:
        spec["fallback"] = False
    check_spec(spec)  # a suggestion sinkin plan would refuse is a bug: fail loudly here
    return {
        "run_id": run_id,
        "spec": spec,
        "reasons": reasons,
        "init_asset_ids": asset_ids,
        "yaml": spec_yaml(spec, reasons, run_id, normalize),
    }


def spec_yaml(spec: dict, reasons, run_id, normalize=None) -> str:
    """The spec as YAML (lists inline, prompts one per line), the reasoning as comments on top."""
    lines = [
        "# Suggested by `sinkin suggest --run {}{}`:".format(
            run_id, " --normalize {}".format(normalize) if normalize else ""
        )
    ]
    lines += ["#   " + r for r in reasons]
    lines.append("# Check it with `sinkin plan FILE`, queue it with `sinkin run FILE`.")
    for key, value in spec.items():
        if (
            isinstance(value, list)
            and key in ("prompt", "negative_prompt", "init_image")
            or isinstance(value, str)
            and "\n" in value
        ):
            lines.append(
                yaml.safe_dump(
                    {key: value}, sort_keys=False, allow_unicode=True, width=1000, default_flow_style=False
                ).rstrip()
            )
        else:
            lines.append(
                "{}: {}".format(
                    key,
                    yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=1000)
                    .strip()
                    .removesuffix("\n...")
                    .removesuffix("...")
                    .strip(),
                )
            )
    return "\n".join(lines) + "\n"
