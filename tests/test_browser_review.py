"""The review app in Debian's Chromium: score a whole run with the keys alone, watch "Unrated only"
shrink, upscale from the viewer and open the comparison, and a dark-mode screenshot.
Screenshots go to $SINKIN_SCREENSHOTS (or the test's temporary folder)."""

import os
import sqlite3
from pathlib import Path

import pytest
from conftest import image_scores

from sinkin_pipeline.worker import work

pytestmark = pytest.mark.browser


@pytest.fixture
def run_url(db_path, make_run, live_server):
    make_run(
        db_path,
        {
            "provider": "simulator",
            "model_id": "4zdwGOB",
            "prompt": ["a fox", "a cat", "a owl"],
            "seed": [1, 2],
            "width": 256,
            "height": 256,
            "steps": 8,
        },
    )
    work(db_path, concurrency=2)
    return live_server(db_path)


scores = image_scores


def saved(db_path, check, timeout=5.0):
    """Wait until the scores in the database pass ``check`` (writes are sent in the background)."""
    import time

    deadline = time.monotonic() + timeout
    while not check(scores(db_path)):
        assert time.monotonic() < deadline, scores(db_path)
        time.sleep(0.05)
    return True


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
            page.wait_for_function(
                "id => document.querySelector('#sk-image-id').textContent !== id", arg=current
            )
    page.wait_for_function("() => document.querySelector('#sk-score').textContent === '5'")
    assert saved(db_path, lambda s: sorted(x or 0 for x in s) == [1, 3, 5, 7, 9, 10])
    page.wait_for_selector("#sk-done[open]")  # the run is fully rated
    page.keyboard.press("Escape")  # closes that
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
    assert saved(db_path, lambda s: sorted(x for x in s if x) == [6, 8])
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


@pytest.fixture
def big_page(browser):
    """A 1920x1080 page; the test fails on any uncaught JavaScript error."""
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert errors == [], errors


def image_box(page):
    return page.evaluate("""() => { const r = document.querySelector('#sk-image').getBoundingClientRect();
        return {w: r.width, h: r.height, vw: innerWidth, vh: innerHeight}; }""")


def fills(box):
    return box["h"] >= 0.8 * box["vh"] or box["w"] >= 0.8 * box["vw"]


def test_the_viewer_fills_the_screen_zooms_to_actual_pixels_and_shows_the_neighbours(
    big_page, run_url, tmp_path
):
    page = big_page
    page.goto(run_url + "/-/sinkin/images/3")
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_function("() => document.querySelector('#sk-image').complete")
    box = image_box(page)
    assert fills(box), box  # a 256x256 image, upscaled to the screen
    page.screenshot(path=str(shots(tmp_path) / "viewer-1920.png"))
    page.keyboard.press("i")  # the settings panel folds away, the image stays as large
    assert page.locator("#sk-panel").is_hidden()
    assert fills(image_box(page))
    page.keyboard.press("i")
    assert page.locator("#sk-panel").is_visible()
    page.keyboard.press("z")  # actual pixels
    assert page.locator("#sk-stage.sk-actual").count() == 1
    assert image_box(page)["w"] == 256
    page.locator("#sk-image").dblclick()  # and back to fit
    assert page.locator("#sk-stage.sk-actual").count() == 0 and fills(image_box(page))
    page.keyboard.press("f")
    page.wait_for_function("() => document.fullscreenElement !== null")
    page.keyboard.press("f")
    page.wait_for_function("() => document.fullscreenElement === null")
    # the filmstrip: the run's neighbours, the current one marked; a click moves there
    strip = page.locator(".sk-strip-item:visible")
    assert strip.count() == 6
    assert page.locator(".sk-strip-item.sk-current").get_attribute("href") == "/-/sinkin/images/3"
    page.locator(".sk-strip-item:visible").nth(0).click()
    page.wait_for_function("() => document.querySelector('#sk-image-id').textContent === '6'")
    assert "/-/sinkin/images/6" in page.url


