"""Upscaling: an upscale job with its cost, then the image's upscale columns."""

import sqlite3

import pytest
from PIL import Image

from sinkin_pipeline.providers import ServiceError
from sinkin_pipeline.upscaling import UpscaleError, upscale_image
from sinkin_pipeline.worker import work


def one(db_path, sql, params=()):
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        row = conn.execute(sql, params).fetchone()
        return dict(row) if row else None
    finally:
        conn.close()


@pytest.fixture
def sim_image(db_path, make_run):
    make_run(
        db_path, {"provider": "simulator", "model_id": "m", "prompt": "a fox", "width": 256, "height": 256}
    )
    work(db_path)
    return one(db_path, "select * from images")["id"]


def test_esrgan_upscale_saves_a_bigger_image(db_path, sim_image):
    image = upscale_image(db_path, sim_image, "esrgan", scale=3)
    assert image["upscale_type"] == "esrgan" and image["upscale_url"]
    with Image.open(db_path.parent / image["upscale_path"]) as im:
        assert im.size == (768, 768)
    job = one(db_path, "select * from jobs where kind = 'upscale'")
    assert job["status"] == "succeeded" and job["image_id"] == sim_image and job["credit_cost"] == 0
    assert one(db_path, "select upscaled from run_summary")["upscaled"] == 1


def test_hires_fix_upscale(db_path, sim_image):
    image = upscale_image(db_path, sim_image, "hires_fix", strength=0.3)
    assert image["upscale_type"] == "hires_fix"
    with Image.open(db_path.parent / image["upscale_path"]) as im:
        assert im.size == (512, 512)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"upscale_type": "esrgan", "scale": 5}, "scale must be from 2 to 4"),
        ({"upscale_type": "esrgan", "scale": 1.5}, "scale must be from 2 to 4"),
        ({"upscale_type": "hires_fix", "strength": 1.5}, "strength must be from 0 to 1"),
        ({"upscale_type": "hires_fix", "scale": 3}, "does not take the option scale"),
        ({"upscale_type": "waifu2x"}, "unknown upscale type"),
    ],
)
def test_bad_options_write_nothing(db_path, sim_image, kwargs, message):
    with pytest.raises(UpscaleError, match=message):
        upscale_image(db_path, sim_image, **kwargs)
    assert one(db_path, "select count(*) as n from jobs where kind = 'upscale'")["n"] == 0


def test_unknown_image(db_path, sim_image):
    with pytest.raises(LookupError, match="image 999 not found"):
        upscale_image(db_path, 999)


def test_a_refused_upscale_fails_the_job_with_sinkins_message(db_path, make_run, fake_provider):
    make_run(db_path, {"provider": "fake", "model_id": "m", "prompt": "a fox"})
    work(db_path)
    image_id = one(db_path, "select id from images")["id"]
    fake_provider.script["upscale"] = [ServiceError("Not enough credits")]
    with pytest.raises(ServiceError, match="Not enough credits"):
        upscale_image(db_path, image_id)
    job = one(db_path, "select * from jobs where kind = 'upscale'")
    assert job["status"] == "failed" and job["error"] == "Not enough credits"
    assert one(db_path, "select upscale_path from images")["upscale_path"] is None


def test_upscale_cost_is_recorded(db_path, make_run, fake_provider):
    make_run(db_path, {"provider": "fake", "model_id": "m", "prompt": "a fox"})
    work(db_path)
    image_id = one(db_path, "select id from images")["id"]
    upscale_image(db_path, image_id, "esrgan", scale=2)
    job = one(db_path, "select * from jobs where kind = 'upscale'")
    assert job["credit_cost"] == 6.0 and job["credit_estimate"] == 6.0
    payload = fake_provider.calls["upscale"][0]
    assert payload["type"] == "esrgan" and payload["scale"] == 2 and payload["inf_id"]
