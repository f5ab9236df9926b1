"""What a provider returns: typed results. Images come back as URLs to download *or* as bytes.

The worker stores a result (:meth:`InferenceResult.record`, never the image bytes) before it writes
or downloads any image, so a paid answer is never lost; :meth:`InferenceResult.from_record` reads it
back (also SinkIn's wire dicts stored by older versions, and old-style dict answers of a provider).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class GeneratedImage:
    """One image of an answer: a ``url`` to download, or its ``data`` (PNG/JPEG/WebP bytes).
    ``seed`` is the seed the provider actually used, when it reports one."""

    url: str | None = None
    data: bytes | None = None
    seed: int | None = None


@dataclass
class InferenceResult:
    """The answer to one inference: its images, the credits charged, the provider's id for the
    inference (SinkIn's ``inf_id``, needed to upscale) and the raw answer (kept for the record;
    leave image bytes out of it)."""

    images: list[GeneratedImage]
    credit_cost: float = 0.0
    inf_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """A JSON-able dict without image bytes (stored as ``jobs.raw_response``)."""
        return {
            "images": [{"url": i.url, "seed": i.seed, "inline": i.data is not None} for i in self.images],
            "credit_cost": self.credit_cost,
            "inf_id": self.inf_id,
            "raw": self.raw,
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> InferenceResult:
        """Read back :meth:`record` or a SinkIn wire dict (``{"error_code": 0, "images": [urls]...}``).
        Images that came inline come back with neither ``url`` nor ``data`` (bytes are never stored)."""
        images = []
        for item in data.get("images") or []:
            if isinstance(item, str):
                images.append(GeneratedImage(url=item))
            else:
                images.append(GeneratedImage(url=item.get("url"), seed=item.get("seed")))
        raw = data["raw"] if "raw" in data and "error_code" not in data else data
        return cls(
            images=images, credit_cost=float(data.get("credit_cost") or 0), inf_id=data.get("inf_id"), raw=raw
        )


@dataclass
class UpscaleResult:
    """The answer to one upscale: the upscaled image as a ``url`` or ``data``, and its cost."""

    url: str | None = None
    data: bytes | None = None
    credit_cost: float = 0.0
    raw: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "inline": self.data is not None,
            "credit_cost": self.credit_cost,
            "raw": self.raw,
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> UpscaleResult:
        """Read back :meth:`record` or a SinkIn wire dict (``{"error_code": 0, "output": url...}``)."""
        if "error_code" in data or "output" in data:
            return cls(url=data.get("output"), credit_cost=float(data.get("credit_cost") or 0), raw=data)
        return cls(
            url=data.get("url"), credit_cost=float(data.get("credit_cost") or 0), raw=data.get("raw") or {}
        )


def as_inference_result(answer: InferenceResult | dict[str, Any]) -> InferenceResult:
    """A provider's answer as an :class:`InferenceResult` (old providers return SinkIn's dict)."""
    if isinstance(answer, InferenceResult):
        return answer
    if isinstance(answer, dict):
        return InferenceResult.from_record(answer)
    raise TypeError(
        "a provider's inference() must return an InferenceResult, got {}".format(type(answer).__name__)
    )


def as_upscale_result(answer: UpscaleResult | dict[str, Any]) -> UpscaleResult:
    if isinstance(answer, UpscaleResult):
        return answer
    if isinstance(answer, dict):
        return UpscaleResult.from_record(answer)
    raise TypeError(
        "a provider's upscale() must return an UpscaleResult, got {}".format(type(answer).__name__)
    )
