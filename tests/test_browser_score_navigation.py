"""Scores typed quickly are never lost by leaving the page while the server is slow: the writes
still queued are sent with keepalive as the page goes, and the "every image is rated" dialog only
opens once every score is saved."""

import time

import pytest
from conftest import image_scores, serve_in_thread

from sinkin_pipeline.worker import work

pytestmark = pytest.mark.browser

SPEC = {
    "provider": "simulator",
    "model_id": "4zdwGOB",
    "prompt": ["a fox", "a cat", "a owl"],
    "seed": [1, 2],
    "width": 128,
    "height": 128,
    "steps": 4,
}


def slow_scores(app, delay=0.4):
    """Every score POST answered ``delay`` seconds late (a busy server)."""
    import asyncio

    async def wrapped(scope, receive, send):
        if scope["type"] == "http" and scope["path"].endswith("/score.json"):
            await asyncio.sleep(delay)
        await app(scope, receive, send)

    return wrapped


scores = image_scores


@pytest.fixture
def slow_server(db_path, make_run):
    make_run(db_path, SPEC)
    work(db_path, concurrency=2)
    url, stop = serve_in_thread(db_path, wrap=slow_scores)
    yield url
    stop()


def test_scores_typed_before_leaving_the_page_are_all_saved(page, slow_server, db_path):
    page.goto(slow_server + "/-/sinkin/images/6")  # newest first: 6 5 4 3 2 1
    page.wait_for_selector("body[data-ready='1']")
    for key in ["2", "4", "6", "8"]:  # images 6, 5, 4, 3; each write waits for the one before
        current = page.locator("#sk-image-id").inner_text()
        page.keyboard.press(key)
        page.wait_for_function("id => document.querySelector('#sk-image-id').textContent !== id", arg=current)
    assert scores(db_path)[2:] != [8, 6, 4, 2]  # most are still queued in the page
    page.goto(slow_server + "/-/sinkin")  # leave at once
    deadline = time.monotonic() + 10
    while scores(db_path)[2:] != [8, 6, 4, 2]:
        assert time.monotonic() < deadline, scores(db_path)
        time.sleep(0.05)
    assert scores(db_path)[:2] == [None, None]


def test_the_end_of_the_run_is_announced_once_every_score_is_saved(page, slow_server, db_path):
    page.goto(slow_server + "/-/sinkin/images/6")
    page.wait_for_selector("body[data-ready='1']")
    for key in ["1", "2", "3", "4", "5", "6"]:
        current = page.locator("#sk-image-id").inner_text()
        page.keyboard.press(key)
        if key != "6":
            page.wait_for_function(
                "id => document.querySelector('#sk-image-id').textContent !== id", arg=current
            )
    page.wait_for_selector("#sk-done[open]", timeout=15000)
    assert scores(db_path) == [6, 5, 4, 3, 2, 1]  # all saved when the dialog says so
