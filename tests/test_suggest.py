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


#: steps 40 is 2 points better than 20 within each prompt, but most of its ratings fell on the hard
#: prompt and most of 20's on the easy one, with no seed rated at both: no pairs, raw means mislead
HIDDEN_SPEC = {
    "provider": "simulator",
    "model_id": "4zdwGOB",
    "prompt": ["an easy prompt", "a hard prompt"],
    "width": 128,
    "height": 128,
    "steps": [20, 40],
    "seed": [1, 2, 3, 4],
}
HIDDEN = {
    ("an easy prompt", 20, 1): 8,
    ("an easy prompt", 20, 2): 8,
    ("an easy prompt", 20, 3): 8,
    ("an easy prompt", 40, 4): 10,
    ("a hard prompt", 20, 1): 2,
    ("a hard prompt", 40, 2): 4,
    ("a hard prompt", 40, 3): 4,
    ("a hard prompt", 40, 4): 4,
}


@pytest.fixture(scope="module")
def hidden(tmp_path_factory):
    from conftest import queue_run

    from sinkin_pipeline.db import open_db
    from sinkin_pipeline.worker import work

    db_path = tmp_path_factory.mktemp("hidden") / "lab.db"
    open_db(db_path).conn.close()
    run_id = queue_run(db_path, HIDDEN_SPEC)
    work(db_path, concurrency=2)
    db = open_db(db_path)
    found = db.execute(
        "select images.id, prompt, steps, seed from images join configs on configs.id = images.config_id"
    ).fetchall()
    db.conn.close()
    for image_id, prompt, steps, seed in found:
        score = HIDDEN.get((prompt, steps, seed))
        if score is not None:
            assert invoke("score", image_id, score, "--db", db_path).exit_code == 0
    return db_path, run_id


def test_a_planted_effect_hidden_by_an_easy_prompt_is_found_only_with_normalisation(hidden, tmp_path):
    db_path, run_id = hidden
    raw = invoke("suggest", "--run", run_id, "--db", db_path)
    assert raw.exit_code == 0, raw.output
    # raw means: 20 steps 6.5, 40 steps 5.5 (the easy prompt's ratings carry 20)
    assert yaml.safe_load(raw.output)["steps"] == [10, 20, 30]
    assert "steps: best at 20 of 20, 40" in raw.output
    out = tmp_path / "next.yml"
    normalised = invoke("suggest", "--run", run_id, "--normalize", "prompt", "-o", out, "--db", db_path)
    assert normalised.exit_code == 0, normalised.output
    # as deviations from each prompt's mean: 20 steps −0.75, 40 steps +0.75
    assert yaml.safe_load(out.read_text())["steps"] == [30, 40, 50]
    assert "steps: best at 40 of 20, 40" in normalised.output
    assert "--normalize prompt" in out.read_text().splitlines()[0]
    assert invoke("plan", out, "--json", "--db", db_path).exit_code == 0
    bad = invoke("suggest", "--run", run_id, "--normalize", "seed", "--db", db_path)
    assert bad.exit_code != 0 and "'seed' is not 'prompt'" in bad.output


@pytest.mark.asyncio
async def test_the_insights_page_suggests_with_the_normalisation_it_shows(hidden):
    from datasette.app import Datasette

    db_path, run_id = hidden
    ds = Datasette([str(db_path)], settings={"default_cache_ttl": 0})
    base = "/-/sinkin/runs/{}/insights".format(run_id)
    raw = (await ds.client.get(base + ".json")).json()["suggestion"]
    normalised = (await ds.client.get(base + ".json?normalize=prompt")).json()["suggestion"]
    assert (raw["spec"]["steps"], normalised["spec"]["steps"]) == ([10, 20, 30], [30, 40, 50])
    page = (await ds.client.get(base + "?normalize=prompt")).text
    assert "suggest=1&amp;normalize=prompt" in page and "--normalize prompt" in page
    form = await ds.client.get("/-/sinkin/new?from={}&suggest=1&normalize=prompt".format(run_id))
    assert '"steps": "30, 40, 50"' in form.text  # the form holds the normalised suggestion
    bad = await ds.client.get("/-/sinkin/new?from={}&suggest=1&normalize=seed".format(run_id))
    assert bad.status_code == 400 and "normalize" in bad.text
