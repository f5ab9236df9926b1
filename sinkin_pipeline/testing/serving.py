"""`sinkin serve`'s Datasette on 127.0.0.1 in a background thread, for tests and benchmarks, and the
flags Debian's Chromium is started with there (headless, no sandbox, nothing fetched)."""

import socket
import threading
import time

#: Debian's Chromium, driven by Playwright (never Playwright's own download)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def serve_in_thread(db_path, wrap=None, settings=None):
    """Serve the database with `sinkin serve`'s Datasette on 127.0.0.1 (uvicorn in a thread, a free
    port), its ASGI app passed through ``wrap`` if given. Returns ``(base_url, stop)``."""
    import uvicorn

    from datasette_sinkin.app import make_datasette

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ds = make_datasette(db_path, "127.0.0.1", port, settings=settings)
    asgi = ds.app() if wrap is None else wrap(ds.app())
    server = uvicorn.Server(
        uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)

    def stop():
        server.should_exit = True
        thread.join(5)

    return "http://127.0.0.1:{}".format(port), stop
