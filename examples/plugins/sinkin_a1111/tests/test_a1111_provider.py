"""The a1111 provider against the web UI stand-in: answers, seeds, lists, upscales and failures."""

import io

import pytest
from PIL import Image

from sinkin_a1111 import A1111Provider
from sinkin_a1111.standin import MODELS, A1111StandIn
from sinkin_pipeline import InferenceResult, OutcomeUnknown, ServiceError, TransientError


@pytest.fixture
def webui(monkeypatch):
    """A running web UI stand-in, with the provider pointed at it."""
    with A1111StandIn() as standin:
        monkeypatch.setenv("SINKIN_A1111_URL", standin.base_url)
        monkeypatch.delenv("SINKIN_A1111_AUTH", raising=False)
        yield standin


@pytest.fixture
def provider(webui):
    from sinkin_a1111 import A1111Provider

    p = A1111Provider()
    yield p
    p.close()


def _image(data):
    with Image.open(io.BytesIO(data)) as im:
        return im.size


def test_txt2img_returns_png_bytes_and_the_seeds_used(provider, webui):
    result = provider.inference(
        {
            "prompt": "a lighthouse",
            "num_images": 2,
            "width": 256,
            "height": 320,
            "steps": 12,
            "scale": 6,
            "scheduler": "DDIM",
        }
    )
    assert isinstance(result, InferenceResult)
    assert [i.url for i in result.images] == [None, None]
    assert [_image(i.data) for i in result.images] == [(256, 320), (256, 320)]
    seeds = [i.seed for i in result.images]
    assert seeds[1] == seeds[0] + 1 and all(isinstance(s, int) for s in seeds)
    assert result.credit_cost == 0
    assert result.raw["seconds_per_image"] >= 0
    sent = webui.calls[-1]["body"]
    assert sent["sampler_name"] == "DDIM" and sent["cfg_scale"] == 6 and sent["batch_size"] == 2


def test_a_given_seed_is_kept(provider):
    result = provider.inference({"prompt": "x", "seed": 1234, "width": 128, "height": 128})
    assert result.images[0].seed == 1234


def test_img2img_posts_the_init_image(provider, webui):
    init = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(init, format="PNG")
    result = provider.inference(
        {"prompt": "x", "image_strength": 0.3, "width": 128, "height": 128}, ("base.png", init.getvalue())
    )
    assert webui.calls[-1]["endpoint"] == "img2img"
    assert webui.calls[-1]["body"]["denoising_strength"] == 0.3
    with Image.open(io.BytesIO(result.images[0].data)) as im:  # resembles its red init image
        red, green, _ = im.convert("RGB").resize((1, 1)).getpixel((0, 0))
    assert red > green


def test_models_loras_and_samplers(provider):
    answer = provider.models()
    assert [m["id"] for m in answer["models"]] == [m["model_name"] for m in MODELS]
    assert "add_detail" in [lo["id"] for lo in answer["loras"]]
    assert "DPM++ 2M" in [s["id"] for s in answer["samplers"]]
    assert [s["id"] for s in answer["schedule_types"]] == ["Automatic", "Uniform", "Karras", "Exponential"]


def test_sampler_and_scheduler_options_offer_the_cached_lists():
    from sinkin_a1111.provider import OPTIONS

    menus = {f.name: f.as_json()["menu"] for f in OPTIONS}
    assert menus["sampler_name"] == "sampler" and menus["schedule_type"] == "schedule_type"
    assert menus["clip_skip"] is None


def test_upscale_through_extra_single_image(provider, webui):
    source = io.BytesIO()
    Image.new("RGB", (100, 80), (1, 2, 3)).save(source, format="PNG")
    result = provider.upscale({"type": "R-ESRGAN 4x+", "upscaling_resize": 2.5}, ("x.png", source.getvalue()))
    assert _image(result.data) == (250, 200)
    assert webui.calls[-1]["body"] == {"upscaler_1": "R-ESRGAN 4x+", "upscaling_resize": 2.5}


def test_connection_refused_says_to_start_the_web_ui(monkeypatch):
    monkeypatch.setenv("SINKIN_A1111_URL", "http://127.0.0.1:9")
    with pytest.raises(TransientError, match="is it running with --api"):
        A1111Provider().inference({"prompt": "x"})


def test_out_of_memory_is_a_service_error_with_the_message(provider, webui):
    webui.inject("txt2img", "oom")
    with pytest.raises(ServiceError, match="OutOfMemoryError: CUDA out of memory"):
        provider.inference({"prompt": "x"})


def test_an_unknown_sampler_is_refused_with_the_web_ui_words(provider):
    with pytest.raises(ServiceError, match="Sampler not found"):
        provider.inference({"prompt": "x", "sampler_name": "Nope"})


def test_a_timeout_after_sending_is_an_unknown_outcome_and_interrupt_is_offered(provider, webui, monkeypatch):
    monkeypatch.setenv("SINKIN_A1111_TIMEOUT", "0.3")
    webui.inject("txt2img", "hang", seconds=1.0)
    with pytest.raises(OutcomeUnknown, match="interrupt"):
        provider.inference({"prompt": "x"})
    assert webui.interrupted == 0  # never sent on its own
    provider.interrupt()
    assert webui.interrupted == 1


def test_a_dropped_connection_is_an_unknown_outcome(provider, webui):
    webui.inject("txt2img", "drop")
    with pytest.raises(OutcomeUnknown):
        provider.inference({"prompt": "x"})


def test_basic_auth(monkeypatch):
    with A1111StandIn(auth=("me", "s3cret")) as webui:
        monkeypatch.setenv("SINKIN_A1111_URL", webui.base_url)
        monkeypatch.delenv("SINKIN_A1111_AUTH", raising=False)
        with pytest.raises(ServiceError, match="SINKIN_A1111_AUTH") as refused:
            A1111Provider().inference({"prompt": "x"})
        assert "s3cret" not in str(refused.value)
        monkeypatch.setenv("SINKIN_A1111_AUTH", "me:s3cret")
        assert len(A1111Provider().inference({"prompt": "x"}).images) == 1


def test_the_servers_upscalers_become_upscale_types_for_a1111_images(webui):
    from sinkin_a1111.provider import _upscalers_cache, server_upscalers

    _upscalers_cache.clear()
    assert server_upscalers() == ["Lanczos", "R-ESRGAN 4x+", "ESRGAN_4x"]
