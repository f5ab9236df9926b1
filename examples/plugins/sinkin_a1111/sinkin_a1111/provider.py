"""The ``a1111`` provider: HTTP calls to the web UI, answers turned into SinkIn Lab's typed results,
and failures mapped to the worker's three kinds (see :mod:`sinkin_a1111.mapping` for the fields)."""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
from typing import Any

import httpx

from sinkin_pipeline import (
    ConfigurationError,
    Field,
    GeneratedImage,
    InferenceResult,
    OutcomeUnknown,
    Provider,
    ServiceError,
    TransientError,
    Upscaler,
    UpscaleResult,
    hookimpl,
)

from .mapping import MappingError, build_request

DEFAULT_URL = "http://127.0.0.1:7860"
#: upscalers offered when the web UI cannot be asked (names as the web UI spells them)
DEFAULT_UPSCALERS = ("R-ESRGAN 4x+", "ESRGAN_4x", "Lanczos")
#: the provider's own settings, beside SinkIn's fields (a spec sets them as top-level keys)
OPTIONS = [
    Field(
        "sampler_name",
        "str",
        default=None,
        help="a web UI sampler by name (e.g. 'DPM++ 2M Karras'); overrides scheduler",
        extra={"menu": "sampler"},  # the run form offers the web UI's cached samplers
    ),
    Field(
        "schedule_type",
        "str",
        default=None,
        help="the web UI's scheduler (Karras, Exponential…) on versions that have one",
        extra={"menu": "schedule_type"},  # the run form offers the web UI's cached schedulers
    ),
    Field("clip_skip", "int", default=None, min=1, max=12, help="CLIP_stop_at_last_layers"),
    Field("hr_scale", "float", default=None, min=1, max=4, help="hires fix: upscale by this factor"),
    Field("hr_upscaler", "str", default=None, help="hires fix upscaler (default Latent)"),
    Field(
        "hr_second_pass_steps",
        "int",
        default=None,
        min=0,
        max=150,
        help="hires fix steps (0 = same as steps)",
    ),
]
OPTION_NAMES = tuple(f.name for f in OPTIONS)


def base_url() -> str:
    return (os.environ.get("SINKIN_A1111_URL") or DEFAULT_URL).rstrip("/")


def _auth() -> tuple[str, str] | None:
    value = os.environ.get("SINKIN_A1111_AUTH")
    if not value:
        return None
    user, _, password = value.partition(":")
    return (user, password)


def _concurrency() -> tuple[int, str | None]:
    """``(requests in flight at most, problem)``: ``SINKIN_A1111_CONCURRENCY``, 1 by default (a
    web UI on one GPU generates one image at a time; more requests only wait in its queue)."""
    value = (os.environ.get("SINKIN_A1111_CONCURRENCY") or "").strip()
    if not value:
        return 1, None
    if not value.isdigit() or int(value) < 1:
        return 1, "SINKIN_A1111_CONCURRENCY={!r}: expected a whole number of requests, 1 or more".format(
            value
        )
    return int(value), None


def _timeout() -> httpx.Timeout:
    try:
        read = float(os.environ.get("SINKIN_A1111_TIMEOUT") or 600)
    except ValueError:
        read = 600.0
    return httpx.Timeout(connect=5.0, read=read, write=60.0, pool=read)


