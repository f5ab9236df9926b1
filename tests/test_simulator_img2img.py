"""The simulator's img2img: the image resembles its init image (more so at a low strength), and
``provider: simulator-no-img2img`` refuses img2img like SinkIn so the fallback shows offline."""

import sqlite3
from io import BytesIO

from PIL import Image, ImageChops, ImageStat

from sinkin_pipeline.worker import work
from sinkin_plugins.render import render_image, tiny_copy

SETTINGS = {
    "prompt": "a harbour at night",
    "width": 256,
    "height": 256,
    "steps": 30,
    "seed": 7,
    "scheduler": "DDIM",
    "scale": 7,
}


def halves(path=None):
    """An init image: red on the left, blue on the right."""
    image = Image.new("RGB", (200, 200), (220, 30, 30))
    image.paste((30, 60, 220), (100, 0, 200, 200))
    if path:
        image.save(path)
    return image


def difference(a, b):
    a, b = a.convert("RGB").resize((64, 64)), b.convert("RGB").resize((64, 64))
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def side_means(image):
    image = image.convert("RGB").resize((64, 64))
    left = ImageStat.Stat(image.crop((0, 0, 28, 50))).mean
    right = ImageStat.Stat(image.crop((36, 0, 64, 50))).mean
    return left, right


def init_copy():
    buffer = BytesIO()
    halves().save(buffer, "PNG")
    return Image.open(BytesIO(tiny_copy(buffer.getvalue())))


def test_img2img_output_resembles_its_init_image():
    init = init_copy()
    img2img = render_image(SETTINGS, 0, init)  # the default strength, 0.75
    txt2img = render_image(SETTINGS, 0)
    assert difference(img2img, halves()) < 0.6 * difference(txt2img, halves())
    left, right = side_means(img2img)
    assert left[0] > left[2] + 40 and right[2] > right[0] + 40  # red stays left, blue stays right


def test_a_higher_strength_changes_the_init_image_more():
    init = init_copy()
    low = render_image(dict(SETTINGS, image_strength=0.2), 0, init)
    high = render_image(dict(SETTINGS, image_strength=0.95), 0, init)
    assert difference(low, halves()) < difference(high, halves())


def test_the_init_copy_is_small_enough_to_travel_in_a_url():
    buffer = BytesIO()
    Image.effect_noise((1024, 1024), 80).convert("RGB").save(buffer, "PNG")
    assert len(tiny_copy(buffer.getvalue())) < 4000


def jobs(db_path):
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("select status, fallback, error from jobs order by id").fetchall()
    finally:
        conn.close()


def test_simulator_no_img2img_refuses_and_the_fallback_runs_offline(db_path, make_run, tmp_path):
    init = tmp_path / "start.png"
    halves(init)
    spec = {
        "provider": "simulator-no-img2img",
        "model_id": "4zdwGOB",
        "prompt": "a fox",
        "width": 128,
        "height": 128,
        "steps": 5,
        "seed": 1,
        "init_image": str(init),
    }
    make_run(db_path, spec)
    make_run(db_path, dict(spec, fallback=False))
    make_run(db_path, {k: v for k, v in spec.items() if k != "init_image"})
    summary = work(db_path)
    assert (summary.succeeded, summary.failed) == (2, 1)
    fell_back, refused, txt2img = jobs(db_path)
    assert fell_back[:2] == ("succeeded", 1) and "img2img is not available for model 4zdwGOB" in fell_back[2]
    assert refused[:2] == ("failed", 0) and "img2img is not available" in refused[2]
    assert txt2img == ("succeeded", 0, None)
