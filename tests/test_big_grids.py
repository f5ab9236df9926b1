"""Big grids: runs are created in chunks with constant memory, a grid above the job ceiling is
refused everywhere (plan, run, the run form) with its size and how to raise the ceiling, and the
queue is counted in SQL."""

import json
import sqlite3
import tracemalloc

import pytest
import yaml
from click.testing import CliRunner

from sinkin_pipeline import runs
from sinkin_pipeline.cli import cli
from sinkin_pipeline.db import open_db
from sinkin_pipeline.spec import check_spec

SIM = {
    "provider": "simulator",
    "model_id": "4zdwGOB",
    "prompt": "a fox",
    "width": 128,
    "height": 128,
    "steps": 2,
}


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def dump(db_path):
    conn = sqlite3.connect(db_path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def grid(tmp_path, n_prompts, n_seeds, **extra):
    path = tmp_path / "grid.yml"
    path.write_text(
        yaml.safe_dump(
            dict(SIM, prompt=["p{}".format(i) for i in range(n_prompts)], seed=list(range(n_seeds)), **extra)
        )
    )
    return path


def test_the_default_ceiling_refuses_a_grid_above_100000_jobs(tmp_path, db_path, monkeypatch):
    monkeypatch.delenv("SINKIN_MAX_JOBS", raising=False)
    spec = grid(tmp_path, 1001, 100)
    before = dump(db_path)
    for command in ("plan", "run"):
        result = invoke(command, spec, "--db", db_path, "--yes" if command == "run" else "--json")
        assert result.exit_code == 1
        assert "this grid has 100,100 jobs, more than the ceiling of 100,000" in result.output
        assert "--max-jobs N or SINKIN_MAX_JOBS=N" in result.output
    assert dump(db_path) == before
    result = invoke("run", spec, "--db", tmp_path / "new.db", "--yes")
    assert result.exit_code == 1 and not (tmp_path / "new.db").exists()  # no file for a refused grid


def test_the_ceiling_can_be_raised_by_option_or_environment(tmp_path, db_path, monkeypatch):
    spec = grid(tmp_path, 6, 10)
    monkeypatch.setenv("SINKIN_MAX_JOBS", "50")
    result = invoke("run", spec, "--db", db_path)
    assert result.exit_code == 1 and "this grid has 60 jobs, more than the ceiling of 50" in result.output
    assert json.loads(invoke("plan", spec, "--db", db_path, "--json", "--max-jobs", 60).output)["jobs"] == 60
    assert invoke("run", spec, "--db", db_path, "--max-jobs", 60).exit_code == 0
    monkeypatch.setenv("SINKIN_MAX_JOBS", "60")
    assert invoke("run", spec, "--db", db_path).exit_code == 0
    monkeypatch.setenv("SINKIN_MAX_JOBS", "lots")
    result = invoke("plan", spec, "--db", db_path)
    assert (
        result.exit_code == 1
        and "SINKIN_MAX_JOBS must be a whole number of jobs, got 'lots'" in result.output
    )
    result = invoke("plan", spec, "--db", db_path, "--max-jobs", 0)
    assert result.exit_code == 2 and "--max-jobs" in result.output


def test_runs_are_inserted_in_chunks_with_consistent_ids_and_counters(db_path, monkeypatch):
    monkeypatch.setattr(runs, "CHUNK", 7)
    db = open_db(db_path)
    try:
        first = runs.create_run(db, check_spec(dict(SIM, seed=[1, 2, 3])))
        spec = check_spec(dict(SIM, prompt=["a", "b", "c"], steps=[2, 4], seed=list(range(5))))
        run_id = runs.create_run(db, spec)
        rows = db.execute(
            """select configs.position, configs.prompt, configs.steps, configs.seed,
                                    jobs.status, jobs.credit_estimate, jobs.run_id
                             from jobs join configs on configs.id = jobs.config_id
                             where configs.run_id = ? order by jobs.id""",
            [run_id],
        ).fetchall()
        assert [r[0] for r in rows] == list(range(30))  # positions in job order, nothing lost
        assert {(r[1], r[2], r[3]) for r in rows} == {
            (p, s, seed) for p in "abc" for s in (2, 4) for seed in range(5)
        }
        assert {r[4] for r in rows} == {"queued"} and {r[6] for r in rows} == {run_id}
        stats = runs.run_counts(db, run_id)[0]
        assert (stats["jobs"], stats["queued"], stats["running"]) == (30, 30, 0)
        assert runs.run_counts(db, first)[0]["queued"] == 3
        # the per-job counter trigger is back: a later change is counted as before
        db.execute(
            "update jobs set status = 'running' where run_id = ? and id = (select min(id) from "
            "jobs where run_id = ?)",
            [run_id, run_id],
        )
        db.conn.commit()
        assert runs.run_counts(db, run_id)[0]["running"] == 1
        runs.create_run(db, check_spec(dict(SIM, seed=[9])))
        assert (
            db.execute(
                "select count(*) from sqlite_master where name in ('sinkin_rank_job_insert', "
                "'sinkin_configs_insert')"
            ).fetchone()[0]
            == 2
        )
        # the configs' cache version moved, as the per-config trigger would have moved it
        assert db.execute("select config_version from run_stats where run_id = ?", [run_id]).fetchone()[0] > 0
    finally:
        db.conn.close()


def test_an_expansion_larger_than_its_count_is_stopped_at_the_ceiling_and_writes_nothing(
    db_path, monkeypatch
):
    monkeypatch.setattr(runs, "CHUNK", 4)
    monkeypatch.setattr(
        runs, "expand", lambda values: (dict(prompt="p{}".format(i), seed=1) for i in range(10**9))
    )
    before = dump(db_path)
    db = open_db(db_path)
    try:
        with pytest.raises(runs.GridTooLarge, match="more than 10 jobs"):
            runs.create_run(db, check_spec(SIM), max_jobs_override=10)
    finally:
        db.conn.close()
    assert dump(db_path) == before


def test_creating_a_run_does_not_hold_its_configs_in_memory(db_path):
    spec = check_spec(dict(SIM, prompt=["prompt {}".format(i) for i in range(200)], seed=list(range(100))))
    db = open_db(db_path)
    try:
        tracemalloc.start()
        runs.create_run(db, spec)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert db.execute("select count(*) from jobs").fetchone()[0] == 20000
    finally:
        db.conn.close()
    # 20,000 config dicts held at once take well over 20 MB; a chunk of 5,000 rows a few MB
    assert peak < 12 * 2**20, peak


@pytest.mark.asyncio
async def test_the_run_form_refuses_a_grid_above_the_ceiling(lab, monkeypatch):
    monkeypatch.setenv("SINKIN_MAX_JOBS", "5")
    form = {
        "name": "big",
        "provider": "simulator",
        "model_id": "4zdwGOB",
        "prompt": "a\nb\nc",
        "steps": "2",
        "scale": "7",
        "width": "128",
        "height": "128",
        "num_images": "1",
        "seed_mode": "list",
        "seed": "1, 2",
        "use_default_neg": "true",
        "lcm": "false",
    }
    body = (await lab.post("/-/sinkin/new/check.json", {"form": form})).json()
    assert body["ok"] is False
    assert "this grid has 6 jobs, more than the ceiling of 5" in json.dumps(body["problems"])
    r = await lab.post(
        "/-/sinkin/new/create.json", {"form": form, "request_key": "form-load-big1", "confirm": True}
    )
    assert r.status_code == 400 and "ceiling of 5" in r.text
    db = lab.db()
    try:
        assert db.execute("select count(*) from runs").fetchone()[0] == 0
    finally:
        db.conn.close()


def test_queue_lists_the_first_jobs_and_counts_them_all(tmp_path, db_path):
    assert invoke("run", grid(tmp_path, 12, 10), "--db", db_path, "--yes").exit_code == 0
    result = invoke("queue", "--db", db_path)
    lines = result.output.splitlines()
    assert len([line for line in lines if line.startswith("job ")]) == 50
    assert "… and 70 more (--show N lists more)" in result.output and "120 jobs" in lines[-1]
    data = json.loads(invoke("queue", "--db", db_path, "--json", "--show", 5).output)
    assert data["count"] == 120 and len(data["jobs"]) == 5
