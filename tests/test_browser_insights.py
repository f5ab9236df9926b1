"""Insights and the X/Y/Z grid in Debian's Chromium: score in the grid with the keys alone, both
pages in light and dark mode, and reached from the dashboard and the gallery.
Screenshots go to $SINKIN_SCREENSHOTS (or the test's temporary folder)."""

import os
import sqlite3
from pathlib import Path

import pytest
from test_insights import build_planted

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from conftest import serve_in_thread

    db_path = tmp_path_factory.mktemp("browser-insights") / "lab.db"
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


def luminance(css_colour):
    parts = css_colour[css_colour.index("(") + 1 : css_colour.index(")")].replace(",", " ").split()
    r, g, b = (float(p) for p in parts[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_keyboard_scoring_in_the_grid_writes_the_focused_image(page, served):
    url, db_path, run_id = served
    page.goto("{}/-/sinkin/runs/{}/grid?x=scheduler&y=seed&z=steps".format(url, run_id))
    page.wait_for_selector("body[data-grid-ready='1']")
    page.keyboard.press("ArrowRight")  # focus the first image
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    focused = page.evaluate("document.activeElement.dataset.id")
    # second column, second row: K_EULER, seed 2, steps 20
    assert page.evaluate("document.activeElement.dataset.row") == "1"
    page.keyboard.press("9")
    badge = page.locator("a.sk-gimg[data-id='{}'] [data-score]".format(focused))
    page.wait_for_function(
        "id => document.querySelector(`a.sk-gimg[data-id='${id}']`).dataset.scored === '9'", arg=focused
    )
    assert badge.inner_text() == "9"
    assert score_of(db_path, int(focused)) == 9
    page.keyboard.press("0")  # 0 = 10, same image (no auto-advance in the grid)
    page.wait_for_function(
        "id => document.querySelector(`a.sk-gimg[data-id='${id}']`).dataset.scored === '10'", arg=focused
    )
    assert score_of(db_path, int(focused)) == 10
    page.keyboard.press("PageDown")  # the next Z page
    page.wait_for_url("**zpage=2")
    page.wait_for_selector("body[data-grid-ready='1']")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")  # opens the viewer
    page.wait_for_url("**/-/sinkin/images/*")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_insights_and_grid_read_in_light_and_dark(page, served, scheme, tmp_path):
    url, _, run_id = served
    folder = Path(os.environ.get("SINKIN_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.emulate_media(color_scheme=scheme)
    for name, path in (("insights", "/insights?x=scheduler&y=steps"), ("grid", "/grid")):
        page.goto("{}/-/sinkin/runs/{}{}".format(url, run_id, path))
        page.wait_for_load_state("load")
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        text = page.evaluate("getComputedStyle(document.querySelector('h1')).color")
        if scheme == "dark":
            assert luminance(background) < 60 and luminance(text) > 180, (name, background, text)
        else:
            assert luminance(background) > 200 and luminance(text) < 80, (name, background, text)
        page.screenshot(path=str(folder / "{}-{}.png".format(name, scheme)), full_page=True)
    page.goto("{}/-/sinkin/runs/{}/insights".format(url, run_id))
    whisker = page.evaluate("getComputedStyle(document.querySelector('svg.sk-bar .sk-whisker')).stroke")
    assert (luminance(whisker) > 180) == (scheme == "dark")  # whiskers follow the text colour


def test_reached_from_the_dashboard_and_the_gallery(page, served):
    url, _, run_id = served
    page.goto(url + "/-/sinkin")
    page.get_by_role("link", name="Insights").first.click()
    page.wait_for_url("**/-/sinkin/runs/{}/insights".format(run_id))
    assert "matters most" in page.locator("#sk-summary").inner_text()
    page.goto("{}/-/sinkin/runs/{}".format(url, run_id))
    page.locator("#sk-grid-link").click()
    page.wait_for_url("**/-/sinkin/runs/{}/grid".format(run_id))
    page.locator("#sk-insights-link").click()
    page.wait_for_url("**/-/sinkin/runs/{}/insights".format(run_id))


def test_queue_this_opens_the_form_with_its_live_plan(page, served):
    url, db_path, run_id = served
    page.goto("{}/-/sinkin/runs/{}/insights".format(url, run_id))
    page.locator("#sk-queue-this").click()
    page.wait_for_url("**/-/sinkin/new?from={}&suggest=1".format(run_id))
    # the suggestion's own count (scores written by the grid test above change it)
    from sinkin_pipeline.db import open_db
    from sinkin_pipeline.suggest import suggest

    spec = suggest(open_db(db_path), run_id)["spec"]
    jobs = len(spec["scheduler"]) * len(spec["steps"]) * spec["seed"]["random"]
    page.wait_for_function(
        "n => document.querySelector('#sk-plan').textContent.startsWith(n + ' jobs')", arg=jobs, timeout=10000
    )
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("select count(*) from runs").fetchone()[0] == 1  # nothing queued yet
    finally:
        conn.close()
