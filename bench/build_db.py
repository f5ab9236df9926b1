"""Benchmark databases of 10,000 and 100,000 images in one run, built once and reused.

40 images are rendered for real by the simulator (their files and thumbnails are reused); every
other image gets its own job and config (settings cycling through 1,600 combinations: 2 prompts ×
4 schedulers × 5 steps × 5 scales × 8 seeds), as a long sweep would, so the jobs table and the run
grow with the images. The databases are kept in ``$SINKIN_BENCH_DIR`` (default
``/tmp/sinkin-bench``): ``images-10000.db`` and ``images-100000.db``.

    python bench/build_db.py 10000 100000     # build (or reuse) them
"""

import os
import shutil
import sys
import time
from pathlib import Path

SEED_SPEC = {
    "provider": "simulator",
    "model_id": "4zdwGOB",
    "prompt": ["a fox", "a cat"],
    "scheduler": ["DDIM", "KLMS", "PNDM", "K_EULER"],
    "steps": [10, 20, 30, 40, 50],
    "seed": [1],
    "width": 512,
    "height": 512,
}
SCALES = (5.0, 6.0, 7.0, 8.0, 9.0)
SEEDS = tuple(range(1, 9))


def bench_dir():
    path = Path(os.environ.get("SINKIN_BENCH_DIR") or "/tmp/sinkin-bench")
    path.mkdir(parents=True, exist_ok=True)
    return path


def seed_db():
    """The 40 rendered images (built once): the source of files and thumbnails."""
    from sinkin_pipeline.db import open_db
    from sinkin_pipeline.runs import create_run
    from sinkin_pipeline.spec import check_spec
    from sinkin_pipeline.worker import work

    path = bench_dir() / "seed.db"
    if path.exists():
        return path
    tmp = bench_dir() / "seed-building.db"
    for old in bench_dir().glob("seed-building*"):
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    db = open_db(tmp)
    create_run(db, check_spec(SEED_SPEC))
    db.conn.close()
    work(tmp, concurrency=2)
    # the media folder is named after the database: keep it beside the final name
    (bench_dir() / "seed-building_media").rename(bench_dir() / "seed_media")
    db = open_db(tmp)
    db.execute("update images set path = replace(path, 'seed-building_media', 'seed_media')")
    db.conn.commit()
    db.conn.close()
    tmp.rename(path)
    return path


def build(n_images):
    """The path of a database with ``n_images`` images in run 1 (built unless it exists)."""
    from sinkin_pipeline.db import open_db

    path = bench_dir() / "images-{}.db".format(n_images)
    if path.exists():
        return path
    source = seed_db()
    start = time.perf_counter()
    tmp = bench_dir() / "images-{}-building.db".format(n_images)
    for old in bench_dir().glob("images-{}-building.db*".format(n_images)):
        old.unlink()
    shutil.copy(source, tmp)
    media = bench_dir() / "images-{}-building_media".format(n_images)
    final_media = bench_dir() / "images-{}_media".format(n_images)
    for folder in (media, final_media):
        if folder.is_symlink() or folder.exists():
            folder.unlink() if folder.is_symlink() else shutil.rmtree(folder)
    db = open_db(tmp)
    conn = db.conn
    samples = conn.execute(
        "select images.config_id, images.path, images.thumbnail, images.width, images.height "
        "from images order by id"
    ).fetchall()
    config_cols = [r[1] for r in conn.execute("pragma table_info(configs)") if r[1] != "id"]
    configs = {r[0]: r[1:] for r in conn.execute("select id, {} from configs".format(", ".join(config_cols)))}
    scale_at, seed_at = config_cols.index("scale"), config_cols.index("seed")
    position_at = config_cols.index("position")
    next_config = conn.execute("select max(id) from configs").fetchone()[0] + 1
    next_job = conn.execute("select max(id) from jobs").fetchone()[0] + 1
    conn.execute("BEGIN")
    todo = n_images - len(samples)
    for i in range(todo):
        config_id, rel, thumb, w, h = samples[i % len(samples)]
        values = list(configs[config_id])
        combo = i // len(samples)
        values[scale_at] = SCALES[combo % len(SCALES)]
        values[seed_at] = SEEDS[(combo // len(SCALES)) % len(SEEDS)]
        values[position_at] = len(samples) + i
        cid, jid = next_config + i, next_job + i
        conn.execute(
            "insert into configs (id, {}) values (?, {})".format(
                ", ".join(config_cols), ", ".join("?" * len(config_cols))
            ),
            [cid] + values,
        )
        conn.execute(
            "insert into jobs (id, run_id, config_id, kind, status, provider, credit_estimate, "
            "credit_cost, inf_id, attempts, fallback, created_at, started_at, response_at, finished_at) "
            "values (?, 1, ?, 'inference', 'succeeded', 'simulator', 0, 0, 'bench', 1, 0, "
            "'2026-01-01', '2026-01-01', '2026-01-01', '2026-01-01')",
            [jid, cid],
        )
        conn.execute(
            "insert into images (run_id, config_id, job_id, image_index, inf_id, url, path, thumbnail, "
            "width, height, created_at) values (1, ?, ?, 0, 'bench', 'simulator://bench', ?, ?, ?, ?, "
            "'2026-01-01')",
            [cid, jid, rel.replace("seed_media", final_media.name), thumb, w, h],
        )
    conn.execute(
        "update images set path = replace(path, 'seed_media', ?) where path like 'seed_media%'",
        [final_media.name],
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    final_media.symlink_to(bench_dir() / "seed_media")
    tmp.rename(path)
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    print(
        "built {} ({:,} images) in {:.0f} s".format(path, n_images, time.perf_counter() - start),
        file=sys.stderr,
    )
    return path


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["10000"]:
        print(build(int(arg)))
