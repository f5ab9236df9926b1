"""Review app benchmark (not a test), with 10,000 simulator images in one database:

* server time of the gallery and viewer pages and of the score POST (p50 / p95, in process),
* keypress → next image painted in Chromium at 1920×1080, the image fitted to the screen (p95; target ≤ 50 ms),
* CSV export of image_table (10,000 rows, streamed) as a ratio to `sqlite3 -csv` on the same query,
* thumbnail bytes per image (from a real simulator run).

    python bench/bench_review.py          # prints Markdown; see docs/benchmarks.md
"""
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

N_IMAGES = 10_000


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def build(db_path):
    """A run of 10,000 images: 40 real simulator images, their files and thumbnails reused."""
    from sinkin_pipeline.db import open_db
    from sinkin_pipeline.runs import create_run
    from sinkin_pipeline.spec import check_spec
    from sinkin_pipeline.worker import work

    db = open_db(db_path)
    create_run(db, check_spec({"provider": "simulator", "model_id": "4zdwGOB", "prompt": ["a fox", "a cat"],
                               "scheduler": ["DDIM", "KLMS", "PNDM", "K_EULER"], "steps": [10, 20, 30, 40, 50],
                               "seed": [1], "width": 512, "height": 512}))
    db.conn.close()
    work(db_path, concurrency=2)
    db = open_db(db_path)
    samples = db.execute("select config_id, job_id, path, thumbnail, width, height from images").fetchall()
    thumb_sizes = [len(s[3]) for s in samples]
    with db.atomic():
        for i in range(N_IMAGES - len(samples)):
            config_id, job_id, path, thumb, w, h = samples[i % len(samples)]
            db.execute("insert into images (run_id, config_id, job_id, image_index, inf_id, url, path, thumbnail, "
                       "width, height, created_at) values (1, ?, ?, ?, 'bench', 'simulator://bench', ?, ?, ?, ?, "
                       "'2026-01-01')", [config_id, job_id, 1000 + i, path, thumb, w, h])
    db.conn.close()
    return statistics.mean(thumb_sizes), max(thumb_sizes)


async def server_times(ds, image_ids):
    async def timed(fn, n):
        out = []
        for i in range(n):
            start = time.perf_counter()
            response = await fn(i)
            out.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, response.text[:200]
        return out

    page = await ds.client.get("/-/sinkin/images/1")
    token = page.cookies["ds_csrftoken"]
    headers = {"content-type": "application/json", "x-csrftoken": token, "cookie": "ds_csrftoken=" + token}
    results = {
        "gallery page 1": await timed(lambda i: ds.client.get("/-/sinkin/runs/1"), 30),
        "gallery page 100, sorted by score": await timed(lambda i: ds.client.get("/-/sinkin/runs/1?sort=score_desc&page=100"), 30),
        "gallery, unrated + scheduler filter": await timed(lambda i: ds.client.get("/-/sinkin/runs/1?unrated=1&scheduler=DDIM"), 30),
        "viewer page": await timed(lambda i: ds.client.get("/-/sinkin/images/{}".format(image_ids[i * 37 % len(image_ids)])), 50),
        "viewer: gallery order (10,000 ids)": await timed(lambda i: ds.client.get("/-/sinkin/runs/1/order.json"), 30),
        "score POST": await timed(lambda i: ds.client.post("/-/sinkin/images/{}/score.json".format(image_ids[i]),
                                                           content=json.dumps({"score": i % 10 + 1}), headers=headers), 100),
    }
    return results


