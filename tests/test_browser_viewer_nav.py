"""The viewer in Debian's Chromium, where it is entered from and left to: Esc goes back to the X/Y/Z
grid it was opened from (same axes, Z page and focused image) or to the gallery (same filters and
page); blind mode keeps the settings panel empty until the image is scored."""

import sqlite3

import pytest
from test_insights import build_planted

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from conftest import serve_in_thread

    db_path = tmp_path_factory.mktemp("browser-viewer-nav") / "lab.db"
    run_id = build_planted(db_path)
    url, stop = serve_in_thread(db_path)
    yield url, db_path, run_id
    stop()


def score_of(db_path, image_id):
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("select score from images where id = ?", [image_id]).fetchone()[0]
    finally:
        conn.close()


def test_esc_in_the_viewer_goes_back_to_the_grid_it_was_opened_from(page, served):
    url, _, run_id = served
    page.goto("{}/-/sinkin/runs/{}/grid?x=scheduler&y=seed&z=steps".format(url, run_id))
    page.wait_for_selector("body[data-grid-ready='1']")
    page.keyboard.press("PageDown")  # Z page 2
    page.wait_for_url("**zpage=2")
    page.wait_for_selector("body[data-grid-ready='1']")
    page.keyboard.press("ArrowRight")  # focus the first image
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    focused = page.evaluate("document.activeElement.dataset.id")
    page.keyboard.press("Enter")
    page.wait_for_url("**/-/sinkin/images/{}?grid=*".format(focused))
    page.wait_for_selector("body[data-ready='1']")
    assert "grid" in page.locator("#sk-back").inner_text().lower()
    page.keyboard.press("Escape")
    page.wait_for_url(
        "**/-/sinkin/runs/{}/grid?x=scheduler&y=seed&z=steps&zpage=2#img-{}".format(run_id, focused)
    )
    page.wait_for_selector("body[data-grid-ready='1']")
    assert page.evaluate("document.activeElement.dataset.id") == focused
    assert [page.locator("#sk-" + k).input_value() for k in "xyz"] == ["scheduler", "seed", "steps"]
    assert page.locator(".sk-ztabs [aria-current='page']").inner_text() == "35"
    # the keys go on from the image that has the focus
    page.keyboard.press("ArrowLeft")
    assert page.evaluate("document.activeElement.dataset.id") != focused


def test_esc_in_the_viewer_opened_from_the_gallery_goes_back_to_the_gallery(page, served):
    url, _, run_id = served
    page.goto("{}/-/sinkin/runs/{}?scheduler=DDIM&sort=oldest".format(url, run_id))
    page.keyboard.press("ArrowRight")
    selected = page.evaluate("document.activeElement.dataset.id")
    page.keyboard.press("Enter")
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#sk-position").inner_text() == "2 of 6"
    page.keyboard.press("ArrowRight")  # the next image in the gallery's order
    page.wait_for_function("id => document.querySelector('#sk-image-id').textContent !== id", arg=selected)
    shown = page.locator("#sk-image-id").inner_text()
    page.keyboard.press("Escape")
    page.wait_for_url("**/-/sinkin/runs/{}?sort=oldest&scheduler=DDIM#img-{}".format(run_id, shown))
    page.wait_for_selector(".sk-tile.sk-selected[data-id='{}']".format(shown))  # selected again
