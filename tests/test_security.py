"""Attacks on `sinkin serve` replayed over HTTP against a real server (uvicorn on a free port):
exposed mode's sign-in and hosts, and bad input that used to crash with a 500."""

import socket
import threading
import time

import httpx
import pytest


def _lan_address():
    """This machine's address on its default route, or None (then the exposed-mode test skips)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))
            address = s.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(ds, host, port):
    import uvicorn

    config = uvicorn.Config(ds.app(), host=host, port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)

    def stop():
        server.should_exit = True
        thread.join(5)

    return stop


@pytest.fixture
def exposed(db_path):
    from datasette_sinkin.app import make_datasette

    lan = _lan_address()
    if lan is None:
        pytest.skip("this machine has no non-loopback address to play the LAN client from")
    port = _free_port()
    ds = make_datasette(db_path, "0.0.0.0", port, allow_hosts=["lab.example"], token="the-sign-in-token-123")
    stop = _serve(ds, "0.0.0.0", port)
    yield {"lan": "http://{}:{}".format(lan, port), "local": "http://127.0.0.1:{}".format(port), "port": port}
    stop()


def test_exposed_mode_needs_sign_in_from_the_network_but_not_from_this_machine(exposed, db_path):
    lan, port = exposed["lan"], exposed["port"]
    with httpx.Client(base_url=lan) as client:
        # a browser on the LAN reaches the server by its address, and is sent to sign in
        r = client.get("/-/sinkin", headers={"sec-fetch-mode": "navigate"})
        assert r.status_code == 302 and r.headers["location"] == "/-/sinkin/login?next=%2F-%2Fsinkin"
        assert client.get("/-/sinkin/login").status_code == 200
        # the old attack: a script on the LAN sending Host: localhost reads and writes nothing
        for host in ("localhost", "localhost:{}".format(port), "127.0.0.1:{}".format(port)):
            assert client.get("/lab.json", headers={"host": host}).status_code == 401
            r = client.post("/-/sinkin/queue/cancel.json", json={}, headers={"host": host})
            assert r.status_code == 401 and "sign in" in r.json()["error"]
        # hosts: the machine's address and --allow-host are answered, others are refused
        assert client.get("/lab.json", headers={"host": "lab.example:{}".format(port)}).status_code == 401
        assert client.get("/lab.json", headers={"host": "evil.example:{}".format(port)}).status_code == 403
        # a wrong token is refused, the right one gives a signed, HttpOnly cookie
        assert client.get("/-/sinkin/login?token=guess").status_code == 403
        assert "sinkin_auth" not in client.cookies
        r = client.get("/-/sinkin/login", params={"token": "the-sign-in-token-123", "next": "/lab"})
        assert r.status_code == 302 and r.headers["location"] == "/lab"
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        assert client.get("/lab.json").status_code == 200
        assert client.get("/-/sinkin").status_code == 200
        # a forged or tampered cookie is not a sign-in
        client.cookies.set("sinkin_auth", client.cookies["sinkin_auth"][:-2] + "xx")
        assert client.get("/lab.json").status_code == 401
    with httpx.Client(base_url=lan) as client:  # the sign-in form (POST) works too
        r = client.post("/-/sinkin/login", data={"token": "the-sign-in-token-123", "next": "//evil.example/"})
        assert r.status_code == 302 and r.headers["location"] == "/-/sinkin"  # never off-site
        assert client.get("/lab.json").status_code == 200
    # on this machine, no token
    assert httpx.get(exposed["local"] + "/-/sinkin").status_code == 200
    assert httpx.get(exposed["local"] + "/lab.json").status_code == 200


def test_serve_prints_a_sign_in_link_once_when_exposed(db_path, monkeypatch):
    import uvicorn
    from click.testing import CliRunner

    from sinkin_pipeline.cli import cli

    apps = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: apps.append(app))
    monkeypatch.delenv("SINKIN_SERVE_TOKEN", raising=False)
    args = ["serve", "--db", str(db_path), "--host", "0.0.0.0", "--i-understand-this-exposes-my-data"]
    first = CliRunner().invoke(cli, args)
    second = CliRunner().invoke(cli, args)
    assert first.exit_code == 0 and first.output.count("/-/sinkin/login?token=") == 1
    token = first.output.split("?token=")[1].split()[0]
    assert len(token) >= 24 and token not in second.output  # a new random token each start
    monkeypatch.setenv("SINKIN_SERVE_TOKEN", "configured-token-0123456789")
    third = CliRunner().invoke(cli, args)
    assert third.exit_code == 0 and "/-/sinkin/login" in third.output
    assert "configured-token" not in third.output
    loopback = CliRunner().invoke(cli, ["serve", "--db", str(db_path)])
    assert loopback.exit_code == 0 and "login" not in loopback.output


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real server on 127.0.0.1 and an httpx client that sends writes as the pages do."""
    from conftest import serve_in_thread

    from sinkin_pipeline.db import open_db

    path = tmp_path_factory.mktemp("bad-input") / "lab.db"
    open_db(path).conn.close()
    url, stop = serve_in_thread(path)
    with httpx.Client(base_url=url) as client:
        client.get("/-/sinkin")  # the page sets the CSRF cookie
        client.headers["x-csrftoken"] = client.cookies["ds_csrftoken"]
        client.db_path = path
        yield client
    stop()


