"""The ranking table (image_table) and the per-run counters (run_stats) stay in step with the
source tables through every write the pipeline and the review app make, and the gallery's order
is served as a window with its position and total."""

import sqlite3

import pytest

from datasette_sinkin.app import make_datasette
from sinkin_pipeline.db import open_db
from sinkin_pipeline.migrations import IMAGE_TABLE_SQL
from sinkin_pipeline.ranking import recount
from sinkin_pipeline.scoring import score_image
from sinkin_pipeline.upscaling import upscale_image
from sinkin_pipeline.worker import work

#: the released view's query, to compare the table with what the view would show
VIEW_SELECT = IMAGE_TABLE_SQL.split(" as\n", 1)[1]


def table_vs_view(db):
    """Rows of image_table and of the released view's query (thumbnail as a URL), by image id."""
    conn = db.conn
    cols = [r[1] for r in conn.execute("pragma table_info(image_table)")]
    got = {r[0]: dict(zip(cols, r)) for r in conn.execute("select * from image_table")}
    cursor = conn.execute(VIEW_SELECT)
    names = [c[0] for c in cursor.description]
    want = {}
    for r in cursor.fetchall():
        row = dict(zip(names, r))
        row["thumbnail"] = (
            None if row["thumbnail"] is None else "/-/sinkin/images/{}/thumb".format(row["image_id"])
        )
        want[row["image_id"]] = {c: row.get(c) for c in cols}
    return got, want


def values_match_a_recount(db):
    from sinkin_pipeline.ranking import value_fields

    kept = {
        (r, f, k): n
        for r, f, k, n in db.conn.execute(
            "select run_id, field, vkey, images from run_values where images != 0"
        )
    }
    counted = {}
    for field in value_fields(db):
        for run_id, key, n in db.conn.execute(
            "select run_id, quote({0}), count(*) from image_table group by run_id, quote({0})".format(field)
        ):
            counted[(run_id, field, key)] = n
    return kept == counted and len(kept) > 0


def run_stats(db):
    cols = [r[1] for r in db.conn.execute("pragma table_info(run_stats)") if not r[1].endswith("version")]
    out = {}
    for r in db.conn.execute("select {} from run_stats".format(", ".join(cols))):
        row = dict(zip(cols, r))
        for key in ("credits", "credits_pending", "credits_queued"):
            row[key] = round(row[key], 6)
        out[row.pop("run_id")] = row
    return out


def test_table_and_counters_follow_runs_scores_upscales_and_edits(db_path, make_run, fake_provider):
    make_run(
        db_path,
        {
            "provider": "simulator",
            "model_id": "4zdwGOB",
            "prompt": ["a fox", "=1+1"],
            "scheduler": ["DDIM", "KLMS"],
            "width": 128,
            "height": 128,
            "steps": 5,
        },
    )
    second = make_run(
        db_path,
        {
            "provider": "fake",
            "model_id": "4zdwGOB",
            "prompt": "a cat",
            "seed": [1, 2, 3],
            "width": 128,
            "height": 128,
            "num_images": 2,
        },
    )
    db = open_db(db_path)
    assert run_stats(db) == recount(db) and run_stats(db)[second]["queued"] == 3
    db.conn.close()
    work(db_path, concurrency=2)
    db = open_db(db_path)
    got, want = table_vs_view(db)
    assert len(got) == 4 + 6 and got == want
    assert all(row["thumbnail"] for row in got.values())
    score_image(db, 1, 7)
    score_image(db, 2, 9)
    score_image(db, 2, None)
    db.execute("update runs set name = 'renamed' where id = ?", [second])
    db.execute("update configs set steps = 12 where id = (select config_id from images where id = 1)")
    db.execute("insert into models (id, title, kind) values ('4zdwGOB', 'DreamShaper', 'model')")
    db.execute("update jobs set fallback = 1 where id = 2")
    db.conn.commit()
    # an image of the second run (ids interleave across runs at concurrency 2: ask, don't assume)
    up = db.execute("select min(id) from images where run_id = ? and id != 10", [second]).fetchone()[0]
    db.conn.close()
    upscale_image(db_path, up, "esrgan", 2.0, None)
    db = open_db(db_path)
    got, want = table_vs_view(db)
    assert got == want
    assert got[1]["score"] == 7 and got[2]["score"] is None and got[1]["steps"] == 12
    assert (
        got[up]["upscale_path"]
        and got[10]["run_name"] == "renamed"
        and got[3]["model_title"] == "DreamShaper"
    )
    stats = run_stats(db)
    assert stats == recount(db) and values_match_a_recount(db)
    assert stats[1]["unrated"] == 3 and stats[second]["upscaled"] == 1 and stats[second]["credits"] == 3 + 6
    summary = {
        r[0]: r for r in db.conn.execute("select run_id, total, unrated, upscaled, credits from run_summary")
    }
    assert summary[1] == (1, 4, 3, 0, 0) and summary[second] == (second, 6, 6, 1, 9)
    db.execute("delete from models")
    db.conn.commit()
    got, want = table_vs_view(db)
    assert got == want and got[3]["model_title"] is None
    before = db.conn.execute("select config_version from run_stats where run_id = 1").fetchone()[0]
    db.execute("update configs set scheduler = 'PNDM' where id = (select config_id from images where id = 1)")
    db.execute("delete from image_table where image_id = -1")
    db.conn.commit()
    assert (
        db.conn.execute("select config_version from run_stats where run_id = 1").fetchone()[0] == before + 1
    )
    assert values_match_a_recount(db)
    db.conn.close()


