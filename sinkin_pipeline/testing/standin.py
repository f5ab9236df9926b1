"""A local stand-in for the SinkIn API, with fault injection, for tests and benchmarks.

It answers ``/api/inference`` (form or multipart), ``/api/models`` and ``/api/upscale`` in SinkIn's
shapes, with SinkIn's documented checks, charges by a fixed formula, and serves the images it
"generated" (rendered locally). It only listens on 127.0.0.1::

    with StandIn(latency=0.2, tokens={"test-key"}) as s:
        s.inject("inference", "500", times=2)   # also "429", "drop", "error", "hang"
        ... point SINKIN_API_BASE at s.base_url ...
        s.charged("inference")                  # how many calls were charged
        s.charged_credits()                     # the credits charged (the charge log: s.charges())

``fixed_cost`` adds a per-call price to every inference (SinkIn's price list is not published; a
fixed part is what makes tiny jobs cost more than a per-pixel rate predicts).

Standalone: ``python -m sinkin_pipeline.testing.standin --port 8765 --latency 0.2``.
"""

import argparse
import json
import threading
import time
import uuid
from email.parser import BytesParser
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

from sinkin_plugins.render import render_png, render_settings, upscale_png  # the simulator's images

from ..fields import FIELDS, UPSCALE_RANGES, UPSCALE_TYPES

UPSCALE_COST = {"esrgan": 6.0, "hires_fix": 4.0}
MODELS = {
    "models": [
        {"id": "4zdwGOB", "title": "DreamShaper", "cover_img": "", "link": "https://sinkin.ai/m/4zdwGOB"},
        {
            "id": "r2La2w2",
            "title": "Realistic Vision",
            "cover_img": "",
            "link": "https://sinkin.ai/m/r2La2w2",
        },
    ],
    "loras": [{"id": "lora1", "title": "Film grain", "cover_img": "", "link": ""}],
    "video_models": [],
}


def inference_cost(fields, fixed=0.0):
    steps = int(fields.get("steps") or 30)
    pixels = int(fields.get("width") or 512) * int(fields.get("height") or 768)
    n = int(fields.get("num_images") or 4)
    lcm = str(fields.get("lcm")).lower() == "true"
    return round(fixed + 0.5 * (steps / 30) * (pixels / (512 * 768)) * n * (0.5 if lcm else 1), 2)


