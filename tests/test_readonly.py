"""Read-only commands are read-only, and no command touches a file that is not a SinkIn Lab
database: a missing, foreign, non-SQLite, damaged or read-only database gets one clear message,
a non-zero exit, no traceback, and the file stays byte for byte as it was."""

import gc
import hashlib
import os
import sqlite3
import subprocess

import pytest
import yaml
from click.testing import CliRunner

from sinkin_pipeline.cli import cli

SIM = {
    "provider": "simulator",
    "model_id": "4zdwGOB",
    "prompt": "a fox",
    "width": 128,
    "height": 128,
    "steps": 2,
    "seed": [1, 2],
}
READ_ONLY = [
    ["runs"],
    ["runs", "--json"],
    ["queue"],
    ["export"],
    ["models"],
    ["plan", "{spec}"],
    ["insights", "--run", "1"],
    ["suggest", "--run", "1"],
]
WRITING = [
    ["run", "{spec}"],
    ["init"],
    ["score", "1", "5"],
    ["work"],
    ["next"],
    ["retry"],
    ["cancel"],
    ["upscale", "1"],
    ["models", "--refresh", "--provider", "simulator"],
]


def invoke(args, db, spec):
    args = [a.replace("{spec}", str(spec)) for a in args]
    return CliRunner().invoke(cli, args + ["--db", str(db)])


def files_of(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "spec.yml"
    path.write_text(yaml.safe_dump(SIM))
    return path


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_a_missing_database_is_a_clear_error_and_no_file_is_created(tmp_path, spec, args):
    db = tmp_path / "typo.db"
    result = invoke(args, db, spec)
    assert not db.exists() and not list(tmp_path.glob("typo.db*"))
    if args[0] == "plan":  # plan needs no database: it estimates from nothing and creates none
        assert result.exit_code == 0 and "2 jobs" in result.output
        return
    assert result.exit_code == 1, result.output
    assert "no database at {}".format(db) in result.output and "sinkin init" in result.output


@pytest.mark.parametrize(
    "args",
    [a for a in WRITING if a[0] not in ("run", "init")]
    + [["models", "--refresh", "--provider", "simulator"]],
    ids=" ".join,
)
def test_writing_commands_other_than_run_and_init_do_not_create_a_database(tmp_path, spec, args):
    db = tmp_path / "typo.db"
    result = invoke(args, db, spec)
    if args[:2] == ["models", "--refresh"]:  # refreshing the model cache is a write: it creates
        assert result.exit_code == 0 and db.exists()
        return
    assert result.exit_code != 0 and "no database at" in result.output
    assert not db.exists()


def test_init_and_run_create_the_database(tmp_path, spec):
    result = invoke(["init"], tmp_path / "a.db", spec)
    assert result.exit_code == 0 and "Database created" in result.output
    assert "Database ready" in invoke(["init"], tmp_path / "a.db", spec).output
    assert invoke(["run", "{spec}"], tmp_path / "b.db", spec).exit_code == 0
    assert invoke(["runs", "--json"], tmp_path / "b.db", spec).exit_code == 0


def foreign_db(path):
    conn = sqlite3.connect(path)
    conn.execute("create table notes (id integer primary key, text)")
    conn.execute("insert into notes (text) values ('keep me')")
    conn.commit()
    conn.close()
    return path


@pytest.mark.parametrize("args", READ_ONLY + WRITING, ids=" ".join)
def test_another_programs_sqlite_file_is_refused_untouched(tmp_path, spec, args):
    db = foreign_db(tmp_path / "other_app.db")
    before = files_of(tmp_path)
    result = invoke(args, db, spec)
    assert result.exit_code == 1, result.output
    assert "is not a SinkIn Lab database" in result.output and "notes" in result.output
    assert files_of(tmp_path) == before  # no table added, no -wal/-shm file, no journal switch
    conn = sqlite3.connect(db)
    assert conn.execute("pragma journal_mode").fetchone()[0] == "delete"
    assert [r[0] for r in conn.execute("select name from sqlite_master")] == ["notes"]


@pytest.mark.parametrize("args", READ_ONLY + WRITING, ids=" ".join)
def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path, spec, args):
    db = tmp_path / "notes.db"
    db.write_text("these are my notes, not a database\n" * 10)
    before = files_of(tmp_path)
    result = invoke(args, db, spec)
    assert result.exit_code == 1 and "not a SQLite database" in result.output
    assert "Traceback" not in result.output
    assert files_of(tmp_path) == before


