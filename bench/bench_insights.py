"""Insights and X/Y/Z grid benchmark (not a test), on the review benchmark's databases of 10,000
and 100,000 images in run 1 (bench/build_db.py), each with scores planted on 60% of run 1's images
and a second run added: a 20 × 20 grid (steps × scale) with 4 seeds per cell, 1,600 images.

Server time in process of the first request (loading the run; later requests reuse it until the
run's images, scores or configs change; after Datasette's own first request, and run 1's after
run 2's, which pays for the page's templates and plugins) and the median and p95 of the repeated
ones, for:
* the insights page and its JSON for run 1 (10,000 / 100,000 images) and for run 2 (1,600),
* the insights page of run 1 again after each of 15 score changes (set, changed or cleared by
  another connection; the loaded groups are patched, not read again),
* the grid page of run 2 (1,600 images on one page) and its "Download grid" PNG,
* the grid page of run 1 (its default axes: a Z page of at most 4,000 images).

    python bench/bench_insights.py                  # 10,000 and 100,000 images; prints Markdown
    python bench/bench_insights.py --images 10000   # one size

Scores and run 2 are added to the databases in $SINKIN_BENCH_DIR (default /tmp/sinkin-bench, built
there if missing), which changes them for the review benchmark: point SINKIN_BENCH_DIR to a folder
of your own, e.g. SINKIN_BENCH_DIR=/tmp/insights-bench python bench/bench_insights.py
"""

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_db import build  # noqa: E402
from timing import pct  # noqa: E402

REPEAT = 15
GRID_SPEC = {
    "provider": "simulator",
    "model_id": "4zdwGOB",
    "prompt": "a fox",
    "width": 512,
    "height": 512,
    "steps": list(range(11, 31)),
    "scale": [float(s) for s in range(1, 21)],
    "seed": [1, 2, 3, 4],
}


def prepare(db_path):
    """Plant scores on 60% of run 1 (DDIM +2, more steps a little better, noise) and add run 2."""
    from sinkin_pipeline.db import open_db
    from sinkin_pipeline.runs import create_run
    from sinkin_pipeline.spec import check_spec

    db = open_db(db_path)
    if db.execute("select count(*) from runs").fetchone()[0] >= 2:
        db.conn.close()
        return
    rng = random.Random(7)
    rows = db.execute(
        "select images.id, scheduler, steps from images join configs on configs.id = "
        "images.config_id where images.run_id = 1"
    ).fetchall()
    with db.atomic():
        for image_id, scheduler, steps in rows:
            if rng.random() < 0.6:
                score = 4 + (2 if scheduler == "DDIM" else 0) + steps // 20 + rng.randint(-2, 2)
                db.execute("update images set score = ? where id = ?", [max(1, min(10, score)), image_id])
    run_id = create_run(db, check_spec(GRID_SPEC))
    sample = db.execute(
        "select path, thumbnail, width, height from images where run_id = 1 limit 40"
    ).fetchall()
    jobs = db.execute("select id, config_id from jobs where run_id = ?", [run_id]).fetchall()
    with db.atomic():
        for i, (job_id, config_id) in enumerate(jobs):
            path, thumb, w, h = sample[i % len(sample)]
            db.execute(
                "update jobs set status = 'succeeded', started_at = '2026-01-01T00:00:00', "
                "response_at = '2026-01-01T00:00:02', finished_at = '2026-01-01T00:00:03' where id = ?",
                [job_id],
            )
            db.execute(
                "insert into images (run_id, config_id, job_id, image_index, inf_id, url, path, thumbnail, "
                "width, height, score, created_at) values (?, ?, ?, 0, 'bench', 'simulator://bench', ?, ?, "
                "?, ?, ?, '2026-01-01')",
                [run_id, config_id, job_id, path, thumb, w, h, rng.randint(1, 10) if i % 2 else None],
            )
    db.conn.close()


async def measure(ds, db_path):
    async def timed(path, repeat=REPEAT):
        out = []
        for _ in range(repeat):
            start = time.perf_counter()
            response = await ds.client.get(path)
            out.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, (path, response.text[:300])
        return out

    async def after_scoring(path, repeat=REPEAT):
        """The page again after each of ``repeat`` scores written by another connection (as the
        viewer's score route or `sinkin score` would)."""
        from sinkin_pipeline.db import open_db
        from sinkin_pipeline.scoring import score_image

        db = open_db(db_path)
        ids = [
            r[0] for r in db.execute("select id from images where run_id = 1 order by id limit ?", [repeat])
        ]
        before = dict(
            db.execute("select id, score from images where id in ({})".format(",".join("?" * len(ids))), ids)
        )
        out = []
        try:
            for n, image_id in enumerate(ids):
                score_image(db, image_id, None if n % 3 == 2 else 1 + n % 10)
                start = time.perf_counter()
                response = await ds.client.get(path)
                out.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200, (path, response.text[:300])
        finally:
            for image_id, score in before.items():
                score_image(db, image_id, score)
            db.conn.close()
        return out

    # the server's own first request (Datasette's start-up) is not the insights' cost; run 2's
    # insights come first, so that run 1's first request is its data, not the page's templates
    assert (await ds.client.get("/-/sinkin/insights")).status_code == 200
    run2 = await timed("/-/sinkin/runs/2/insights")
    return [
        ("insights page, run 1", await timed("/-/sinkin/runs/1/insights")),
        ("insights page, run 1, after each score change", await after_scoring("/-/sinkin/runs/1/insights")),
        ("insights JSON, run 1", await timed("/-/sinkin/runs/1/insights.json")),
        ("insights page, run 2 (1,600 images; the first insights request)", run2),
        ("grid page, run 2: 20 × 20 × 4 seeds (1,600 images)", await timed("/-/sinkin/runs/2/grid")),
        ("grid PNG, run 2 (1,600 thumbnails)", await timed("/-/sinkin/runs/2/grid.png", repeat=3)),
        ("grid page, run 1 (default axes, first Z page)", await timed("/-/sinkin/runs/1/grid")),
    ]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, action="append")
    args = parser.parse_args()
    from datasette.app import Datasette

    print("| images in the DB | request (server time, in process) | first (ms) | p50 (ms) | p95 (ms) |")
    print("|---|---|---|---|---|")
    for n in args.images or [10_000, 100_000]:
        path = build(n)
        prepare(path)
        ds = Datasette([str(path)], settings={"default_cache_ttl": 0})
        total = n + 1600
        for label, times in asyncio.run(measure(ds, path)):
            rest = times[1:]
            print(
                "| {:,} | {} | {:.0f} | {:.1f} | {:.1f} |".format(
                    total, label, times[0], statistics.median(rest), pct(rest, 95)
                )
            )
        sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
