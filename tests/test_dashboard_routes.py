"""The dashboard's routes (/-/sinkin...): status, "Run next", "Run all" (one at a time, stoppable,
budget and configuration errors shown), retry and cancel, and the safety cases."""

import asyncio
import socket
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest

from sinkin_pipeline import worker
from sinkin_pipeline.runs import create_run
from sinkin_pipeline.spec import check_spec

GRID = {
    "name": "grid",
    "provider": "simulator",
    "model_id": "4zdwGOB",
    "prompt": ["a lighthouse at dusk", "a red fox in snow"],
    "scheduler": ["DDIM", "K_EULER"],
    "scale": [5, 9],
    "steps": 8,
    "width": 256,
    "height": 256,
    "seed": 42,
}


def make_run(lab, **changes):
    db = lab.db()
    try:
        return create_run(db, check_spec(dict(GRID, **changes)))
    finally:
        db.conn.close()


def query(lab, sql, params=()):
    db = lab.db()
    try:
        return db.execute(sql, list(params)).fetchall()
    finally:
        db.conn.close()


def statuses(lab, run_id=None):
    where = "" if run_id is None else " where run_id = {}".format(int(run_id))
    return dict(query(lab, "select status, count(*) from jobs{} group by status".format(where)))


async def wait_for_runner(lab, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = (await lab.ds.client.get("/-/sinkin/status.json")).json()
        if status["runner"] and not status["runner"]["active"]:
            return status
        await asyncio.sleep(0.05)
    raise AssertionError("Run all did not finish")


@pytest.mark.asyncio
async def test_dashboard_lists_runs_and_upcoming_jobs(lab):
    run_id = make_run(lab)
    page = await lab.ds.client.get("/-/sinkin")
    assert page.status_code == 200
    assert "grid" in page.text and 'id="sinkin-status-data"' in page.text
    assert page.cookies.get("ds_csrftoken")  # the page carries the token its buttons send
    status = (await lab.ds.client.get("/-/sinkin/status.json")).json()
    [run] = status["runs"]
    assert (run["run_id"], run["name"], run["queued"], run["total"], run["failed"]) == (
        run_id,
        "grid",
        8,
        0,
        0,
    )
    assert run["inference_jobs"] == 8 and run["inference_finished"] == 0
    assert status["queue_count"] == 8 and len(status["queue"]) == 8
    first = status["queue"][0]
    assert first["run_id"] == run_id and first["prompt"] == "a lighthouse at dusk"
    assert first["scheduler"] == "DDIM" and first["steps"] == 8 and "credit_estimate" in first
    # exactly the settings that vary in the run, in full
    assert first["varies"] == "prompt a lighthouse at dusk · scale 5 · scheduler DDIM"
    assert status["queue"][-1]["varies"] == "prompt a red fox in snow · scale 9 · scheduler K_EULER"
    assert status["queue_estimate"] == 0 and status["credits_spent"] == 0
    assert status["runner"] is None


@pytest.mark.asyncio
async def test_datasette_menu_links_to_the_dashboard_and_the_form(lab):
    index = await lab.ds.client.get("/")
    assert '<a href="/-/sinkin">SinkIn dashboard</a>' in index.text
    assert '<a href="/-/sinkin/new">New SinkIn run</a>' in index.text


@pytest.mark.asyncio
async def test_a_long_queue_is_listed_in_part_and_counted_in_full(lab, monkeypatch):
    from datasette_sinkin import dashboard

    monkeypatch.setattr(dashboard, "QUEUE_SHOWN", 3)
    make_run(lab)
    make_run(lab, name="second")
    db = lab.db()
    with db.conn:
        db.execute("update jobs set credit_estimate = 0.5")
    db.conn.close()
    status = (await lab.ds.client.get("/-/sinkin/status.json")).json()
    assert [j["id"] for j in status["queue"]] == [1, 2, 3]
    assert status["queue_count"] == 16 and status["queue_estimate"] == 8.0


@pytest.mark.asyncio
async def test_run_next_runs_exactly_one_job(lab):
    run_id = make_run(lab)
    r = await lab.post("/-/sinkin/queue/next.json", {})
    assert r.status_code == 200, r.text
    job = r.json()["job"]
    assert job["status"] == "succeeded" and job["run_id"] == run_id
    assert statuses(lab) == {"succeeded": 1, "queued": 7}
    assert query(lab, "select count(*) from images")[0][0] == 1
    status = (await lab.ds.client.get("/-/sinkin/status.json")).json()
    assert status["runs"][0]["inference_finished"] == 1 and status["runs"][0]["total"] == 1
    assert status["recent"][0]["id"] == job["id"] and status["recent"][0]["images"] == 1


@pytest.mark.asyncio
async def test_run_next_on_one_run_and_on_an_empty_queue(lab):
    first, second = make_run(lab), make_run(lab, name="second")
    r = await lab.post("/-/sinkin/queue/next.json", {"run_id": second})
    assert r.json()["job"]["run_id"] == second
    assert statuses(lab, first) == {"queued": 8}
    r = await lab.post("/-/sinkin/queue/next.json", {"run_id": 999})
    assert r.status_code == 404 and "run 999 not found" in r.json()["error"]
    r = await lab.post("/-/sinkin/queue/next.json", {"run_id": "x"})
    assert r.status_code == 400
    r = await lab.post("/-/sinkin/queue/cancel.json", {})
    assert r.json()["count"] == 15
    by_id = {run["run_id"]: run for run in (await lab.ds.client.get("/-/sinkin/status.json")).json()["runs"]}
    assert by_id[first]["inference_cancelled"] == 8 and by_id[second]["inference_cancelled"] == 7
    assert by_id[second]["inference_succeeded"] == 1
    r = await lab.post("/-/sinkin/queue/next.json", {})
    assert r.status_code == 200 and r.json()["job"] is None and r.json()["message"] == "The queue is empty."


@pytest.mark.asyncio
async def test_run_all_drains_one_runs_part_of_the_queue(lab):
    first, second = make_run(lab), make_run(lab, name="second")
    r = await lab.post("/-/sinkin/queue/run-all.json", {"run_id": second, "concurrency": 3})
    assert r.status_code in (200, 202), r.text
    assert r.json()["runner"]["run_id"] == second
    status = await wait_for_runner(lab)
    assert status["runner"]["jobs"] == 8 and status["runner"]["images"] == 8
    assert status["runner"]["error"] is None
    assert statuses(lab, second) == {"succeeded": 8} and statuses(lab, first) == {"queued": 8}
    by_id = {r["run_id"]: r for r in status["runs"]}
    assert by_id[second]["total"] == 8 and by_id[second]["unrated"] == 8 and by_id[first]["total"] == 0
    assert status["queue_count"] == 8


@pytest.mark.asyncio
async def test_run_all_with_a_limit_and_bad_options(lab):
    make_run(lab)
    for bad in ({"concurrency": 0}, {"concurrency": 99}, {"budget": -1}, {"budget": "lots"}, {"limit": 0}):
        r = await lab.post("/-/sinkin/queue/run-all.json", bad)
        assert r.status_code == 400, bad
    r = await lab.post("/-/sinkin/queue/run-all.json", {"limit": 3, "concurrency": 2, "budget": 5})
    assert r.status_code in (200, 202)
    status = await wait_for_runner(lab)
    assert status["runner"]["jobs"] == 3 and statuses(lab) == {"succeeded": 3, "queued": 5}


@pytest.fixture
def blocking_work(monkeypatch):
    """worker.work replaced by one that waits until it is told to stop (so a run stays active)."""
    started = threading.Event()

    def work(
        db_path, run_id=None, concurrency=1, budget=None, limit=None, progress=None, stop_event=None, **kwargs
    ):
        started.set()
        stop_event.wait(10)
        return SimpleNamespace(
            jobs=0,
            images=0,
            credits=0.0,
            failed=0,
            succeeded=0,
            interrupted=0,
            stopped="Stopped.",
            messages=[],
        )

    monkeypatch.setattr(worker, "work", work)
    return started


@pytest.mark.asyncio
async def test_only_one_run_all_at_a_time_and_it_can_be_stopped(lab, blocking_work):
    make_run(lab)
    r = await lab.post("/-/sinkin/queue/run-all.json", {})
    assert r.status_code == 202 and r.json()["message"] == "Run started"
    assert blocking_work.wait(5)
    second = await lab.post("/-/sinkin/queue/run-all.json", {})
    assert second.status_code == 409 and "already running" in second.json()["error"]
    stop = await lab.post("/-/sinkin/queue/stop.json", {})
    assert stop.status_code == 200 and stop.json()["runner"]["stopping"] is True
    status = await wait_for_runner(lab)
    assert status["runner"]["stopped"]
    again = await lab.post("/-/sinkin/queue/stop.json", {})
    assert again.status_code == 409 and again.json()["error"] == "nothing is running"


@pytest.mark.asyncio
async def test_run_all_shows_a_budget_too_small(lab, monkeypatch):
    make_run(lab)

    def work(*args, **kwargs):
        raise worker.BudgetTooSmall("the next job is estimated at 2 credits; the budget is 1")

    monkeypatch.setattr(worker, "work", work)
    r = await lab.post("/-/sinkin/queue/run-all.json", {"budget": 1})
    assert (
        r.status_code == 400
        and r.json()["error"] == "the next job is estimated at 2 credits; the budget is 1"
    )
    assert statuses(lab) == {"queued": 8}


@pytest.mark.asyncio
async def test_run_next_and_run_all_show_a_missing_api_key(lab, monkeypatch):
    monkeypatch.delenv("SINKIN_API_KEY", raising=False)
    make_run(lab, provider="sinkin")
    r = await lab.post("/-/sinkin/queue/next.json", {})
    assert r.status_code == 400 and "SINKIN_API_KEY" in r.json()["error"]
    r = await lab.post("/-/sinkin/queue/run-all.json", {})
    assert r.status_code == 400 and "SINKIN_API_KEY" in r.json()["error"]
    assert statuses(lab) == {"queued": 8}


def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.asyncio
async def test_failed_and_interrupted_jobs_show_and_can_be_retried_or_cancelled(lab):
    run_id = make_run(lab)
    ids = [r[0] for r in query(lab, "select id from jobs order by id")]
    db = lab.db()
    with db.conn:
        db.execute(
            "update jobs set status = 'failed', error = 'NSFW content detected', "
            "finished_at = '2024-01-01T00:00:00' where id = ?",
            [ids[0]],
        )
        db.execute(
            "update jobs set status = 'interrupted', error = 'no answer after sending' where id = ?", [ids[1]]
        )
        # left running by a worker process that no longer exists
        db.execute(
            "update jobs set status = 'running', worker_pid = ?, worker_host = ? where id = ?",
            [dead_pid(), socket.gethostname(), ids[2]],
        )
    db.conn.close()
    status = (await lab.ds.client.get("/-/sinkin/status.json")).json()
    messages = {p["id"]: (p["status"], p["error"]) for p in status["problems"]}
    assert messages[ids[0]] == ("failed", "NSFW content detected")
    assert messages[ids[1]] == ("interrupted", "no answer after sending")
    assert status["runs"][0]["failed"] == 1
    r = await lab.post("/-/sinkin/queue/retry.json", {"job_ids": [ids[0]]})
    assert r.status_code == 200 and r.json()["count"] == 1
    # the stale running job was marked interrupted before the retry looked at the queue
    assert query(lab, "select status from jobs where id = ?", [ids[2]])[0][0] == "interrupted"
    r = await lab.post("/-/sinkin/queue/cancel.json", {"job_ids": [ids[1]]})
    assert r.status_code == 200 and r.json()["count"] == 1
    assert query(lab, "select status from jobs where id in (?, ?, ?) order by id", ids[:3]) == [
        ("queued",),
        ("cancelled",),
        ("interrupted",),
    ]
    # the interrupted job was sent without an answer: re-sending it may pay twice, so it asks first
    r = await lab.post("/-/sinkin/queue/retry.json", {"run_id": run_id})
    assert r.status_code == 409 and r.json()["needs_confirmation"] is True
    assert r.json()["may_have_been_charged"] == 1 and "may have been charged" in r.json()["error"]
    assert query(lab, "select status from jobs where id = ?", [ids[2]])[0][0] == "interrupted"
    r = await lab.post("/-/sinkin/queue/retry.json", {"run_id": run_id, "resend": True})
    assert r.json()["count"] == 1
    assert (
        await lab.post("/-/sinkin/queue/retry.json", {"run_id": run_id, "resend": "yes"})
    ).status_code == 400
    for bad in ({"job_ids": "1"}, {"job_ids": []}, {"job_ids": [True]}, {"run_id": -3}):
        assert (await lab.post("/-/sinkin/queue/retry.json", bad)).status_code == 400, bad
    assert (await lab.post("/-/sinkin/queue/cancel.json", {"run_id": 999})).status_code == 404


@pytest.mark.asyncio
async def test_cancel_one_job_one_run_or_the_whole_queue(lab):
    first, second, third = make_run(lab), make_run(lab, name="second"), make_run(lab, name="third")
    job = query(lab, "select min(id) from jobs where run_id = ?", [first])[0][0]
    r = await lab.post("/-/sinkin/queue/cancel.json", {"job_ids": [job]})
    assert r.status_code == 200 and r.json()["message"] == "1 job cancelled"
    assert statuses(lab, first) == {"cancelled": 1, "queued": 7}
    r = await lab.post("/-/sinkin/queue/cancel.json", {"run_id": second})
    assert r.json()["count"] == 8 and statuses(lab, second) == {"cancelled": 8}
    assert statuses(lab, third) == {"queued": 8}
    status = (await lab.ds.client.get("/-/sinkin/status.json")).json()
    assert status["queue_count"] == 15 and {j["run_id"] for j in status["queue"]} == {first, third}
    r = await lab.post("/-/sinkin/queue/cancel.json", {})
    assert r.json()["message"] == "15 jobs cancelled"
    assert statuses(lab) == {"cancelled": 24}
    # nothing left to run: Run next finds an empty queue and nothing is made
    r = await lab.post("/-/sinkin/queue/next.json", {})
    assert r.json()["job"] is None and query(lab, "select count(*) from images")[0][0] == 0


@pytest.mark.asyncio
async def test_a_run_moved_to_the_front_is_claimed_next(lab):
    first, second, third = make_run(lab), make_run(lab, name="second"), make_run(lab, name="third")
    r = await lab.post("/-/sinkin/queue/front.json", {"run_id": third})
    assert r.status_code == 200 and r.json()["message"] == "8 jobs moved to the front of the queue"
    status = (await lab.ds.client.get("/-/sinkin/status.json")).json()
    assert [j["run_id"] for j in status["queue"][:9]] == [third] * 8 + [first]
    # the job list is the order of the claim: Run next takes the third run's first job
    r = await lab.post("/-/sinkin/queue/next.json", {})
    assert r.json()["job"]["run_id"] == third
    third_jobs = [row[0] for row in query(lab, "select id from jobs where run_id = ? order by id", [third])]
    assert query(lab, "select status from jobs where id = ?", [third_jobs[0]])[0][0] == "succeeded"
    # then one job of the second run goes before everything else
    job = query(lab, "select max(id) from jobs where run_id = ?", [second])[0][0]
    r = await lab.post("/-/sinkin/queue/front.json", {"job_ids": [job]})
    assert r.json()["count"] == 1
    r = await lab.post("/-/sinkin/queue/next.json", {})
    assert r.json()["job"]["id"] == job
    r = await lab.post("/-/sinkin/queue/next.json", {})
    assert r.json()["job"]["id"] == third_jobs[1]
    for bad, code in (({}, 400), ({"run_id": 999}, 404), ({"job_ids": "x"}, 400), ({"run_id": 0}, 400)):
        r = await lab.post("/-/sinkin/queue/front.json", bad)
        assert r.status_code == code, bad
        assert r.json()["error"]
    # a finished job is not queued: nothing moves
    r = await lab.post("/-/sinkin/queue/front.json", {"job_ids": [job]})
    assert r.status_code == 200 and r.json()["count"] == 0


@pytest.mark.asyncio
async def test_pause_lets_jobs_in_flight_finish_and_claims_nothing_more(lab, monkeypatch):
    """Pause sets the worker's stop_event: the job in flight finishes, the rest stay queued."""
    from sinkin_plugins.simulator import SimulatorProvider

    run_id = make_run(lab)
    entered, release = threading.Event(), threading.Event()
    real = SimulatorProvider.inference

    def slow(self, payload, init_image=None):
        entered.set()
        release.wait(10)
        return real(self, payload, init_image)

    monkeypatch.setattr(SimulatorProvider, "inference", slow)
    r = await lab.post("/-/sinkin/queue/run-all.json", {"run_id": run_id})
    assert r.status_code in (200, 202)
    assert await asyncio.to_thread(entered.wait, 10)
    pause = await lab.post("/-/sinkin/queue/stop.json", {})
    assert pause.status_code == 200 and pause.json()["runner"]["stopping"] is True
    assert "Pausing" in pause.json()["message"]
    release.set()
    status = await wait_for_runner(lab)
    assert status["runner"]["jobs"] == 1 and status["runner"]["run_id"] == run_id
    assert statuses(lab, run_id) == {"succeeded": 1, "queued": 7}
    # resuming is "Run all" again with the same options
    monkeypatch.setattr(SimulatorProvider, "inference", real)
    r = await lab.post("/-/sinkin/queue/run-all.json", {"run_id": run_id})
    assert r.status_code in (200, 202)
    await wait_for_runner(lab)
    assert statuses(lab, run_id) == {"succeeded": 8}


ACTIONS = [
    "/-/sinkin/queue/next.json",
    "/-/sinkin/queue/run-all.json",
    "/-/sinkin/queue/retry.json",
    "/-/sinkin/queue/cancel.json",
    "/-/sinkin/queue/stop.json",
    "/-/sinkin/queue/front.json",
]


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ACTIONS)
async def test_cross_site_and_tokenless_actions_spend_nothing(lab, path, monkeypatch):
    make_run(lab)
    calls = []
    monkeypatch.setattr(worker, "run_next", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(worker, "work", lambda *a, **k: calls.append(a))
    r = await lab.ds.client.post(
        path, data={"run_id": "1"}, headers={"origin": "http://evil.example", "sec-fetch-site": "cross-site"}
    )
    assert r.status_code == 403
    r = await lab.ds.client.post(path, data={"run_id": "1"})
    assert r.status_code == 403
    r = await lab.ds.client.post(path, json={})
    assert r.status_code == 403 and "X-CSRFToken" in r.json()["error"]
    r = await lab.post(path, {}, headers={"origin": "http://evil.example"})
    assert r.status_code == 403
    r = await lab.post(path, {}, headers={"sec-fetch-site": "cross-site"})
    assert r.status_code == 403
    r = await lab.post(path, {}, headers={"host": "attacker.example"})
    assert r.status_code == 403
    r = await lab.ds.client.get(path)
    assert r.status_code == 403
    assert calls == [] and statuses(lab) == {"queued": 8}
    assert (await lab.ds.client.get("/-/sinkin/status.json")).json()["runner"] is None