def damaged_db(tmp_path, spec, where):
    """A SinkIn Lab database with one run, then damaged: ``where`` = "schema" (page 1 after the
    header) or "data" (every later page), keeping SQLite's valid 100-byte header."""
    db = tmp_path / "lab.db"
    assert invoke(["run", "{spec}"], db, spec).exit_code == 0
    gc.collect()  # the command's connection
    conn = sqlite3.connect(db)
    conn.execute("pragma wal_checkpoint(truncate)")
    conn.execute("pragma journal_mode = delete")
    conn.close()
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    if where == "schema":
        data[100:page] = b"\xa5" * (page - 100)
    else:
        data[page:] = bytes((i * 7 + 3) % 251 for i in range(len(data) - page))
    db.write_bytes(bytes(data))
    return db


@pytest.mark.parametrize("where", ["schema", "data"])
@pytest.mark.parametrize("args", READ_ONLY + WRITING, ids=" ".join)
def test_a_damaged_database_points_to_recover_in_every_command(tmp_path, spec, args, where):
    db = damaged_db(tmp_path, spec, where)
    result = invoke(args, db, spec)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.exception.__class__ is SystemExit
    assert ".recover" in result.output and str(db) in result.output


def test_a_database_on_a_read_only_filesystem_can_be_listed(tmp_path, spec):
    """A read-only bind mount when the platform allows it; otherwise a folder without write
    permission (as a non-root user), where SQLite cannot create the -shm file either."""
    src = tmp_path / "src"
    src.mkdir()
    db = src / "lab.db"
    assert invoke(["run", "{spec}"], db, spec).exit_code == 0
    conn = sqlite3.connect(db)
    conn.execute("pragma wal_checkpoint(truncate)")
    conn.close()
    ro = tmp_path / "ro"
    ro.mkdir()
    mounted = False
    if os.geteuid() == 0:
        ok = subprocess.run(["mount", "--bind", "-o", "ro", str(src), str(ro)], capture_output=True)
        mounted = ok.returncode == 0
        if not mounted:
            pytest.skip("cannot make a read-only filesystem here (running as root without mount)")
        subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], capture_output=True)
    else:
        ro.rmdir()
        src.rename(ro)
        ro.chmod(0o555)
    try:
        with pytest.raises(OSError):
            (ro / "probe").write_text("x")
        before = files_of(ro)
        for args in (["runs", "--json"], ["queue"], ["export"], ["models"], ["plan", "{spec}"]):
            result = invoke(args, ro / "lab.db", spec)
            assert result.exit_code == 0, (args, result.output)
        assert '"jobs": 2' in invoke(["runs", "--json"], ro / "lab.db", spec).output
        result = invoke(["cancel"], ro / "lab.db", spec)  # a command that writes says why it cannot
        assert result.exit_code == 1 and "is read-only here" in result.output
        assert files_of(ro) == before
    finally:
        if mounted:
            gc.collect()  # close the commands' connections, then detach (lazily if still busy)
            if subprocess.run(["umount", str(ro)], capture_output=True).returncode:
                subprocess.run(["umount", "-l", str(ro)], capture_output=True)
        else:
            ro.chmod(0o755)


def test_a_database_from_an_older_version_is_not_migrated_by_a_read_only_command(tmp_path, spec):
    db = tmp_path / "lab.db"
    assert invoke(["run", "{spec}"], db, spec).exit_code == 0
    gc.collect()
    conn = sqlite3.connect(db)
    last = conn.execute("select name from _sqlite_migrations order by id desc limit 1").fetchone()[0]
    conn.execute("delete from _sqlite_migrations where name = ?", [last])
    conn.commit()
    conn.close()
    before = files_of(tmp_path)["lab.db"]
    result = invoke(["runs"], db, spec)
    assert result.exit_code == 1 and "was made by an older SinkIn Lab" in result.output
    assert "sinkin init --db" in result.output
    assert files_of(tmp_path)["lab.db"] == before  # (a WAL reader may recreate the -shm index)


def test_serve_refuses_another_programs_file_untouched(tmp_path, monkeypatch):
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("the server started"))
    db = foreign_db(tmp_path / "other_app.db")
    before = files_of(tmp_path)
    result = CliRunner().invoke(cli, ["serve", "--db", str(db)])
    assert result.exit_code == 1 and "is not a SinkIn Lab database" in result.output
    assert files_of(tmp_path) == before
