"""Running jobs: what lands in the database, and that nothing is paid twice or lost."""

import json
import os
import sqlite3

from sinkin_pipeline.providers import DownloadError, OutcomeUnknown, ServiceError, TransientError
from sinkin_pipeline.queue import recover_stale, retry_jobs
from sinkin_pipeline.worker import run_next, work

FAKE = {"provider": "fake", "model_id": "4zdwGOB", "prompt": "a fox", "steps": 20}


def rows(db_path, sql, params=()):
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params).fetchall()]
    finally:
        conn.close()


def test_simulator_run_lands_images_thumbnails_and_settings(db_path, make_run):
    run_id = make_run(
        db_path,
        {
            "provider": "simulator",
            "model_id": "4zdwGOB",
            "prompt": ["a fox", "a cat"],
            "scheduler": ["DDIM", "KLMS"],
            "seed": {"random": 2},
            "num_images": 2,
            "width": 256,
            "height": 320,
        },
    )
    summary = work(db_path, concurrency=3)
    assert (summary.jobs, summary.succeeded, summary.images) == (8, 8, 16)
    images = rows(db_path, "select * from images where run_id = ?", [run_id])
    assert len(images) == 16
    for image in images:
        path = db_path.parent / image["path"]
        assert path.exists() and not os.path.isabs(image["path"])
        assert (image["width"], image["height"]) == (256, 320)
        thumb = image["thumbnail"]
        assert thumb[6:10] == b"JFIF" and len(thumb) < 30 * 1024
    # the seed sent is the seed stored, and the payload never holds a token
    for job in rows(
        db_path, "select jobs.raw_payload, configs.seed from jobs join configs on configs.id = jobs.config_id"
    ):
        payload = json.loads(job["raw_payload"])
        assert payload["seed"] == job["seed"] and "access_token" not in payload
    summary_row = rows(db_path, "select * from run_summary where run_id = ?", [run_id])[0]
    assert (summary_row["total"], summary_row["unrated"], summary_row["queued"]) == (16, 16, 0)


def test_a_job_takes_three_short_write_transactions(db_path, make_run, monkeypatch, fake_provider):
    """Claim (with the payload), answer, then the images with their thumbnails and the final status:
    the write lock is never taken for the thumbnail or the file writes on their own."""
    from sinkin_pipeline import db as dbmod

    begun = []
    configure = dbmod.configure_connection

    def counting(conn):
        configure(conn)

        def trace(statement):
            words = statement.lstrip().upper()
            if words.startswith("BEGIN") or words.startswith("SAVEPOINT") and not conn.in_transaction:
                begun.append(words.split()[0])

        conn.set_trace_callback(trace)

    monkeypatch.setattr(dbmod, "configure_connection", counting)
    make_run(db_path, {**FAKE, "seed": [1, 2, 3, 4], "num_images": 2})
    begun.clear()
    assert work(db_path, concurrency=2).images == 8
    assert len(begun) - 2 == 3 * 4  # each thread's last claim finds the queue empty
    assert rows(db_path, "select count(*) as n from images where thumbnail is not null") == [{"n": 8}]


def test_transient_failures_are_retried_and_charged_once(db_path, make_run, fake_provider):
    make_run(db_path, FAKE)
    fake_provider.script["inference"] = [
        TransientError("HTTP 503"),
        TransientError("HTTP 429", retry_after=0.01),
    ]
    summary = work(db_path)
    assert summary.succeeded == 1 and len(fake_provider.calls["inference"]) == 3
    job = rows(db_path, "select * from jobs")[0]
    assert job["status"] == "succeeded" and job["credit_cost"] == 1.0


def test_transient_failures_give_up_after_a_bounded_number(db_path, make_run, fake_provider):
    make_run(db_path, FAKE)
    fake_provider.script["inference"] = [TransientError("HTTP 500")] * 50
    summary = work(db_path)
    job = rows(db_path, "select * from jobs")[0]
    assert summary.failed == 1 and job["status"] == "failed"
    assert "gave up after" in job["error"] and "nothing charged" in job["error"]
    assert 1 < len(fake_provider.calls["inference"]) <= 10


def test_service_error_fails_with_sinkins_message_and_is_not_retried(db_path, make_run, fake_provider):
    make_run(db_path, FAKE)
    fake_provider.script["inference"] = [ServiceError("Model not found: 4zdwGOB")]
    summary = work(db_path)
    job = rows(db_path, "select * from jobs")[0]
    assert job["status"] == "failed" and job["error"] == "Model not found: 4zdwGOB"
    assert len(fake_provider.calls["inference"]) == 1
    assert "job {}: Model not found: 4zdwGOB".format(job["id"]) in summary.messages


