"""The img2img → txt2img fallback plugin."""

import json
import sqlite3

from PIL import Image

from sinkin_pipeline.providers import ServiceError
from sinkin_pipeline.worker import work


def init_png(tmp_path):
    path = tmp_path / "base.png"
    Image.new("RGB", (64, 96), (200, 30, 30)).save(path)
    return path


def job_row(db_path):
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return dict(conn.execute("select * from jobs").fetchone())
    finally:
        conn.close()


def test_failed_img2img_is_sent_again_as_txt2img(db_path, make_run, fake_provider, tmp_path):
    make_run(
        db_path,
        {
            "provider": "fake",
            "model_id": "m",
            "prompt": "a fox",
            "init_image": str(init_png(tmp_path)),
            "image_strength": 0.4,
            "controlnet": "canny",
        },
    )
    fake_provider.script["inference"] = [ServiceError("img2img failed: init image rejected")]
    summary = work(db_path)
    assert summary.succeeded == 1 and summary.images == 1
    first, second = fake_provider.calls["inference"]
    assert first["init_image"][0] == "base.png" and first["payload"]["image_strength"] == 0.4
    assert second["init_image"] is None
    assert "image_strength" not in second["payload"] and "controlnet" not in second["payload"]
    job = job_row(db_path)
    assert job["status"] == "succeeded" and job["fallback"] == 1
    assert job["error"] == "img2img failed: init image rejected"
    assert "image_strength" not in json.loads(job["raw_payload"])


def test_fallback_can_be_turned_off_in_the_spec(db_path, make_run, fake_provider, tmp_path):
    make_run(
        db_path,
        {
            "provider": "fake",
            "model_id": "m",
            "prompt": "a fox",
            "init_image": str(init_png(tmp_path)),
            "fallback": False,
        },
    )
    fake_provider.script["inference"] = [ServiceError("img2img failed")]
    assert work(db_path).failed == 1
    job = job_row(db_path)
    assert job["status"] == "failed" and job["fallback"] == 0 and job["error"] == "img2img failed"
    assert len(fake_provider.calls["inference"]) == 1


def test_txt2img_errors_get_no_fallback(db_path, make_run, fake_provider):
    make_run(db_path, {"provider": "fake", "model_id": "m", "prompt": "a fox"})
    fake_provider.script["inference"] = [ServiceError("Model not found")]
    work(db_path)
    assert job_row(db_path)["fallback"] == 0 and len(fake_provider.calls["inference"]) == 1


def test_when_the_fallback_fails_too_both_messages_are_kept(db_path, make_run, fake_provider, tmp_path):
    make_run(
        db_path,
        {"provider": "fake", "model_id": "m", "prompt": "a fox", "init_image": str(init_png(tmp_path))},
    )
    fake_provider.script["inference"] = [ServiceError("img2img failed"), ServiceError("out of credits")]
    work(db_path)
    job = job_row(db_path)
    assert job["status"] == "failed" and "img2img failed" in job["error"] and "out of credits" in job["error"]
