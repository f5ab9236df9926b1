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
    with pytest.raises(
        BudgetTooSmall,
        match=r"budget of 0.5 credits is too small for the next job \(job 1, up to ~1.2 credits",
    ):
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


# --- the budget is a cap, against the stand-in and its charge log --------------------------------


def sinkin_spec(**overrides):
    spec = {"provider": "sinkin", "model_id": "4zdwGOB", "prompt": "a fox", "num_images": 1}
    spec.update(overrides)
    return spec


def learn_from_big_jobs(db_path, make_run, standin, n=4):
    """History: n 512x512, 20-step calls (what a rate learned per pixel-step would be based on)."""
    make_run(db_path, sinkin_spec(width=512, height=512, steps=20, seed=list(range(n))))
    assert work(db_path, concurrency=4).succeeded == n
    return standin.charged_credits()


@pytest.mark.parametrize("budget", [1, 2, 3])
def test_a_mislearned_rate_never_takes_spending_past_the_budget(db_path, make_run, api_env, budget):
    standin = api_env
    standin.fixed_cost = 0.1  # tiny jobs cost far more than a per-pixel-step rate says
    standin.latency = 0.02
    before = learn_from_big_jobs(db_path, make_run, standin)
    make_run(db_path, sinkin_spec(width=128, height=128, steps=1, seed=list(range(100, 140))))
    summary = work(db_path, concurrency=8, budget=budget)
    charged = round(standin.charged_credits() - before, 6)
    assert charged <= budget  # prices of this size are bounded by what the big jobs cost
    assert charged == pytest.approx(summary.spent) and summary.credits == pytest.approx(charged)
    assert charged > budget - 0.5  # and the budget is used, not abandoned early
    from sinkin_pipeline.wording import credit_text

    assert "budget of {} is reached".format(credit_text(budget)) in summary.stopped  # "1 credit"
    assert "queued" in statuses(db_path)


def test_with_no_recorded_price_only_one_call_of_unknown_price_is_in_flight(db_path, make_run, api_env):
    standin = api_env
    standin.fixed_cost = 0.1
    standin.latency = 0.02
    make_run(db_path, sinkin_spec(width=128, height=128, steps=1, seed=list(range(40))))
    summary = work(db_path, concurrency=8, budget=0.5)
    charged = standin.charged_credits()
    # the fallback rate says ~0.001 per call; only the first call's price was unknown beforehand
    assert charged <= 0.5 + 0.1 and summary.spent == pytest.approx(charged)
    assert charged >= 0.4


def test_calls_that_time_out_count_as_spent_at_their_estimate(db_path, make_run, api_env, monkeypatch):
    import httpx

    import sinkin_plugins.sinkin_api as module

    standin = api_env
    before = learn_from_big_jobs(db_path, make_run, standin)  # 0.22 credits a call
    monkeypatch.setattr(
        module, "INFERENCE_TIMEOUT", httpx.Timeout(connect=5.0, read=0.3, write=5.0, pool=5.0)
    )
    standin.inject("inference", "hang", times=100, seconds=1.0)  # charged, then no answer in time
    make_run(db_path, sinkin_spec(width=512, height=512, steps=20, seed=list(range(100, 130))))
    summary = work(db_path, concurrency=8, budget=1)
    charged = round(standin.charged_credits() - before, 6)
    assert summary.interrupted == summary.jobs == 4  # 4 x 0.22 fit in 1 credit, a 5th would not
    assert charged <= 1 and summary.credits == 0 and summary.spent == pytest.approx(4 * 0.22)
    assert "0.88 of a 1-credit budget" in summary.spending()
    assert "counted as charged" in summary.spending()


def test_a_download_only_resume_is_free_and_does_not_count_against_the_budget(
    db_path, make_run, fake_provider
):
    make_run(db_path, dict(SPEC, seed=[1], num_images=2))
    from sinkin_pipeline.providers import TransientError

    fake_provider.script["download"] = [None] + [TransientError("HTTP 502")] * 20
    first = work(db_path)
    assert first.failed == 1 and first.credits == 1.0
    fake_provider.script["download"] = []
    from sinkin_pipeline.db import open_db
    from sinkin_pipeline.queue import retry_jobs

    retry_jobs(open_db(db_path))
    summary = work(db_path, budget=0)  # nothing left to pay for
    assert summary.succeeded == 1 and summary.credits == 0 and summary.spent == 0
    assert len(fake_provider.calls["inference"]) == 1


@pytest.mark.parametrize("value", ["nan", "-1", "inf", "-inf"])
def test_budgets_that_are_not_finite_and_positive_are_refused(db_path, make_run, fake_provider, value):
    make_run(db_path, SPEC)
    result = CliRunner().invoke(cli, ["work", "--db", str(db_path), "--budget", value])
    assert result.exit_code == 2
    assert "budget must be a finite number of credits, 0 or more" in result.output
    assert statuses(db_path) == ["queued"] * 5 and fake_provider.calls["inference"] == []


def test_the_summary_shows_spent_against_the_budget(db_path, make_run, fake_provider):
    make_run(db_path, SPEC)
    set_estimates(db_path, 1.0)
    result = CliRunner().invoke(cli, ["work", "--db", str(db_path), "--budget", "2.5", "-c", "4"])
    assert result.exit_code == 0, result.output
    assert "2 of a 2.5-credit budget" in result.output
    assert "the budget of 2.5 credits is reached" in result.output
