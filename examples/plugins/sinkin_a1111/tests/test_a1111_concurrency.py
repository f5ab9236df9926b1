"""A mixed queue at ``--concurrency 8``: the a1111 web UI (one GPU) gets at most its limit of
requests at once — 1 by default, ``SINKIN_A1111_CONCURRENCY`` or ``--provider-concurrency
a1111=N`` otherwise — while the other slots keep running the simulator's jobs in parallel, and the
whole queue finishes."""

import threading
import time

import pytest
from click.testing import CliRunner

import sinkin_a1111.provider as a1111_plugin
from sinkin_a1111.standin import A1111StandIn
from sinkin_pipeline.db import open_db
from sinkin_pipeline.plugins import pm
from sinkin_pipeline.runs import create_run
from sinkin_pipeline.spec import check_spec


class Peaks:
    """Counts the inference calls in flight per provider, as the worker makes them."""

    def __init__(self):
        self.lock = threading.Lock()
        self.now = {}
        self.peak = {}

    def wrap(self, provider, pause):
        inference = provider.inference

        def counted(payload, init_image=None):
            name = provider.name
            with self.lock:
                self.now[name] = self.now.get(name, 0) + 1
                self.peak[name] = max(self.peak.get(name, 0), self.now[name])
            try:
                if pause:
                    time.sleep(pause)  # a remote service's generation time
                return inference(payload, init_image)
            finally:
                with self.lock:
                    self.now[name] -= 1

        provider.inference = counted
        return provider


@pytest.fixture
def mixed(tmp_path, monkeypatch):
    """A web UI stand-in (0.1 s a generation), the a1111 plugin loaded, a database with a queue of
    6 a1111 jobs followed by 16 simulator jobs, and the calls in flight counted."""
    from sinkin_pipeline import session as worker_session

    peaks = Peaks()
    real = worker_session.get_provider
    monkeypatch.setattr(
        worker_session, "get_provider", lambda name: peaks.wrap(real(name), 0.1 if name == "simulator" else 0)
    )
    with A1111StandIn(latency=0.1) as webui:
        monkeypatch.setenv("SINKIN_A1111_URL", webui.base_url)
        monkeypatch.delenv("SINKIN_A1111_CONCURRENCY", raising=False)
        pm.register(a1111_plugin, name="a1111-concurrency-test")
        try:
            db_path = tmp_path / "lab.db"
            db = open_db(db_path)
            base = {"prompt": "a lighthouse", "steps": 4, "width": 128, "height": 128}
            create_run(
                db,
                check_spec(dict(base, provider="a1111", model_id="dreamshaper_8", seed=[1, 2, 3, 4, 5, 6])),
            )
            create_run(
                db, check_spec(dict(base, provider="simulator", model_id="4zdwGOB", seed=list(range(16))))
            )
            db.conn.close()
            yield db_path, webui, peaks
        finally:
            pm.unregister(name="a1111-concurrency-test")


def statuses(db_path):
    db = open_db(db_path)
    try:
        return dict(db.execute("select provider || ':' || status, count(*) from jobs group by 1").fetchall())
    finally:
        db.conn.close()


def test_a1111_gets_one_request_at_a_time_while_the_simulator_runs_in_parallel(mixed):
    from sinkin_pipeline.worker import work

    db_path, webui, peaks = mixed
    summary = work(db_path, concurrency=8)
    assert (summary.succeeded, summary.failed, summary.interrupted) == (22, 0, 0)
    assert statuses(db_path) == {"a1111:succeeded": 6, "simulator:succeeded": 16}
    assert webui.generations() == 6
    assert webui.peak_in_flight == 1 and peaks.peak["a1111"] == 1  # a single GPU: one at a time
    assert peaks.peak["simulator"] >= 3  # the other slots kept working meanwhile


def test_the_user_sets_the_limit_per_provider(mixed):
    from sinkin_pipeline.worker import work

    db_path, webui, peaks = mixed
    summary = work(db_path, concurrency=8, provider_limits={"a1111": 2, "simulator": 3})
    assert summary.succeeded == 22
    assert webui.peak_in_flight == 2 and peaks.peak["a1111"] == 2
    assert peaks.peak["simulator"] <= 3


def test_the_environment_sets_a1111s_default(mixed, monkeypatch):
    from sinkin_pipeline.worker import work

    db_path, webui, peaks = mixed
    monkeypatch.setenv("SINKIN_A1111_CONCURRENCY", "3")
    assert work(db_path, concurrency=8).succeeded == 22
    assert webui.peak_in_flight == 3
    monkeypatch.setenv("SINKIN_A1111_CONCURRENCY", "none")
    with pytest.raises(Exception, match="SINKIN_A1111_CONCURRENCY='none': expected a whole number"):
        a1111_plugin.A1111Provider().check_ready()


def test_the_cli_takes_and_checks_provider_concurrency(mixed):
    from sinkin_pipeline.cli import cli

    db_path, webui, peaks = mixed
    runner = CliRunner()
    for bad, words in [
        ("a1111", "expected NAME=N, e.g. a1111=2"),
        ("a1111=0", "a whole number of requests, 1 or more"),
        ("a1111=two", "a whole number of requests, 1 or more"),
        ("gpu=2", "unknown provider 'gpu'; available: a1111,"),
    ]:
        result = runner.invoke(cli, ["work", "--db", str(db_path), "-c", "8", "--provider-concurrency", bad])
        assert result.exit_code == 2 and words in result.output, result.output
    assert statuses(db_path) == {"a1111:queued": 6, "simulator:queued": 16}  # nothing ran
    result = runner.invoke(
        cli,
        ["work", "--db", str(db_path), "-c", "8", "--provider-concurrency", "a1111=2"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0 and "Done: 22 jobs" in result.output, result.output
    assert webui.peak_in_flight == 2


@pytest.fixture
def a1111_only(tmp_path, monkeypatch):
    """A web UI stand-in and a queue of 6 a1111 jobs only."""
    monkeypatch.delenv("SINKIN_A1111_CONCURRENCY", raising=False)
    with A1111StandIn(latency=0.2) as webui:
        monkeypatch.setenv("SINKIN_A1111_URL", webui.base_url)
        pm.register(a1111_plugin, name="a1111-concurrency-test")
        try:
            db_path = tmp_path / "lab.db"
            db = open_db(db_path)
            spec = {"prompt": "a lighthouse", "steps": 4, "width": 128, "height": 128}
            create_run(
                db, check_spec(dict(spec, provider="a1111", model_id="dreamshaper_8", seed=list(range(6))))
            )
            db.conn.close()
            yield db_path, webui
        finally:
            pm.unregister(name="a1111-concurrency-test")


def test_on_an_a1111_only_queue_concurrency_is_one_by_default_and_honoured_when_raised(a1111_only):
    from click.testing import CliRunner

    from sinkin_pipeline.cli import cli

    db_path, webui = a1111_only
    result = CliRunner().invoke(cli, ["work", "--db", str(db_path), "--limit", "3"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert webui.peak_in_flight == 1  # one GPU: one at a time by default
    result = CliRunner().invoke(
        cli, ["work", "--db", str(db_path), "--concurrency", "3"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert webui.peak_in_flight == 3  # the user raised it
    assert statuses(db_path) == {"a1111:succeeded": 6}