def test_counters_follow_failures_retries_and_cancels(db_path, make_run, fake_provider):
    from sinkin_pipeline.providers import ServiceError
    from sinkin_pipeline.queue import cancel_jobs, retry_jobs

    make_run(db_path, {"provider": "fake", "model_id": "4zdwGOB", "prompt": "a cat", "seed": [1, 2, 3, 4]})
    fake_provider.script["inference"] = [ServiceError("no")]
    work(db_path, limit=2)
    db = open_db(db_path)
    assert run_stats(db) == recount(db) and run_stats(db)[1]["failed"] == 1
    retry_jobs(db)
    cancel_jobs(db, job_ids=[4])
    assert run_stats(db) == recount(db)
    stats = run_stats(db)[1]
    assert (stats["queued"], stats["cancelled"], stats["succeeded"], stats["inference_finished"]) == (
        2,
        1,
        1,
        2,
    )
    db.conn.close()


def test_image_table_is_a_table_Datasette_pages_by_key(db_path, make_run):
    make_run(
        db_path,
        {
            "provider": "simulator",
            "model_id": "4zdwGOB",
            "prompt": "a fox",
            "seed": [1, 2, 3],
            "width": 128,
            "height": 128,
            "steps": 5,
        },
    )
    work(db_path)
    conn = sqlite3.connect(db_path)
    kind = conn.execute("select type from sqlite_master where name = 'image_table'").fetchone()[0]
    plan = " ".join(
        r[3]
        for r in conn.execute(
            "explain query plan select image_id from image_table where run_id = 1 "
            "order by score is null, score desc, image_id desc limit 48 offset 48"
        )
    )
    conn.close()
    assert kind == "table" and "COVERING INDEX" in plan and "TEMP B-TREE" not in plan


@pytest.fixture
def served(db_path, make_run):
    make_run(
        db_path,
        {
            "provider": "simulator",
            "model_id": "4zdwGOB",
            "prompt": ["a fox", "a cat"],
            "scheduler": ["DDIM", "KLMS", "PNDM"],
            "seed": [1, 2],
            "width": 128,
            "height": 128,
            "steps": 5,
        },
    )
    work(db_path)
    return make_datasette(db_path, "127.0.0.1", 8001), db_path


