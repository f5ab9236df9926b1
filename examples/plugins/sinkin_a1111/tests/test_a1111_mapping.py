"""The spec → web UI request mapping (a documented table; no silent drops)."""

import base64

import pytest

from sinkin_a1111.mapping import SAMPLER_FOR_SCHEDULER, MappingError, build_request


def test_txt2img_fields_map_to_the_web_ui_names():
    path, body = build_request(
        {
            "prompt": "a lighthouse",
            "negative_prompt": "blurry",
            "seed": 42,
            "steps": 25,
            "scale": 6.5,
            "width": 640,
            "height": 768,
            "num_images": 3,
            "scheduler": "K_EULER_ANCESTRAL",
            "model_id": "dreamshaper_8",
            "lora": "add_detail",
            "lora_scale": 0.6,
        }
    )
    assert path == "/sdapi/v1/txt2img"
    assert body["prompt"] == "a lighthouse <lora:add_detail:0.6>"
    assert body["negative_prompt"] == "blurry"
    assert (body["seed"], body["steps"], body["cfg_scale"]) == (42, 25, 6.5)
    assert (body["width"], body["height"], body["batch_size"], body["n_iter"]) == (640, 768, 3, 1)
    assert body["sampler_name"] == "Euler a"
    assert body["override_settings"] == {"sd_model_checkpoint": "dreamshaper_8"}


def test_every_sinkin_scheduler_has_a_sampler():
    from sinkin_pipeline.fields import SCHEDULERS

    assert set(SAMPLER_FOR_SCHEDULER) == set(SCHEDULERS)


def test_no_seed_means_random():
    _, body = build_request({"prompt": "x"})
    assert body["seed"] == -1


def test_provider_options_override_and_extend():
    _, body = build_request(
        {"prompt": "x", "scheduler": "DDIM"},
        {
            "sampler_name": "DPM++ 2M Karras",
            "schedule_type": "Karras",
            "clip_skip": 2,
            "hr_scale": 1.5,
            "hr_upscaler": "R-ESRGAN 4x+",
        },
    )
    assert body["sampler_name"] == "DPM++ 2M Karras"
    assert body["scheduler"] == "Karras"
    assert body["override_settings"]["CLIP_stop_at_last_layers"] == 2
    assert body["enable_hr"] is True and body["hr_scale"] == 1.5 and body["hr_upscaler"] == "R-ESRGAN 4x+"


def test_img2img_sends_the_init_image_and_denoising_strength():
    path, body = build_request({"prompt": "x", "image_strength": 0.4}, init_image=b"\x89PNG...")
    assert path == "/sdapi/v1/img2img"
    assert base64.b64decode(body["init_images"][0]) == b"\x89PNG..."
    assert body["denoising_strength"] == 0.4


@pytest.mark.parametrize("field,value", [("lcm", True), ("controlnet", "canny"), ("version", "v2")])
def test_sinkin_only_features_are_refused_by_name(field, value):
    with pytest.raises(MappingError, match=field):
        build_request({"prompt": "x", field: value})
