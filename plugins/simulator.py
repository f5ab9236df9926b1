"""The ``simulator`` provider: offline, free, deterministic. For demos, tests and trying a spec
before spending credits.

It checks payloads exactly as SinkIn documents them (the same :mod:`sinkin_pipeline.fields`),
answers in SinkIn's shapes, and returns ``simulator://`` URLs that encode everything needed to
render the image again, so a download resumed in another process gets the same PNG. An img2img
image starts from a small copy of its init image, so it resembles it.

``provider: simulator-no-img2img`` is the same simulator refusing every img2img call the way
SinkIn refuses one (``error_code`` != 0), so the img2img → txt2img fallback can be seen offline.
"""

import base64
import json
import uuid

from sinkin_pipeline import (
    FIELDS,
    UPSCALE_RANGES,
    UPSCALE_TYPES,
    DownloadError,
    GeneratedImage,
    InferenceResult,
    Provider,
    ServiceError,
    UpscaleResult,
    check_image_bytes,
    hookimpl,
)

from .render import render_png, render_settings, tiny_copy, upscale_png

SCHEME = "simulator://"
MODELS = {
    "models": [
        {"id": "yBG2r9O", "title": "majicMIX realistic"},
        {"id": "mGYMaD5", "title": "AbsoluteReality"},
        {"id": "4zdwGOB", "title": "DreamShaper"},
        {"id": "r2La2w2", "title": "Realistic Vision"},
        {"id": "K6KkkKl", "title": "Deliberate"},
        {"id": "vln8Nwr", "title": "MeinaMix"},
    ],
    "loras": [
        {"id": "lora-film", "title": "Film grain (simulated)"},
        {"id": "lora-ink", "title": "Ink sketch (simulated)"},
    ],
    "video_models": [],
}


def _encode(data):
    return (
        base64.urlsafe_b64encode(json.dumps(data, sort_keys=True, separators=(",", ":")).encode())
        .decode()
        .rstrip("=")
    )


def _decode(text):
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def check_payload(payload, has_init_image=False):
    """SinkIn's documented checks; raises ServiceError like SinkIn's error_code answer."""
    for name in ("model_id", "prompt"):
        if not payload.get(name):
            raise ServiceError("{} is required".format(name))
    for name, value in payload.items():
        fld = FIELDS.get(name)
        if fld is None:
            raise ServiceError("unknown field {}".format(name))
        if value is None:
            continue
        _, problem = fld.check(value)
        if problem:
            raise ServiceError("invalid {}: {!r} ({})".format(name, value, problem))


class SimulatorProvider(Provider):
    name = "simulator"
    free = True
    #: its model and LoRA ids are SinkIn's: it shares sinkin's cached list (see models.catalogue_of)
    catalogue = "sinkin"

    #: answer every img2img call with SinkIn's kind of refusal (see ``simulator-no-img2img``)
    refuse_img2img = False

    def inference(self, payload, init_image=None):
        payload = {k: v for k, v in payload.items() if v is not None}
        check_payload(payload, has_init_image=init_image is not None)
        if init_image is not None and self.refuse_img2img:
            raise ServiceError(
                "img2img is not available for model {} (refused by {}, which simulates "
                "SinkIn refusing img2img)".format(payload.get("model_id"), self.name)
            )
        settings = render_settings(payload)
        if init_image is not None:
            filename, data = init_image
            problem = check_image_bytes(data)
            if problem:
                raise ServiceError("invalid init_image_file {}: {}".format(filename, problem))
            settings["image_strength"] = payload.get("image_strength", 0.75)
            settings["init"] = base64.b64encode(tiny_copy(data)).decode()
        count = int(payload.get("num_images") or 4)
        token = _encode(settings)
        urls = ["{}render/{}/{}.png".format(SCHEME, token, i) for i in range(count)]
        inf_id = "sim" + uuid.uuid4().hex[:11]
        return InferenceResult(
            images=[GeneratedImage(url=url) for url in urls],
            credit_cost=0.0,
            inf_id=inf_id,
            raw={"error_code": 0, "images": urls, "credit_cost": 0, "inf_id": inf_id},
        )

    def upscale(self, payload):
        if not payload.get("inf_id"):
            raise ServiceError("inf_id is required")
        url = payload.get("url") or ""
        if not url.startswith(SCHEME + "render/"):
            raise ServiceError("url is not an image of this provider")
        kind = payload.get("type") or "esrgan"
        if kind not in UPSCALE_TYPES:
            raise ServiceError("type must be one of " + ", ".join(UPSCALE_TYPES))
        options = {"type": kind}
        for key in ("scale", "strength"):
            low, high, default = UPSCALE_RANGES[key]
            value = payload.get(key)
            value = default if value is None else float(value)
            if not low <= value <= high:
                raise ServiceError("{} must be between {:g} and {:g}".format(key, low, high))
            options[key] = value
        options["src"] = url
        url = "{}upscale/{}.png".format(SCHEME, _encode(options))
        return UpscaleResult(url=url, credit_cost=0.0, raw={"error_code": 0, "output": url, "credit_cost": 0})

    def models(self):
        return json.loads(json.dumps(MODELS))

    def download(self, url):
        from io import BytesIO

        from PIL import Image

        try:
            if url.startswith(SCHEME + "render/"):
                token, name = url[len(SCHEME + "render/") :].split("/")
                settings = _decode(token)
                init = settings.pop("init", None)
                init_image = Image.open(BytesIO(base64.b64decode(init))) if init else None
                return render_png(settings, int(name.split(".")[0]), init_image)
            if url.startswith(SCHEME + "upscale/"):
                options = _decode(url[len(SCHEME + "upscale/") :].rsplit(".", 1)[0])
                source = self.download(options["src"])
                return upscale_png(source, options["scale"], options["type"], options["strength"])
        except (ValueError, KeyError, TypeError) as e:
            raise DownloadError("not a simulator image URL: {}".format(e))
        raise DownloadError("not a simulator image URL: {}".format(url[:80]))

    def fallback_cost_per_image(self):
        return 0.0


class RefusingImg2ImgSimulator(SimulatorProvider):
    """The simulator, refusing img2img: shows the img2img → txt2img fallback without a network."""

    name = "simulator-no-img2img"
    refuse_img2img = True


@hookimpl
def register_providers(register):
    register(SimulatorProvider)
    register(RefusingImg2ImgSimulator)
