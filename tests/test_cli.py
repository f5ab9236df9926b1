"""The `sinkin` command as a user meets it: specs, plans, runs, scores, exports, and every bad
input with a clear message, a non-zero exit, no traceback and an unchanged database."""

import csv
import io
import json
import sqlite3

import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from sinkin_pipeline.cli import cli

SIM = {
    "provider": "simulator",
    "model_id": "4zdwGOB",
    "prompt": "a fox",
    "width": 128,
    "height": 128,
    "steps": 5,
}


def invoke(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)


def dump(db_path):
    """Everything in the database, to compare before and after a refused command."""
    if not db_path.exists():
        return None
    conn = sqlite3.connect(db_path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def write_spec(tmp_path, spec, name="spec.yml"):
    path = tmp_path / name
    path.write_text(spec if isinstance(spec, str) else yaml.safe_dump(spec))
    return path


@pytest.fixture
def ran(tmp_path, db_path):
    """A database with one finished simulator run of 4 images."""
    spec = write_spec(tmp_path, dict(SIM, prompt=["a fox", '=HYPERLINK("x")'], seed=[1, 2]))
    assert invoke("run", spec, "--db", db_path).exit_code == 0
    assert invoke("work", "--db", db_path).exit_code == 0
    return db_path


def test_plan_prints_jobs_images_axes_and_credits_and_writes_nothing(tmp_path, db_path):
    spec = write_spec(
        tmp_path, dict(SIM, provider="sinkin", scheduler=["DDIM", "KLMS"], steps=[10, 20, 30], num_images=2)
    )
    before = dump(db_path)
    result = invoke("plan", spec, "--db", db_path)
    assert result.exit_code == 0
    assert "6 jobs, 12 images on provider sinkin" in result.output
    assert "scheduler: 2 values (DDIM, KLMS)" in result.output and "steps: 3 values" in result.output
    assert "no costs recorded yet" in result.output  # the stated fallback
    assert dump(db_path) == before
    plan = json.loads(invoke("plan", spec, "--db", db_path, "--json").output)
    assert (plan["jobs"], plan["images"]) == (6, 12) and plan["credits"] > 0


def test_plan_learns_from_recorded_costs(tmp_path, db_path, monkeypatch):
    monkeypatch.setenv("SINKIN_API_KEY", "test-key")
    spec = write_spec(tmp_path, dict(SIM, provider="sinkin", steps=20, width=512, height=512))
    assert invoke("run", spec, "--db", db_path).exit_code == 0
    conn = sqlite3.connect(db_path)
    conn.execute("update jobs set status = 'succeeded', credit_cost = 4.0")
    conn.commit()
    conn.close()
    exact = json.loads(invoke("plan", spec, "--db", db_path, "--json").output)
    assert exact["credits"] == 4.0 and "learned from 1 recorded call" in exact["basis"]
    doubled = write_spec(tmp_path, dict(SIM, provider="sinkin", steps=40, width=512, height=512), "b.yml")
    rate = json.loads(invoke("plan", doubled, "--db", db_path, "--json").output)
    assert rate["credits"] == pytest.approx(8.0)


def test_random_seeds_are_drawn_recorded_and_sent(tmp_path, db_path):
    spec = write_spec(tmp_path, dict(SIM, seed={"random": 3}))
    assert "3 jobs" in invoke("plan", spec, "--db", db_path).output
    invoke("run", spec, "--db", db_path)
    invoke("work", "--db", db_path)
    conn = sqlite3.connect(db_path)
    rows = conn.execute(
        "select configs.seed, jobs.raw_payload from jobs join configs on configs.id = jobs.config_id"
    ).fetchall()
    assert len({seed for seed, _ in rows}) == 3
    assert all(json.loads(payload)["seed"] == seed and seed >= 0 for seed, payload in rows)


def test_run_work_runs_score_export(ran, tmp_path):
    runs = json.loads(invoke("runs", "--db", ran, "--json").output)
    assert runs[0]["total"] == 4 and runs[0]["unrated"] == 4 and runs[0]["queued"] == 0
    assert "Image 1 scored 7" in invoke("score", 1, 7, "--db", ran).output
    assert json.loads(invoke("runs", "--db", ran, "--json").output)[0]["unrated"] == 3
    out = tmp_path / "out.csv"
    assert invoke("export", "--db", ran, "-o", out).exit_code == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 4 and "thumbnail" not in rows[0] and rows[0]["score"] == "7"
    assert {"prompt", "scheduler", "seed", "steps", "scale", "run_name", "model_id"} <= set(rows[0])
    formula = [r["prompt"] for r in rows if "HYPERLINK" in r["prompt"]]
    assert formula and all(p.startswith("'=") for p in formula)
    stdout = invoke("export", "--db", ran, "--run", 1).output
    assert len(list(csv.reader(io.StringIO(stdout)))) == 5


def test_queue_next_retry_cancel(tmp_path, db_path):
    spec = write_spec(tmp_path, dict(SIM, seed=[1, 2, 3]))
    invoke("run", spec, "--db", db_path)
    queue = json.loads(invoke("queue", "--db", db_path, "--json").output)
    assert len(queue["jobs"]) == 3 and queue["total_estimate"] == 0
    assert "succeeded: 1 image" in invoke("next", "--db", db_path).output
    assert "2 jobs cancelled" in invoke("cancel", "--db", db_path).output
    assert "The queue is empty" in invoke("work", "--db", db_path).output
    assert "0 jobs re-queued" in invoke("retry", "--db", db_path).output


def test_models_refresh_on_the_simulator(db_path):
    result = invoke("models", "--refresh", "--provider", "simulator", "--db", db_path, "--json")
    models = json.loads(result.output)
    assert {"4zdwGOB", "lora-ink"} <= {m["id"] for m in models}
    assert "DreamShaper" in invoke("models", "--db", db_path).output


def test_every_command_has_help_with_an_example():
    for name in cli.commands:
        result = invoke(name, "--help")
        assert result.exit_code == 0 and "Example" in result.output, name


BAD_SPECS = [
    ("prompt: [a, b\n", "invalid YAML"),
    ("- just\n- a list\n", "a spec must be a mapping"),
    ({"model_id": "m", "prompt": "p", "sheduler": "DDIM"}, "sheduler: unknown key (did you mean scheduler?)"),
    (
        {"model_id": "m", "prompt": "p", "steps": 51},
        "steps: 51 – out of range: expected a whole number from 1 to 50",
    ),
    (
        {"model_id": "m", "prompt": "p", "steps": "many"},
        "steps: 'many' – expected a whole number from 1 to 50",
    ),
    (
        {"model_id": "m", "prompt": "p", "width": 500},
        "width: 500 – expected a whole number from 128 to 896, a multiple of 8",
    ),
    ({"model_id": "m", "prompt": "p", "scale": [7, 25]}, "scale: 25 – out of range"),
    ({"model_id": "m", "prompt": "p", "scheduler": "euler"}, "scheduler: 'euler' – expected one of"),
    ({"model_id": "m", "prompt": "p", "scheduler": "ddim"}, "did you mean DDIM?"),
    ({"model_id": "m"}, "prompt: missing – required"),
    ({"model_id": "m", "prompt": "p", "lcm": "yes"}, "lcm: 'yes' – expected true or false"),
    ({"model_id": "m", "prompt": "p", "seed": {"random": 0}}, "seed: {'random': 0} – expected {random: K}"),
    ({"model_id": "m", "prompt": "p", "image_strength": 0.5}, "image_strength: only used with img2img"),
    (
        {"model_id": "m", "prompt": "p", "init_image": "missing.png"},
        "init_image: 'missing.png' – file not found",
    ),
]


@pytest.mark.parametrize("spec,message", BAD_SPECS)
@pytest.mark.parametrize("command", ["plan", "run"])
def test_bad_specs_get_one_clear_line_and_change_nothing(tmp_path, db_path, spec, message, command):
    path = write_spec(tmp_path, spec)
    before = dump(db_path)
    result = invoke(command, path, "--db", db_path)
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output
    assert dump(db_path) == before


def test_several_problems_are_listed_one_per_line(tmp_path, db_path):
    path = write_spec(
        tmp_path, {"model_id": "m", "prompt": "p", "steps": 0, "height": 1000, "sampler": "DDIM"}
    )
    result = invoke("plan", path, "--db", db_path)
    assert "has 3 problems" in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("  - ")]) == 3


