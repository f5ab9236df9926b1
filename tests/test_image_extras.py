"""The viewer's extras: the upscale quote on the image's own provider (estimate, a warning before
upscaling again) and the init image of an img2img image – the library and the route."""

import sqlite3

import pytest
from PIL import Image

from sinkin_pipeline.db import open_db
from sinkin_pipeline.imagequote import init_image, upscale_quote
from sinkin_pipeline.upscaling import upscale_image
from sinkin_pipeline.worker import work

SPEC = {
    "provider": "simulator",
    "model_id": "4zdwGOB",
    "prompt": "a fox",
    "width": 128,
    "height": 128,
    "steps": 5,
    "seed": 1,
}


def first_image(db_path):
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("select max(id) from images").fetchone()[0]
    finally:
        conn.close()


def quote(db_path, image_id):
    db = open_db(db_path)
    try:
        return upscale_quote(db, image_id), init_image(db, image_id)
    finally:
        db.conn.close()


def test_a_simulator_image_is_quoted_free_and_warned_once_upscaled(db_path, make_run):
    make_run(db_path, SPEC)
    work(db_path)
    image_id = first_image(db_path)
    q, init = quote(db_path, image_id)
    assert (q["provider"], q["free"], q["note"]) == ("simulator", True, "Free on provider simulator.")
    assert q["estimates"] == {"esrgan": 0.0, "hires_fix": 0.0} and q["warning"] is None and init is None
    upscale_image(db_path, image_id, "esrgan")
    q, _ = quote(db_path, image_id)
    assert q["upscaled"] == {"type": "esrgan", "times": 1, "credits": 0}
    assert q["warning"] == (
        "Image {} is already upscaled (esrgan): upscaling it again is free and "
        "replaces the upscale shown.".format(image_id)
    )
    assert quote(db_path, 999)[0] is None


def test_a_paid_image_is_quoted_in_credits_on_its_provider(db_path, make_run, monkeypatch):
    monkeypatch.delenv("SINKIN_API_KEY", raising=False)
    make_run(db_path, dict(SPEC, provider="sinkin"))
    db = open_db(db_path)
    with db.conn:  # a paid image as the worker leaves it (no network here)
        job = db.execute("select id, run_id, config_id from jobs").fetchone()
        db.execute("update jobs set status = 'succeeded', credit_cost = 1 where id = ?", [job[0]])
        db.execute(
            "insert into images (run_id, config_id, job_id, image_index, inf_id, url) values (?, ?, ?, 0, "
            "'inf1', 'https://example.invalid/1.png')",
            list(job[1:]) + [job[0]],
        )
    db.conn.close()
    q, _ = quote(db_path, first_image(db_path))
    assert q["provider"] == "sinkin" and q["free"] is False
    assert q["note"] == "Costs ~6 credits on provider sinkin."  # the documented example, nothing recorded yet
    assert q["ready"] is False and "SINKIN_API_KEY" in q["problem"]


def test_the_init_image_of_an_img2img_image_and_the_route(db_path, make_run, tmp_path):
    start = tmp_path / "start.png"
    Image.new("RGB", (96, 64), (10, 200, 30)).save(start)
    make_run(db_path, dict(SPEC, init_image=str(start), image_strength=0.4))
    work(db_path)
    image_id = first_image(db_path)
    _, init = quote(db_path, image_id)
    assert (init["filename"], init["width"], init["height"], init["image_strength"], init["fallback"]) == (
        "start.png",
        96,
        64,
        0.4,
        0,
    )


@pytest.mark.asyncio
async def test_the_extras_route(lab, make_run, tmp_path):
    start = tmp_path / "start.png"
    Image.new("RGB", (96, 64), (10, 200, 30)).save(start)
    make_run(lab.db_path, dict(SPEC, init_image=str(start)))
    work(lab.db_path)
    image_id = first_image(lab.db_path)
    r = await lab.ds.client.get("/-/sinkin/images/{}/extras.json".format(image_id))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["upscale"]["note"] == "Free on provider simulator."
    init = body["init_image"]
    assert init["url"] == "/-/sinkin/assets/{}".format(init["asset_id"])
    picture = await lab.ds.client.get(init["url"])
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    assert (await lab.ds.client.get("/-/sinkin/images/999/extras.json")).status_code == 404
