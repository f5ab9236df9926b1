"""The review app in Debian's Chromium: score a whole run with the keys alone, watch "Unrated only"
shrink, upscale from the viewer and open the comparison, and a dark-mode screenshot.
Screenshots go to $SINKIN_SCREENSHOTS (or the test's temporary folder)."""
import os
import sqlite3
from pathlib import Path

import pytest

from sinkin_pipeline.worker import work

pytestmark = pytest.mark.browser


@pytest.fixture
def run_url(db_path, make_run, live_server):
    make_run(db_path, {"provider": "simulator", "model_id": "4zdwGOB", "prompt": ["a fox", "a cat", "a owl"],
                       "seed": [1, 2], "width": 256, "height": 256, "steps": 8})
    work(db_path, concurrency=2)
    return live_server(db_path)


def scores(db_path):
    conn = sqlite3.connect(db_path)
    try:
        return [r[0] for r in conn.execute("select score from images order by id")]
    finally:
        conn.close()


def shots(tmp_path):
    folder = Path(os.environ.get("SINKIN_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_score_a_whole_run_with_the_keys_alone(page, run_url, db_path):
    page.goto(run_url + "/-/sinkin/runs/1?unrated=1")
    assert page.locator(".sk-tile").count() == 6
    page.keyboard.press("Enter")  # the first tile is selected
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#sk-position").inner_text() == "1 of 6"
    for key in ["3", "7", "9", "0", "1", "5"]:
        current = page.locator("#sk-image-id").inner_text()
        page.keyboard.press(key)
        if key != "5":  # auto-advance to the next image
            page.wait_for_function("id => document.querySelector('#sk-image-id').textContent !== id", arg=current)
    page.wait_for_function("() => document.querySelector('#sk-score').textContent === '5'")
    page.wait_for_timeout(300)
    assert sorted(scores(db_path)) == [1, 3, 5, 7, 9, 10]
    page.keyboard.press("Escape")  # back to the gallery at the same place
    page.wait_for_url("**/-/sinkin/runs/1?unrated=1#img-*")
    assert page.locator(".sk-tile").count() == 0
    assert "Every image matching these filters is scored" in page.content()


def test_unrated_only_shrinks_as_you_score(page, run_url, db_path):
    page.goto(run_url + "/-/sinkin/runs/1")
    page.keyboard.press("Enter")
    page.wait_for_selector("body[data-ready='1']")
    page.keyboard.press("a")  # auto-advance off
    page.keyboard.press("8")
    page.wait_for_function("() => document.querySelector('#sk-score').textContent === '8'")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("6")
    page.wait_for_timeout(300)
    assert sorted(s for s in scores(db_path) if s) == [6, 8]
    page.goto(run_url + "/-/sinkin/runs/1")
    page.keyboard.press("u")  # the gallery's "Unrated only" toggle
    page.wait_for_url("**/-/sinkin/runs/1?unrated=1")
    assert page.locator(".sk-tile").count() == 4
    # the auto-advance choice is remembered
    page.goto(run_url + "/-/sinkin/images/1")
    assert not page.locator("#sk-auto").is_checked()


def test_upscale_from_the_viewer_then_compare(browser, run_url, db_path, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="dark")
    page = context.new_page()
    page.goto(run_url + "/-/sinkin/images/2")
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#sk-compare-open").is_disabled()
    page.keyboard.press("u")
    page.wait_for_selector("#sk-upscale[open]")
    page.keyboard.press("Enter")
    page.wait_for_selector(".sk-toast-ok")
    assert "upscaled" in page.locator(".sk-toast-ok").inner_text()
    page.wait_for_selector("#sk-compare[open]")  # the new image is shown at once, beside the original
    page.keyboard.press("Escape")
    assert not page.locator("#sk-compare-open").is_disabled()
    page.keyboard.press("c")
    page.wait_for_selector("#sk-compare[open]")
    page.wait_for_function("() => document.querySelector('#sk-cmp-b').naturalWidth === 512")
    a, b = page.locator("#sk-cmp-a").bounding_box(), page.locator("#sk-cmp-b").bounding_box()
    assert (round(a["width"]), round(a["height"])) == (round(b["width"]), round(b["height"]))
    page.keyboard.press("s")  # slider
    page.keyboard.press("ArrowLeft")
    assert page.locator("#sk-divider").input_value() == "45"
    page.keyboard.press("+")
    zoom = page.evaluate("getComputedStyle(document.querySelector('#sk-cmp-a')).transform")
    assert zoom == page.evaluate("getComputedStyle(document.querySelector('#sk-cmp-b')).transform") != "none"
    page.screenshot(path=str(shots(tmp_path) / "compare-dark.png"))
    page.keyboard.press("Escape")
    page.goto(run_url + "/-/sinkin/runs/1")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 18, 22)"  # dark mode followed the system
    page.screenshot(path=str(shots(tmp_path) / "gallery-dark.png"))
    conn = sqlite3.connect(db_path)
    assert conn.execute("select upscale_type from images where id = 2").fetchone()[0] == "esrgan"
    context.close()


def test_theme_toggle_is_remembered(page, run_url):
    page.goto(run_url + "/-/sinkin/runs/1")
    page.click("#sk-theme-toggle")
    page.reload()
    assert page.evaluate("document.documentElement.getAttribute('data-theme')") == "dark"
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(15, 18, 22)"
