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
    python bench/bench_review.py --images 10000 --paint-only --before main~3
                                                    # only keypress → paint, now vs a git revision

The `sqlite3` CLI is the CSV baseline (`apt-get install -y sqlite3`); without it the CSV ratios are
skipped with a message.
"""

import argparse
import asyncio
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_db import build  # noqa: E402
from timing import pct  # noqa: E402

REPEAT = 15


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


PAINT_SETUP = """() => {
    /* keydown → the new image on screen, two ways, whatever the viewer's code does to show it (sets
       the src of #sk-image or puts another element there):
       - "frames": the new image is found in the DOM, decoded (img.decode()), then two animation
         frames have started (the first paint that can hold it is over): the earlier measure;
       - "painted": the browser's own record of the frame that first drew it (Element Timing:
         renderTime of the image's entry), the closest a page gets to "the user sees it". */
    window.__frames = [];
    window.__painted = [];
    window.__pending = null;
    const stage = document.getElementById('sk-stage');
    const mark = () => { const img = document.getElementById('sk-image'); img.setAttribute('elementtiming', 'sk-viewer'); return img; };
    let last = mark().getAttribute('src');
    document.addEventListener('keydown', (event) => {
        window.__pending = {t0: performance.now(), stamp: event.timeStamp};
    }, true);
    new MutationObserver(() => {
        const img = mark();
        const src = img.getAttribute('src');
        const pending = window.__pending;
        if (!pending || src === last) return;
        last = src;
        window.__pending = null;
        pending.url = new URL(src, location.href).href;
        window.__expect = pending;
        img.decode().catch(() => {}).then(() => requestAnimationFrame(() =>
            requestAnimationFrame(() => window.__frames.push(performance.now() - pending.t0))));
    }).observe(stage, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
    new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) {
            const pending = window.__expect;
            if (pending && entry.url === pending.url && entry.renderTime) {
                window.__painted.push(entry.renderTime - pending.stamp);
                window.__expect = null;
            }
        }
    }).observe({type: 'element', buffered: false});
}"""


def keypress_to_paint(db_path, samples=60, before=None, rounds=3):
    """Keypress → next image painted in Chromium at 1920×1080: ``samples`` presses of → at a
    person's pace. With ``before`` (a git revision), the viewer's scripts and stylesheet of that
    revision are measured too, in the same run on the same server and database, alternating
    ``rounds`` times: returns ``{label: (frames_ms, painted_ms, position)}``."""
    from playwright.sync_api import sync_playwright

    from sinkin_pipeline.testing.serving import CHROMIUM, CHROMIUM_ARGS, serve_in_thread

    server_url, stop = serve_in_thread(db_path)
    first = sqlite3.connect(db_path).execute("select min(id) from images").fetchone()[0]
    now = None
    variants = {"now": now}
    if before:
        variants = {"before ({})".format(before): old_viewer_files(before), "now": now}
        variants = dict(reversed(list(variants.items())))  # "now" first, then alternate
    results = {label: ([], [], "") for label in variants}
    per_round = max(1, samples // (rounds if before else 1))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for _ in range(rounds if before else 1):
            for label, files in variants.items():
                page = browser.new_page(
                    viewport={"width": 1920, "height": 1080}
                )  # the image fills the screen
                if files is not None:
                    page.route("**/-/sinkin/static/**", old_files_handler(files))
                page.goto("{}/-/sinkin/images/{}?sort=oldest".format(server_url, first))
                page.wait_for_selector("body[data-ready='1']")
                page.wait_for_timeout(300)
                page.evaluate(PAINT_SETUP)
                for i in range(per_round):
                    page.keyboard.press("ArrowRight")
                    page.wait_for_function("n => window.__frames.length >= n", arg=i + 1)
                    page.wait_for_timeout(60)  # a person's pace: the neighbours are decoded meanwhile
                page.wait_for_timeout(200)
                frames, painted, _ = results[label]
                frames.extend(page.evaluate("window.__frames"))
                painted.extend(page.evaluate("window.__painted"))
                results[label] = (frames, painted, page.text_content("#sk-position"))
                page.close()
        browser.close()
    stop()
    return results


def old_viewer_files(rev):
    """The viewer's static files at git revision ``rev``: {file name: text}; a file it did not have
    is served empty (its scripts then do nothing), so the old viewer runs alone on today's page."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():  # run from a copy of the script: the checkout it is run in
        root = Path.cwd()
    static = "datasette_plugins/static/"
    names = subprocess.run(
        ["git", "ls-tree", "--name-only", rev, static], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    old = {}
    for name in names:
        base = name.rsplit("/", 1)[-1]
        if base.startswith("viewer") or base == "review.css":
            old[base] = subprocess.run(
                ["git", "show", "{}:{}".format(rev, name)],
                cwd=root,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
    return old


def old_files_handler(files):
    """A Playwright route handler serving ``files`` (it must take the route alone: a handler with
    two parameters is given the request as the second)."""
    return lambda route: serve_old(route, files)


def serve_old(route, files):
    name = route.request.url.split("?")[0].rsplit("/", 1)[-1]
    if name in files:
        kind = "text/css" if name.endswith(".css") else "text/javascript"
        route.fulfill(status=200, body=files[name], headers={"Content-Type": kind})
    elif name.startswith("viewer"):
        route.fulfill(status=200, body="", headers={"Content-Type": "text/javascript"})
    else:
        route.continue_()


def csv_ratios(db_path):
    """Seconds for Datasette's streamed CSV, `sinkin export` and `sqlite3 -csv` on the same rows."""
    from datasette_sinkin.app import make_datasette
    from sinkin_pipeline.db import open_db
    from sinkin_pipeline.export import export_csv

    ds = make_datasette(db_path, "127.0.0.1", 8001)
    name = Path(db_path).stem

    async def stream(query="_stream=on&_nocol=thumbnail&_nofacet=1&_nocount=1&_size=max"):
        start = time.perf_counter()
        # Datasette's streamed CSV URL (served by datasette_plugins/csvfast.py, byte for byte the same)
        response = await ds.client.get("/{}/image_table.csv?{}".format(name, query), timeout=3600)
        return time.perf_counter() - start, response.text.count("\n")

    async def route():
        # the ranking table's "Export CSV" action: the web export route (datasette_plugins/csvexport.py)
        start = time.perf_counter()
        response = await ds.client.get("/-/sinkin/export/image_table.csv?_nocol=thumbnail", timeout=3600)
        assert response.status_code == 200, response.text[:200]
        return time.perf_counter() - start

    datasette_s, lines = asyncio.run(stream())
    default_s, _ = asyncio.run(stream("_stream=on"))
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
    all_cols = [r[1] for r in sqlite3.connect(db_path).execute("pragma table_info(image_table)")]
    base_all = None
    if shutil.which("sqlite3"):
        start = time.perf_counter()
        with open("/dev/null", "w") as out:
            subprocess.run(
                [
                    "sqlite3",
                    "-csv",
                    "-header",
                    str(db_path),
                    query.replace(", ".join(cols), ", ".join(all_cols)),
                ],
                check=True,
                stdout=out,
            )
        base_all = time.perf_counter() - start
    return datasette_s, export_s, base, lines, route_s, default_s, base_all


def measure(n, browser, paint_only=False, before=None, samples=60):
    from datasette_sinkin.app import make_datasette

    db_path = build(n)
    result = {"n": n}
    if not paint_only:
        ds = make_datasette(db_path, "127.0.0.1", 8001)
        result["rows"] = asyncio.run(server_times(ds, db_path, n))
        result["csv"] = csv_ratios(db_path)
    if browser:
        result["paint"] = keypress_to_paint(db_path, samples=samples, before=before)
    return result


def report(results):
    if "rows" in results[0]:
        report_server(results)
    for r in results:
        for label, (frames, painted, position) in r.get("paint", {}).items():
            line = (
                "- {:,} images, viewer {}: keypress → next image painted in Chromium ({} presses of →): "
                "decoded + two frames p50 {:.1f} ms, p95 {:.1f} ms, max {:.1f} ms".format(
                    r["n"], label, len(frames), pct(frames, 50), pct(frames, 95), max(frames)
                )
            )
            if painted:
                line += "; painted (Element Timing, {} frames) p50 {:.1f} ms, p95 {:.1f} ms, max {:.1f} ms".format(
                    len(painted), pct(painted, 50), pct(painted, 95), max(painted)
                )
            print(line + ' (position shown: "{}").'.format(position))


def report_server(results):
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
        datasette_s, export_s, base, lines, route_s, default_s, base_all = r["csv"]
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
                "(**{:.2f}×**); the default streamed URL (`?_stream=on`, every column) {:.2f} s vs "
                "`sqlite3 -csv` of every column {:.2f} s (**{:.1f}×**).".format(
                    r["n"],
                    lines,
                    base,
                    datasette_s,
                    datasette_s / base,
                    route_s,
                    route_s / base,
                    export_s,
                    export_s / base,
                    default_s,
                    base_all,
                    default_s / base_all,
                )
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, action="append", help="database size (repeatable)")
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--paint-only", action="store_true", help="only the Chromium keypress → paint")
    parser.add_argument("--before", metavar="REV", help="also the viewer of git revision REV, alternating")
    parser.add_argument("--samples", type=int, default=60, help="presses of → per viewer (default 60)")
    args = parser.parse_args()
    print("load: " + subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    results = [
        measure(n, not args.no_browser, args.paint_only, args.before, args.samples)
        for n in (args.images or [10_000, 100_000])
    ]
    report(results)
    print("load: " + subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    sys.exit(main())
