"""The provider replayed from vcrpy cassettes of the web UI API (recorded from the stand-in with
``SINKIN_RECORD=1``; replays need no server). Basic-auth headers are never recorded."""

import os
from pathlib import Path

import pytest
import vcr

from sinkin_a1111 import A1111Provider
from sinkin_pipeline import OutcomeUnknown, ServiceError

CASSETTES = Path(__file__).parent / "cassettes"
RECORD = os.environ.get("SINKIN_RECORD") == "1"
replay = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="all" if RECORD else "none",
    match_on=["method", "path"],
    filter_headers=["authorization"],
    decode_compressed_response=True,
)


@pytest.fixture
def provider(monkeypatch):
    if RECORD:
        from sinkin_a1111.standin import A1111StandIn

        with A1111StandIn(auth=("me", "pw")) as webui:
            monkeypatch.setenv("SINKIN_A1111_URL", webui.base_url)
            monkeypatch.setenv("SINKIN_A1111_AUTH", "me:pw")
            yield A1111Provider(), webui
    else:
        monkeypatch.setenv("SINKIN_A1111_URL", "http://127.0.0.1:7860")
        yield A1111Provider(), None


def test_txt2img(provider):
    p, _ = provider
    with replay.use_cassette("txt2img.yaml"):
        result = p.inference(
            {
                "prompt": "a fox",
                "seed": 77,
                "num_images": 2,
                "width": 128,
                "height": 128,
                "steps": 10,
                "scheduler": "K_EULER_ANCESTRAL",
            }
        )
    assert [i.seed for i in result.images] == [77, 78]
    assert all(i.data.startswith(b"\x89PNG") for i in result.images)


def test_lists(provider):
    p, _ = provider
    with replay.use_cassette("lists.yaml"):
        answer = p.models()
    assert answer["models"] and answer["loras"] and answer["samplers"]


def test_upscale(provider):
    p, _ = provider
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.new("RGB", (64, 48), (9, 9, 9)).save(buffer, format="PNG")
    with replay.use_cassette("upscale.yaml"):
        result = p.upscale({"type": "R-ESRGAN 4x+", "upscaling_resize": 2}, ("a.png", buffer.getvalue()))
    with Image.open(BytesIO(result.data)) as im:
        assert im.size == (128, 96)


def test_out_of_memory(provider):
    p, webui = provider
    if webui:
        webui.inject("txt2img", "oom")
    with replay.use_cassette("oom.yaml"), pytest.raises(ServiceError, match="OutOfMemoryError"):
        p.inference({"prompt": "a fox", "width": 128, "height": 128})


def test_cassettes_hold_no_credentials():
    for cassette in CASSETTES.glob("*.yaml"):
        text = cassette.read_text()
        assert "me:pw" not in text and "bWU6cHc" not in text and "uthorization" not in text, cassette.name


def test_unknown_outcome_is_not_replayable_but_mapped(monkeypatch):
    # a timeout cannot be recorded: checked against a port that accepts and never answers
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    monkeypatch.setenv("SINKIN_A1111_URL", "http://127.0.0.1:{}".format(server.getsockname()[1]))
    monkeypatch.setenv("SINKIN_A1111_TIMEOUT", "0.2")
    try:
        with pytest.raises(OutcomeUnknown):
            A1111Provider().inference({"prompt": "x"})
    finally:
        server.close()
