"""The viewer in Debian's Chromium, where it is entered from and left to: Esc goes back to the X/Y/Z
grid it was opened from (same axes, Z page and focused image) or to the gallery (same filters and
page); blind mode keeps the settings panel empty until the image is scored."""

import re
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
    # → and ← walk that grid page in reading order (rows, then columns), not the gallery's order
    on_page = page.evaluate(
        "async () => { const r = await fetch(document.querySelector('#sk-back').href.split('#')[0]);"
        " const html = await r.text();"
        ' return [...html.matchAll(/class="sk-gimg" href="[^"]*" data-id="(\\d+)"/g)].map(m => m[1]); }'
    )
    at = on_page.index(focused)
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "id => document.querySelector('#sk-image-id').textContent === id", arg=on_page[at + 1]
    )
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("id => document.querySelector('#sk-image-id').textContent === id", arg=focused)
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


def test_blind_mode_shows_no_settings_until_the_image_is_scored(page, served):
    url, db_path, run_id = served
    page.goto("{}/-/sinkin/runs/{}".format(url, run_id))
    page.locator("#sk-blind").click()
    page.wait_for_url("**blind=*")
    assert page.locator(".sk-tile:has(.sk-unscored) .sk-caption").count() == 0  # not sent at all
    assert page.locator(".sk-tile:not(:has(.sk-unscored)) .sk-caption").first.is_visible()
    conn = sqlite3.connect(db_path)
    image_id = conn.execute("select id from images where score is null order by id desc limit 1").fetchone()[
        0
    ]
    conn.close()
    seen = []
    page.on("response", lambda r: seen.append(r) if "/-/sinkin/images/" in r.url else None)
    page.goto("{}/-/sinkin/images/{}?blind=99".format(url, image_id))
    page.wait_for_selector("body[data-ready='1']")
    for _ in range(50):  # its data has come (and the neighbours' is fetched ahead)
        if any("/images/{}.json".format(image_id) in r.url for r in seen):
            break
        page.wait_for_timeout(100)
    page.wait_for_timeout(300)
    assert page.locator("#sk-settings > *").count() == 0
    assert page.locator("#sk-varies").inner_text() == ""
    conn = sqlite3.connect(db_path)
    unscored = {r[0] for r in conn.execute("select id from images where score is null")}
    conn.close()
    checked = 0
    for response in seen:  # nothing the viewer fetched tells a setting of an unscored image
        found = re.search(r"/-/sinkin/images/(\d+)(\.json|/extras\.json)", response.url)
        if found and int(found.group(1)) in unscored:
            text = response.text()
            assert not any(s in text for s in ("a fox", "DDIM", "K_EULER", "PNDM", "4zdwGOB")), response.url
            checked += 1
    assert checked >= 1  # this image (and any unscored neighbour fetched ahead)
    if page.locator("#sk-auto").is_checked():
        page.keyboard.press("a")  # stay on this image after scoring
    page.keyboard.press("p")  # the A1111 line would tell the settings: not before a score
    page.wait_for_selector(".sk-toast:has-text('score this image first')")
    page.keyboard.press("r")  # Remix neither
    page.wait_for_timeout(200)
    assert "/-/sinkin/images/{}".format(image_id) in page.url
    page.keyboard.press("6")
    page.wait_for_function("() => document.querySelectorAll('#sk-settings > dd').length > 3")
    assert "a fox" in page.locator("#sk-settings").inner_text()
    assert page.locator("#sk-remix").get_attribute("href").endswith("/-/sinkin/new?image={}".format(image_id))
    assert page.locator("#sk-copy").is_enabled()
    assert score_of(db_path, image_id) == 6