def test_score_feedback_undo_progress_and_the_end_of_the_run(big_page, run_url, db_path, make_run):
    make_run(
        db_path,
        {
            "name": "second run",
            "provider": "simulator",
            "model_id": "4zdwGOB",
            "prompt": "a hen",
            "seed": [1, 2],
            "width": 128,
            "height": 128,
            "steps": 4,
        },
    )
    work(db_path)
    page = big_page
    page.goto(run_url + "/-/sinkin/images/6")  # newest first: 6 5 4 3 2 1
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#sk-progress").inner_text() == "0 of 6 rated"
    page.keyboard.press("7")
    # the image being left is confirmed, the next one is shown
    page.wait_for_function("() => document.querySelector('#sk-image-id').textContent === '5'")
    assert page.locator("#sk-flash-text").inner_text() == "image 6 scored 7"
    assert float(page.evaluate("getComputedStyle(document.querySelector('#sk-flash')).opacity")) > 0.5
    assert page.locator("#sk-progress").inner_text() == "1 of 6 rated"
    page.keyboard.press("3")
    page.wait_for_function("() => document.querySelector('#sk-image-id').textContent === '4'")
    page.wait_for_function("() => document.querySelector('#sk-progress').textContent === '2 of 6 rated'")
    assert saved(db_path, lambda s: s[4:6] == [3, 7])
    page.keyboard.press("Backspace")  # undo the 3: image 5 is unrated again, and shown
    page.wait_for_function("() => document.querySelector('#sk-image-id').textContent === '5'")
    assert page.locator("#sk-score").inner_text() == "–"
    assert saved(db_path, lambda s: s[4:6] == [None, 7])
    page.keyboard.press("Control+z")  # undo the 7 too
    page.wait_for_function("() => document.querySelector('#sk-image-id').textContent === '6'")
    assert saved(db_path, lambda s: s[4:6] == [None, None])
    assert page.locator("#sk-progress").inner_text() == "0 of 6 rated"
    # undo restores a previous score, not only "unrated"
    page.keyboard.press("4")
    page.wait_for_function("() => document.querySelector('#sk-image-id').textContent === '5'")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("9")
    assert saved(db_path, lambda s: s[5] == 9)
    page.keyboard.press("Backspace")
    page.wait_for_function("() => document.querySelector('#sk-image-id').textContent === '6'")
    page.wait_for_function("() => document.querySelector('#sk-score').textContent === '4'")
    assert saved(db_path, lambda s: s[5] == 4)
    # rate the rest: the end state points to the other run's unrated images and to the insights
    page.keyboard.press("ArrowRight")
    for key in ["5", "6", "2", "8", "1"]:
        page.keyboard.press(key)
    page.wait_for_selector("#sk-done[open]")
    assert page.locator("#sk-progress").inner_text() == "6 of 6 rated"
    assert page.locator("#sk-done-insights").get_attribute("href") == "/-/sinkin/runs/1/insights"
    page.wait_for_selector(".sk-done-runs a")
    link = page.locator(".sk-done-runs a")
    assert link.count() == 1 and link.inner_text() == "second run"
    assert "2 unrated images" in page.locator(".sk-done-runs").inner_text()
    link.click()
    page.wait_for_url("**/-/sinkin/images/7?unrated=1")
    assert saved(db_path, lambda s: sorted(x for x in s if x) == [1, 2, 4, 5, 6, 8])


def test_ranking_table_folds_the_column_notes_links_rows_to_the_viewer_and_follows_the_theme(
    big_page, run_url, db_path, tmp_path
):
    page = big_page
    table = "{}/{}/image_table".format(run_url, db_path.stem)
    page.goto(table + "?_facet=scale")
    # the 34 column descriptions are folded behind "Columns"; each is its column header's tooltip
    assert page.locator("dl.column-descriptions").is_hidden()
    assert page.locator("details.sk-columns > summary").inner_text() == "Columns"
    assert page.locator("th[data-column='score']").get_attribute("title").startswith("Your score")
    page.locator("details.sk-columns > summary").click()
    assert page.locator("dl.column-descriptions").is_visible()
    # the facet asked for in the URL and set in the metadata is shown once
    assert page.locator(".facet-info[data-column='scale']").count() == 1
    # dark mode by the toggle, remembered on Datasette's pages and ours
    assert page.locator("header .sk-theme-toggle").count() == 1
    page.locator("header .sk-theme-toggle").click()
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(15, 18, 22)"
    page.screenshot(path=str(shots(tmp_path) / "ranking-table-dark.png"))
    for path in ("/", "/" + db_path.stem, "/{}/top_images".format(db_path.stem), "/-/sinkin/runs/1"):
        page.goto(run_url + path)
        assert page.locator("header .sk-theme-toggle").count() == 1, path
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(15, 18, 22)", path
    # rows lead to the viewer: the image id and the thumbnail
    page.goto(table)
    first = page.locator("table.rows-and-columns tbody tr").first
    image_id = first.locator("td.col-image_id").inner_text().strip()
    assert first.locator("td.col-image_id a").get_attribute("href") == "/-/sinkin/images/" + image_id
    first.locator("td.col-thumbnail a").click()
    page.wait_for_url("**/-/sinkin/images/" + image_id)
    page.wait_for_selector("body[data-ready='1']")


