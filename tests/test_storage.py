"""Disk and database faults stop spending: a read-only or full media folder and a database deleted
mid-run stop the session before anything more is paid for, every paid answer is kept (as a URL,
or in the rescue file beside the database), the exit is non-zero with one clear message, and
`sinkin retry` then fetches the paid images at no cost."""

import errno
import json
import os
import sqlite3
import subprocess
import threading
import time

import pytest
from click.testing import CliRunner

from sinkin_pipeline import jobs, saving
from sinkin_pipeline.cli import cli
from sinkin_pipeline.db import open_db
from sinkin_pipeline.queue import retry_jobs
from sinkin_pipeline.worker import work

SPEC = {
    "provider": "fake",
    "model_id": "m",
    "prompt": "a fox",
    "width": 128,
    "height": 128,
    "seed": list(range(12)),
}


def statuses(db_path):
    conn = sqlite3.connect(db_path)
    try:
        return dict(conn.execute("select status, count(*) from jobs group by status").fetchall())
    finally:
        conn.close()


def one(db_path, sql):
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def test_a_full_disk_stops_spending_and_retry_fetches_the_paid_images_free(
    db_path, make_run, fake_provider, monkeypatch
):
    make_run(db_path, SPEC)
    fake_provider.latency = 0.05
    real_save = saving.write_private

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(saving, "write_private", full_disk)
    result = CliRunner().invoke(cli, ["work", "--db", str(db_path), "--concurrency", "4"])
    assert result.exit_code == 1 and "Done" not in result.output and "Traceback" not in result.output
    paid = len(fake_provider.calls["inference"])
    assert 1 <= paid <= 4  # only the calls already in flight when the first save failed
    message = (
        "{} paid for and stored as URLs; free space, then `sinkin retry` fetches them at no cost".format(
            "1 image is" if paid == 1 else "{} images are".format(paid)
        )
    )
    assert "Stopped spending: job" in result.output and "No space left on device" in result.output
    assert message in result.output
    assert statuses(db_path) == {"failed": paid, "queued": 12 - paid}
    assert one(db_path, "select count(*) from images where path is null and url is not null") == paid
    # space is freed: the default retry fetches them, nothing is paid twice
    monkeypatch.setattr(saving, "write_private", real_save)
    retry_jobs(open_db(db_path), resend=False)
    assert work(db_path, concurrency=4).succeeded == 12
    assert len(fake_provider.calls["inference"]) == 12
    assert one(db_path, "select count(*) from images where path is not null") == 12


@pytest.fixture
def read_only_media(db_path):
    """The media folder as a read-only bind mount (skipped where the platform cannot mount)."""
    media = db_path.parent / "lab_media"
    media.mkdir()
    src = db_path.parent / "media_src"
    src.mkdir()
    if subprocess.run(["mount", "--bind", str(src), str(media)], capture_output=True).returncode:
        pytest.skip("cannot bind-mount here")
    try:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(media)], capture_output=True).returncode:
            pytest.skip("cannot remount read-only here")
        yield media
    finally:
        subprocess.run(["umount", str(media)], capture_output=True)


def test_a_read_only_media_folder_stops_before_anything_is_paid(
    db_path, make_run, fake_provider, read_only_media
):
    make_run(db_path, SPEC)
    result = CliRunner().invoke(cli, ["work", "--db", str(db_path), "--concurrency", "4"])
    assert result.exit_code == 1 and "Done" not in result.output
    assert "the media folder" in result.output and "is not writable" in result.output
    assert fake_provider.calls["inference"] == [] and statuses(db_path) == {"queued": 12}


def test_a_database_deleted_mid_run_stops_paying_and_keeps_the_answers(db_path, make_run, fake_provider):
    make_run(db_path, SPEC)
    fake_provider.latency = 0.6

    def delete_when_sent():
        while len(fake_provider.calls["inference"]) < 2:
            time.sleep(0.01)
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(str(db_path) + suffix)
            except FileNotFoundError:
                pass

    deleter = threading.Thread(target=delete_when_sent)
    deleter.start()
    result = CliRunner().invoke(cli, ["work", "--db", str(db_path), "--concurrency", "2"])
    deleter.join()
    assert result.exit_code == 1 and "Done" not in result.output and "Traceback" not in result.output
    assert "was deleted or replaced while working" in result.output
    assert len(fake_provider.calls["inference"]) == 2  # nothing more was paid for
    rescue = db_path.with_name("lab.db.unsaved-answers.jsonl")
    answers = [json.loads(line) for line in rescue.read_text().splitlines()]
    assert len(answers) == 2 and all(a["response"]["inf_id"] and a["response"]["images"] for a in answers)
    assert "2 images are paid for and stored as URLs" in result.output


def test_a_database_that_cannot_be_written_stops_the_workers_without_tracebacks(
    db_path, make_run, fake_provider, monkeypatch
):
    make_run(db_path, SPEC)
    real = jobs.write_job_columns
    calls = {"n": 0}

    def failing_update(db, job_id, **fields):
        if "raw_response" in fields:
            calls["n"] += 1
            raise sqlite3.OperationalError("database or disk is full")
        return real(db, job_id, **fields)

    monkeypatch.setattr(jobs, "write_job_columns", failing_update)
    summary = work(db_path, concurrency=3)
    assert summary.storage_error and "database or disk is full" in summary.storage_error
    assert len(fake_provider.calls["inference"]) == calls["n"] <= 3
    rescue = db_path.with_name("lab.db.unsaved-answers.jsonl")
    assert len(rescue.read_text().splitlines()) == calls["n"]
    assert "running" not in statuses(db_path)
