"""Review app benchmark (not a test) on databases of 10,000 and 100,000 images in one run
(bench/build_db.py builds them once, reusing 40 rendered images):

* server time of every page and JSON route (in process, median and p95), next to the time of its
  main query run directly on SQLite (the "raw SQL" it cannot beat),
* Datasette's streamed CSV of image_table and `sinkin export`, each as a ratio to `sqlite3 -csv`
  on the same query in the same run,
* keypress → next image painted in Chromium (p50/p95).

    python bench/bench_review.py                    # 10,000 and 100,000 images; prints Markdown
    python bench/bench_review.py --images 10000     # one size
    python bench/bench_review.py --no-browser       # skip the Chromium measurement

The `sqlite3` CLI is the CSV baseline (`apt-get install -y sqlite3`); without it the CSV ratios are
skipped with a message.
"""

import argparse
import asyncio
import json
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_db import build  # noqa: E402

REPEAT = 15


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def raw(db_path, sql, params=(), repeat=REPEAT):
    """Median ms of ``sql`` run directly with sqlite3 (all rows fetched)."""
    conn = sqlite3.connect(db_path)
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        conn.execute(sql, params).fetchall()
        out.append((time.perf_counter() - start) * 1000)
    conn.close()
    return statistics.median(out)


async def server_times(ds, db_path, n):
    async def timed(path, repeat=REPEAT, **kwargs):
        out, size = [], 0
        for _ in range(repeat):
            start = time.perf_counter()
            response = await (ds.client.post(path, **kwargs) if "content" in kwargs else ds.client.get(path))
            out.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, (path, response.status_code, response.text[:300])
            size = len(response.content)
        return out, size

    name = Path(db_path).stem
    conn = sqlite3.connect(db_path)
    ids = [r[0] for r in conn.execute("select id from images order by id")]
    last_page = -(-n // 48)
    conn.close()
    page = await ds.client.get("/-/sinkin/images/{}".format(ids[0]))
    token = page.cookies["ds_csrftoken"]
    headers = {"content-type": "application/json", "x-csrftoken": token, "cookie": "ds_csrftoken=" + token}
    mid = ids[len(ids) // 2]
    rows = []

    def add(label, result, raw_ms=None, note=""):
        times, size = result
        rows.append((label, pct(times, 50), pct(times, 95), raw_ms, size, note))

    # the first request of this process after a score: the settings that vary (cached per run until
    # its configs change) and the order (rebuilt after a score for score sorts and "unrated only")
    await ds.client.post(
        "/-/sinkin/images/{}/score.json".format(ids[1]), content=json.dumps({"score": 5}), headers=headers
    )
    start = time.perf_counter()
    await ds.client.get("/-/sinkin/runs/1?sort=score_desc&page={}".format(last_page))
    cold = (time.perf_counter() - start) * 1000
    order_sql = (
        "select image_id from image_table where run_id = 1 order by score is null, score desc, image_id desc"
    )
    add(
        "gallery page 1 (`/-/sinkin/runs/1`)",
        await timed("/-/sinkin/runs/1"),
        raw(db_path, "select * from image_table where run_id = 1 order by image_id desc limit 48"),
    )
    add(
        "gallery last page, sorted by score",
        await timed("/-/sinkin/runs/1?sort=score_desc&page={}".format(last_page)),
        raw(db_path, order_sql + " limit 48 offset ?", [(last_page - 1) * 48]),
        "first request of a fresh server, just after a score (computes the settings that vary and the "
        "order): {:.0f} ms".format(cold),
    )
    add(
        "gallery, unrated + scheduler filter",
        await timed("/-/sinkin/runs/1?unrated=1&scheduler=DDIM"),
        raw(
            db_path,
            "select * from image_table where run_id = 1 and score is null and scheduler = 'DDIM' "
            "order by image_id desc limit 48",
        ),
    )
    add(
        "viewer order (`order.json`, window of 201 around an image)",
        await timed("/-/sinkin/runs/1/order.json?around={}".format(mid)),
        raw(
            db_path,
            "select image_id from image_table where run_id = 1 and image_id between ? and ?",
            [mid - 100, mid + 100],
        ),
    )
    add(
        "dashboard `status.json`",
        await timed("/-/sinkin/status.json"),
        raw(db_path, "select * from run_summary"),
    )
    add("dashboard page (`/-/sinkin`)", await timed("/-/sinkin"))
    add(
        "ranking table (Datasette, default facets)",
        await timed("/{}/image_table".format(name)),
        raw(db_path, "select * from image_table order by image_id desc limit 51"),
    )
    add(
        "ranking table filtered to the run, sorted by score",
        await timed("/{}/image_table?run_id=1&_sort_desc=score".format(name)),
        raw(db_path, "select * from image_table where run_id = 1 order by score desc limit 51"),
    )
    add("viewer page", await timed("/-/sinkin/images/{}".format(mid)))
    add("image JSON", await timed("/-/sinkin/images/{}.json".format(mid)))
    add("thumbnail", await timed("/-/sinkin/images/{}/thumb".format(mid)))
    scores = iter(range(10_000))
    add(
        "score POST",
        await timed(
            "/-/sinkin/images/{}/score.json".format(mid),
            headers=headers,
            content=json.dumps({"score": next(scores) % 10 + 1}),
        ),
    )
    return rows


def keypress_to_paint(db_path, samples=60):
    import uvicorn
    from playwright.sync_api import sync_playwright

    from datasette_sinkin.app import make_datasette

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            make_datasette(db_path, "127.0.0.1", port).app(),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
        )
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
    ]
    first = sqlite3.connect(db_path).execute("select min(id) from images").fetchone()[0]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=args)
        page = browser.new_page(viewport={"width": 1920, "height": 1080})  # the image fills the screen
        page.goto("http://127.0.0.1:{}/-/sinkin/images/{}?sort=oldest".format(port, first))
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
        for i in range(samples):
            page.keyboard.press("ArrowRight")
            page.wait_for_function("n => window.__times.length >= n", arg=i + 1)
            page.wait_for_timeout(60)  # a person's pace: the neighbours are decoded meanwhile
        times = page.evaluate("window.__times")
        position = page.text_content("#sk-position")
        browser.close()
    server.should_exit = True
    return times, position