def test_gallery_compares_picked_images_with_one_zoom_and_upscales_the_best_after_an_estimate(
    big_page, run_url, db_path, tmp_path
):
    conn = sqlite3.connect(db_path)
    conn.executemany("update images set score = ? where id = ?", [(9, 1), (8, 2), (4, 3), (10, 6)])
    conn.commit()
    conn.close()
    page = big_page
    page.goto(run_url + "/-/sinkin/runs/1")  # newest first: 6 5 4 3 2 1
    for _ in range(3):  # pick three with x
        page.keyboard.press("x")
        page.keyboard.press("ArrowRight")
    assert page.locator(".sk-tile.sk-picked").count() == 3
    assert page.locator("#sk-tray-count").inner_text() == "3 images picked"
    page.keyboard.press("c")
    page.wait_for_selector("#sk-multi[open]")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#sk-multi-body img')].every((i) => i.naturalWidth)"
    )
    boxes = [page.locator("#sk-multi-body img").nth(k).bounding_box() for k in range(3)]
    assert len({(round(b["width"]), round(b["height"])) for b in boxes}) == 1  # the same size
    page.keyboard.press("+")
    transforms = page.evaluate(
        "[...document.querySelectorAll('#sk-multi-body img')].map((i) => getComputedStyle(i).transform)"
    )
    assert len(set(transforms)) == 1 and transforms[0] != "none"  # one zoom for all
    page.screenshot(path=str(shots(tmp_path) / "gallery-compare-3.png"))
    page.keyboard.press("Escape")
    # upscale every image scored at least 8: the estimate first, then the confirmed count
    page.click("#sk-batch-open")
    page.wait_for_function(
        "() => /3 images to upscale/.test(document.querySelector('#sk-batch-plan').textContent)"
    )
    assert "provider simulator" in page.locator("#sk-batch-plan").inner_text()
    assert page.locator("#sk-batch-go").inner_text() == "Upscale 3 images"
    # the types and their options come from the upscaler registry, for this run's provider
    from sinkin_pipeline.upscalers import upscalers_for

    offered = upscalers_for("simulator")
    types = page.eval_on_selector_all("#sk-batch-type option", "(o) => o.map((x) => x.value)")
    assert types == list(offered)
    first = next(iter(offered.values()))
    names = page.eval_on_selector_all("#sk-batch-options input", "(i) => i.map((x) => x.name)")
    assert names == list(first.options)
    other = list(offered)[1]
    page.select_option("#sk-batch-type", other)
    page.wait_for_function(
        "(names) => [...document.querySelectorAll('#sk-batch-options input')].map((x) => x.name).join() === names",
        arg=",".join(offered[other].options),
    )
    page.select_option("#sk-batch-type", first.name)
    page.wait_for_function(
        "(names) => [...document.querySelectorAll('#sk-batch-options input')].map((x) => x.name).join() === names",
        arg=",".join(first.options),
    )
    page.select_option("#sk-batch-min", "10")
    page.wait_for_function("() => document.querySelector('#sk-batch-go').textContent === 'Upscale 1 image'")
    page.select_option("#sk-batch-min", "8")
    page.wait_for_function("() => document.querySelector('#sk-batch-go').textContent === 'Upscale 3 images'")
    page.click("#sk-batch-go")
    page.wait_for_selector(".sk-toast-ok")
    assert page.locator(".sk-toast-ok").inner_text() == "3 images upscaled"
    conn = sqlite3.connect(db_path)
    assert [
        r[0] for r in conn.execute("select id from images where upscale_path is not null order by id")
    ] == [1, 2, 6]
    conn.close()
    # the zip of the top images
    assert page.locator("#sk-zip-form").get_attribute("action") == "/-/sinkin/runs/1/top.zip"
    with page.expect_download() as download:
        page.click("#sk-zip")
    assert download.value.suggested_filename == "run1-top3.zip"


def test_remix_and_copy_parameters_from_the_viewer(browser, run_url):
    context = browser.new_context(
        viewport={"width": 1920, "height": 1080}, permissions=["clipboard-read", "clipboard-write"]
    )
    page = context.new_page()
    page.goto(run_url + "/-/sinkin/images/2")
    page.wait_for_selector("body[data-ready='1']")
    page.keyboard.press("p")
    page.wait_for_selector(".sk-toast-ok")
    text = page.evaluate("navigator.clipboard.readText()")
    assert text.startswith("a fox\n") or text.startswith("a cat\n") or text.startswith("a owl\n")
    assert "Steps: 8, Sampler: DPM++ 2M, CFG scale: 7.5, Seed: " in text and "Size: 256x256" in text
    page.keyboard.press("r")
    page.wait_for_url("**/-/sinkin/new?image=2")
    assert "from image 2 of run 1" in page.locator("h1").inner_text()
    context.close()
