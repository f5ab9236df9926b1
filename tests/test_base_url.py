"""Datasette's ``base_url`` (here ``/lab/``, as behind a proxy that mounts the app there): every
page of ours loads, every link, picture, script and form it writes is under ``/lab/``, so are the
URLs in our JSON and metadata.yml's links, and the pages' scripts build their fetches and links
from the base the server passed (sinkin.js's ``SK.url``)."""

import re
from types import SimpleNamespace

import pytest

from datasette_sinkin.app import make_datasette
from sinkin_pipeline.worker import work

SPEC = {
    "provider": "simulator",
    "model_id": "4zdwGOB",
    "prompt": "a fox",
    "scheduler": ["DDIM", "KLMS"],
    "seed": 1,
    "width": 128,
    "height": 128,
    "steps": 5,
}
LINK = re.compile(r'(?:href|src|action)="(/[^"]*)"')


def root_links(text):
    """The site-absolute links of a page that are not under /lab/."""
    return sorted({u for u in LINK.findall(text) if not u.startswith("/lab/")})


@pytest.fixture
def lab(db_path, make_run):
    make_run(db_path, SPEC)
    work(db_path)
    return make_datasette(db_path, "127.0.0.1", 8001, settings={"base_url": "/lab/"})


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "path",
    [
        "/-/sinkin",
        "/-/sinkin/new",
        "/-/sinkin/runs/1",
        "/-/sinkin/runs/1?scheduler=DDIM",
        "/-/sinkin/images/1",
        "/-/sinkin/runs/1/insights",
        "/-/sinkin/runs/1/grid",
        "/",
        "/lab",
        "/lab/image_table",
    ],
)
async def test_every_page_loads_and_links_under_the_base_url(lab, path):
    response = await lab.client.get(path)  # datasette.client puts /lab/ in front
    assert response.status_code == 200, response.text[:300]
    assert str(response.url).startswith("http://localhost/lab/")
    assert root_links(response.text) == []
    assert "/lab/-/sinkin/static/" in response.text  # sinkin.js is served from under the base


@pytest.mark.asyncio
async def test_json_urls_and_metadata_links_are_under_the_base_url(lab):
    image = (await lab.client.get("/-/sinkin/images/1.json")).json()["image"]
    assert image["full_url"] == "/lab/-/sinkin/images/1/full"
    assert (await lab.client.get(image["full_url"][len("/lab") :])).status_code == 200
    index = (await lab.client.get("/")).text
    assert 'href="/lab/-/sinkin">Dashboard</a>' in index and 'href="/lab/-/sinkin/new"' in index
    table = (await lab.client.get("/lab/image_table")).text
    assert 'href="/lab/-/sinkin/images/1"' in table and 'src="/lab/-/sinkin/images/1/thumb"' in table


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from conftest import queue_run, serve_in_thread

    path = tmp_path_factory.mktemp("base-url") / "lab.db"
    from sinkin_pipeline.db import open_db

    open_db(path).conn.close()
    queue_run(path, SPEC)
    work(path)
    url, stop = serve_in_thread(path, settings={"base_url": "/lab/"})
    try:
        yield SimpleNamespace(url=url)
    finally:
        stop()


@pytest.mark.browser
def test_the_scripts_take_the_base_from_the_server(page, server):
    page.goto(server.url + "/lab/-/sinkin")
    assert page.evaluate("() => window.SK.base") == "/lab"
    assert page.evaluate("() => window.SK.url('/-/sinkin/runs/1')") == "/lab/-/sinkin/runs/1"
    # the dashboard's own links, built in JS from the status JSON
    page.wait_for_function("() => document.querySelector('a[href$=\"/-/sinkin/runs/1\"]') !== null")
    hrefs = page.eval_on_selector_all(
        ".sk-dash a[href^='/']", "els => els.map((a) => a.getAttribute('href'))"
    )
    assert hrefs and all(h.startswith("/lab/") for h in hrefs), hrefs
    # a JSON fetch through the shared helper goes to /lab/-/… and answers
    status = page.evaluate("() => window.SK.getJSON('/-/sinkin/status.json').then((b) => b.runs.length)")
    assert status == 1
    # the gallery's big preview (review.js) is under the base too
    page.goto(server.url + "/lab/-/sinkin/runs/1")
    assert page.evaluate("() => window.SK.base") == "/lab"


@pytest.mark.browser
def test_the_viewer_fetches_and_links_under_the_base_url(page, server):
    page.goto(server.url + "/lab/-/sinkin/images/2")  # newest first: 2, then 1
    page.wait_for_selector("body[data-ready='1']")
    page.keyboard.press("ArrowRight")  # the next image: fetched, shown, its URL written under the base
    page.wait_for_function("() => location.pathname === '/lab/-/sinkin/images/1'")
    page.wait_for_function("() => document.querySelector('#sk-image-id').textContent === '1'")
    page.wait_for_selector("#sk-filmstrip a")
    hrefs = page.eval_on_selector_all(
        "#sk-filmstrip a, #sk-back, #sk-remix", "els => els.map((a) => a.getAttribute('href'))"
    )
    assert hrefs and all(h.startswith("/lab/") for h in hrefs), hrefs
    srcs = page.eval_on_selector_all(
        "#sk-filmstrip img, #sk-image",
        "els => els.map((i) => new URL(i.getAttribute('src'), location.href).pathname)",
    )
    assert all(s.startswith("/lab/") for s in srcs), srcs
    page.keyboard.press("Escape")
    page.wait_for_url("**/lab/-/sinkin/runs/1#img-1")