def _detail(response: httpx.Response) -> str:
    """The web UI's own words for an error answer (FastAPI's ``detail``, or ``error: detail``)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or "HTTP {}".format(response.status_code)
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, list):
            detail = "; ".join(
                "{}: {}".format(".".join(str(p) for p in d.get("loc", [])), d.get("msg"))
                for d in detail
                if isinstance(d, dict)
            )
        if body.get("error"):
            return "{}: {}".format(body["error"], detail or "")
        if detail:
            return str(detail)
    return json.dumps(body)[:200]


def _b64_image(data: Any) -> bytes:
    if not isinstance(data, str):
        raise ServiceError("the web UI answered without an image")
    if data.startswith("data:"):
        data = data.split(",", 1)[-1]
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ServiceError("the web UI answered with an image that is not base64")


class A1111Provider(Provider):
    """AUTOMATIC1111 / Forge / SD.Next through ``/sdapi/v1``. Free (your GPU), images as bytes."""

    name = "a1111"
    free = True
    options = OPTIONS

    def __init__(self) -> None:
        self.base_url = base_url()
        self._client = httpx.Client(auth=_auth(), follow_redirects=False)
        # one GPU: one request at a time unless told (`--provider-concurrency a1111=N` overrides)
        self.max_in_flight, self._concurrency_problem = _concurrency()

    def check_ready(self) -> None:
        if self._concurrency_problem:
            raise ConfigurationError(self._concurrency_problem)

    def __repr__(self) -> str:
        return "<A1111Provider {}>".format(self.base_url)

    # --- HTTP -------------------------------------------------------------------------------
    def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None, timeout: httpx.Timeout | None = None
    ) -> Any:
        url = self.base_url + path
        try:
            response = self._client.request(method, url, json=body, timeout=timeout or _timeout())
        except (httpx.ConnectError, httpx.ConnectTimeout) as e:
            raise TransientError(
                "could not connect to the web UI at {} ({}): is it running with --api? "
                "Set SINKIN_A1111_URL if it listens elsewhere".format(self.base_url, type(e).__name__)
            )
        except httpx.PoolTimeout:
            raise TransientError("no free connection to the web UI at {}".format(self.base_url))
        except (httpx.ReadTimeout, httpx.WriteTimeout):
            raise OutcomeUnknown(
                "no answer from the web UI at {} within {:g} s after the request was sent to {}: the GPU may "
                "still be working on it (`POST {}/sdapi/v1/interrupt` stops it; raise SINKIN_A1111_TIMEOUT "
                "for slow generations)".format(self.base_url, _timeout().read or 0, path, self.base_url)
            )
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as e:
            raise OutcomeUnknown(
                "the connection to the web UI dropped after the request was sent to {} ({})".format(
                    path, type(e).__name__
                )
            )
        if response.status_code == 401:
            raise ServiceError(
                "the web UI at {} refused the credentials: set SINKIN_A1111_AUTH=user:password "
                "as given to its --api-auth".format(self.base_url)
            )
        if (
            response.status_code == 404
            and path.endswith(("txt2img", "img2img", "extra-single-image"))
            and "detail" in response.text
            and "Not Found" in response.text
        ):
            raise ServiceError("{} has no {}: was the web UI started with --api?".format(self.base_url, path))
        if response.status_code == 429 or response.status_code in (502, 503, 504):
            raise TransientError(
                "HTTP {} from the web UI ({})".format(response.status_code, path), status=response.status_code
            )
        if response.status_code != 200:
            raise ServiceError(
                "the web UI refused {}: {}".format(path, _detail(response)), error_code=response.status_code
            )
        try:
            return response.json()
        except ValueError:
            raise ServiceError("the web UI's answer to {} is not JSON".format(path))

    # --- the Provider API ---------------------------------------------------------------------
    def inference(
        self, payload: dict[str, Any], init_image: tuple[str, bytes] | None = None
    ) -> InferenceResult:
        options = {name: payload.get(name) for name in OPTION_NAMES}
        try:
            path, body = build_request(payload, options, init_image[1] if init_image else None)
        except MappingError as e:
            raise ServiceError(str(e))
        started = time.monotonic()
        answer = self._call("POST", path, body)
        seconds = time.monotonic() - started
        if not isinstance(answer, dict) or not isinstance(answer.get("images"), list) or not answer["images"]:
            raise ServiceError("the web UI answered without images")
        try:
            info = json.loads(answer.get("info") or "{}")
        except (TypeError, ValueError):
            info = {}
        seeds = info.get("all_seeds") if isinstance(info, dict) else None
        # the web UI may append extra pictures (grids, ControlNet maps) after the batch
        count = int(body.get("batch_size") or 1) * int(body.get("n_iter") or 1)
        images = []
        for index, data in enumerate(answer["images"][:count]):
            seed = seeds[index] if isinstance(seeds, list) and index < len(seeds) else None
            images.append(GeneratedImage(data=_b64_image(data), seed=int(seed) if seed is not None else None))
        raw = {
            "endpoint": path,
            "info": info,
            "seconds": round(seconds, 3),
            "seconds_per_image": round(seconds / max(1, len(images)), 3),
        }
        return InferenceResult(images=images, credit_cost=0.0, inf_id=None, raw=raw)

    def upscale(self, payload: dict[str, Any], image: tuple[str, bytes] | None = None) -> UpscaleResult:
        if image is None:
            raise ServiceError("the a1111 upscalers need the stored image file")
        body = {
            "image": base64.b64encode(image[1]).decode("ascii"),
            "upscaler_1": payload["type"],
            "upscaling_resize": float(payload.get("upscaling_resize") or 2),
        }
        answer = self._call("POST", "/sdapi/v1/extra-single-image", body)
        if not isinstance(answer, dict):
            raise ServiceError("the web UI answered without an image")
        return UpscaleResult(
            data=_b64_image(answer.get("image")),
            credit_cost=0.0,
            raw={"upscaler": payload["type"], "html_info": answer.get("html_info")},
        )

    def models(self) -> dict[str, list[dict[str, Any]]]:
        short = httpx.Timeout(10.0)
        models = self._call("GET", "/sdapi/v1/sd-models", timeout=short)
        loras = self._call("GET", "/sdapi/v1/loras", timeout=short)
        samplers = self._call("GET", "/sdapi/v1/samplers", timeout=short)
        try:  # only newer versions have a scheduler apart from the sampler
            schedulers = self._call("GET", "/sdapi/v1/schedulers", timeout=short)
        except ServiceError:
            schedulers = []
        return {
            "models": [
                {
                    "id": m.get("model_name") or m.get("title"),
                    "title": m.get("title"),
                    "cover_img": "",
                    "link": "",
                }
                for m in models
                if isinstance(m, dict)
            ],
            "loras": [
                {
                    "id": lo.get("name"),
                    "title": lo.get("alias") or lo.get("name"),
                    "cover_img": "",
                    "link": "",
                }
                for lo in loras
                if isinstance(lo, dict)
            ],
            "samplers": [
                {"id": s.get("name"), "title": s.get("name")} for s in samplers if isinstance(s, dict)
            ],
            "schedule_types": [
                {"id": s.get("label") or s.get("name"), "title": s.get("label") or s.get("name")}
                for s in schedulers
                if isinstance(s, dict)
            ],
            "video_models": [],
        }

    def upscaler_names(self) -> list[str]:
        answer = self._call("GET", "/sdapi/v1/upscalers", timeout=httpx.Timeout(2.0, connect=0.5))
        return [u["name"] for u in answer if isinstance(u, dict) and u.get("name") and u["name"] != "None"]

    def interrupt(self) -> None:
        """Ask the web UI to stop the generation it is running (offered to the user, never sent
        on its own: a timed-out request may still be producing the image)."""
        self._call("POST", "/sdapi/v1/interrupt", {}, timeout=httpx.Timeout(10.0))

    def close(self) -> None:
        self._client.close()


_upscalers_cache: dict[str, tuple[float, list[str]]] = {}


def server_upscalers(max_age: float = 60.0) -> list[str]:
    """The web UI's upscalers (asked at most once a minute), or :data:`DEFAULT_UPSCALERS` when it
    cannot be asked right now."""
    url = base_url()
    cached = _upscalers_cache.get(url)
    if cached and time.monotonic() - cached[0] < max_age:
        return cached[1]
    provider = A1111Provider()
    try:
        names = provider.upscaler_names() or list(DEFAULT_UPSCALERS)
    except Exception:
        names = list(DEFAULT_UPSCALERS)
    finally:
        provider.close()
    _upscalers_cache[url] = (time.monotonic(), names)
    return names


@hookimpl
def register_providers(register: Any) -> None:
    register(A1111Provider)


@hookimpl
def register_upscalers(register: Any) -> None:
    for name in server_upscalers():
        register(
            Upscaler(
                name,
                [Field("upscaling_resize", "float", default=2.0, min=1, max=8, help="resize factor")],
                "web UI upscaler {} (free, on your GPU)".format(name),
                providers=["a1111"],
                source="file",
            )
        )
