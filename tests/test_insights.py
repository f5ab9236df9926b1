"""Insights on a run with planted scores: means, 95% intervals and paired differences checked
against a hand computation; the CLI table and JSON; Student's t quantiles against a printed table."""

import json
import math

import pytest
from click.testing import CliRunner

from sinkin_pipeline.cli import cli
from sinkin_pipeline.stats import t_quantile

SPEC = {
    "provider": "simulator",
    "model_id": "4zdwGOB",
    "prompt": "a fox",
    "width": 128,
    "height": 128,
    "scheduler": ["DDIM", "K_EULER", "PNDM"],
    "steps": [20, 35],
    "seed": [1, 2, 3],
}
#: (scheduler, steps, seed) -> score; DDIM planted about 2.3 points above K_EULER on every seed
PLANTED = {
    ("DDIM", 20, 1): 6,
    ("DDIM", 35, 1): 7,
    ("K_EULER", 20, 1): 4,
    ("K_EULER", 35, 1): 5,
    ("DDIM", 20, 2): 8,
    ("DDIM", 35, 2): 10,
    ("K_EULER", 20, 2): 6,
    ("K_EULER", 35, 2): 7,
    ("DDIM", 20, 3): 7,
    ("DDIM", 35, 3): 8,
    ("K_EULER", 20, 3): 5,
    ("K_EULER", 35, 3): 5,
    ("PNDM", 20, 1): 3,  # the only PNDM rating: too few for an interval
}
T975 = {5: 2.5706, 6: 2.4469}  # Student's t, 97.5% quantile, from a printed table


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def build_planted(db_path):
    """A simulator run of 18 images, 13 scored through `sinkin score` with the planted values;
    returns the run id."""
    from conftest import queue_run

    from sinkin_pipeline.db import open_db
    from sinkin_pipeline.worker import work

    open_db(db_path).conn.close()
    run_id = queue_run(db_path, SPEC)
    work(db_path, concurrency=2)
    db = open_db(db_path)
    found = db.execute(
        "select images.id, scheduler, steps, seed from images join configs on configs.id = images.config_id"
    ).fetchall()
    db.conn.close()
    assert len(found) == 18
    for image_id, scheduler, steps, seed in found:
        score = PLANTED.get((scheduler, steps, seed))
        if score is not None:
            assert invoke("score", image_id, score, "--db", db_path).exit_code == 0
    return run_id


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    db_path = tmp_path_factory.mktemp("insights") / "lab.db"
    return db_path, build_planted(db_path)


def by_value(axis):
    return {v["value"]: v for v in axis["values"]}