def _tables(db_path):
    import sqlite3

    conn = sqlite3.connect(db_path)
    try:
        return {
            t: conn.execute("select count(*) from [{}]".format(t)).fetchone()[0]
            for (t,) in conn.execute("select name from sqlite_master where type = 'table'")
        }
    finally:
        conn.close()


def test_bad_input_gets_a_clear_4xx_never_a_500(server):
    before = _tables(server.db_path)
    big = 2**63
    cases = [
        # JSON nested 100,000 deep
        (
            "post",
            "/-/sinkin/new/check.json",
            {"content": "[" * 100000 + "]" * 100000},
            400,
            "nested too deeply",
        ),
        (
            "post",
            "/-/sinkin/queue/cancel.json",
            {"content": '{"a":' * 100000 + "1" + "}" * 100000},
            400,
            "nested too deeply",
        ),
        # ids >= 2^63 in URLs (the app's and Datasette's) and in bodies
        ("get", "/-/sinkin/images/{}.json".format(big), {}, 400, "below 2^63"),
        ("get", "/-/sinkin/images/{}".format(big), {}, 404, None),
        ("get", "/-/sinkin/runs/{}/order.json".format(big), {}, 400, "below 2^63"),
        (
            "post",
            "/-/sinkin/images/{}/score.json".format(big),
            {"json": {"score": 5}},
            400,
            "9223372036854775807",
        ),
        ("post", "/-/sinkin/queue/cancel.json", {"json": {"job_ids": [big]}}, 400, "below 2^63"),
        ("post", "/-/sinkin/queue/retry.json", {"json": {"run_id": big}}, 400, None),
        ("get", "/lab/images/{}.json".format(big), {}, 404, None),
        # upscale type given as a list
        (
            "post",
            "/-/sinkin/images/1/upscale.json",
            {"json": {"type": ["esrgan"]}},
            400,
            "unknown upscale type",
        ),
        # a multipart POST carrying a cookie (asgi-csrf 0.11 crashed on it)
        ("post", "/-/sinkin/new/upload.json", {"files": {"file": ("a.png", b"x")}}, 415, "multipart"),
        ("post", "/lab/top_images", {"files": {"file": ("a.png", b"x")}}, 415, "multipart"),
        # a POST to a read-only canned query
        (
            "post",
            "/lab/top_images",
            {"data": {"csrftoken": server.cookies["ds_csrftoken"]}},
            405,
            "read-only",
        ),
        ("post", "/lab/top_images.json", {"json": {}}, 405, "read-only"),
        # a number JSON cannot carry back (it was answered with a bare Infinity)
        ("post", "/-/sinkin/new/check.json", {"content": '{"form": {"width": 1e400}}'}, 400, "too large"),
        ("post", "/-/sinkin/new/check.json", {"content": '{"form": {"width": NaN}}'}, 400, "NaN"),
    ]
    for method, path, kwargs, status, words in cases:
        kwargs = dict(kwargs)
        if "content" in kwargs:
            kwargs["headers"] = {"content-type": "application/json"}
        r = getattr(server, method)(path, **kwargs)
        assert r.status_code == status, (path, r.status_code, r.text[:300])
        if path.endswith(".json") or "json" in kwargs or "content" in kwargs:
            body = r.json()  # valid JSON
            assert body["ok"] is False and (words is None or words in body["error"]), (path, body)
    assert _tables(server.db_path) == before


