"""Reusing one image's settings: as a spec (the run form's "Remix" starts from it) and as an
AUTOMATIC1111-style parameter line (what A1111, Forge, ComfyUI loaders and civitai read)."""

import json
from collections.abc import Mapping

from .fields import A1111_SAMPLERS, CONFIG_FIELDS, FIELDS


def image_config(db, image_id: int) -> dict:
    """The image's config row with its run's provider and name; LookupError when there is no
    such image."""
    cursor = db.execute(
        "select configs.*, runs.provider as provider, runs.name as run_name from images "
        "join configs on configs.id = images.config_id join runs on runs.id = images.run_id "
        "where images.id = ?",
        [int(image_id)],
    )
    row = cursor.fetchone()
    if row is None:
        raise LookupError("image {} not found".format(image_id))
    return dict(zip([c[0] for c in cursor.description], row))


def image_spec(config: Mapping) -> dict:
    """A spec (SinkIn field names, single values) that makes this image again: every field the
    config holds, the provider, and the seed it was drawn with. Booleans as true/false; fields
    an img2img-less config leaves empty are left out."""
    spec = {"provider": config.get("provider")}
    for name in CONFIG_FIELDS:
        value = config.get(name)
        if value is None or (value == "" and name != "negative_prompt"):
            continue
        if FIELDS[name].kind == "bool":
            value = bool(value)
        spec[name] = value
    if config.get("fallback_enabled") is not None:
        spec["fallback"] = bool(config["fallback_enabled"])
    try:  # the provider's own options the config was made with (a1111's clip_skip...)
        options = json.loads(config.get("provider_options") or "{}")
    except (TypeError, ValueError):
        options = {}
    if isinstance(options, dict):
        spec.update({k: v for k, v in options.items() if k not in spec and v is not None})
    return spec


def _number(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def a1111_parameters(config: Mapping, model_title: str | None = None) -> str:
    """The A1111 "parameters" text for one config: the prompt (with ``<lora:ID:WEIGHT>`` when a
    LoRA is set), a ``Negative prompt:`` line when there is one, then ``Steps: …, Sampler: …``."""
    prompt = config.get("prompt") or ""
    if config.get("lora"):
        prompt += " <lora:{}:{}>".format(config["lora"], _number(config.get("lora_scale") or 1))
    lines = [prompt]
    if config.get("negative_prompt"):
        lines.append("Negative prompt: {}".format(config["negative_prompt"]))
    parts = [
        ("Steps", config.get("steps")),
        ("Sampler", A1111_SAMPLERS.get(config.get("scheduler"), config.get("scheduler"))),
        ("CFG scale", config.get("scale")),
        ("Seed", config.get("seed")),
        (
            "Size",
            "{}x{}".format(config.get("width"), config.get("height"))
            if config.get("width") and config.get("height")
            else None,
        ),
        ("Model", model_title or config.get("model_id")),
        ("Model hash", None),
        ("Denoising strength", config.get("image_strength")),
        ("ControlNet", config.get("controlnet")),
        ("SinkIn model", config.get("model_id")),
        ("LCM", "on" if config.get("lcm") else None),
    ]
    lines.append(", ".join("{}: {}".format(k, _number(v)) for k, v in parts if v not in (None, "")))
    return "\n".join(lines)


__all__ = ["A1111_SAMPLERS", "image_config", "image_spec", "a1111_parameters"]
