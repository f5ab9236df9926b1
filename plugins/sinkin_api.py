"""The ``sinkin`` provider: SinkIn's HTTP API through httpx.

The key comes from ``SINKIN_API_KEY`` and is only ever put in the request body; it never appears
in an exception, a log line, a repr or the stored payload. ``SINKIN_API_BASE`` points it elsewhere
(the local stand-in server in tests). Failures map to the three exceptions of
:mod:`sinkin_pipeline.providers`; this provider never retries (the worker owns that policy).
"""

import json
import os

import httpx

from sinkin_pipeline import (
    ConfigurationError,
    GeneratedImage,
    InferenceResult,
    OutcomeUnknown,
    Provider,
    ServiceError,
    TransientError,
    UpscaleResult,
    hookimpl,
    http_download,
)

DEFAULT_BASE = "https://sinkin.ai"
#: what the API key becomes in anything stored (answers, image URLs); put back only on the wire
KEY_MARK = "[sinkin-api-key]"
#: generation can take a minute or more; connecting should not
INFERENCE_TIMEOUT = httpx.Timeout(connect=10.0, read=180.0, write=60.0, pool=30.0)
SHORT_TIMEOUT = httpx.Timeout(connect=10.0, read=30.0, write=30.0, pool=30.0)


def form_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(value)
    return str(value)


class SinkinProvider(Provider):
    name = "sinkin"
    free = False

    def __init__(self, key=None, base_url=None):
        self._key = key if key is not None else os.environ.get("SINKIN_API_KEY")
        self.base_url = (base_url or os.environ.get("SINKIN_API_BASE") or DEFAULT_BASE).rstrip("/")
        self._client = httpx.Client(follow_redirects=False, limits=httpx.Limits(max_connections=64))

    def __repr__(self):
        return "<SinkinProvider {} key={}>".format(self.base_url, "set" if self._key else "missing")

    def check_ready(self):
        if not self._key:
            raise ConfigurationError(
                "provider sinkin needs an API key: set it with `export SINKIN_API_KEY=...` "
                "(it is never stored), or try the spec offline with `provider: simulator` "
                "or `--provider simulator`"
            )

    def _scrub(self, text):
        text = str(text)
        return text.replace(self._key, "[key]") if self._key else text

    def _scrub_answer(self, value):
        """A successful answer with the API key replaced by :data:`KEY_MARK` in every string (an
        API that echoes it would otherwise have it stored in jobs.raw_response, images.url,
        upscale payloads and exports). :meth:`_restore` puts it back only on the wire."""
        if not self._key:
            return value
        if isinstance(value, str):
            return value.replace(self._key, KEY_MARK)
        if isinstance(value, list):
            return [self._scrub_answer(v) for v in value]
        if isinstance(value, dict):
            return {self._scrub_answer(k): self._scrub_answer(v) for k, v in value.items()}
        return value

    def _restore(self, text):
        return text.replace(KEY_MARK, self._key) if self._key and isinstance(text, str) else text

    def _post(self, path, fields, files=None, timeout=SHORT_TIMEOUT):
        self.check_ready()
        data = {k: self._restore(form_value(v)) for k, v in fields.items() if v is not None}
        data["access_token"] = self._key
        url = self.base_url + path
        try:
            response = self._client.post(url, data=data, files=files, timeout=timeout)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as e:
            raise TransientError(
                "could not connect to {}: {}".format(self.base_url, self._scrub(e) or type(e).__name__)
            )
        except (httpx.ReadTimeout, httpx.WriteTimeout) as e:
            raise OutcomeUnknown(
                "{} after the request was sent to {}".format(
                    "read timeout" if isinstance(e, httpx.ReadTimeout) else "write timeout", path
                )
            )
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as e:
            raise OutcomeUnknown(
                "connection dropped after the request was sent to {} ({})".format(path, type(e).__name__)
            )
        except httpx.HTTPError as e:
            raise OutcomeUnknown("{} calling {}: {}".format(type(e).__name__, path, self._scrub(e)))
        if response.status_code == 429:
            retry_after = response.headers.get("retry-after")
            try:
                retry_after = float(retry_after) if retry_after is not None else None
            except ValueError:
                retry_after = None
            raise TransientError(
                "HTTP 429 Too Many Requests from {}".format(path), retry_after=retry_after, status=429
            )
        if response.status_code != 200:
            raise TransientError(
                "HTTP {} from {}".format(response.status_code, path), status=response.status_code
            )
        try:
            body = response.json()
        except (json.JSONDecodeError, ValueError):
            raise TransientError("the answer from {} is not JSON".format(path), status=200)
        if not isinstance(body, dict):
            raise TransientError("the answer from {} is not a JSON object".format(path), status=200)
        if body.get("error_code", 0) != 0:
            raise ServiceError(
                self._scrub(body.get("message") or "error_code {}".format(body.get("error_code"))),
                error_code=body.get("error_code"),
                response=self._scrub_answer(body),
            )
        return self._scrub_answer(body)

    def inference(self, payload, init_image=None):
        files = None
        if init_image is not None:
            filename, data = init_image
            files = {"init_image_file": (filename, data, "application/octet-stream")}
        body = self._post("/api/inference", payload, files=files, timeout=INFERENCE_TIMEOUT)
        if not isinstance(body.get("images"), list) or not all(isinstance(u, str) for u in body["images"]):
            raise ServiceError("SinkIn answered without images", response=body)
        return InferenceResult(
            images=[GeneratedImage(url=url) for url in body["images"]],
            credit_cost=float(body.get("credit_cost") or 0),
            inf_id=body.get("inf_id"),
            raw=body,
        )

    def upscale(self, payload):
        body = self._post("/api/upscale", payload, timeout=INFERENCE_TIMEOUT)
        if not body.get("output"):
            raise ServiceError("SinkIn answered without an output image", response=body)
        return UpscaleResult(url=body["output"], credit_cost=float(body.get("credit_cost") or 0), raw=body)

    def models(self):
        return self._post("/api/models", {}, timeout=SHORT_TIMEOUT)

    def download(self, url):
        return http_download(self._restore(url), self._client)

    def fallback_cost_per_image(self):
        """A guess until costs are recorded: 1 credit per 512x768 image at 30 steps."""
        return 1.0

    def close(self):
        self._client.close()


@hookimpl
def register_providers(register):
    register(SinkinProvider)