def keypress_to_paint(db_path, samples=60):
    import uvicorn
    from playwright.sync_api import sync_playwright

    from sinkin_pipeline.serve import make_datasette

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(make_datasette(db_path, "127.0.0.1", port).app(), host="127.0.0.1",
                                           port=port, log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=args)
        page = browser.new_page(viewport={"width": 1920, "height": 1080})  # the image fills the screen
        page.goto("http://127.0.0.1:{}/-/sinkin/images/1?sort=oldest".format(port))
        page.wait_for_selector("body[data-ready='1']")
        page.evaluate("""() => {
            window.__times = [];
            const img = document.getElementById('sk-image');
            document.addEventListener('keydown', () => { window.__t0 = performance.now(); }, true);
            new MutationObserver(() => {
                const t0 = window.__t0;
                img.decode().catch(() => {}).then(() => requestAnimationFrame(() =>
                    requestAnimationFrame(() => window.__times.push(performance.now() - t0))));
            }).observe(img, {attributes: true, attributeFilter: ['src']});
        }""")
        for _ in range(samples):
            page.keyboard.press("ArrowRight")
            page.wait_for_function("n => window.__times.length >= n", arg=_ + 1)
            page.wait_for_timeout(60)  # a person's pace: the neighbours are prefetched meanwhile
        times = page.evaluate("window.__times")
        browser.close()
    server.should_exit = True
    return times


def csv_ratio(db_path):
    from sinkin_pipeline.serve import make_datasette

    ds = make_datasette(db_path, "127.0.0.1", 8001)
    name = Path(db_path).stem

    async def export():
        start = time.perf_counter()
        response = await ds.client.get("/{}/image_table.csv?_stream=on&_nocol=thumbnail".format(name))
        return time.perf_counter() - start, response.text.count("\n")

    ours, lines = asyncio.run(export())
    cols = [r[1] for r in __import__("sqlite3").connect(db_path).execute("pragma table_info(image_table)") if r[1] != "thumbnail"]
    query = "select {} from image_table".format(", ".join(cols))
    if shutil.which("sqlite3"):
        start = time.perf_counter()
        subprocess.run(["sqlite3", "-csv", "-header", str(db_path), query], check=True, capture_output=True)
        base, how = time.perf_counter() - start, "`sqlite3 -csv` (the CLI)"
    else:
        import csv
        import io
        import sqlite3

        start = time.perf_counter()
        csv.writer(io.StringIO()).writerows(sqlite3.connect(db_path).execute(query))
        base, how = time.perf_counter() - start, "Python's sqlite3 + csv (no sqlite3 CLI here)"
    import io

    from sinkin_pipeline.db import open_db
    from sinkin_pipeline.export import export_csv

    start = time.perf_counter()
    export_csv(open_db(db_path), io.StringIO())
    direct = time.perf_counter() - start
    return ours, base, lines, how, direct


def main():
    from sinkin_pipeline.serve import make_datasette

    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "bench.db"
        mean_thumb, max_thumb = build(db_path)
        ds = make_datasette(db_path, "127.0.0.1", 8001)
        import sqlite3

        ids = [r[0] for r in sqlite3.connect(db_path).execute("select id from images order by id")]
        results = asyncio.run(server_times(ds, ids))
        print("{:,} images in the database.\n".format(len(ids)))
        print("| request (server time, in process) | p50 (ms) | p95 (ms) |")
        print("|---|---|---|")
        for name, values in results.items():
            print("| {} | {:.1f} | {:.1f} |".format(name, pct(values, 50), pct(values, 95)))
        times = keypress_to_paint(db_path)
        print("\nKeypress → next image painted in Chromium (→ key, {} presses): p50 {:.1f} ms, p95 {:.1f} ms, "
              "max {:.1f} ms (target p95 ≤ 50 ms).".format(len(times), pct(times, 50), pct(times, 95), max(times)))
        ours, base, lines, how, direct = csv_ratio(db_path)
        print("\nCSV export of image_table ({:,} lines): streamed through Datasette {:.2f} s; `sinkin export` "
              "{:.2f} s; {} on the same query {:.2f} s. Ratios: Datasette {:.1f}×, `sinkin export` {:.1f}×."
              .format(lines, ours, direct, how, base, ours / base, direct / base))
        print("\nThumbnail size per image (JPEG, JFIF, ≤ 256 px): mean {:.1f} KB, max {:.1f} KB (limit 30 KB)."
              .format(mean_thumb / 1024, max_thumb / 1024))


if __name__ == "__main__":
    sys.exit(main())