@pytest.mark.asyncio
async def test_order_is_a_window_with_position_and_total(served):
    ds, db_path = served
    body = (await ds.client.get("/-/sinkin/runs/1/order.json?sort=oldest&around=6&span=2")).json()
    assert (
        body["ids"] == [4, 5, 6, 7, 8] and body["offset"] == 3 and body["index"] == 2 and body["total"] == 12
    )
    body = (await ds.client.get("/-/sinkin/runs/1/order.json?around=12&span=3")).json()
    assert body["ids"] == [12, 11, 10, 9] and body["offset"] == 0 and body["index"] == 0
    body = (await ds.client.get("/-/sinkin/runs/1/order.json?scheduler=KLMS&sort=oldest")).json()
    assert body["total"] == 4 and body["ids"] == sorted(body["ids"]) and body["index"] == -1
    for bad in ("around=x", "span=0", "span=501"):
        r = await ds.client.get("/-/sinkin/runs/1/order.json?" + bad)
        assert r.status_code == 400 and r.json()["ok"] is False


@pytest.mark.asyncio
async def test_scores_move_the_cached_order_and_counts(served):
    ds, db_path = served
    first = (await ds.client.get("/-/sinkin/runs/1/order.json?sort=score_desc&around=1&span=20")).json()
    assert first["ids"][0] == 12
    page = await ds.client.get("/-/sinkin/runs/1?unrated=1")
    assert "12 images" in page.text
    db = open_db(db_path)
    score_image(db, 1, 8)
    score_image(db, 2, 9)
    db.conn.close()
    body = (await ds.client.get("/-/sinkin/runs/1/order.json?sort=score_desc&around=1&span=20")).json()
    assert body["ids"][:2] == [2, 1] and body["index"] == 1
    page = await ds.client.get("/-/sinkin/runs/1?unrated=1")
    assert "10 images" in page.text
    body = (await ds.client.get("/-/sinkin/runs/1/order.json?unrated=1&around=1")).json()
    assert body["total"] == 10 and body["index"] == -1 and 1 not in body["ids"]


def test_every_default_facet_has_covering_indexes(db_path):
    from pathlib import Path

    import yaml

    from sinkin_pipeline.ranking import INDEXES

    meta = yaml.safe_load(
        (Path(__file__).resolve().parent.parent / "datasette_plugins" / "metadata.yml").read_text()
    )
    facets = meta["databases"]["sinkin"]["tables"]["image_table"]["facets"]
    conn = sqlite3.connect(db_path)
    have = {r[0] for r in conn.execute("select name from sqlite_master where type = 'index'")}
    for facet in facets:
        assert "({})".format(facet) in INDEXES.values() and "(run_id, {})".format(facet) in INDEXES.values()
        sql = (
            "select {0}, count(*) from (select * from image_table where run_id = 1) where {0} is not null "
            "group by {0}".format(facet)
        )
        assert "COVERING INDEX" in " ".join(r[3] for r in conn.execute("explain query plan " + sql)), facet
    assert set(INDEXES) <= have
    conn.close()


def test_export_through_the_sqlite3_shell_and_python_gives_the_same_safe_cells(db_path, make_run, tmp_path):
    import csv
    import shutil

    from sinkin_pipeline.export import export_csv

    make_run(
        db_path,
        {
            "provider": "simulator",
            "model_id": "4zdwGOB",
            "width": 128,
            "height": 128,
            "steps": 5,
            "prompt": ['=HYPERLINK("http://x"), then\na new line', "a fox", "-1+2", "@cmd"],
        },
    )
    work(db_path)
    db = open_db(db_path)
    outputs = {}
    for use_cli in (True, False):
        out = tmp_path / "export-{}.csv".format(use_cli)
        with open(out, "w", newline="", encoding="utf-8") as fp:
            assert export_csv(db, fp, use_cli=use_cli) == 4
        outputs[use_cli] = list(csv.reader(open(out, newline="", encoding="utf-8")))
    db.conn.close()
    if shutil.which("sqlite3") is None:
        pytest.skip("the sqlite3 shell is not installed: only the Python export ran")
    assert outputs[True] == outputs[False]
    prompts = sorted(row[outputs[False][0].index("prompt")] for row in outputs[False][1:])
    assert prompts == ["'-1+2", '\'=HYPERLINK("http://x"), then\na new line', "'@cmd", "a fox"]
