"""The `sinkin` provider against the local stand-in server: requests, and every failure mapping."""

import socket
import time

import httpx
import pytest
from PIL import Image

from sinkin_pipeline.providers import (
    ConfigurationError,
    DownloadError,
    OutcomeUnknown,
    ServiceError,
    TransientError,
    get_provider,
)
from sinkin_pipeline.worker import work

KEY = "test-key"
PAYLOAD = {
    "model_id": "4zdwGOB",
    "prompt": "a fox",
    "width": 256,
    "height": 256,
    "steps": 10,
    "num_images": 2,
    "seed": 42,
    "use_default_neg": False,
    "lcm": True,
    "scale": 7.0,
}


@pytest.fixture
def provider(api_env):
    p = get_provider("sinkin")
    yield p
    p.close()


def test_txt2img_is_form_encoded_with_sinkin_field_names(provider, api_env):
    answer = provider.inference(PAYLOAD)
    assert answer.raw["error_code"] == 0 and len(answer.images) == 2 and answer.inf_id
    assert answer.credit_cost == pytest.approx(
        0.5 * (10 / 30) * (256 * 256 / (512 * 768)) * 2 * 0.5, abs=0.01
    )
    call = api_env.calls[0]
    assert call["endpoint"] == "inference" and not call["has_file"]
    assert call["fields"]["use_default_neg"] == "false" and call["fields"]["lcm"] == "true"
    assert call["fields"]["seed"] == "42" and "access_token" not in call["fields"]
    png = provider.download(answer.images[0].url)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_img2img_is_multipart_with_init_image_file(provider, api_env, tmp_path):
    path = tmp_path / "init.png"
    Image.new("RGB", (32, 32), "red").save(path)
    provider.inference(dict(PAYLOAD, image_strength=0.5), init_image=("init.png", path.read_bytes()))
    call = api_env.calls[0]
    assert call["has_file"] and call["fields"]["image_strength"] == "0.5"


def test_error_code_is_a_service_error_with_the_message_verbatim(provider, api_env):
    api_env.inject("inference", "error", message="Model not found: xyz")
    with pytest.raises(ServiceError) as e:
        provider.inference(PAYLOAD)
    assert e.value.message == "Model not found: xyz"


def test_wrong_key_is_refused_by_the_service(api_env, monkeypatch):
    monkeypatch.setenv("SINKIN_API_KEY", "wrong-key-1234567890")
    with pytest.raises(ServiceError, match="Invalid access token") as e:
        get_provider("sinkin").inference(PAYLOAD)
    assert "wrong-key-1234567890" not in str(e.value) + repr(e.value)


@pytest.mark.parametrize("kind", ["500", "503"])
def test_5xx_is_transient(provider, api_env, kind):
    api_env.inject("inference", kind)
    with pytest.raises(TransientError) as e:
        provider.inference(PAYLOAD)
    assert e.value.status == int(kind) and api_env.charged() == 0


def test_429_is_transient_with_retry_after(provider, api_env):
    api_env.inject("inference", "429", retry_after=3)
    with pytest.raises(TransientError) as e:
        provider.inference(PAYLOAD)
    assert e.value.retry_after == 3.0 and e.value.status == 429


def test_dropped_connection_after_sending_is_an_unknown_outcome(provider, api_env):
    api_env.inject("inference", "drop")
    with pytest.raises(OutcomeUnknown, match="connection dropped"):
        provider.inference(PAYLOAD)
    assert api_env.charged() == 1


def test_read_timeout_is_an_unknown_outcome(provider, api_env, monkeypatch):
    import sinkin_plugins.sinkin_api as module

    monkeypatch.setattr(
        module, "INFERENCE_TIMEOUT", httpx.Timeout(connect=5.0, read=0.3, write=5.0, pool=5.0)
    )
    api_env.inject("inference", "hang", seconds=1.0)
    with pytest.raises(OutcomeUnknown, match="read timeout"):
        provider.inference(PAYLOAD)
    deadline = time.monotonic() + 5  # on a loaded machine the stand-in may reach the charge late
    while api_env.charged() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert api_env.charged() == 1


def test_connection_refused_is_transient(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("SINKIN_API_KEY", KEY)
    monkeypatch.setenv("SINKIN_API_BASE", "http://127.0.0.1:{}".format(port))
    with pytest.raises(TransientError, match="could not connect"):
        get_provider("sinkin").inference(PAYLOAD)


def test_missing_key_says_how_to_set_it(monkeypatch):
    monkeypatch.delenv("SINKIN_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="export SINKIN_API_KEY=.*--provider simulator"):
        get_provider("sinkin").check_ready()


def test_download_errors(provider, api_env):
    answer = provider.inference(PAYLOAD)
    api_env.inject("download", "500")
    with pytest.raises(TransientError):
        provider.download(answer.images[0].url)
    with pytest.raises(DownloadError, match="404"):
        provider.download(api_env.base_url + "/images/nope.png")


def test_models_and_upscale(provider, api_env):
    models = provider.models()
    assert models["models"][0]["id"] == "4zdwGOB"
    answer = provider.inference(PAYLOAD)
    up = provider.upscale(
        {"inf_id": answer.inf_id, "url": answer.images[0].url, "type": "esrgan", "scale": 2}
    )
    assert up.credit_cost == 6.0
    with Image.open(__import__("io").BytesIO(provider.download(up.url))) as im:
        assert im.size == (512, 512)


def test_the_key_never_reaches_the_database_or_messages(api_env, db_path, make_run):
    make_run(db_path, {"provider": "sinkin", "model_id": "4zdwGOB", "prompt": "a fox", "seed": [1, 2]})
    api_env.inject("inference", "error", message="boom")
    work(db_path)
    assert KEY.encode() not in db_path.read_bytes()
    for wal in db_path.parent.glob("*.db-wal"):
        assert KEY.encode() not in wal.read_bytes()


def test_retries_through_http_then_success_charges_once(api_env, db_path, make_run):
    make_run(
        db_path, {"provider": "sinkin", "model_id": "4zdwGOB", "prompt": "a fox", "width": 128, "height": 128}
    )
    api_env.inject("inference", "500", times=2)
    api_env.inject("inference", "429", retry_after=0)
    summary = work(db_path)
    assert summary.succeeded == 1 and api_env.charged() == 1
    assert [c["outcome"] for c in api_env.calls if c["endpoint"] == "inference"] == [
        "500",
        "500",
        "429",
        "ok",
    ]


def test_img2img_refused_by_the_service_falls_back_to_txt2img(api_env, db_path, make_run, tmp_path):
    Image.new("RGB", (64, 64), "green").save(tmp_path / "base.png")
    make_run(
        db_path,
        {
            "provider": "sinkin",
            "model_id": "4zdwGOB",
            "prompt": "a fox",
            "width": 128,
            "height": 128,
            "init_image": str(tmp_path / "base.png"),
            "image_strength": 0.4,
        },
    )
    api_env.fail_img2img = True
    summary = work(db_path)
    assert summary.succeeded == 1
    first, second = [c for c in api_env.calls if c["endpoint"] == "inference"]
    assert first["has_file"] and first["outcome"] == "error"
    assert not second["has_file"] and "image_strength" not in second["fields"] and second["charged"]
    import sqlite3

    conn = sqlite3.connect(db_path)
    fallback, error = conn.execute("select fallback, error from jobs").fetchone()
    assert fallback == 1 and error.startswith("img2img failed")
