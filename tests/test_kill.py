"""Real worker processes against the local stand-in SinkIn server: SIGKILL mid-request and
mid-download, and two `sinkin work` processes sharing one database."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest


def cli_env(standin, db_path):
    env = dict(os.environ)
    env.update(
        SINKIN_API_KEY="test-key",
        SINKIN_API_BASE=standin.base_url,
        SINKIN_DB=str(db_path),
        SINKIN_RETRY_BASE_DELAY="0.01",
        PYTHONUNBUFFERED="1",
    )
    return env


def sinkin(env, *args, check=True):
    result = subprocess.run(
        [sys.executable, "-m", "sinkin_pipeline", *args], env=env, capture_output=True, text=True, timeout=120
    )
    if check and result.returncode not in (0, 1):
        raise AssertionError(result.stdout + result.stderr)
    return result


def query(db_path, sql, params=()):
    conn = sqlite3.connect(db_path, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def wait_for(predicate, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


@pytest.fixture
def queued(tmp_path, standin):
    db_path = tmp_path / "lab.db"
    spec = tmp_path / "spec.yml"
    spec.write_text(
        "provider: sinkin\nmodel_id: 4zdwGOB\nprompt: a fox\nnum_images: 2\nsteps: 10\n"
        "width: 256\nheight: 256\nseed: 7\n"
    )
    env = cli_env(standin, db_path)
    result = sinkin(env, "run", str(spec), "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    return db_path, env


def test_sigkill_mid_request_is_never_resent_automatically(queued, standin):
    db_path, env = queued
    standin.latency = 30
    worker = subprocess.Popen(
        [sys.executable, "-m", "sinkin_pipeline", "work"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: any(c["endpoint"] == "inference" for c in standin.calls))
        time.sleep(0.2)
        worker.send_signal(signal.SIGKILL)
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.wait(timeout=10)
    standin.latency = 0
    assert query(db_path, "select status from jobs") == [("running",)]
    result = sinkin(env, "work")
    assert "marked interrupted" in result.stderr
    assert query(db_path, "select status from jobs") == [("interrupted",)]
    assert standin.charged("inference") == 1  # nothing sent again on its own
    assert "retry" in query(db_path, "select error from jobs")[0][0]
    # retry says what re-sending costs, and only sends it again when told
    result = sinkin(env, "retry")
    assert "1 job without a stored answer not re-queued" in result.stdout
    assert "1 may already have been charged once" in result.stdout and "--resend" in result.stdout
    assert query(db_path, "select status from jobs") == [("interrupted",)]
    sinkin(env, "retry", "--resend")
    assert sinkin(env, "work").returncode == 0
    assert query(db_path, "select status from jobs") == [("succeeded",)]
    assert query(db_path, "select count(*) from images where path is not null") == [(2,)]


def test_sigkill_during_downloads_resumes_without_a_second_call(queued, standin):
    db_path, env = queued
    standin.download_latency = 30
    worker = subprocess.Popen(
        [sys.executable, "-m", "sinkin_pipeline", "work"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: query(db_path, "select raw_response from jobs")[0][0] is not None)
        time.sleep(0.2)
        worker.send_signal(signal.SIGKILL)
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.wait(timeout=10)
    standin.download_latency = 0
    assert standin.charged("inference") == 1
    inf_id = query(db_path, "select inf_id from jobs")[0][0]
    assert inf_id  # the answer was committed before any download
    sinkin(env, "work")  # marks it interrupted: the answer is stored
    assert "no new charge" in query(db_path, "select error from jobs")[0][0]
    sinkin(env, "retry")
    assert sinkin(env, "work").returncode == 0
    assert standin.charged("inference") == 1
    assert query(
        db_path,
        "select count(*), count(distinct image_index) from images where path is not null and inf_id = ?",
        [inf_id],
    ) == [(2, 2)]
    assert not list((db_path.parent / "lab_media").glob("run_*/*.part-*"))


def test_two_worker_processes_share_one_queue(tmp_path, standin):
    db_path = tmp_path / "lab.db"
    spec = tmp_path / "spec.yml"
    spec.write_text(
        "provider: sinkin\nmodel_id: 4zdwGOB\nprompt: a fox\nsteps: 5\nwidth: 128\n"
        "height: 128\nseed: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]\n"
    )
    env = cli_env(standin, db_path)
    assert sinkin(env, "run", str(spec), "--yes").returncode == 0
    standin.latency = 0.6  # long enough for both processes to start on a loaded machine
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "sinkin_pipeline", "work", "--concurrency", "2"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=120) for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    assert standin.charged("inference") == 16
    seeds = sorted(int(c["fields"]["seed"]) for c in standin.calls if c["endpoint"] == "inference")
    assert seeds == list(range(1, 17))
    assert query(db_path, "select count(*), max(attempts) from jobs where status = 'succeeded'") == [(16, 1)]
    pids = query(db_path, "select count(distinct worker_pid) from jobs")[0][0]
    assert pids == 2  # both processes took part


def test_a_worker_killed_elsewhere_is_recovered_when_its_lease_runs_out(queued, standin):
    """A container restart: the worker ran under another host name, or under the recovering
    process's own pid (pid 1 in a container). Its job is freed once the lease runs out."""
    from sinkin_pipeline.db import open_db
    from sinkin_pipeline.queue import recover_stale

    db_path, env = queued
    env = dict(env, SINKIN_LEASE_SECONDS="4")
    standin.latency = 30
    worker = subprocess.Popen(
        [sys.executable, "-m", "sinkin_pipeline", "work"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: any(c["endpoint"] == "inference" for c in standin.calls))
        time.sleep(1.2)  # the heartbeat has renewed the lease at least once
        worker.send_signal(signal.SIGKILL)
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.wait(timeout=10)
    standin.latency = 0
    conn = sqlite3.connect(db_path)
    conn.execute("update jobs set worker_host = 'container-a', worker_pid = ?", [os.getpid()])
    conn.commit()
    conn.close()
    result = sinkin(env, "recover")  # the lease is still live: left alone, and said so
    assert "0 jobs whose worker stopped marked interrupted" in result.stdout
    assert "1 job still has a live worker" in result.stdout
    db = open_db(db_path)
    assert recover_stale(db) == 0  # our own pid is no proof of life either way
    wait_for(lambda: recover_stale(db) == 1, timeout=8)
    db.conn.close()
    assert query(db_path, "select status from jobs") == [("interrupted",)]
    assert "may have been charged" in query(db_path, "select error from jobs")[0][0]
    assert standin.charged("inference") == 1
