"""Shared pytest fixtures."""

import json as _json
import os

# Tests see only the built-in plugins, whatever else is installed in the environment (a test that
# needs a third-party plugin loads it explicitly or sets SINKIN_LOAD_PLUGINS in a subprocess).
os.environ["SINKIN_LOAD_PLUGINS"] = ""

import pytest

from sinkin_pipeline.testing.serving import CHROMIUM, CHROMIUM_ARGS, serve_in_thread  # noqa: F401


class LabClient:
    """A SinkIn database served by an in-process Datasette, and POSTs the way the pages send them
    (JSON + the X-CSRFToken header + the ds_csrftoken cookie)."""

    def __init__(self, db_path, ds):
        self.db_path = db_path
        self.ds = ds
        self._token = None

    def db(self):
        from sinkin_pipeline.db import open_db

        return open_db(self.db_path)

    async def token(self):
        if self._token is None:
            page = await self.ds.client.get("/-/sinkin")
            self._token = page.cookies["ds_csrftoken"]
        return self._token

    async def post(self, path, data, headers=None, raw=False):
        token = await self.token()
        sent = {"content-type": "application/json", "x-csrftoken": token, "cookie": "ds_csrftoken=" + token}
        sent.update(headers or {})
        body = data if raw else _json.dumps(data)
        return await self.ds.client.post(path, content=body, headers=sent)


@pytest.fixture
def lab(tmp_path):
    """LabClient on a fresh, migrated database (tmp_path/lab.db) served by Datasette."""
    from datasette.app import Datasette

    from sinkin_pipeline.db import open_db

    path = tmp_path / "lab.db"
    open_db(path).conn.close()
    return LabClient(path, Datasette([str(path)], settings={"default_cache_ttl": 0}))


# --- the pipeline: a scripted fake provider and quick runs ------------------------------------


class FakeProvider:
    """A provider whose answers are scripted per call, counting every call it receives.

    ``script["inference"]`` / ``["download"]`` / ``["upscale"]`` are lists consumed in order; an
    item is an exception instance (raised) or None (answer normally). When a list is empty the
    call succeeds. ``cost`` is the credit_cost of each inference."""

    name = "fake"
    free = False

    def __init__(self):
        import threading

        self.lock = threading.Lock()
        self.script = {"inference": [], "download": [], "upscale": []}
        self.calls = {"inference": [], "download": [], "upscale": []}
        self.cost = 1.0
        self.latency = 0.0

    def _step(self, kind, record):
        import time

        with self.lock:
            self.calls[kind].append(record)
            action = self.script[kind].pop(0) if self.script[kind] else None
        if self.latency and kind != "download":
            time.sleep(self.latency)
        if action is not None:
            raise action

    def check_ready(self):
        pass

    def fallback_cost_per_image(self):
        return 1.0

    def inference(self, payload, init_image=None):
        import uuid

        self._step("inference", {"payload": dict(payload), "init_image": init_image})
        n = int(payload.get("num_images") or 1)
        inf = uuid.uuid4().hex[:12]
        return {
            "error_code": 0,
            "inf_id": inf,
            "credit_cost": self.cost,
            "images": ["fake://{}/{}.png".format(inf, i) for i in range(n)],
        }

    def download(self, url):
        from sinkin_plugins.render import render_png

        self._step("download", url)
        return render_png({"prompt": url, "width": 128, "height": 128})

    def upscale(self, payload):
        self._step("upscale", dict(payload))
        return {"error_code": 0, "output": payload["url"] + "?up", "credit_cost": 6.0}

    def close(self):
        pass


@pytest.fixture
def fake_provider(monkeypatch):
    """A FakeProvider registered as provider ``fake`` for this test; retries made instant."""
    from sinkin_pipeline import hookimpl, jobs
    from sinkin_pipeline.plugins import load_plugins, pm

    load_plugins()
    provider = FakeProvider()

    class Plugin:
        @hookimpl
        def register_providers(self, register):
            register("fake", lambda: provider)

    monkeypatch.setattr(jobs, "BASE_DELAY", 0.001)
    monkeypatch.setattr(jobs, "MAX_DELAY", 0.01)
    pm.register(Plugin(), name="test-fake-provider")
    try:
        yield provider
    finally:
        pm.unregister(name="test-fake-provider")


@pytest.fixture
def db_path(tmp_path):
    """A fresh, migrated SinkIn database file (tmp_path/lab.db)."""
    from sinkin_pipeline.db import open_db

    path = tmp_path / "lab.db"
    open_db(path).conn.close()
    return path


def queue_run(db_path, spec_dict, **kwargs):
    """Check ``spec_dict`` and create its run with queued jobs; returns the run id."""
    from sinkin_pipeline.db import open_db
    from sinkin_pipeline.runs import create_run
    from sinkin_pipeline.spec import check_spec

    db = open_db(db_path)
    try:
        return create_run(db, check_spec(spec_dict, base_dir=str(db_path.parent)), **kwargs)
    finally:
        db.conn.close()


def image_scores(db_path):
    """Every image's score (None when unrated), in image id order, read from the database file."""
    import sqlite3

    conn = sqlite3.connect(db_path)
    try:
        return [r[0] for r in conn.execute("select score from images order by id")]
    finally:
        conn.close()


@pytest.fixture
def make_run():
    """``make_run(db_path, spec_dict)`` → run id (a checked spec, its configs and queued jobs)."""
    return queue_run


# --- the local stand-in SinkIn server ------------------------------------------------------


@pytest.fixture
def standin():
    """A started stand-in SinkIn server on 127.0.0.1 accepting the token ``test-key``."""
    from sinkin_pipeline.testing.standin import StandIn

    with StandIn(tokens={"test-key"}) as server:
        yield server


@pytest.fixture
def api_env(standin, monkeypatch):
    """Point provider ``sinkin`` at the stand-in (SINKIN_API_KEY=test-key); yields the stand-in."""
    from sinkin_pipeline import jobs

    monkeypatch.setenv("SINKIN_API_KEY", "test-key")
    monkeypatch.setenv("SINKIN_API_BASE", standin.base_url)
    monkeypatch.setattr(jobs, "BASE_DELAY", 0.001)
    monkeypatch.setattr(jobs, "MAX_DELAY", 0.05)
    yield standin


# --- a real server and a real browser (serve_in_thread: sinkin_pipeline.testing.serving) ------------


@pytest.fixture(scope="module")
def browser():
    """A headless Debian Chromium per test module (Playwright, never its own download). Not
    session-wide: Playwright's sync API keeps an event loop running while it is open, which would
    break the asyncio tests of later modules."""
    import os

    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's Chromium is missing: apt-get install -y chromium (scripts/test does this)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def live_server():
    """``live_server(db_path)`` → the base URL of the database served on 127.0.0.1 for this test."""
    stops = []

    def start(db_path):
        url, stop = serve_in_thread(db_path)
        stops.append(stop)
        return url

    yield start
    for stop in stops:
        stop()


@pytest.fixture
def page(browser):
    """A 1280x800 page in a fresh context; the test fails on any uncaught JavaScript error."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert errors == [], errors