def test_missing_and_unreadable_spec(tmp_path, db_path):
    result = invoke("plan", tmp_path / "nope.yml", "--db", db_path)
    assert result.exit_code == 1 and "spec file not found" in result.output
    result = invoke("plan", tmp_path, "--db", db_path)
    assert result.exit_code != 0
    unreadable = tmp_path / "bin.yml"
    unreadable.write_bytes(b"\xff\xfe\x00garbage")
    result = invoke("plan", unreadable, "--db", db_path)
    assert result.exit_code == 1 and "cannot read spec file" in result.output


def test_init_image_that_is_not_an_image_or_is_huge(tmp_path, db_path):
    (tmp_path / "fake.png").write_text("not an image")
    result = invoke("run", write_spec(tmp_path, dict(SIM, init_image="fake.png")), "--db", db_path)
    assert result.exit_code == 1 and "not an image" in result.output
    Image.new("1", (5000, 4000)).save(tmp_path / "huge.png")
    before = dump(db_path)
    result = invoke("run", write_spec(tmp_path, dict(SIM, init_image="huge.png")), "--db", db_path)
    assert result.exit_code == 1 and "5000x4000 pixels; the limit is 16 megapixels" in result.output
    assert dump(db_path) == before


def test_img2img_run_stores_the_init_image_once(tmp_path, db_path):
    Image.new("RGB", (64, 64), "blue").save(tmp_path / "base.png")
    spec = write_spec(tmp_path, dict(SIM, init_image="base.png", image_strength=[0.3, 0.7]))
    assert invoke("run", spec, "--db", db_path).exit_code == 0
    assert invoke("run", spec, "--db", db_path).exit_code == 0
    conn = sqlite3.connect(db_path)
    assert conn.execute("select count(*) from assets").fetchone()[0] == 1
    assert conn.execute("select count(distinct init_asset_id) from configs").fetchone()[0] == 1
    assert invoke("work", "--db", db_path).exit_code == 0


