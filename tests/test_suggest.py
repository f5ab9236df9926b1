"""The suggested next run: on a run with planted scores the clearly worse scheduler is dropped and
the best kept, steps are refined around the best, fresh seeds are drawn, and the spec written by
`sinkin suggest` passes `sinkin plan` unchanged."""

import json

import pytest
import yaml
from click.testing import CliRunner
from test_insights import build_planted

from sinkin_pipeline.cli import cli


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    db_path = tmp_path_factory.mktemp("suggest") / "lab.db"
    return db_path, build_planted(db_path)


def test_worse_dropped_best_kept_numbers_refined_fresh_seeds(planted):
    from sinkin_pipeline.db import open_db
    from sinkin_pipeline.suggest import suggest

    db_path, run_id = planted
    result = suggest(open_db(db_path), run_id)
    spec = result["spec"]
    # K_EULER is clearly worse than DDIM in pairs; PNDM has one rating: too few to drop
    assert spec["scheduler"] == ["DDIM", "PNDM"]
    assert spec["steps"] == [30, 35, 40]  # best at 35 of 20, 35
    assert spec["seed"] == {"random": 3}
    assert (spec["provider"], spec["model_id"], spec["prompt"]) == ("simulator", "4zdwGOB", "a fox")
    reasons = "\n".join(result["reasons"])
    assert "scheduler: keep DDIM (best, 7.7), PNDM (too few ratings to judge); drop K_EULER" in reasons
    assert "steps: best at 35 of 20, 35 → try 30, 35, 40" in reasons
    assert "seed: 3 fresh random seeds" in reasons


def test_cli_writes_a_spec_that_plan_accepts(planted, tmp_path):
    db_path, run_id = planted
    out = tmp_path / "next.yml"
    result = invoke("suggest", "--run", run_id, "-o", out, "--db", db_path)
    assert result.exit_code == 0, result.output
    assert "Wrote {}".format(out) in result.output and "drop K_EULER" in result.output
    text = out.read_text()
    assert text.startswith("# Suggested by `sinkin suggest --run {}`".format(run_id))
    assert yaml.safe_load(text)["steps"] == [30, 35, 40]
    plan = invoke("plan", out, "--json", "--db", db_path)
    assert plan.exit_code == 0, plan.output
    plan = json.loads(plan.output)
    assert plan["jobs"] == 2 * 3 * 3 and plan["provider"] == "simulator"
    # printed to stdout without -o; an existing file is not overwritten without --force
    assert invoke("suggest", "--run", run_id, "--db", db_path).output == text
    again = invoke("suggest", "--run", run_id, "-o", out, "--db", db_path)
    assert again.exit_code != 0 and "exists; pass --force" in again.output


def test_cli_refuses_a_missing_run(planted):
    db_path, _ = planted
    result = invoke("suggest", "--run", 99, "--db", db_path)
    assert result.exit_code != 0 and "run 99 not found" in result.output


@pytest.mark.parametrize(
    "gap, kind, multiple, expected",
    [
        (15, "int", None, 5),
        (2, "float", None, 1),
        (256, "int", 8, 128),
        (1, "int", None, 1),
        (0.5, "float", None, 0.2),
    ],
)
def test_nice_steps(gap, kind, multiple, expected):
    from sinkin_pipeline.fields import Field
    from sinkin_pipeline.suggest import nice_step

    assert nice_step(gap, Field("x", kind, multiple_of=multiple)) == expected


@pytest.mark.asyncio
async def test_queue_this_opens_the_run_form_prefilled_with_the_suggestion(planted):
    import html
    import re

    from datasette.app import Datasette

    db_path, run_id = planted
    ds = Datasette([str(db_path)], settings={"default_cache_ttl": 0})
    page = (await ds.client.get("/-/sinkin/runs/{}/insights".format(run_id))).text
    assert "Suggested next run" in page and "drop K_EULER" in page
    assert 'href="/-/sinkin/new?from={}&amp;suggest=1"'.format(run_id) in page
    form = (await ds.client.get("/-/sinkin/new?from={}&suggest=1".format(run_id))).text
    data = json.loads(
        html.unescape(
            re.search(
                r'<script type="application/json" id="sinkin-form-data">(.*?)</script>', form, re.S
            ).group(1)
        )
    )
    assert data["form"]["scheduler"] == ["DDIM", "PNDM"]
    assert data["form"]["steps"] == "30, 35, 40"
    assert (data["form"]["seed_mode"], data["form"]["random_seeds"]) == ("random", 3)
    assert data["form"]["name"].endswith("· next")
    # a plain Clone is unchanged
    clone = (await ds.client.get("/-/sinkin/new?from={}".format(run_id))).text
    assert '"steps": "20, 35"' in clone
