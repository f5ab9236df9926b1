"""Ctrl-C, SIGTERM and SIGHUP during `sinkin work --concurrency 8` and `sinkin next`, against the
stand-in SinkIn server and its charge log: the first signal lets the requests in flight finish and
keeps their answers; a second one marks them interrupted at once; the documented recovery then
pays for every job exactly once. (More trials: bench/bench_interrupt.py.)"""

import random
import signal
import subprocess
import sys
import time

import pytest
from test_kill import cli_env, query, sinkin, wait_for

JOBS = 40  # enough that a signal at any of the random moments below leaves jobs unsent


@pytest.fixture
def grid(tmp_path, standin):
    db_path = tmp_path / "lab.db"
    spec = tmp_path / "spec.yml"
    spec.write_text(
        "provider: sinkin\nmodel_id: 4zdwGOB\nprompt: a fox\nsteps: 5\nwidth: 128\nheight: 128\n"
        "num_images: 1\nseed: [{}]\n".format(", ".join(str(i) for i in range(JOBS)))
    )
    env = cli_env(standin, db_path)
    assert sinkin(env, "run", str(spec), "--yes").returncode == 0
    return db_path, env


def start_work(env, *args):
    return subprocess.Popen(
        [sys.executable, "-m", "sinkin_pipeline", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def in_flight(standin):
    return sum(1 for c in standin.calls if c["endpoint"] == "inference")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_first_signal_finishes_the_requests_in_flight_and_recovery_pays_once(grid, standin, sig):
    db_path, env = grid
    standin.latency = 0.3
    worker = start_work(env, "work", "--concurrency", "8")
    wait_for(lambda: in_flight(standin) >= 1)
    time.sleep(random.uniform(0, 0.4))  # a random moment
    worker.send_signal(sig)
    out, err = worker.communicate(timeout=30)
    assert worker.returncode == 128 + sig, out + err
    name = signal.Signals(sig).name
    assert "{} received: no new job starts; waiting for the".format(name) in err
    assert "Stopping:" in err and "Stopped by {}:".format(name) in out and "Traceback" not in out + err
    sent = in_flight(standin)
    assert 0 < sent < JOBS
    # every request sent was answered and stored; nothing is left running
    assert query(db_path, "select count(*) from jobs where status = 'succeeded'") == [(sent,)]
    assert query(db_path, "select count(*) from jobs where status not in ('succeeded', 'queued')") == [(0,)]
    # the documented recovery
    standin.latency = 0
    sinkin(env, "work")
    sinkin(env, "retry")
    assert sinkin(env, "work").returncode == 0
    assert standin.charged("inference") == JOBS  # charges == jobs
    assert query(db_path, "select count(*) from images where path is not null") == [(JOBS,)]
    assert query(db_path, "select count(*) from jobs where status != 'succeeded'") == [(0,)]


def test_a_second_ctrl_c_marks_the_jobs_in_flight_interrupted_at_once(grid, standin):
    db_path, env = grid
    standin.latency = 30
    worker = start_work(env, "work", "--concurrency", "8")
    wait_for(lambda: in_flight(standin) == 8)
    worker.send_signal(signal.SIGINT)
    time.sleep(0.3)
    started = time.monotonic()
    worker.send_signal(signal.SIGINT)
    out, err = worker.communicate(timeout=10)
    assert time.monotonic() - started < 3
    assert worker.returncode == 130, out + err
    assert "8 jobs in flight marked interrupted" in out
    assert query(db_path, "select status, count(*) from jobs group by status order by status") == [
        ("interrupted", 8),
        ("queued", JOBS - 8),
    ]
    errors = query(db_path, "select error from jobs where status = 'interrupted'")
    assert all("may have been charged" in e for (e,) in errors)


def test_ctrl_c_during_sinkin_next_waits_for_its_answer(grid, standin):
    db_path, env = grid
    standin.latency = 0.6
    worker = start_work(env, "next")
    wait_for(lambda: in_flight(standin) == 1)
    worker.send_signal(signal.SIGINT)
    out, err = worker.communicate(timeout=30)
    assert worker.returncode == 130, out + err
    assert "waiting for the 1 request in flight" in err and "Job 1 succeeded: 1 image" in out
    assert query(db_path, "select status from jobs where id = 1") == [("succeeded",)]
    assert standin.charged("inference") == 1
    # a random moment, a second signal: nothing stays running
    worker = start_work(env, "next")
    wait_for(lambda: in_flight(standin) == 2)
    time.sleep(random.uniform(0, 0.3))
    worker.send_signal(signal.SIGINT)
    time.sleep(0.05)
    worker.send_signal(signal.SIGINT)
    worker.communicate(timeout=10)
    assert worker.returncode == 130
    assert query(db_path, "select status from jobs where id = 2")[0][0] in ("interrupted", "succeeded")