def test_missing_api_key_says_how_to_set_it(tmp_path, db_path, monkeypatch):
    monkeypatch.delenv("SINKIN_API_KEY", raising=False)
    before = dump(db_path)
    result = invoke("run", write_spec(tmp_path, dict(SIM, provider="sinkin")), "--db", db_path)
    assert result.exit_code == 1
    assert "export SINKIN_API_KEY=" in result.output and "--provider simulator" in result.output
    assert dump(db_path) == before


def test_large_grid_needs_yes_when_not_interactive(tmp_path, db_path):
    spec = write_spec(tmp_path, dict(SIM, seed=list(range(150))))
    before = dump(db_path)
    result = invoke("run", spec, "--db", db_path)
    assert result.exit_code == 1 and "pass --yes to confirm" in result.output
    assert dump(db_path) == before
    assert invoke("run", spec, "--db", db_path, "--yes").exit_code == 0


@pytest.mark.parametrize(
    "args,message",
    [
        (["score", 1, 11], "score must be a whole number from 1 to 10, got 11"),
        (["score", 1, 0], "score must be a whole number from 1 to 10"),
        (["score", 1, "great"], "score must be a whole number from 1 to 10, got 'great'"),
        (["score", 999, 5], "image 999 not found"),
        (["upscale", 1, "--scale", 5], "scale must be from 2 to 4"),
        (["upscale", 1, "--type", "hires_fix", "--strength", 2], "strength must be from 0 to 1"),
        (["upscale", 999], "image 999 not found"),
        (["export", "--run", 42], "run 42 not found"),
        (["work", "--run", 42], "run 42 not found"),
    ],
)
def test_bad_arguments_change_nothing(ran, args, message):
    before = dump(ran)
    result = invoke(*args, "--db", ran)
    assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output
    assert dump(ran) == before


