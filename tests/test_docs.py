"""The docs stay true: the CLI reference and the schema are generated from the real thing, and
every table, view and column has a description in metadata.yml."""

import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from sinkin_pipeline.db import open_db

ROOT = Path(__file__).resolve().parent.parent


def run_script(name):
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), "--check"], capture_output=True, text=True
    )


def test_cli_reference_is_up_to_date():
    result = run_script("gen-cli-docs")
    assert result.returncode == 0, result.stdout


def test_schema_doc_is_up_to_date():
    result = run_script("gen-schema-docs")
    assert result.returncode == 0, result.stdout


def test_every_table_view_and_column_has_a_description():
    meta = yaml.safe_load((ROOT / "datasette_plugins" / "metadata.yml").read_text())
    tables = meta["databases"]["sinkin"]["tables"]
    with tempfile.TemporaryDirectory() as tmp:
        db = open_db(Path(tmp) / "x.db")
        for name in [n for n in db.table_names() if not n.startswith("_")] + db.view_names():
            assert tables.get(name, {}).get("description"), name
            described = tables[name].get("columns", {})
            missing = [c.name for c in db[name].columns if c.name not in described and c.name != "id"]
            assert not missing, (name, missing)
        db.conn.close()


def test_the_readme_gives_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "./scripts/demo" in readme and "./scripts/test" in readme
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()
