"""``sinkin plan`` and ``sinkin run`` go through the same expansion (the ``expand_spec`` hook):
for the built-in cartesian product and for the prompt-pairing plugin of docs/plugins.md, the plan's
job and image counts are the jobs and images the run creates."""

import re
import sqlite3
import types
from pathlib import Path

import pytest

from sinkin_pipeline.db import open_db
from sinkin_pipeline.plugins import pm
from sinkin_pipeline.runs import create_run, make_plan
from sinkin_pipeline.spec import check_spec

DOCS = Path(__file__).parent.parent / "docs" / "plugins.md"


def docs_expansion_plugin():
    """The expand_spec example of docs/plugins.md, as a plugin module."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    source = next(b for b in blocks if "def expand_spec" in b)
    module = types.ModuleType("docs_pairing")
    exec(compile(source, str(DOCS), "exec"), module.__dict__)
    return module


EXPANSIONS = {"cartesian": None, "docs-pairing": docs_expansion_plugin}
SPECS = [
    {"prompt": ["a fox", "a cat", "a dog"], "negative_prompt": ["blur", "text", "noise"], "steps": [10, 20]},
    {"prompt": ["a fox", "a cat"], "negative_prompt": ["blur"], "num_images": [1, 3], "seed": {"random": 2}},
    {"prompt": "a fox", "scheduler": ["DDIM", "KLMS"], "width": [256, 512], "lcm": [True, False]},
]


@pytest.fixture(params=list(EXPANSIONS))
def expansion(request):
    make = EXPANSIONS[request.param]
    if make is None:
        yield request.param
        return
    pm.register(make(), name="test-expansion")
    try:
        yield request.param
    finally:
        pm.unregister(name="test-expansion")


@pytest.mark.parametrize("given", SPECS)
def test_plan_and_run_agree(db_path, expansion, given):
    spec = check_spec(dict(given, provider="simulator", model_id="m"))
    db = open_db(db_path)
    try:
        plan = make_plan(db, spec)
        run_id = create_run(db, spec)
    finally:
        db.conn.close()
    conn = sqlite3.connect(db_path)
    jobs, images = conn.execute(
        "select count(*), sum(num_images) from jobs join configs on configs.id = "
        "jobs.config_id where jobs.run_id = ?",
        [run_id],
    ).fetchone()
    assert (plan.jobs, plan.images) == (jobs, images)


def test_the_pairing_plugin_pairs_in_plan_and_run(db_path, expansion):
    spec = check_spec(
        {
            "provider": "simulator",
            "model_id": "m",
            "prompt": ["a", "b", "c"],
            "negative_prompt": ["x", "y", "z"],
        }
    )
    db = open_db(db_path)
    try:
        assert make_plan(db, spec).jobs == (3 if expansion == "docs-pairing" else 9)
    finally:
        db.conn.close()