def test_database_in_a_missing_folder(tmp_path):
    result = invoke("runs", "--db", tmp_path / "no" / "such" / "lab.db")
    assert result.exit_code == 1 and "no database at" in result.output and "sinkin init" in result.output
    result = invoke("init", "--db", tmp_path / "no" / "such" / "lab.db")
    assert result.exit_code == 1 and "folder for the database does not exist" in result.output
    assert not (tmp_path / "no").exists()


def test_a_key_given_twice_in_a_spec_is_refused_with_its_line(tmp_path, db_path):
    path = write_spec(tmp_path, "model_id: 4zdwGOB\nprompt: a fox\nsteps: 10\nscale: 7\nsteps: 20\n")
    before = dump(db_path)
    for command in ("plan", "run"):
        result = invoke(command, path, "--db", db_path)
        assert result.exit_code == 1
        assert "(line 5, column 1): duplicate key 'steps' (first given on line 3)" in result.output
    assert dump(db_path) == before


TOO_BIG = 2**63


@pytest.mark.parametrize(
    "args,message",
    [
        (["score", TOO_BIG, 5], "image id must be from 1 to 9223372036854775807"),
        (["score", 0, 5], "image id must be from 1 to 9223372036854775807, got 0"),
        (["upscale", TOO_BIG], "9223372036854775808 is not in the range 1<=x<=9223372036854775807"),
        (["export", "--run", TOO_BIG], "is not in the range"),
        (["queue", "--run", TOO_BIG], "is not in the range"),
        (["work", "--run", 0], "is not in the range"),
        (["next", "--run", TOO_BIG], "is not in the range"),
        (["retry", "--run", TOO_BIG * 4], "is not in the range"),
        (["cancel", "--run", TOO_BIG], "is not in the range"),
    ],
)
def test_ids_out_of_range_get_a_clear_error(ran, args, message):
    before = dump(ran)
    result = CliRunner().invoke(cli, [str(a) for a in args] + ["--db", str(ran)])
    assert result.exit_code != 0 and message in result.output, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, OverflowError)
    assert dump(ran) == before


def test_db_before_the_command_too(ran, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = json.loads(invoke("--db", ran, "runs", "--json").output)
    assert before[0]["total"] == 4
    assert "Image 2 scored 9" in invoke("--db", ran, "score", 2, 9).output
    # the command's own --db wins over the one before it
    result = invoke("--db", tmp_path / "other.db", "runs", "--db", ran)
    assert result.exit_code == 0 and "=HYPERLINK" not in result.output
    result = invoke("--db", tmp_path / "typo.db", "runs")
    assert result.exit_code == 1 and "no database at {}".format(tmp_path / "typo.db") in result.output
    assert not (tmp_path / "typo.db").exists() and not (tmp_path / "experiments.db").exists()


def test_runs_shows_every_job_state(tmp_path, db_path):
    spec = write_spec(tmp_path, dict(SIM, name="states", seed=[1, 2, 3, 4, 5, 6]))
    invoke("run", spec, "--db", db_path)
    conn = sqlite3.connect(db_path)
    for job_id, status in enumerate(["running", "interrupted", "failed", "cancelled", "succeeded"], 1):
        conn.execute("update jobs set status = ? where id = ?", [status, job_id])
    conn.commit()
    conn.close()
    lines = invoke("runs", "--db", db_path).output.splitlines()
    header = lines[0].split()
    for state in ("queued", "running", "succeeded", "failed", "interrupted", "cancelled"):
        assert state in header
        assert lines[1].split()[header.index(state)] == "1"
    row = json.loads(invoke("runs", "--db", db_path, "--json").output)[0]
    assert (row["running"], row["interrupted"], row["queued"]) == (1, 1, 1)
