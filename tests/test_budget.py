"""Budgets: never start a job that would take the session's spending past the budget."""
import sqlite3

import pytest
from click.testing import CliRunner

from sinkin_pipeline.cli import cli
from sinkin_pipeline.worker import BudgetTooSmall, work

SPEC = {"provider": "fake", "model_id": "m", "prompt": "a fox", "seed": [1, 2, 3, 4, 5]}


def set_estimates(db_path, value):
    conn = sqlite3.connect(db_path)
    conn.execute("update jobs set credit_estimate = ?", [value])
    conn.commit()
    conn.close()


def statuses(db_path):
    conn = sqlite3.connect(db_path)
    try:
        return [r[0] for r in conn.execute("select status from jobs order by id")]
    finally:
        conn.close()


def test_budget_stops_before_the_job_that_would_exceed_it(db_path, make_run, fake_provider):
    make_run(db_path, SPEC)
    set_estimates(db_path, 1.0)
    fake_provider.cost = 1.0
    summary = work(db_path, budget=2.5)
    assert summary.jobs == 2 and summary.credits == 2.0
    assert "budget of 2.5 credits" in summary.stopped
    assert statuses(db_path) == ["succeeded", "succeeded", "queued", "queued", "queued"]


def test_budget_counts_jobs_in_flight(db_path, make_run, fake_provider):
    make_run(db_path, SPEC)
    set_estimates(db_path, 1.0)
    fake_provider.latency = 0.05
    summary = work(db_path, budget=3, concurrency=5)
    assert summary.jobs == 3 and len(fake_provider.calls["inference"]) == 3


def test_budget_too_small_for_the_next_job(db_path, make_run, fake_provider):
    make_run(db_path, SPEC)
    set_estimates(db_path, 1.2)
    with pytest.raises(BudgetTooSmall, match=r"budget of 0.5 credits is too small for the next job \(job 1, ~1.2"):
        work(db_path, budget=0.5)
    assert fake_provider.calls["inference"] == [] and statuses(db_path) == ["queued"] * 5


def test_cli_budget_too_small_exits_non_zero_with_a_message(db_path, make_run, fake_provider):
    make_run(db_path, SPEC)
    set_estimates(db_path, 1.2)
    result = CliRunner().invoke(cli, ["work", "--db", str(db_path), "--budget", "0.5"])
    assert result.exit_code == 1
    assert "too small for the next job" in result.output and "Traceback" not in result.output
    assert statuses(db_path) == ["queued"] * 5


def test_estimates_are_learned_from_recorded_costs(db_path, make_run, fake_provider):
    make_run(db_path, dict(SPEC, seed=[1]))
    fake_provider.cost = 3.3
    work(db_path)
    make_run(db_path, dict(SPEC, seed=[2]))
    conn = sqlite3.connect(db_path)
    estimate = conn.execute("select credit_estimate from jobs where status = 'queued'").fetchone()[0]
    conn.close()
    assert estimate == pytest.approx(3.3)