class StandIn:
    """The stand-in server, running in a background thread (see the module docstring)."""

    def __init__(self, latency=0.0, tokens=None, port=0):
        self.latency = latency
        self.download_latency = 0.0
        self.tokens = set(tokens) if tokens is not None else None
        self.fail_img2img = False
        self.echo_token = False  # a careless API: the access token in every successful answer
        self.fixed_cost = 0.0
        self.max_concurrent = None  # SinkIn's own limit: calls beyond it get 429 at once, uncharged
        self._active = 0
        self.charge_log = None  # a file path: every charge is appended as a JSON line
        self.calls = []
        self._faults = {}
        self._lock = threading.Lock()
        self._images = {}
        self._port = port
        self._server = None
        self._thread = None

    # --- control -------------------------------------------------------------------------
    def inject(self, endpoint, kind, times=1, retry_after=None, message="Something went wrong", seconds=5.0):
        """Make the next ``times`` calls to ``endpoint`` (inference, upscale, models, download) fail."""
        with self._lock:
            self._faults.setdefault(endpoint, []).extend(
                [{"kind": kind, "retry_after": retry_after, "message": message, "seconds": seconds}] * times
            )

    def charged(self, endpoint="inference"):
        with self._lock:
            return sum(1 for c in self.calls if c["endpoint"] == endpoint and c["charged"])

    def charges(self):
        """The charge log: ``(endpoint, credits, inf_id)`` of every charged call, in arrival order."""
        with self._lock:
            return [(c["endpoint"], c["credits"], c.get("inf_id")) for c in self.calls if c["charged"]]

    def charged_credits(self, endpoint=None):
        """Credits charged so far (for one endpoint, or all)."""
        with self._lock:
            return round(
                sum(c["credits"] for c in self.calls if c["charged"] and endpoint in (None, c["endpoint"])), 6
            )

    def reset(self):
        with self._lock:
            self.calls = []
            self._faults = {}
            self.fail_img2img = False

    def _next_fault(self, endpoint):
        with self._lock:
            faults = self._faults.get(endpoint)
            return faults.pop(0) if faults else None

    def _log_charge(self, call):
        if self.charge_log:
            line = json.dumps(
                {
                    "endpoint": call["endpoint"],
                    "credits": call["credits"],
                    "inf_id": call.get("inf_id"),
                    "seed": call["fields"].get("seed"),
                }
            )
            with self._lock, open(self.charge_log, "a", encoding="utf-8") as fp:
                fp.write(line + "\n")

    def _record(self, call):
        with self._lock:
            self.calls.append(call)

    # --- lifecycle -----------------------------------------------------------------------
    @property
    def base_url(self):
        return "http://127.0.0.1:{}".format(self._server.server_address[1])

    def start(self):
        standin = self

        class Handler(_Handler):
            pass

        Handler.standin = standin
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._server.daemon_threads = True
        # a short poll interval: stop() returns at once instead of after up to 0.5 s
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name="standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    standin = None
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once (no 40 ms delayed-ACK stalls)

    def log_message(self, format, *args):  # quiet
        pass

    # --- helpers ---------------------------------------------------------------------------
    def _send(self, status, body, content_type="application/json", headers=None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(2)
        except OSError:
            pass

    def _read_form(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        content_type = self.headers.get("Content-Type") or ""
        fields, file = {}, None
        if content_type.startswith("multipart/form-data"):
            message = BytesParser(policy=email_policy).parsebytes(
                b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw
            )
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if part.get_filename() is not None:
                    file = (part.get_filename(), part.get_payload(decode=True))
                else:
                    fields[name] = part.get_payload(decode=True).decode("utf-8")
        else:
            fields = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        return fields, file

    # --- routes ----------------------------------------------------------------------------
    def do_GET(self):
        s = self.standin
        if not self.path.startswith("/images/"):
            return self._send(404, {"error": "not found"})
        fault = s._next_fault("download")
        if s.download_latency:
            time.sleep(s.download_latency)
        if fault and fault["kind"] == "drop":
            return self._drop()
        if fault:
            return self._send(int(fault["kind"]) if fault["kind"].isdigit() else 500, b"error", "text/plain")
        key = self.path[len("/images/") :].split("?")[0]
        with s._lock:
            entry = s._images.get(key)
        if entry is None:
            return self._send(404, b"no such image", "text/plain")
        self._send(200, entry, "image/png")

    def do_POST(self):
        s = self.standin
        endpoint = self.path.rstrip("/").rsplit("/", 1)[-1]
        if self.path not in ("/api/inference", "/api/models", "/api/upscale", "/m/inference"):
            return self._send(404, {"error": "not found"})
        fields, file = self._read_form()
        token = fields.pop("access_token", None)
        call = {
            "endpoint": endpoint,
            "fields": fields,
            "has_file": file is not None,
            "charged": False,
            "outcome": "ok",
            "credits": 0.0,
        }
        s._record(call)  # recorded on arrival; "charged" and "outcome" are filled in below
        fault = s._next_fault(endpoint)
        if not fault and s.max_concurrent is not None and endpoint in ("inference", "upscale"):
            with s._lock:
                busy = s._active >= s.max_concurrent
                s._active += 0 if busy else 1
            if busy:
                call["outcome"] = "429"
                return self._send(429, {"error": "Too many concurrent requests"})
            try:
                return self._answer(s, endpoint, fields, file, token, call, fault)
            finally:
                with s._lock:
                    s._active -= 1
        return self._answer(s, endpoint, fields, file, token, call, fault)

    def _answer(self, s, endpoint, fields, file, token, call, fault):
        if fault:
            call["outcome"] = fault["kind"]
        answer = None
        arrived = time.perf_counter()
        if not fault or fault["kind"] in ("drop", "hang"):
            if s.tokens is not None and token not in s.tokens:
                answer = {"error_code": 1, "message": "Invalid access token"}
            elif endpoint == "models":
                answer = dict(MODELS, error_code=0)
            elif endpoint == "inference":
                answer = self._inference(fields, file)
            else:
                answer = self._upscale(fields)
            if answer.get("error_code"):
                call["outcome"] = "error"
            elif endpoint != "models":
                call["charged"] = True  # processing starts now; latency stands for generation time
                call["credits"] = answer.get("credit_cost", 0.0)
                call["inf_id"] = answer.get("inf_id")
                s._log_charge(call)
        if s.latency:  # the latency stands for generation time, rendering included
            time.sleep(max(0.0, s.latency - (time.perf_counter() - arrived)))
        if fault and fault["kind"] in ("500", "502", "503"):
            return self._send(int(fault["kind"]), b"<html>Server error</html>", "text/html")
        if fault and fault["kind"] == "429":
            headers = {"Retry-After": str(fault["retry_after"])} if fault["retry_after"] is not None else {}
            return self._send(429, {"error": "Too many requests"}, headers=headers)
        if fault and fault["kind"] == "error":
            return self._send(200, {"error_code": 1, "message": fault["message"]})
        if fault and fault["kind"] == "drop" and call["charged"]:
            return self._drop()
        if fault and fault["kind"] == "hang" and call["charged"]:
            time.sleep(fault["seconds"])
        if s.echo_token and token and answer and not answer.get("error_code"):
            answer = _echo(answer, token)
        try:
            return self._send(200, answer)
        except OSError:  # the client gave up (a timeout on its side)
            return None

    def _inference(self, fields, file):
        s = self.standin
        for name in ("model_id", "prompt"):
            if not fields.get(name):
                return {"error_code": 1, "message": "{} is required".format(name)}
        for name, value in fields.items():
            fld = FIELDS.get(name)
            if fld is None:
                continue
            _, problem = fld.check(value)
            if problem:
                return {"error_code": 1, "message": "Invalid {}: {}".format(name, value)}
        if file is not None and s.fail_img2img:
            return {"error_code": 1, "message": "img2img failed: could not process the init image"}
        inf_id = uuid.uuid4().hex[:14]
        settings = render_settings(fields)
        for key in ("width", "height", "steps", "seed"):
            if settings[key] is not None:
                settings[key] = int(settings[key])
        settings["scale"] = float(settings["scale"]) if settings["scale"] else 7.5
        urls = []
        for i in range(int(fields.get("num_images") or 4)):
            key = "{}-{}.png".format(inf_id, i)
            png = render_png(settings, i)
            with s._lock:
                s._images[key] = png
            urls.append("{}/images/{}".format(s.base_url, key))
        return {
            "error_code": 0,
            "images": urls,
            "credit_cost": inference_cost(fields, s.fixed_cost),
            "inf_id": inf_id,
        }

    def _upscale(self, fields):
        s = self.standin
        kind = fields.get("type") or "esrgan"
        if not fields.get("inf_id") or not fields.get("url"):
            return {"error_code": 1, "message": "inf_id and url are required"}
        if kind not in UPSCALE_TYPES:
            return {"error_code": 1, "message": "Invalid type"}
        options = {"type": kind}
        for key in ("scale", "strength"):
            low, high, default = UPSCALE_RANGES[key]
            try:
                value = float(fields.get(key, default))
            except ValueError:
                return {"error_code": 1, "message": "Invalid {}".format(key)}
            if not low <= value <= high:
                return {"error_code": 1, "message": "Invalid {}".format(key)}
            options[key] = value
        source_key = fields["url"].rsplit("/", 1)[-1].split("?")[0]
        with s._lock:
            if source_key not in s._images:
                return {"error_code": 1, "message": "Image not found"}
            source = s._images[source_key]
        key = "up-{}.png".format(uuid.uuid4().hex[:12])
        png = upscale_png(source, options.get("scale", 2), options["type"], options.get("strength"))
        with s._lock:
            s._images[key] = png
        return {
            "error_code": 0,
            "output": "{}/images/{}".format(s.base_url, key),
            "credit_cost": UPSCALE_COST[kind],
        }


def main(argv=None):
    parser = argparse.ArgumentParser(description="A local stand-in SinkIn API server on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each API answer")
    parser.add_argument("--token", action="append", help="accepted access token (default: any)")
    parser.add_argument("--fixed-cost", type=float, default=0.0, help="credits added to every inference")
    parser.add_argument("--charge-log", help="append every charge to this file as JSON lines")
    parser.add_argument("--max-concurrent", type=int, help="answer 429 to calls beyond this many at once")
    args = parser.parse_args(argv)
    server = StandIn(latency=args.latency, tokens=args.token, port=args.port)
    server.fixed_cost = args.fixed_cost
    server.charge_log = args.charge_log
    server.max_concurrent = args.max_concurrent
    server.start()
    print("Stand-in SinkIn API at {} (Ctrl+C to stop)".format(server.base_url), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()


def _echo(answer, token):
    """``answer`` with the access token echoed in a field and in every URL (``echo_token``)."""
    answer = dict(answer, echo="request by {}".format(token))
    if isinstance(answer.get("images"), list):
        answer["images"] = ["{}?token={}".format(u, token) for u in answer["images"]]
    if answer.get("output"):
        answer["output"] = "{}?token={}".format(answer["output"], token)
    return answer
