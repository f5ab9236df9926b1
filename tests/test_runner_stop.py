"""The server's "Run all" when the server stops: the requests in flight finish and keep their
answers; a second Ctrl-C (here: a timeout) marks them interrupted at once, never `running`."""

import io
import sqlite3
import time

from datasette_plugins import runner


def statuses(db_path):
    conn = sqlite3.connect(db_path)
    try:
        return dict(conn.execute("select status, count(*) from jobs group by status").fetchall())
    finally:
        conn.close()


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def start(db_path, make_run, fake_provider, latency):
    make_run(db_path, {"provider": "fake", "model_id": "m", "prompt": "a fox", "seed": list(range(10))})
    fake_provider.latency = latency
    active = runner.start(db_path, concurrency=3, wait=0)
    wait_for(lambda: len(fake_provider.calls["inference"]) == 3)
    return active


def test_server_stop_lets_the_requests_in_flight_finish(db_path, make_run, fake_provider):
    active = start(db_path, make_run, fake_provider, 0.5)
    out = io.StringIO()
    assert runner.shutdown(stream=out) == 1
    assert not active.active and active.stopped
    sent = len(fake_provider.calls["inference"])  # 3, or more when the machine is slow to stop them
    assert 3 <= sent < 10 and statuses(db_path) == {"succeeded": sent, "queued": 10 - sent}
    assert "no new job starts; waiting for the requests in flight" in out.getvalue()
    assert "3 requests in flight" in out.getvalue()
    assert runner.shutdown(stream=out) == 0  # nothing left to stop


def test_a_second_stop_marks_them_interrupted_at_once(db_path, make_run, fake_provider):
    active = start(db_path, make_run, fake_provider, 5)
    out = io.StringIO()
    began = time.monotonic()
    runner.shutdown(timeout=0.2, stream=out)
    assert time.monotonic() - began < 3
    assert not active.active
    assert statuses(db_path) == {"interrupted": 3, "queued": 7}
    assert "marked interrupted" in out.getvalue()