def test_file_routes_serve_only_images_inside_the_media_folder(server, tmp_path):
    import io
    import os
    import sqlite3

    from PIL import Image

    from sinkin_pipeline.media import media_dir

    def png():
        buffer = io.BytesIO()
        Image.new("RGB", (8, 8), (200, 10, 10)).save(buffer, "PNG")
        return buffer.getvalue()

    db_path = server.db_path
    media = media_dir(db_path)
    (media / "assets").mkdir(parents=True, exist_ok=True)
    (media / "assets" / "ok.png").write_bytes(png())
    outside = tmp_path / "private.png"  # a file of the user's that is not the app's
    outside.write_bytes(png())
    os.symlink(outside, media / "assets" / "link.png")
    os.symlink(outside.parent, media / "escape")
    rel = os.path.relpath(media, db_path.parent)
    conn = sqlite3.connect(db_path)
    with conn:
        rows = [
            ("ok", rel + "/assets/ok.png"),
            ("passwd", "/etc/passwd"),
            ("link", rel + "/assets/link.png"),
            ("dotdot", rel + "/../" + os.path.relpath(outside, db_path.parent)),
            ("dir", rel + "/escape/private.png"),
            ("folder", rel + "/assets"),
        ]
        ids = {}
        for name, path in rows:
            ids[name] = conn.execute(
                "insert into assets (sha256, filename, path, created_at) values (?, ?, ?, '')",
                [name, name + ".png", path],
            ).lastrowid
        conn.execute(
            "insert into runs (id, name, provider, spec, created_at) values (900, 'f', 'simulator', '{}', '')"
        )
        conn.execute(
            "insert into images (id, run_id, path, upscale_path, created_at) "
            "values (900, 900, ?, '/etc/passwd', '')",
            [rel + "/assets/link.png"],
        )
    conn.close()
    r = server.get("/-/sinkin/assets/{}".format(ids["ok"]))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.headers["x-content-type-options"] == "nosniff"
    for name in ("passwd", "link", "dotdot", "dir", "folder"):
        r = server.get("/-/sinkin/assets/{}".format(ids[name]))
        assert r.status_code == 404 and b"root:" not in r.content and r.content[:4] != b"\x89PNG", name
    for which in ("full", "upscale"):
        r = server.get("/-/sinkin/images/900/{}".format(which))
        assert r.status_code == 404 and b"root:" not in r.content and r.content[:4] != b"\x89PNG", which