def csv_ratios(db_path):
    """Seconds for Datasette's streamed CSV, `sinkin export` and `sqlite3 -csv` on the same rows."""
    from datasette_sinkin.app import make_datasette
    from sinkin_pipeline.db import open_db
    from sinkin_pipeline.export import export_csv

    ds = make_datasette(db_path, "127.0.0.1", 8001)
    name = Path(db_path).stem

    async def stream():
        start = time.perf_counter()
        # Datasette's own streamed CSV, without facets and counts per page, in pages of 1,000
        response = await ds.client.get(
            "/{}/image_table.csv?_stream=on&_nocol=thumbnail&_nofacet=1&_nocount=1&_size=max".format(name),
            timeout=3600,
        )
        return time.perf_counter() - start, response.text.count("\n")

    async def route():
        # the ranking table's "Export CSV" action: the web export route (datasette_plugins/csvexport.py)
        start = time.perf_counter()
        response = await ds.client.get("/-/sinkin/export/image_table.csv?_nocol=thumbnail", timeout=3600)
        assert response.status_code == 200, response.text[:200]
        return time.perf_counter() - start

    datasette_s, lines = asyncio.run(stream())
    route_s = asyncio.run(route())
    db = open_db(db_path)
    start = time.perf_counter()
    with open("/dev/null", "w", newline="") as fp:
        export_csv(db, fp)
    export_s = time.perf_counter() - start
    db.conn.close()
    cols = [
        r[1]
        for r in sqlite3.connect(db_path).execute("pragma table_info(image_table)")
        if r[1] != "thumbnail"
    ]
    query = "select {} from image_table order by image_id".format(", ".join(cols))
    base = None
    if shutil.which("sqlite3"):
        start = time.perf_counter()
        with open("/dev/null", "w") as out:
            subprocess.run(["sqlite3", "-csv", "-header", str(db_path), query], check=True, stdout=out)
        base = time.perf_counter() - start
    return datasette_s, export_s, base, lines, route_s


def measure(n, browser):
    from datasette_sinkin.app import make_datasette

    db_path = build(n)
    ds = make_datasette(db_path, "127.0.0.1", 8001)
    result = {"n": n, "rows": asyncio.run(server_times(ds, db_path, n))}
    result["csv"] = csv_ratios(db_path)
    if browser:
        result["paint"] = keypress_to_paint(db_path)
    return result


def report(results):
    sizes = [r["n"] for r in results]
    print(
        "| request (server time, in process; median / p95 ms) | "
        + " | ".join("{:,} images".format(n) for n in sizes)
        + " | raw SQL at {:,} (ms) | notes |".format(sizes[-1])
    )
    print("|---|" + "---|" * len(sizes) + "---|---|")
    for i, row in enumerate(results[-1]["rows"]):
        cells = []
        for r in results:
            label, p50, p95, _, size, _ = r["rows"][i]
            cells.append(
                "{:.1f} / {:.1f}{}".format(
                    p50, p95, " ({:.0f} KB)".format(size / 1024) if "order" in label else ""
                )
            )
        _, _, _, raw_ms, _, note = row
        print(
            "| {} | {} | {} | {} |".format(
                row[0], " | ".join(cells), "{:.1f}".format(raw_ms) if raw_ms is not None else "–", note
            )
        )
    print()
    for r in results:
        datasette_s, export_s, base, lines, route_s = r["csv"]
        if base is None:
            print(
                "- {:,} images: CSV ({:,} lines): Datasette streamed {:.2f} s, web export route {:.2f} s, "
                "`sinkin export` {:.2f} s; ratios skipped: the `sqlite3` CLI is missing "
                "(`apt-get install -y sqlite3`).".format(r["n"], lines, datasette_s, route_s, export_s)
            )
        else:
            print(
                "- {:,} images: CSV ({:,} lines): `sqlite3 -csv` {:.2f} s; Datasette's streamed CSV "
                "(`_nofacet=1&_nocount=1&_size=max`) {:.2f} s (**{:.1f}×**); the web export route "
                "(the table's Export CSV action, in process) {:.2f} s (**{:.1f}×**); `sinkin export` {:.2f} s "
                "(**{:.2f}×**).".format(
                    r["n"],
                    lines,
                    base,
                    datasette_s,
                    datasette_s / base,
                    route_s,
                    route_s / base,
                    export_s,
                    export_s / base,
                )
            )
    for r in results:
        if "paint" in r:
            times, position = r["paint"]
            print(
                "- {:,} images: keypress → next image painted in Chromium ({} presses of →): p50 {:.1f} ms, "
                'p95 {:.1f} ms, max {:.1f} ms (position shown: "{}").'.format(
                    r["n"], len(times), pct(times, 50), pct(times, 95), max(times), position
                )
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, action="append", help="database size (repeatable)")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    results = [measure(n, not args.no_browser) for n in (args.images or [10_000, 100_000])]
    report(results)


if __name__ == "__main__":
    sys.exit(main())
