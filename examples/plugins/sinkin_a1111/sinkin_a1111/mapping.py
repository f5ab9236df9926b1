"""From a SinkIn Lab payload (SinkIn's field names, the user's vocabulary) to a web UI request.

=====================  ============================================================
SinkIn Lab field        AUTOMATIC1111 / Forge / SD.Next request
=====================  ============================================================
prompt                  ``prompt`` (+ ``<lora:NAME:WEIGHT>`` when ``lora`` is set)
negative_prompt         ``negative_prompt``
seed                    ``seed`` (absent or -1: random; the seed used is read back from ``info``)
steps                   ``steps``
scale                   ``cfg_scale``
width / height          ``width`` / ``height``
num_images              ``batch_size`` (``n_iter`` stays 1)
scheduler               ``sampler_name`` through :data:`SAMPLER_FOR_SCHEDULER`
model_id                ``override_settings.sd_model_checkpoint``
lora / lora_scale       ``<lora:lora:lora_scale>`` appended to the prompt
init_image              ``/sdapi/v1/img2img`` with ``init_images: [base64]``
image_strength          ``denoising_strength``
=====================  ============================================================

Provider options (top-level spec keys, declared as ``OPTIONS`` in :mod:`sinkin_a1111.provider`):
``sampler_name`` overrides the table, ``schedule_type`` sets the newer ``scheduler`` field
(Karras, Exponential…), ``clip_skip`` sets ``CLIP_stop_at_last_layers``, ``hr_scale`` turns on hires fix,
``hr_upscaler`` / ``hr_second_pass_steps`` go with it.
SinkIn-only fields (``lcm``, ``version``, ``controlnet``) have no
counterpart and are refused with a message rather than silently dropped; ``use_default_neg`` is
ignored (the web UI has no default negative prompt).
"""

from __future__ import annotations

import base64
from typing import Any

from sinkin_pipeline import A1111_SAMPLERS

#: SinkIn's scheduler names → the web UI's sampler names (the core's table, also used for the
#: A1111 parameter line of the review app).
SAMPLER_FOR_SCHEDULER: dict[str, str] = dict(A1111_SAMPLERS)

#: Fields with no counterpart in the web UI: a non-default value is an error, not a silent drop.
UNSUPPORTED: dict[str, Any] = {"lcm": False, "controlnet": None, "version": None}


class MappingError(ValueError):
    """A payload the web UI cannot run as asked (the message names the field)."""


def prompt_with_lora(prompt: str, lora: str | None, lora_scale: float | None) -> str:
    if not lora:
        return prompt
    weight = 0.75 if lora_scale is None else float(lora_scale)
    return "{} <lora:{}:{:g}>".format(prompt, lora, weight)


def build_request(
    payload: dict[str, Any], options: dict[str, Any] | None = None, init_image: bytes | None = None
) -> tuple[str, dict[str, Any]]:
    """``(path, json_body)`` for one inference. ``options`` are the provider's own options
    (``sampler_name``, ``schedule_type``, ``clip_skip``, ``hr_*``) with None for unset ones."""
    options = {k: v for k, v in (options or {}).items() if v is not None}
    for name, default in UNSUPPORTED.items():
        value = payload.get(name)
        if value not in (None, default, "") and not (name == "lcm" and not value):
            raise MappingError(
                "{} is a SinkIn feature the web UI does not have: remove it from the spec "
                "for provider a1111".format(name)
            )
    body: dict[str, Any] = {
        "prompt": prompt_with_lora(
            str(payload.get("prompt") or ""), payload.get("lora"), payload.get("lora_scale")
        ),
        "negative_prompt": payload.get("negative_prompt") or "",
        "seed": int(payload["seed"]) if payload.get("seed") is not None else -1,
        "steps": int(payload.get("steps") or 20),
        "cfg_scale": float(payload.get("scale") or 7.0),
        "width": int(payload.get("width") or 512),
        "height": int(payload.get("height") or 512),
        "batch_size": int(payload.get("num_images") or 1),
        "n_iter": 1,
        "save_images": False,
        "send_images": True,
    }
    scheduler = payload.get("scheduler")
    sampler = options.get("sampler_name") or (SAMPLER_FOR_SCHEDULER.get(scheduler) if scheduler else None)
    if scheduler and not sampler:
        raise MappingError(
            "scheduler {!r} has no web UI sampler; known: {}".format(
                scheduler, ", ".join(SAMPLER_FOR_SCHEDULER)
            )
        )
    if sampler:
        body["sampler_name"] = sampler
    if options.get("schedule_type"):
        body["scheduler"] = options["schedule_type"]
    override: dict[str, Any] = {}
    if payload.get("model_id"):
        override["sd_model_checkpoint"] = str(payload["model_id"])
    if options.get("clip_skip"):
        override["CLIP_stop_at_last_layers"] = int(options["clip_skip"])
    if override:
        body["override_settings"] = override
        body["override_settings_restore_afterwards"] = True
    if options.get("hr_scale"):
        body["enable_hr"] = True
        body["hr_scale"] = float(options["hr_scale"])
        body["hr_upscaler"] = options.get("hr_upscaler") or "Latent"
        if options.get("hr_second_pass_steps"):
            body["hr_second_pass_steps"] = int(options["hr_second_pass_steps"])
        body["denoising_strength"] = float(options.get("hr_denoising_strength", 0.5))
    if init_image is not None:
        body["init_images"] = [base64.b64encode(init_image).decode("ascii")]
        strength = payload.get("image_strength")
        body["denoising_strength"] = 0.75 if strength is None else float(strength)
        body.pop("enable_hr", None)
        return "/sdapi/v1/img2img", body
    return "/sdapi/v1/txt2img", body