def _png(size=(64, 48)):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def _truncated_png():
    """A PNG whose pixel data stops half-way, every chunk well-formed: Pillow's verify() passes it."""
    import io
    import random
    import struct
    import zlib

    from PIL import Image

    rng = random.Random(1)
    buffer = io.BytesIO()
    noise = bytes(rng.randrange(256) for _ in range(128 * 128 * 3))
    Image.frombytes("RGB", (128, 128), noise).save(buffer, "PNG")
    data, pos, chunks = buffer.getvalue(), 8, []
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        chunks.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]))
        pos += 12 + n

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    idat = b"".join(body for kind, body in chunks if kind == b"IDAT")
    png = data[:8] + chunk(b"IHDR", chunks[0][1]) + chunk(b"IDAT", idat[: len(idat) // 2])
    png += chunk(b"IEND", b"")
    with Image.open(io.BytesIO(png)) as im:
        im.verify()  # the old check let it through
    return png


def test_a_truncated_upload_is_refused_at_once(server):
    import base64

    before = _tables(server.db_path)
    truncated = _truncated_png()
    r = server.post(
        "/-/sinkin/new/upload.json",
        json={"filename": "cut.png", "data": base64.b64encode(truncated).decode()},
    )
    assert r.status_code == 400 and "truncated or damaged" in r.json()["error"]
    assert _tables(server.db_path) == before


def _texts(db_path):
    """Every text cell of every table, and the file names of the media folder."""
    import sqlite3

    conn = sqlite3.connect(db_path)
    try:
        tables = [t for (t,) in conn.execute("select name from sqlite_master where type = 'table'")]
        cells = [
            v
            for t in tables
            for row in conn.execute("select * from [{}]".format(t))
            for v in row
            if isinstance(v, str)
        ]
    finally:
        conn.close()
    return cells


def test_an_api_key_echoed_by_the_api_is_stored_nowhere(api_env, db_path, make_run):
    from conftest import serve_in_thread

    api_env.echo_token = True  # the stand-in puts the key in its answers and image URLs
    make_run(
        db_path,
        {
            "provider": "sinkin",
            "model_id": "4zdwGOB",
            "prompt": ["a fox"],
            "num_images": 2,
            "width": 256,
            "height": 256,
            "steps": 4,
            "seed": [1],
        },
    )
    url, stop = serve_in_thread(db_path)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            client.get("/-/sinkin")
            client.headers["x-csrftoken"] = client.cookies["ds_csrftoken"]
            r = client.post("/-/sinkin/queue/next.json", json={})
            assert r.status_code == 200 and r.json()["job"]["status"] == "succeeded", r.text
            r = client.post("/-/sinkin/images/1/upscale.json", json={"type": "esrgan", "scale": 2})
            assert r.status_code == 200, r.text
            shown = [
                client.get(p).text
                for p in (
                    "/-/sinkin/images/1.json",
                    "/-/sinkin/status.json",
                    "/-/sinkin/export/image_table.csv",
                    "/lab/jobs.json",
                    "/lab/images.csv?_stream=on",
                )
            ]
            assert client.get("/-/sinkin/images/1/full").status_code == 200  # downloaded all the same
            assert client.get("/-/sinkin/images/1/upscale").status_code == 200
    finally:
        stop()
    cells = _texts(db_path)
    assert any("[sinkin-api-key]" in c for c in cells)  # the echo arrived, scrubbed
    assert not [c for c in cells if "test-key" in c]
    assert not [page for page in shown if "test-key" in page]


def test_files_are_owner_only_whatever_the_umask(tmp_path, make_run):
    import base64
    import os
    import stat

    from conftest import serve_in_thread

    from sinkin_pipeline.db import open_db
    from sinkin_pipeline.media import media_dir

    db_path = tmp_path / "lab.db"
    old = os.umask(0o022)
    try:
        import sqlite3

        sqlite3.connect(db_path).close()  # a database file made under umask 022: 0644
        assert stat.S_IMODE(os.stat(db_path).st_mode) == 0o644
        db_path.unlink()
        open_db(db_path).conn.close()
        make_run(
            db_path,
            {
                "provider": "simulator",
                "model_id": "4zdwGOB",
                "prompt": ["a fox"],
                "num_images": 2,
                "width": 128,
                "height": 128,
                "steps": 4,
                "seed": [1],
            },
        )
        url, stop = serve_in_thread(db_path)
        try:
            with httpx.Client(base_url=url, timeout=30) as client:
                client.get("/-/sinkin")
                client.headers["x-csrftoken"] = client.cookies["ds_csrftoken"]
                r = client.post(
                    "/-/sinkin/new/upload.json",
                    json={"filename": "start.png", "data": base64.b64encode(_png()).decode()},
                )
                assert r.status_code == 200, r.text
                assert client.post("/-/sinkin/queue/next.json", json={}).status_code == 200
                # the form's live check of a 9.4M-job grid answers at once and creating it is refused
                form = {
                    "provider": "simulator",
                    "model_id": "4zdwGOB",
                    "width": "512",
                    "height": "512",
                    "prompt": "\n".join("p{}".format(i) for i in range(100)),
                    "steps": " ".join(str(i) for i in range(1, 48)),
                    "scale": "1 2 3 4 5 6 7 8 9 10",
                    "seed_mode": "random",
                    "random_seeds": "200",
                }
                start = time.monotonic()
                r = client.post("/-/sinkin/new/check.json", json={"form": form})
                assert time.monotonic() - start < 2 and "9,400,000 jobs" in r.text, r.text[:300]
                r = client.post(
                    "/-/sinkin/new/create.json",
                    json={"form": form, "confirm": True, "request_key": "huge-grid-0001"},
                )
                assert r.status_code == 400 and "ceiling" in r.text
            reader = sqlite3.connect(db_path)  # a connection keeps the WAL files in place
            reader.execute("select count(*) from runs").fetchone()
            wal = [str(db_path) + "-wal", str(db_path) + "-shm"]
            assert {f: stat.S_IMODE(os.stat(f).st_mode) for f in wal} == {f: 0o600 for f in wal}
            reader.close()
        finally:
            stop()
    finally:
        os.umask(old)
    files = [db_path]
    media = media_dir(db_path)
    folders = [media] + [p for p in media.rglob("*") if p.is_dir()]
    images = [p for p in media.rglob("*") if p.is_file()]
    assert len(images) == 3 and len(folders) >= 2  # two generated images and the upload
    assert {str(f): stat.S_IMODE(os.stat(f).st_mode) for f in files + images} == {
        str(f): 0o600 for f in files + images
    }
    assert {str(f): stat.S_IMODE(os.stat(f).st_mode) for f in folders} == {str(f): 0o700 for f in folders}
    assert _tables(db_path)["runs"] == 1


def test_an_existing_database_made_world_readable_is_made_owner_only(db_path):
    import os
    import stat

    from sinkin_pipeline.db import open_db

    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(str(db_path) + suffix):
            os.chmod(str(db_path) + suffix, 0o644)
    open_db(db_path).conn.close()
    assert stat.S_IMODE(os.stat(db_path).st_mode) == 0o600


def test_errors_are_datasette_errors_and_never_500(server):
    import asyncio

    from datasette.app import Datasette

    r = server.get("/-/sinkin/runs/999")
    assert r.status_code == 404 and "<title>Error 404</title>" in r.text and "run 999 not found" in r.text
    r = server.get("/-/sinkin/images/999")
    assert r.status_code == 404 and "Image 999 not found" in r.text

    async def without_database():
        ds = Datasette(memory=True)  # no SinkIn database file served
        return [
            (await ds.client.get(path)).status_code
            for path in ("/-/sinkin/status.json", "/-/sinkin", "/-/sinkin/new", "/-/sinkin/runs/1")
        ]

    assert asyncio.run(without_database()) == [503, 503, 503, 503]
