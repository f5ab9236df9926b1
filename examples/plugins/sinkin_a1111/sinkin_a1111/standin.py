"""A local stand-in for the AUTOMATIC1111 / Forge web UI API (``--api``), for tests and demos.

Written from the web UI's public API documentation: JSON bodies, images as base64 PNGs, an
``info`` JSON string with the seeds actually used, the model / sampler / LoRA / upscaler lists,
``extra-single-image`` upscales, ``interrupt`` and ``progress``, optional HTTP basic auth, and
generation serialised as on one GPU. It only listens on 127.0.0.1::

    with A1111StandIn(auth=("user", "pass")) as webui:
        webui.inject("txt2img", "oom")        # also "422", "500", "hang", "drop"
        ... point SINKIN_A1111_URL at webui.base_url ...
        webui.calls                           # every request, in order

Standalone: ``python -m sinkin_a1111.standin --port 7860``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image, ImageDraw, ImageFilter

MODELS = [
    {
        "title": "dreamshaper_8.safetensors [879db523c3]",
        "model_name": "dreamshaper_8",
        "hash": "879db523c3",
        "sha256": "879db523c30d3b9017143d56705015e15a2cb5628762c11d086fed9538abd7fd",
        "filename": "/models/Stable-diffusion/dreamshaper_8.safetensors",
        "config": None,
    },
    {
        "title": "realisticVisionV60B1_v51VAE.safetensors [15012c538f]",
        "model_name": "realisticVisionV60B1_v51VAE",
        "hash": "15012c538f",
        "sha256": "15012c538f503ce2ebfc2c8547b268c75ccdaff7a281db55399940ff1d70e21d",
        "filename": "/models/Stable-diffusion/realisticVisionV60B1_v51VAE.safetensors",
        "config": None,
    },
]
SAMPLERS = [
    {"name": "DPM++ 2M", "aliases": ["k_dpmpp_2m"], "options": {}},
    {"name": "Euler a", "aliases": ["k_euler_a", "k_euler_ancestral"], "options": {}},
    {"name": "Euler", "aliases": ["k_euler"], "options": {}},
    {"name": "LMS", "aliases": ["k_lms"], "options": {}},
    {"name": "DDIM", "aliases": [], "options": {}},
    {"name": "PLMS", "aliases": [], "options": {}},
    {"name": "DPM++ 2M Karras", "aliases": ["k_dpmpp_2m_ka"], "options": {"scheduler": "karras"}},
]
SCHEDULERS = ["Automatic", "Uniform", "Karras", "Exponential"]
LORAS = [
    {
        "name": "add_detail",
        "alias": "add_detail",
        "path": "/models/Lora/add_detail.safetensors",
        "metadata": {},
    },
    {
        "name": "film_grain",
        "alias": "film_grain",
        "path": "/models/Lora/film_grain.safetensors",
        "metadata": {},
    },
]
UPSCALERS = [
    {"name": "None", "model_name": None, "model_path": None, "model_url": None, "scale": 4},
    {"name": "Lanczos", "model_name": None, "model_path": None, "model_url": None, "scale": 4},
    {
        "name": "R-ESRGAN 4x+",
        "model_name": "RealESRGAN_x4plus",
        "model_path": "/models/RealESRGAN",
        "model_url": None,
        "scale": 4,
    },
    {
        "name": "ESRGAN_4x",
        "model_name": "ESRGAN_4x",
        "model_path": "/models/ESRGAN",
        "model_url": None,
        "scale": 4,
    },
]
MAX_SEED = 2**32 - 1


def _png(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _decode(data: str) -> Image.Image:
    if "," in data[:100] and data.startswith("data:"):
        data = data.split(",", 1)[1]
    return Image.open(io.BytesIO(base64.b64decode(data, validate=True))).convert("RGB")


def render(body: dict, seed: int, init: Image.Image | None = None) -> Image.Image:
    """A deterministic picture of a request: colours from the prompt and model, shapes from the
    seed, sharpness from the steps; img2img keeps its init image's look by ``1 - strength``."""
    width, height = int(body.get("width") or 512), int(body.get("height") or 512)
    prompt = str(body.get("prompt") or "")
    model = str((body.get("override_settings") or {}).get("sd_model_checkpoint") or "")
    digest = hashlib.sha256((prompt + "|" + model).encode()).digest()
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height), tuple(digest[:3]))
    draw = ImageDraw.Draw(image)
    for i in range(6):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(max(8, min(width, height) // 8), max(16, min(width, height) // 3))
        draw.ellipse([x - r, y - r, x + r, y + r], fill=tuple(digest[3 + 3 * i : 6 + 3 * i]))
    steps = int(body.get("steps") or 20)
    if steps < 20:
        image = image.filter(ImageFilter.GaussianBlur(radius=(20 - steps) / 4))
    if init is not None:
        strength = float(body.get("denoising_strength", 0.75))
        image = Image.blend(init.resize((width, height)), image, max(0.0, min(1.0, strength)))
    return image


class A1111StandIn:
    """The stand-in web UI, serving in a background thread (see the module docstring)."""

    def __init__(self, port: int = 0, auth: tuple[str, str] | None = None, latency: float = 0.0):
        self.port = port
        self.auth = auth
        self.latency = latency
        self.calls: list[dict[str, Any]] = []
        self.checkpoint = MODELS[0]["title"]
        self.interrupted = 0
        #: generation requests received and not yet answered, and the most there ever were
        self.in_flight = 0
        self.peak_in_flight = 0
        self._faults: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._gpu = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "not started"
        return "http://127.0.0.1:{}".format(self._server.server_address[1])

    def inject(self, endpoint: str, kind: str, times: int = 1, seconds: float = 5.0) -> None:
        """Make the next ``times`` calls to ``endpoint`` (txt2img, img2img, extra-single-image,
        sd-models…) fail: ``oom`` (500 OutOfMemoryError), ``500``, ``422``, ``hang`` (answer
        after ``seconds``), ``drop`` (close the connection without answering)."""
        with self._lock:
            self._faults.setdefault(endpoint, []).extend([{"kind": kind, "seconds": seconds}] * times)

    def generations(self) -> int:
        """How many txt2img/img2img requests were processed."""
        with self._lock:
            return sum(1 for c in self.calls if c["endpoint"] in ("txt2img", "img2img") and c["ok"])

    def _fault(self, endpoint: str) -> dict[str, Any] | None:
        with self._lock:
            faults = self._faults.get(endpoint)
            return faults.pop(0) if faults else None

    def _record(self, call: dict[str, Any]) -> None:
        with self._lock:
            self.calls.append(call)

    def start(self) -> A1111StandIn:
        standin = self

        class Handler(_Handler):
            owner = standin

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> A1111StandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    owner: A1111StandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _authorised(self) -> bool:
        auth = self.owner.auth
        if auth is None:
            return True
        expected = "Basic " + base64.b64encode("{}:{}".format(*auth).encode()).decode()
        if self.headers.get("Authorization") == expected:
            return True
        self._send(401, {"detail": "Incorrect credentials"})
        return False

    def _endpoint(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]

    def _apply_fault(self, endpoint: str) -> bool:
        """Act out an injected fault; True when the request is answered (or dropped) by it."""
        fault = self.owner._fault(endpoint)
        if fault is None:
            return False
        kind = fault["kind"]
        self.owner._record({"endpoint": endpoint, "ok": False, "fault": kind})
        if kind == "hang":
            time.sleep(fault["seconds"])
            self._send(500, {"error": "Timeout", "detail": "late answer"})
        elif kind == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
        elif kind == "oom":
            self._send(
                500,
                {
                    "error": "OutOfMemoryError",
                    "detail": "CUDA out of memory. Tried to allocate 2.00 GiB",
                    "body": "",
                    "errors": "",
                },
            )
        elif kind == "422":
            self._send(422, {"detail": [{"loc": ["body"], "msg": "field required", "type": "value_error"}]})
        else:
            self._send(500, {"error": "RuntimeError", "detail": "Something went wrong"})
        return True

    def do_GET(self) -> None:
        if not self._authorised():
            return
        endpoint = self._endpoint()
        if self._apply_fault(endpoint):
            return
        lists = {
            "sd-models": MODELS,
            "samplers": SAMPLERS,
            "loras": LORAS,
            "upscalers": UPSCALERS,
            "schedulers": [{"name": s.lower(), "label": s} for s in SCHEDULERS],
        }
        self.owner._record({"endpoint": endpoint, "ok": True, "method": "GET"})
        if endpoint in lists and self.path.startswith("/sdapi/v1/"):
            self._send(200, lists[endpoint])
        elif endpoint == "options":
            self._send(200, {"sd_model_checkpoint": self.owner.checkpoint, "CLIP_stop_at_last_layers": 1})
        elif endpoint == "progress":
            self._send(
                200,
                {
                    "progress": 0.0,
                    "eta_relative": 0.0,
                    "state": {"interrupted": False},
                    "current_image": None,
                },
            )
        else:
            self._send(404, {"detail": "Not Found"})

    def do_POST(self) -> None:
        if not self._authorised():
            return
        endpoint = self._endpoint()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self._apply_fault(endpoint):
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send(422, {"detail": [{"loc": ["body"], "msg": "invalid JSON", "type": "value_error"}]})
            return
        if not isinstance(body, dict):
            self._send(422, {"detail": [{"loc": ["body"], "msg": "not an object", "type": "type_error"}]})
            return
        if endpoint in ("txt2img", "img2img"):
            with self.owner._lock:
                self.owner.in_flight += 1
                self.owner.peak_in_flight = max(self.owner.peak_in_flight, self.owner.in_flight)
            try:
                self._generate(endpoint, body)
            finally:
                with self.owner._lock:
                    self.owner.in_flight -= 1
        elif endpoint == "extra-single-image":
            self._upscale(body)
        elif endpoint == "interrupt":
            self.owner.interrupted += 1
            self.owner._record({"endpoint": endpoint, "ok": True})
            self._send(200, {})
        elif endpoint == "options":
            if "sd_model_checkpoint" in body:
                self.owner.checkpoint = body["sd_model_checkpoint"]
            self._send(200, None)
        else:
            self._send(404, {"detail": "Not Found"})

    def _generate(self, endpoint: str, body: dict) -> None:
        sampler = body.get("sampler_name") or "Euler"
        names = {s["name"] for s in SAMPLERS} | {a for s in SAMPLERS for a in s["aliases"]}
        if sampler not in names:
            self.owner._record({"endpoint": endpoint, "ok": False, "body": body})
            self._send(404, {"detail": "Sampler not found"})
            return
        scheduler = body.get("scheduler")
        if (
            scheduler is not None
            and scheduler not in SCHEDULERS
            and scheduler.lower() not in (s.lower() for s in SCHEDULERS)
        ):
            self.owner._record({"endpoint": endpoint, "ok": False, "body": body})
            self._send(422, {"detail": "Invalid scheduler {}".format(scheduler)})
            return
        checkpoint = (body.get("override_settings") or {}).get("sd_model_checkpoint")
        if checkpoint is not None and not any(
            checkpoint in (m["title"], m["model_name"], m["model_name"] + ".safetensors") for m in MODELS
        ):
            self.owner._record({"endpoint": endpoint, "ok": False, "body": body})
            self._send(500, {"error": "RuntimeError", "detail": "model {!r} not found".format(checkpoint)})
            return
        init = None
        if endpoint == "img2img":
            try:
                init = _decode((body.get("init_images") or [])[0])
            except Exception:
                self.owner._record({"endpoint": endpoint, "ok": False, "body": body})
                self._send(422, {"detail": "init_images must hold one base64 image"})
                return
        try:
            width, height = int(body.get("width") or 512), int(body.get("height") or 512)
            batch, n_iter = int(body.get("batch_size") or 1), int(body.get("n_iter") or 1)
            seed = int(body.get("seed", -1))
        except (TypeError, ValueError):
            self._send(422, {"detail": "width, height, batch_size, n_iter and seed are integers"})
            return
        if not (64 <= width <= 2048 and 64 <= height <= 2048 and 1 <= batch * n_iter <= 16):
            self._send(422, {"detail": "size or batch out of range"})
            return
        with self.owner._gpu:  # one GPU: generation is serial
            time.sleep(self.owner.latency)
            if seed == -1:
                seed = random.randrange(MAX_SEED)
            seeds = [seed + i for i in range(batch * n_iter)]
            images = [render(body, s, init) for s in seeds]
        info = {
            "prompt": body.get("prompt", ""),
            "negative_prompt": body.get("negative_prompt", ""),
            "seed": seeds[0],
            "all_seeds": seeds,
            "subseed": -1,
            "sampler_name": sampler,
            "scheduler": scheduler,
            "cfg_scale": body.get("cfg_scale", 7.0),
            "steps": body.get("steps", 20),
            "width": width,
            "height": height,
            "sd_model_name": (checkpoint or self.owner.checkpoint).split(".")[0],
            "denoising_strength": body.get("denoising_strength"),
            "infotexts": [
                "{}\nNegative prompt: {}\nSteps: {}, Sampler: {}, CFG scale: {}, Seed: {}, Size: {}x{}".format(
                    body.get("prompt", ""),
                    body.get("negative_prompt", ""),
                    body.get("steps", 20),
                    sampler,
                    body.get("cfg_scale", 7.0),
                    s,
                    width,
                    height,
                )
                for s in seeds
            ],
        }
        self.owner._record(
            {"endpoint": endpoint, "ok": True, "body": {k: v for k, v in body.items() if k != "init_images"}}
        )
        self._send(
            200,
            {
                "images": [_png(im) for im in images],
                "parameters": {k: v for k, v in body.items() if k != "init_images"},
                "info": json.dumps(info),
            },
        )

    def _upscale(self, body: dict) -> None:
        name = body.get("upscaler_1") or "None"
        if name not in {u["name"] for u in UPSCALERS}:
            self._send(404, {"detail": "Upscaler not found"})
            return
        try:
            image = _decode(body["image"])
            factor = float(body.get("upscaling_resize", 2))
        except Exception:
            self._send(422, {"detail": "image must be base64 and upscaling_resize a number"})
            return
        if not 1 <= factor <= 8:
            self._send(422, {"detail": "upscaling_resize must be from 1 to 8"})
            return
        with self.owner._gpu:
            time.sleep(self.owner.latency)
            out = image.resize((round(image.width * factor), round(image.height * factor)), Image.LANCZOS)
        self.owner._record(
            {
                "endpoint": "extra-single-image",
                "ok": True,
                "body": {k: v for k, v in body.items() if k != "image"},
            }
        )
        self._send(200, {"image": _png(out), "html_info": "<p>Upscaler: {}</p>".format(name)})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A local stand-in of the AUTOMATIC1111 web UI API")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per generation")
    parser.add_argument("--api-auth", help="user:password for HTTP basic auth")
    args = parser.parse_args(argv)
    auth = tuple(args.api_auth.split(":", 1)) if args.api_auth else None
    standin = A1111StandIn(port=args.port, auth=auth, latency=args.latency).start()  # type: ignore[arg-type]
    print("A1111 stand-in on {}".format(standin.base_url))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        standin.stop()


if __name__ == "__main__":
    main()
