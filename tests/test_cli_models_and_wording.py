"""The CLI for newcomers: model and LoRA ids checked against the cached list (filled on first use)
with the nearest known ids, an explicit override; `plan` counts every value and shows the seeds;
`next` names its image; counts and credits worded like money."""

import re
import sqlite3

import yaml
from click.testing import CliRunner

from sinkin_pipeline.cli import cli

SIM = {
    "provider": "simulator",
    "model_id": "4zdwGOB",
    "prompt": "a fox",
    "width": 128,
    "height": 128,
    "steps": 5,
}


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def spec_file(tmp_path, **changes):
    path = tmp_path / "spec.yml"
    path.write_text(yaml.safe_dump(dict(SIM, **changes)))
    return path


def dump(db_path):
    conn = sqlite3.connect(db_path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_plan_counts_every_value_and_shows_the_drawn_seeds(tmp_path, db_path):
    prompts = ["prompt {}".format(i) for i in range(100)]
    result = invoke("plan", spec_file(tmp_path, prompt=prompts, seed={"random": 3}), "--db", db_path)
    assert result.exit_code == 0, result.output
    assert "300 jobs, 300 images on provider simulator" in result.output
    assert "  prompt: 100 values (prompt 0, prompt 1," in result.output
    seeds = re.search(r"seed: 3 random values drawn now: (\d+), (\d+), (\d+) ", result.output)
    assert seeds, result.output
    assert "seed: [{}]".format(", ".join(seeds.groups())) in result.output
    assert "Estimated: ~0 credits" in result.output


def test_plan_and_run_word_one_job_one_image(tmp_path, db_path):
    result = invoke("plan", spec_file(tmp_path, seed=7), "--db", db_path)
    assert "1 job, 1 image on provider simulator" in result.output
    assert "No setting varies" in result.output
    result = invoke("run", spec_file(tmp_path, seed=7), "--db", db_path)
    assert "Run 1 queued: 1 job, 1 image, ~0 credits estimated." in result.output
    assert "Seeds drawn" not in result.output  # the spec gave its seed
    result = invoke("queue", "--db", db_path)
    assert result.output.rstrip().endswith("1 job, ~0 credits estimated")


def test_next_names_the_image_it_produced(tmp_path, db_path):
    assert invoke("run", spec_file(tmp_path), "--db", db_path).exit_code == 0
    result = invoke("next", "--db", db_path)
    assert result.exit_code == 0, result.output
    assert "Job 1 succeeded: 1 image, 0 credits" in result.output
    conn = sqlite3.connect(db_path)
    image_id, path = conn.execute("select id, path from images").fetchone()
    conn.close()
    assert "  image {}: {}".format(image_id, path) in result.output
    assert (db_path.parent / path).is_file()
    assert re.search(r"Seeds drawn: \d+", invoke("run", spec_file(tmp_path), "--db", db_path).output)


def test_unknown_ids_are_named_with_the_nearest_and_need_an_override(tmp_path, db_path):
    spec = spec_file(tmp_path, model_id=["4zdwGOB", "4zdwGO8"], lora="lora-flim")
    before = dump(db_path)
    result = invoke("plan", spec, "--db", db_path)
    assert result.exit_code == 0
    assert (
        "Warning: model_id: '4zdwGO8' is not in the cached model list – nearest: 4zdwGOB (DreamShaper)"
        in result.output
    )
    assert "Warning: lora: 'lora-flim' is not in the cached LoRA list – nearest: lora-film" in result.output
    assert dump(db_path) == before  # plan writes nothing, not even the model cache
    result = invoke("run", spec, "--db", db_path)
    assert result.exit_code == 1
    assert "nothing queued: 2 unknown ids" in result.output and "--allow-unknown-ids" in result.output
    assert dump(db_path) == before
    result = invoke("run", spec, "--db", db_path, "--allow-unknown-ids")
    assert result.exit_code == 0 and "Run 1 queued: 2 jobs" in result.output
    conn = sqlite3.connect(db_path)
    assert conn.execute("select count(*) from models").fetchone()[0] == 8  # kept once a run exists
    conn.close()


def test_models_fills_an_empty_cache_on_first_use(tmp_path, db_path, monkeypatch):
    monkeypatch.delenv("SINKIN_API_KEY", raising=False)
    result = invoke("models", "--db", db_path)
    assert result.exit_code == 0
    assert "No models cached yet" in result.output and "--provider simulator" in result.output
    result = invoke("models", "--db", db_path, "--provider", "simulator")
    assert "6 models and 2 LoRAs cached from simulator." in result.output
    assert "4zdwGOB" in result.output and "lora-film" in result.output
    result = invoke("models", "--refresh", "--provider", "simulator", "--db", db_path)
    assert "6 models and 2 LoRAs cached from simulator." in result.output


def test_a_provider_without_a_model_list_skips_the_check(tmp_path, db_path, fake_provider):
    result = invoke("run", spec_file(tmp_path, provider="fake", model_id="anything"), "--db", db_path)
    assert result.exit_code == 0, result.output
    assert "Run 1 queued: 1 job" in result.output


def test_each_provider_keeps_its_own_model_list(db_path):
    """A simulator list and another provider's list live side by side: caching one never makes
    the other's ids "unknown" (the cache is per provider)."""
    from sinkin_pipeline.db import open_db

    invoke("models", "--refresh", "--provider", "simulator", "--db", db_path)
    conn = open_db(db_path)
    conn.execute(
        "insert into models (id, title, kind, catalogue) values ('local_ckpt', 'Local', 'model', 'other')"
    )
    conn.conn.commit()
    conn.conn.close()
    listed = invoke("models", "--db", db_path, "--provider", "simulator", "--json").output
    assert "local_ckpt" not in listed and "4zdwGOB" in listed
    everything = invoke("models", "--db", db_path).output
    assert "local_ckpt" in everything and "DreamShaper" in everything
    again = invoke("models", "--refresh", "--provider", "simulator", "--db", db_path)
    assert "6 models and 2 LoRAs cached from simulator." in again.output
    assert "local_ckpt" in invoke("models", "--db", db_path).output  # a refresh replaces only its own list
