"""The viewer in Chromium: the upscale dialog names the image's provider and its cost and warns
before upscaling an image again; an img2img image shows the init image it started from."""

import pytest
from PIL import Image

from sinkin_pipeline.db import open_db
from sinkin_pipeline.upscaling import upscale_image
from sinkin_pipeline.worker import work

pytestmark = pytest.mark.browser


def test_upscale_dialog_and_init_image(page, live_server, db_path, make_run, tmp_path):
    start = tmp_path / "start.png"
    Image.new("RGB", (96, 64), (10, 200, 30)).save(start)
    make_run(
        db_path,
        {
            "provider": "simulator",
            "model_id": "4zdwGOB",
            "prompt": "a fox",
            "width": 128,
            "height": 128,
            "steps": 5,
            "seed": [1, 2],
            "init_image": str(start),
            "image_strength": 0.4,
        },
    )
    work(db_path)
    db = open_db(db_path)
    first, second = [r[0] for r in db.execute("select id from images order by id").fetchall()]
    db.conn.close()
    upscale_image(db_path, first, "esrgan")
    url = live_server(db_path)
    page.goto("{}/-/sinkin/images/{}".format(url, first))
    page.locator("#sk-init:not([hidden])").wait_for()
    assert "start.png · 96×64 · strength 0.4" in page.text_content("#sk-init-caption")
    page.wait_for_function("() => document.querySelector('#sk-init-img').naturalWidth === 96")
    page.keyboard.press("u")
    page.locator("#sk-upscale-warning:not([hidden])").wait_for()
    assert page.text_content("#sk-upscale-note") == "Free on provider simulator."
    assert "already upscaled (esrgan)" in page.text_content("#sk-upscale-warning")
    page.keyboard.press("Escape")
    page.goto("{}/-/sinkin/images/{}".format(url, second))
    page.keyboard.press("u")
    page.locator("#sk-upscale[open]").wait_for()
    page.wait_for_function("() => document.querySelector('#sk-upscale-note').textContent.startsWith('Free')")
    assert page.is_hidden("#sk-upscale-warning")
