"""Attacks on `sinkin serve` replayed in Debian's Chromium from a page served on another local
port (same-site: the Lax cookie would be sent) and from another host name (cross-site):
framing (clickjacking), cross-site reads through GET, and the Content-Security-Policy on every
page (no inline script runs, and the app's pages and Datasette's own work under it)."""

import http.server
import threading

import pytest
from conftest import image_scores

from sinkin_pipeline.worker import work

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """A run of 4 simulated images served on 127.0.0.1 for this module."""
    from conftest import queue_run, serve_in_thread

    from sinkin_pipeline.db import open_db

    path = tmp_path_factory.mktemp("security") / "lab.db"
    open_db(path).conn.close()
    queue_run(
        path,
        {
            "provider": "simulator",
            "model_id": "4zdwGOB",
            "prompt": ["a fox", "a cat"],
            "seed": [1, 2],
            "width": 128,
            "height": 128,
            "steps": 4,
            "name": "secret-run-name",
        },
    )
    work(path, concurrency=2)
    log = []
    url, stop = serve_in_thread(path, wrap=lambda asgi: _recorder(asgi, log))
    yield {"url": url, "db": path, "port": int(url.rsplit(":", 1)[1]), "log": log}
    stop()


def _recorder(asgi, log):
    """The server's answers as ``(path, status)``: what the browser hides from a page (an opaque
    response, one blocked by Cross-Origin-Resource-Policy) is still seen here."""

    async def app(scope, receive, send):
        async def recording_send(message):
            # the browser's own favicon requests are not the page's doing
            if message["type"] == "http.response.start" and scope["path"] != "/favicon.ico":
                log.append((scope["path"], message["status"]))
            await send(message)

        await asgi(scope, receive, recording_send)

    return app


class _Attacker(http.server.BaseHTTPRequestHandler):
    html = ""

    def do_GET(self):
        body = self.server.html.encode()
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def attacker():
    """``attacker(html)`` → the URL of a page with that HTML on another port of 127.0.0.1."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
    server.html = ""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    def serve(html, host="127.0.0.1"):
        server.html = html
        return "http://{}:{}/".format(host, server.server_address[1])

    yield serve
    server.shutdown()


def _wait_until(condition, timeout=5):
    import time

    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


scores = image_scores


def test_a_page_on_another_port_cannot_frame_the_viewer(page, app, attacker):
    page.goto(app["url"] + "/-/sinkin/images/1")  # the user has the app open: cookies are set
    page.wait_for_selector("body[data-ready='1']")
    app["log"].clear()
    page.goto(
        attacker(
            '<h1>Win a prize</h1><iframe id="f" src="{}/-/sinkin/images/1" width=900 height=600>'
            "</iframe>".format(app["url"])
        )
    )
    viewer = "/-/sinkin/images/1"
    _wait_until(lambda: any(path == viewer for path, _ in app["log"]))
    page.wait_for_timeout(300)
    framed = [f for f in page.frames if f != page.main_frame]
    assert framed, "the iframe element exists"
    # the browser refused to render the app inside the other site's page
    assert all(f.url.startswith("chrome-error://") or f.url == "about:blank" for f in framed), [
        f.url for f in framed
    ]
    assert all(
        f.query_selector("#sk-image-id") is None for f in framed if not f.url.startswith("chrome-error")
    )
    # (late requests of the page opened before – favicon, prefetched files – are not the frame's)
    assert [entry for entry in app["log"] if entry[0] == viewer] == [(viewer, 403)]
    # the keys the user types on the prize page score nothing
    page.click("h1")
    for key in ("9", "u", "Enter"):
        page.keyboard.press(key)
    page.wait_for_timeout(200)
    assert scores(app["db"]) == [None] * 4


def test_every_response_forbids_framing_and_sniffing(app):
    import httpx

    for path in (
        "/-/sinkin",
        "/-/sinkin/images/1",
        "/-/sinkin/images/1.json",
        "/-/sinkin/images/1/full",
        "/",
        "/lab",
        "/lab/image_table",
        "/lab/runs.json",
        "/lab/image_table.csv?_nocol=thumbnail",
        "/-/static/app.css",
        "/no/such/page",
    ):
        r = httpx.get(app["url"] + path)
        assert r.status_code in (200, 404), (path, r.status_code)
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp
        assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
        assert r.headers["x-frame-options"] == "DENY", path
        assert r.headers["x-content-type-options"] == "nosniff", path


def test_another_site_cannot_read_through_get_but_can_link(page, app, attacker):
    sql = "select count(*) from runs where name like 'secret%'"
    html = """<a id="link" href="{u}/-/sinkin">open the lab</a><img src="{u}/-/sinkin/images/1/thumb">
<script>
window.results = [];
const urls = ["{u}/lab.json?sql={q}", "{u}/lab/runs.json", "{u}/-/sinkin/status.json"];
Promise.all(urls.map(u => fetch(u, {{mode: "no-cors", credentials: "include"}})
  .then(r => "done", e => "error"))).then(r => {{ window.results = r; }});
</script>""".format(u=app["url"], q=sql.replace(" ", "%20"))
    for host in ("127.0.0.1", "localhost"):  # same-site (another port), then cross-site
        app["log"].clear()
        page.goto(attacker(html, host))
        page.wait_for_function("() => window.results.length === 3")
        page.wait_for_function("() => document.images[0].complete")
        _wait_until(lambda: len(app["log"]) >= 4)
        assert sorted(app["log"]) == [
            ("/-/sinkin/images/1/thumb", 403),
            ("/-/sinkin/status.json", 403),
            ("/lab.json", 403),
            ("/lab/runs.json", 403),
        ], host
        # a link opened from the other page still works (a top-level navigation)
        with page.expect_navigation():
            page.click("#link")
        assert page.url == app["url"] + "/-/sinkin"
        assert page.locator("h1").first.is_visible()


def test_no_csp_violation_and_everything_works_on_every_page(page, app):
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    for path in (
        "/-/sinkin",
        "/-/sinkin/new",
        "/-/sinkin/new?from=1",
        "/-/sinkin/runs/1",
        "/-/sinkin/runs/1/grid",
        "/-/sinkin/runs/1/insights",
        "/-/sinkin/insights?runs=1",
        "/-/sinkin/login",
        "/",
        "/lab",
        "/lab/image_table",
        "/lab/runs/1",
        "/lab?sql=select+1",
        "/lab/top_images",
        "/no/such/page",
    ):
        page.goto(app["url"] + path)
        page.wait_for_load_state("load")
        page.wait_for_timeout(100)
    page.goto(app["url"] + "/-/sinkin/images/1")
    page.wait_for_selector("body[data-ready='1']")
    page.keyboard.press("7")  # scripts from the app's own files run: scoring by key works
    page.wait_for_function("() => document.querySelector('#sk-score').textContent === '7'")
    page.goto(app["url"] + "/lab?sql=select+1")
    assert page.locator(".CodeMirror").count() == 1  # Datasette's hashed inline script ran
    csp = [p for p in problems if "Content Security Policy" in p or "Refused to" in p]
    assert csp == [], csp
    assert scores(app["db"])[0] == 7