def test_unknown_outcome_is_interrupted_and_never_resent_automatically(db_path, make_run, fake_provider):
    make_run(db_path, FAKE)
    fake_provider.script["inference"] = [OutcomeUnknown("read timeout")]
    summary = work(db_path)
    assert summary.interrupted == 1
    job = rows(db_path, "select * from jobs")[0]
    assert job["status"] == "interrupted" and "may have been charged" in job["error"]
    work(db_path)  # a second worker leaves it alone
    assert len(fake_provider.calls["inference"]) == 1
    # only an explicit retry sends it again
    from sinkin_pipeline.db import open_db

    assert retry_jobs(open_db(db_path)) == 1
    assert work(db_path).succeeded == 1
    assert len(fake_provider.calls["inference"]) == 2
    assert len(rows(db_path, "select * from images")) == 1


def test_failed_download_keeps_the_url_and_retry_downloads_without_paying(db_path, make_run, fake_provider):
    make_run(db_path, dict(FAKE, num_images=2))
    fake_provider.script["download"] = [None] + [TransientError("HTTP 502")] * 20
    summary = work(db_path)
    job = rows(db_path, "select * from jobs")[0]
    assert job["status"] == "failed" and "paid" in job["error"] and "no new charge" in job["error"]
    images = rows(db_path, "select * from images order by image_index")
    assert len(images) == 2 and images[0]["path"] and images[1]["path"] is None
    assert images[1]["url"].startswith("fake://") and images[1]["download_error"]
    assert any("could not be downloaded" in m for m in summary.messages)
    fake_provider.script["download"] = []
    from sinkin_pipeline.db import open_db

    retry_jobs(open_db(db_path))
    assert work(db_path).succeeded == 1
    assert len(fake_provider.calls["inference"]) == 1  # no second call
    images = rows(db_path, "select * from images order by image_index")
    assert len(images) == 2 and all(i["path"] and i["download_error"] is None for i in images)


def test_an_invalid_image_file_is_not_saved(db_path, make_run, fake_provider, monkeypatch):
    make_run(db_path, FAKE)
    monkeypatch.setattr(type(fake_provider), "download", lambda self, url: b"<html>not an image</html>")
    work(db_path)
    image = rows(db_path, "select * from images")[0]
    assert image["path"] is None and "not a valid image" in image["download_error"]
    assert not list((db_path.parent / "lab_media").glob("run_*/*.png"))


def test_a_job_stopped_after_the_answer_resumes_with_downloads_only(db_path, make_run, fake_provider):
    make_run(db_path, dict(FAKE, num_images=3))
    answer = {
        "error_code": 0,
        "inf_id": "abc123",
        "credit_cost": 2.5,
        "images": ["fake://abc123/0.png", "fake://abc123/1.png", "fake://abc123/2.png"],
    }
    conn = sqlite3.connect(db_path)
    conn.execute(
        "update jobs set status = 'interrupted', raw_response = ?, inf_id = 'abc123', credit_cost = 2.5",
        [json.dumps(answer)],
    )
    conn.commit()
    conn.close()
    from sinkin_pipeline.db import open_db

    retry_jobs(open_db(db_path))
    summary = work(db_path)
    assert summary.succeeded == 1 and summary.images == 3
    assert fake_provider.calls["inference"] == []
    assert [i["inf_id"] for i in rows(db_path, "select inf_id from images")] == ["abc123"] * 3


def test_stale_running_job_of_a_dead_worker_is_interrupted(db_path, make_run, fake_provider):
    make_run(db_path, FAKE)
    import socket
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    conn = sqlite3.connect(db_path)
    conn.execute(
        "update jobs set status = 'running', worker_pid = ?, worker_host = ?",
        [dead.pid, socket.gethostname()],
    )
    conn.commit()
    conn.close()
    from sinkin_pipeline.db import open_db

    assert recover_stale(open_db(db_path)) == 1
    job = rows(db_path, "select * from jobs")[0]
    assert job["status"] == "interrupted" and "may have been charged" in job["error"]


def set_running(db_path, **fields):
    conn = sqlite3.connect(db_path)
    sets = ", ".join("{} = ?".format(k) for k in fields)
    conn.execute("update jobs set status = 'running', " + sets, list(fields.values()))
    conn.commit()
    conn.close()


def test_a_live_lease_keeps_a_job_running_whatever_host_or_pid_it_names(db_path, make_run, fake_provider):
    import time

    from sinkin_pipeline.db import open_db

    make_run(db_path, FAKE)
    set_running(
        db_path,
        worker_pid=os.getpid(),
        worker_host="container-a",
        lease_owner="x",
        lease_expires=time.time() + 30,
    )
    assert recover_stale(open_db(db_path)) == 0
    assert rows(db_path, "select status from jobs")[0]["status"] == "running"