def ci_half(values, t):
    """Hand computation: t × sample standard deviation / √n."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return t * sd / math.sqrt(n)


def test_t_quantiles_match_the_printed_table():
    table = {
        (0.975, 1): 12.706,
        (0.975, 2): 4.303,
        (0.975, 5): 2.571,
        (0.975, 10): 2.228,
        (0.975, 30): 2.042,
        (0.995, 3): 5.841,
        (0.95, 20): 1.725,
        (0.975, 60): 2.000,
        (0.975, 1000): 1.962,
    }
    for (p, df), expected in table.items():
        assert t_quantile(p, df) == pytest.approx(expected, abs=1e-3)
    assert t_quantile(0.025, 5) == pytest.approx(-2.571, abs=1e-3)
    from sinkin_pipeline.stats import EXPANSION_DF, t_cdf

    for df in (EXPANSION_DF, 45, 120, 5000):  # the expansion agrees with the exact CDF
        for p in (0.9, 0.975, 0.995):
            assert t_cdf(t_quantile(p, df), df) == pytest.approx(p, abs=1e-6)


def test_means_intervals_and_paired_differences_match_a_hand_computation(planted):
    from sinkin_pipeline.db import open_db
    from sinkin_pipeline.insights import insights

    db_path, run_id = planted
    result = insights(open_db(db_path), run_id)
    assert (result["run_id"], result["images"], result["rated"]) == (run_id, 18, 13)
    axes = {a["axis"]: a for a in result["axes"]}
    assert set(axes) == {"scheduler", "steps", "seed"}  # only what varies
    sched = by_value(axes["scheduler"])
    ddim, euler = [6, 7, 8, 10, 7, 8], [4, 5, 6, 7, 5, 5]
    assert sched["DDIM"]["images"] == 6 and sched["DDIM"]["rated"] == 6
    assert sched["DDIM"]["mean"] == pytest.approx(46 / 6, abs=1e-3)
    assert sched["DDIM"]["ci_low"] == pytest.approx(46 / 6 - ci_half(ddim, T975[5]), abs=1e-3)
    assert sched["DDIM"]["ci_high"] == pytest.approx(46 / 6 + ci_half(ddim, T975[5]), abs=1e-3)
    assert sched["K_EULER"]["mean"] == pytest.approx(32 / 6, abs=1e-3)
    assert sched["K_EULER"]["ci_low"] == pytest.approx(32 / 6 - ci_half(euler, T975[5]), abs=1e-3)
    # one rating: a mean, no interval
    assert (sched["PNDM"]["rated"], sched["PNDM"]["mean"]) == (1, 3)
    assert sched["PNDM"]["ci_low"] is None and sched["PNDM"]["ci_high"] is None
    assert axes["scheduler"]["best"] == "DDIM"
    # paired with DDIM on the same steps and seed: K_EULER − DDIM = -2, -2, -2, -3, -2, -3
    paired = {p["value"]: p for p in axes["scheduler"]["paired"]}
    diffs = [-2, -2, -2, -3, -2, -3]
    assert paired["K_EULER"]["pairs"] == 6
    assert paired["K_EULER"]["mean_diff"] == pytest.approx(-14 / 6, abs=1e-3)
    assert paired["K_EULER"]["ci_low"] == pytest.approx(-14 / 6 - ci_half(diffs, T975[5]), abs=1e-3)
    assert paired["K_EULER"]["ci_high"] == pytest.approx(-14 / 6 + ci_half(diffs, T975[5]), abs=1e-3)
    assert paired["PNDM"] == {"value": "PNDM", "pairs": 1, "mean_diff": -3, "ci_low": None, "ci_high": None}
    steps = by_value(axes["steps"])
    assert steps[35]["mean"] == pytest.approx(42 / 6, abs=1e-3)
    assert steps[20]["mean"] == pytest.approx(39 / 7, abs=1e-3)
    assert steps[20]["ci_low"] == pytest.approx(39 / 7 - ci_half([6, 4, 8, 6, 7, 5, 3], T975[6]), abs=1e-3)
    # steps 20 − 35 on the same scheduler and seed (PNDM 35 is unrated: no pair)
    step_pairs = axes["steps"]["paired"]
    assert axes["steps"]["best"] == 35 and step_pairs[0]["value"] == 20 and step_pairs[0]["pairs"] == 6
    assert step_pairs[0]["mean_diff"] == pytest.approx((-1 - 1 - 2 - 1 - 1 - 0) / 6, abs=1e-3)
    # the simulator's jobs were timed
    assert all(v["seconds"] is not None and v["seconds"] >= 0 for v in axes["scheduler"]["values"])
    # the scheduler explains more of the variance than steps
    order = [a["axis"] for a in result["axes"]]
    assert order.index("scheduler") < order.index("steps")
    assert "DDIM 7.7 (" in result["summary"] and "vs K_EULER 5.3 (" in result["summary"]
    assert "6 pairs" in result["summary"]


def test_prompt_normalisation_subtracts_each_prompts_mean(planted):
    from sinkin_pipeline.db import open_db
    from sinkin_pipeline.insights import insights

    db_path, run_id = planted
    result = insights(open_db(db_path), run_id, normalize="prompt")
    grand = (46 + 32 + 3) / 13  # one prompt: deviations from its mean
    sched = by_value(next(a for a in result["axes"] if a["axis"] == "scheduler"))
    assert sched["DDIM"]["mean"] == pytest.approx(46 / 6 - grand, abs=1e-3)
    assert result["normalize"] == "prompt"


def test_cli_table_and_json(planted):
    db_path, run_id = planted
    out = invoke("insights", "--run", run_id, "--db", db_path)
    assert out.exit_code == 0
    assert "Run {}: 18 images, 13 rated".format(run_id) in out.output
    assert "scheduler matters most" in out.output
    line = next(row for row in out.output.splitlines() if row.strip().startswith("PNDM"))
    assert "too few ratings" in line
    data = json.loads(invoke("insights", "--run", run_id, "--json", "--db", db_path).output)
    assert set(data) >= {"run_id", "images", "rated", "axes"}
    axis = data["axes"][0]
    assert set(axis) >= {"axis", "values", "paired"}
    assert set(axis["values"][0]) >= {"value", "images", "rated", "mean", "ci_low", "ci_high"}


def test_cli_refuses_a_missing_run_and_a_bad_id(planted):
    db_path, _ = planted
    out = invoke("insights", "--run", 99, "--db", db_path)
    assert out.exit_code != 0 and "run 99 not found" in out.output
    out = invoke("insights", "--run", "x", "--db", db_path)
    assert out.exit_code != 0 and "'x' is not a run id" in out.output


def test_loaded_runs_are_cached_until_a_score_changes(planted):
    from sinkin_pipeline.db import open_db
    from sinkin_pipeline.insights import insights, load_groups

    db_path, run_id = planted
    db = open_db(db_path)
    first = load_groups(db, [run_id])
    assert load_groups(db, [run_id]) is first  # nothing changed: the same object
    image_id, score = db.execute("select id, score from images where score is not null limit 1").fetchone()
    assert invoke("score", image_id, 10 if score != 10 else 9, "--db", db_path).exit_code == 0
    assert load_groups(db, [run_id]) is not first
    assert insights(db, run_id)["rated"] == 13
    assert invoke("score", image_id, score, "--db", db_path).exit_code == 0  # as planted again


def test_a_score_change_patches_the_cached_groups_to_what_a_fresh_load_reads(planted, monkeypatch):
    from sinkin_pipeline import rundata
    from sinkin_pipeline.db import open_db
    from sinkin_pipeline.insights import insights

    db_path, run_id = planted
    db = open_db(db_path)
    before = insights(db, run_id)
    first = rundata.load_groups(db, [run_id])
    build = rundata._load_groups
    rated = db.execute("select id, score from images where score is not null order by id").fetchall()
    unrated = db.execute("select id from images where score is null order by id limit 1").fetchone()[0]
    changes = [(rated[0][0], 1), (rated[1][0], None), (unrated, 10)]  # lower, clear, a new best

    def refuse(*args):
        raise AssertionError("a score change must patch the loaded groups, not read them again")

    monkeypatch.setattr(rundata, "_load_groups", refuse)
    try:
        for image_id, score in changes:
            args = ["score", image_id, score or "clear"]
            assert invoke(*args, "--db", db_path).exit_code == 0
        patched = rundata.load_groups(db, [run_id])
        assert patched is not first
    finally:
        monkeypatch.setattr(rundata, "_load_groups", build)
    fresh = build(db, [run_id])
    assert sorted(zip(patched.rows, patched.best)) == sorted(zip(fresh.rows, fresh.best))
    assert insights(db, run_id) != before
    for image_id, score in rated[:2]:  # as planted again
        assert invoke("score", image_id, score, "--db", db_path).exit_code == 0
    assert invoke("score", unrated, "clear", "--db", db_path).exit_code == 0
    assert insights(db, run_id) == before


def test_a_setting_that_varies_only_among_configs_without_images_is_still_an_axis(tmp_path):
    from conftest import queue_run

    from sinkin_pipeline.db import open_db
    from sinkin_pipeline.rundata import settings
    from sinkin_pipeline.worker import work

    db_path = tmp_path / "lab.db"
    open_db(db_path).conn.close()
    spec = dict(SPEC, scheduler=["DDIM", "K_EULER"], steps=[20, 35], seed=[1])
    run_id = queue_run(db_path, spec)
    db = open_db(db_path)
    assert settings(db, [run_id])[1] == ["steps", "scheduler"]  # no image yet
    work(db_path, concurrency=1, limit=1)  # one image: its values are the only ones among images
    assert db.execute("select count(*) from images").fetchone()[0] == 1
    runs, axes, constants = settings(db, [run_id])
    assert axes == ["steps", "scheduler"]
    assert constants["seed"] == 1 and constants["prompt"] == "a fox" and "steps" not in constants
    work(db_path, concurrency=1)
    assert settings(db, [run_id])[1] == ["steps", "scheduler"]
