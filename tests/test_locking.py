"""Writes wait for the busy timeout instead of failing with "database is locked": `sinkin run`
while another process keeps taking the write lock with short IMMEDIATE transactions."""

import sqlite3
import subprocess
import sys
import time

import yaml
from click.testing import CliRunner

from sinkin_pipeline.cli import cli

WRITER = r"""
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("create table if not exists writer_ticks (id integer primary key, n integer)")
n = 0
print("ready", flush=True)
while True:
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("insert or replace into writer_ticks (id, n) values (1, ?)", [n])
    time.sleep(0.01)
    conn.execute("COMMIT")
    n += 1
    time.sleep(0.005)
"""


def test_run_twenty_times_against_a_concurrent_writer(tmp_path, db_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "spec.yml"
    spec.write_text(
        yaml.safe_dump(
            {
                "provider": "simulator",
                "model_id": "4zdwGOB",
                "prompt": ["a", "b"],
                "seed": [1, 2, 3],
                "width": 128,
                "height": 128,
                "steps": 2,
            }
        )
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "ready"
        time.sleep(0.1)
        results = [CliRunner().invoke(cli, ["run", str(spec), "--db", str(db_path)]) for _ in range(20)]
        assert writer.poll() is None, writer.stderr.read()  # the writer kept writing throughout
    finally:
        writer.kill()
        writer.wait()
    failures = [r.output for r in results if r.exit_code != 0]
    assert failures == []
    conn = sqlite3.connect(db_path)
    assert conn.execute("select count(*) from runs").fetchone()[0] == 20
    assert conn.execute("select count(*) from jobs where status = 'queued'").fetchone()[0] == 120
    assert conn.execute("select n from writer_ticks").fetchone()[0] >= 3  # it wrote meanwhile


def test_nested_write_transactions_roll_back_together(db_path):
    from sinkin_pipeline.db import open_db, write_transaction

    db = open_db(db_path)
    try:
        with write_transaction(db):
            db.execute("insert into models (id, kind) values ('outer', 'model')")
            try:
                with write_transaction(db):
                    db.execute("insert into models (id, kind) values ('inner', 'model')")
                    raise RuntimeError("inner fails")
            except RuntimeError:
                pass
        assert [r[0] for r in db.execute("select id from models")] == ["outer"]
        try:
            with write_transaction(db):
                db.execute("insert into models (id, kind) values ('gone', 'model')")
                raise RuntimeError("outer fails")
        except RuntimeError:
            pass
        assert [r[0] for r in db.execute("select id from models")] == ["outer"]
        assert not db.conn.in_transaction
    finally:
        db.conn.close()
