"""Per-provider limits of requests in flight: ``--provider-concurrency NAME=N`` (and Run all's
``provider_concurrency``) is checked with a clear message, a provider's declared ``max_in_flight``
caps its calls while the other slots keep taking other providers' jobs, and the queue finishes."""

import io
import threading
import time

import pytest
from click.testing import CliRunner
from PIL import Image
from test_dashboard_routes import make_run, statuses, wait_for_runner

from sinkin_pipeline import GeneratedImage, InferenceResult, Provider, hookimpl
from sinkin_pipeline.cli import cli
from sinkin_pipeline.limits import InvalidProviderLimit, ProviderSlots, parse_provider_limits
from sinkin_pipeline.plugins import pm


def png():
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (40, 40, 200)).save(out, "PNG")
    return out.getvalue()


class SlowGPU(Provider):
    """A local provider that declares one request at a time, and counts the calls it serves."""

    name = "slowgpu"
    free = True
    max_in_flight = 1
    lock = threading.Lock()
    now = 0
    peak = 0

    def inference(self, payload, init_image=None):
        cls = SlowGPU
        with cls.lock:
            cls.now += 1
            cls.peak = max(cls.peak, cls.now)
        try:
            time.sleep(0.15)
            return InferenceResult(images=[GeneratedImage(data=png())])
        finally:
            with cls.lock:
                cls.now -= 1


class Plugin:
    @hookimpl
    def register_providers(self, register):
        register(SlowGPU)


@pytest.fixture
def slowgpu():
    SlowGPU.now = SlowGPU.peak = 0
    pm.register(Plugin(), name="test-slowgpu")
    try:
        yield SlowGPU
    finally:
        pm.unregister(name="test-slowgpu")


def test_limits_are_parsed_and_bad_ones_named():
    assert parse_provider_limits(["simulator=2", "sinkin=4"]) == {"simulator": 2, "sinkin": 4}
    assert parse_provider_limits({"simulator": 3}) == {"simulator": 3}
    assert parse_provider_limits(None) == {}
    for bad, words in [
        (["simulator"], "expected NAME=N"),
        (["=2"], "expected NAME=N"),
        (["simulator=0"], "1 or more"),
        (["simulator=1.5"], "1 or more"),
        ({"simulator": True}, "1 or more"),
        (["nope=2"], "unknown provider 'nope'; available: "),
    ]:
        with pytest.raises(InvalidProviderLimit, match=words):
            parse_provider_limits(bad)


def test_a_providers_limit_is_its_own_the_users_and_never_above_the_concurrency(slowgpu):
    slots = ProviderSlots(8, {"simulator": 20})
    assert slots.learn("slowgpu", SlowGPU()) == 1
    assert slots.learn("simulator", object()) == 8  # the override, at most --concurrency
    assert ProviderSlots(8, {"slowgpu": 3}).learn("slowgpu", SlowGPU()) == 3
    assert ProviderSlots(8).learn("simulator", object()) == 8
    assert slots.full(["slowgpu", "simulator"]) == {"slowgpu"}


def test_a_declared_limit_holds_while_the_other_provider_runs_in_parallel(db_path, make_run, slowgpu):
    from sinkin_pipeline.worker import work

    make_run(db_path, {"provider": "slowgpu", "model_id": "m", "prompt": "a", "seed": list(range(6))})
    make_run(
        db_path, {"provider": "simulator", "model_id": "4zdwGOB", "prompt": "b", "seed": list(range(12))}
    )
    summary = work(db_path, concurrency=6)
    assert (summary.succeeded, summary.failed) == (18, 0)
    assert SlowGPU.peak == 1
    # the simulator's jobs (queued after the six serial ones) did not wait behind them: every one
    # of them was finished before the last slowgpu job started
    import sqlite3

    conn = sqlite3.connect(db_path)
    last_slow = conn.execute("select max(started_at) from jobs where provider = 'slowgpu'").fetchone()[0]
    sim_done = conn.execute("select max(finished_at) from jobs where provider = 'simulator'").fetchone()[0]
    conn.close()
    assert sim_done < last_slow


@pytest.mark.asyncio
async def test_run_all_takes_and_checks_provider_concurrency(lab):
    make_run(lab)
    for bad in (
        {"provider_concurrency": "simulator"},
        {"provider_concurrency": "nope=2"},
        {"provider_concurrency": {"simulator": 0}},
        {"provider_concurrency": 3},
    ):
        r = await lab.post("/-/sinkin/queue/run-all.json", bad)
        assert r.status_code == 400 and "provider concurrency" in r.json()["error"], (bad, r.text)
    assert statuses(lab) == {"queued": 8}
    r = await lab.post(
        "/-/sinkin/queue/run-all.json", {"concurrency": 4, "provider_concurrency": "simulator=2"}
    )
    assert r.status_code in (200, 202), r.text
    status = await wait_for_runner(lab)
    assert status["runner"]["provider_concurrency"] == {"simulator": 2}
    assert statuses(lab) == {"succeeded": 8}


def test_the_cli_refuses_a_bad_provider_concurrency(db_path, make_run):
    make_run(db_path, {"provider": "simulator", "model_id": "4zdwGOB", "prompt": "a"})
    result = CliRunner().invoke(
        cli, ["work", "--db", str(db_path), "--provider-concurrency", "simulator=none"]
    )
    assert result.exit_code == 2
    assert "provider concurrency 'simulator=none': the limit must be a whole number" in result.output


def test_a_provider_first_met_during_the_session_is_held_to_its_limit(slowgpu):
    """A run queued while `work` runs (Run all keeps going): its provider's limit is learned at
    its first claim, so a second call is not admitted while the first is in flight."""
    from sinkin_pipeline.session import Session, _Full

    session = Session(concurrency=4)
    session.admit({"id": 1, "provider": "slowgpu"}, None)
    with pytest.raises(_Full):
        session.admit({"id": 2, "provider": "slowgpu"}, None)
    session.admit({"id": 3, "provider": "simulator"}, None)  # the others still run
    assert session.full_providers() == {"slowgpu"}