def test_an_expired_lease_is_stale_on_another_host_and_with_our_own_pid(db_path, make_run, fake_provider):
    import time

    from sinkin_pipeline.db import open_db

    make_run(db_path, dict(FAKE, seed=[1, 2, 3]))
    conn = sqlite3.connect(db_path)
    conn.execute(
        "update jobs set status = 'running', worker_pid = 1, worker_host = 'container-a', "
        "lease_expires = ? where id = 1",
        [time.time() - 1],
    )
    conn.execute(
        "update jobs set status = 'running', worker_pid = ?, worker_host = 'container-a', "
        "lease_expires = ? where id = 2",
        [os.getpid(), time.time() - 1],
    )
    conn.execute(
        "update jobs set status = 'running', worker_pid = ?, lease_expires = null where id = 3", [os.getpid()]
    )  # no lease (an older version) under our own pid: not a live worker
    conn.commit()
    conn.close()
    assert recover_stale(open_db(db_path)) == 3
    assert {r["status"] for r in rows(db_path, "select status from jobs")} == {"interrupted"}


def test_the_heartbeat_keeps_a_long_call_from_looking_stale(db_path, make_run, fake_provider, monkeypatch):
    import threading
    import time

    from sinkin_pipeline.db import open_db

    monkeypatch.setenv("SINKIN_LEASE_SECONDS", "1")
    make_run(db_path, FAKE)
    fake_provider.latency = 2.5  # far longer than a lease
    done = []
    thread = threading.Thread(target=lambda: done.append(work(db_path)))
    thread.start()
    recovered = 0
    while thread.is_alive():
        db = open_db(db_path)
        recovered += recover_stale(db)  # what another process would do meanwhile
        db.conn.close()
        time.sleep(0.2)
    assert recovered == 0 and done[0].succeeded == 1
    assert rows(db_path, "select status from jobs")[0]["status"] == "succeeded"


def test_recover_force_frees_running_jobs_with_a_live_lease(db_path, make_run, fake_provider):
    import time

    from click.testing import CliRunner

    from sinkin_pipeline.cli import cli

    make_run(db_path, dict(FAKE, seed=[1, 2]))
    set_running(
        db_path,
        worker_pid=os.getpid(),
        worker_host="elsewhere",
        lease_owner="x",
        lease_expires=time.time() + 30,
    )
    result = CliRunner().invoke(cli, ["recover", "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    assert "2 jobs still have a live worker" in result.output and "--force" in result.output
    result = CliRunner().invoke(cli, ["recover", "--db", str(db_path), "--force"])
    assert "2 running jobs marked interrupted" in result.output
    assert [r["status"] for r in rows(db_path, "select status from jobs")] == ["interrupted"] * 2
    runs = CliRunner().invoke(cli, ["runs", "--db", str(db_path)])
    assert "interrupted" in runs.output.splitlines()[0]


def test_concurrent_workers_never_run_a_job_twice(db_path, make_run, fake_provider):
    make_run(db_path, dict(FAKE, seed=list(range(24))))
    fake_provider.latency = 0.01
    summary = work(db_path, concurrency=6)
    assert summary.succeeded == 24
    seeds = [c["payload"]["seed"] for c in fake_provider.calls["inference"]]
    assert sorted(seeds) == list(range(24))
    assert rows(db_path, "select max(attempts) as m from jobs")[0]["m"] == 1


def test_run_next_runs_exactly_one_job(db_path, make_run, fake_provider):
    make_run(db_path, dict(FAKE, seed=[1, 2, 3]))
    job = run_next(db_path)
    assert job["status"] == "succeeded" and job["images"] == 1
    statuses = [r["status"] for r in rows(db_path, "select status from jobs order by id")]
    assert statuses == ["succeeded", "queued", "queued"]
    assert len(fake_provider.calls["inference"]) == 1


def test_run_next_on_an_empty_queue(db_path):
    assert run_next(db_path) is None


def test_limit_and_stop_event(db_path, make_run, fake_provider):
    import threading

    make_run(db_path, dict(FAKE, seed=list(range(6))))
    assert work(db_path, limit=2).jobs == 2
    stop = threading.Event()
    stop.set()
    summary = work(db_path, stop_event=stop)
    assert summary.jobs == 0 and "Stopped" in summary.stopped
    assert len(rows(db_path, "select id from jobs where status = 'queued'")) == 4


def test_a_download_error_for_a_missing_url_is_reported(db_path, make_run, fake_provider):
    make_run(db_path, FAKE)
    fake_provider.script["download"] = [DownloadError("HTTP 404")] * 10
    summary = work(db_path)
    assert summary.failed == 1 and any("HTTP 404" in m for m in summary.messages)
