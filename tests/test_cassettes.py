"""The `sinkin` provider replayed against SinkIn interactions in vcrpy cassettes (tests/cassettes/).

The live API cannot be reached from development machines or CI, so the cassettes were written by
hand from ../shared/sinkin-api.md, with the access token replaced by REDACTED. To re-record them
against the live API (this spends a few credits):

    SINKIN_RECORD=1 SINKIN_API_KEY=... pytest tests/test_cassettes.py

Recording scrubs the token from form and multipart bodies before anything is written, and the
last test here fails if any cassette holds something that looks like a real token.
"""

import base64
import os
import re
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import vcr
import yaml

from sinkin_pipeline.providers import ServiceError, get_provider

CASSETTES = Path(__file__).parent / "cassettes"
PLACEHOLDER = "REDACTED"
MULTIPART_TOKEN = re.compile(rb'(name="access_token"\r\n\r\n)[^\r\n]*')


def body_bytes(body):
    if body is None:
        return b""
    return body if isinstance(body, bytes) else str(body).encode("utf-8")


def form_fields(request):
    """A request's form fields (form-encoded or multipart), without the token and file parts."""
    body = body_bytes(request.body)
    content_type = request.headers.get("Content-Type") or request.headers.get("content-type") or ""
    if isinstance(content_type, list):
        content_type = content_type[0]
    if "multipart/form-data" in content_type:
        fields = dict(re.findall(rb'name="([^"]+)"\r\n\r\n([^\r]*)', body))
        fields = {k.decode(): v.decode() for k, v in fields.items()}
    else:
        fields = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    fields.pop("access_token", None)
    return fields


def same_fields(r1, r2):
    assert form_fields(r1) == form_fields(r2)


def scrub(request):
    """Replace the access token in multipart bodies (form bodies are filtered by vcrpy itself)."""
    request.body = MULTIPART_TOKEN.sub(rb"\g<1>" + PLACEHOLDER.encode(), body_bytes(request.body))
    return request


recording = os.environ.get("SINKIN_RECORD") == "1"
my_vcr = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="all" if recording else "none",
    match_on=["method", "uri", "sinkin_fields"],
    filter_post_data_parameters=[("access_token", PLACEHOLDER)],
    filter_headers=["authorization", "cookie"],
    before_record_request=scrub,
    decode_compressed_response=True,
)
my_vcr.register_matcher("sinkin_fields", same_fields)


@pytest.fixture
def provider(monkeypatch):
    if not recording:
        monkeypatch.setenv("SINKIN_API_KEY", "cassette-key")
    monkeypatch.delenv("SINKIN_API_BASE", raising=False)
    p = get_provider("sinkin")
    yield p
    p.close()


def test_models(provider):
    with my_vcr.use_cassette("models.yaml"):
        answer = provider.models()
    assert answer["error_code"] == 0
    assert {m["id"] for m in answer["models"]} >= {"4zdwGOB"}
    assert all({"id", "title", "cover_img", "link"} <= set(m) for m in answer["models"] + answer["loras"])


def test_txt2img(provider):
    payload = {
        "model_id": "4zdwGOB",
        "prompt": "a lighthouse at dusk",
        "negative_prompt": "blurry",
        "use_default_neg": True,
        "width": 512,
        "height": 768,
        "steps": 30,
        "scale": 7.5,
        "num_images": 2,
        "seed": 1234,
        "scheduler": "DPMSolverMultistep",
        "lcm": False,
    }
    with my_vcr.use_cassette("inference_txt2img.yaml"):
        answer = provider.inference(payload)
    assert answer.raw["error_code"] == 0 and len(answer.images) == 2
    assert all(i.url.startswith("https://") and i.data is None for i in answer.images)
    assert isinstance(answer.credit_cost, float) and answer.inf_id


def test_img2img_is_multipart(provider):
    payload = {"model_id": "4zdwGOB", "prompt": "a lighthouse at dusk", "image_strength": 0.6}
    with my_vcr.use_cassette("inference_img2img.yaml") as cassette:
        answer = provider.inference(payload, init_image=("base.png", b"(init image bytes)"))
    assert answer.raw["error_code"] == 0 and answer.images
    assert cassette.play_count == 1


def test_upscale(provider):
    url = "https://cdn.sinkin.ai/output/9f3c2a1b7d4e6f/0.png"
    with my_vcr.use_cassette("upscale.yaml"):
        answer = provider.upscale({"inf_id": "9f3c2a1b7d4e6f", "url": url, "type": "esrgan", "scale": 2.0})
    assert answer.url.startswith("https://") and answer.credit_cost == 6.0


def test_error_code_answer(provider):
    with my_vcr.use_cassette("inference_error.yaml"):
        with pytest.raises(ServiceError) as e:
            provider.inference({"model_id": "nope", "prompt": "a fox"})
    assert e.value.message == "Model not found"


def decoded_bodies(cassette_text):
    """Every request and response body in a cassette, decoded (plain, or base64)."""
    data = yaml.safe_load(cassette_text) or {}
    for interaction in data.get("interactions", []):
        for part in (
            interaction.get("request", {}).get("body"),
            (interaction.get("response", {}).get("body") or {}).get("string"),
        ):
            if part is None:
                continue
            raw = part if isinstance(part, bytes) else str(part).encode("utf-8")
            yield raw
            try:
                yield base64.b64decode(raw, validate=True)
            except Exception:
                pass
        headers = interaction.get("request", {}).get("headers", {})
        assert not {k.lower() for k in headers} & {"authorization", "cookie"}


def test_no_cassette_holds_a_real_token():
    files = sorted(CASSETTES.glob("*.yaml"))
    assert len(files) >= 5
    token_value = re.compile(rb'access_token(?:=|"\r\n\r\n|"?\s*:\s*"?)([^&\r\n"\s]*)')
    long_run = re.compile(rb"access_token\W{1,8}([A-Za-z0-9_\-]{24,})")
    for path in files:
        text = path.read_text(encoding="utf-8")
        for body in [text.encode("utf-8")] + list(decoded_bodies(text)):
            for value in token_value.findall(body):
                assert value in (b"", PLACEHOLDER.encode()), "{}: a real-looking access token".format(
                    path.name
                )
            assert not long_run.search(body), "{}: a real-looking access token".format(path.name)
