"""Job states are declared once (``sinkin_pipeline.queue.JobStatus``) and written nowhere else:
every other module, the dashboard's JavaScript and the templates derive them."""

import ast
import re
import sqlite3
from pathlib import Path

from sinkin_pipeline import ranking, runs
from sinkin_pipeline.queue import JobStatus

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("sinkin_pipeline", "plugins", "datasette_plugins")
#: released migrations are frozen: they keep the words they were written with
FROZEN = {"sinkin_pipeline/migrations.py"}
STATES = {s.value for s in JobStatus}
#: a state written as an SQL string literal inside a larger string, e.g. "status = 'queued'"
IN_SQL = re.compile(r"'({})'".format("|".join(STATES)))
#: a state written as a JavaScript or template string literal
IN_JS = re.compile(r"""(["'`])({})\1""".format("|".join(STATES)))


def _docstrings(tree):
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _enum_values(tree):
    """The string constants of the JobStatus class body itself (the one declaration)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "JobStatus":
            return {id(n) for n in ast.walk(node) if isinstance(n, ast.Constant)}
    return set()


def python_literals(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    allowed = _docstrings(tree) | _enum_values(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in allowed:
            if node.value in STATES or IN_SQL.search(node.value):
                yield node.lineno, node.value


def status_literals():
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in FROZEN or "__pycache__" in rel:
                continue
            if path.suffix == ".py":
                found += ["{}:{}: {!r}".format(rel, line, text) for line, text in python_literals(path)]
            elif path.suffix in (".js", ".html"):
                for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                    if IN_JS.search(line):
                        found.append("{}:{}: {}".format(rel, number, line.strip()))
    return found


def test_no_job_state_is_written_as_a_literal_outside_its_enum():
    assert status_literals() == []


def test_the_literal_check_sees_python_sql_and_javascript(tmp_path, monkeypatch):
    """The check above can fail: each way of writing a state by hand is caught."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""Docstrings may say \'queued\'."""\n'
        'A = "running"\n'
        "B = \"select 1 from jobs where status = 'failed'\"\n"
        "C = f\"x {A} 'cancelled'\"\n"
        'D = "a running job"\n'
    )
    assert [text for _, text in python_literals(sample)] == [
        "running",
        "select 1 from jobs where status = 'failed'",
        " 'cancelled'",
    ]
    assert IN_JS.search('if (job.status === "succeeded")') and IN_JS.search("x === 'interrupted'")
    assert not IN_JS.search("`${n} queued · `")


def test_the_enum_is_its_text_everywhere(tmp_path):
    assert JobStatus.QUEUED == "queued" and "{}".format(JobStatus.FAILED) == "failed"
    assert str(JobStatus.SUCCEEDED) == "succeeded"
    conn = sqlite3.connect(tmp_path / "x.db")
    conn.execute("create table t (status text)")
    conn.execute("insert into t values (?)", [JobStatus.CANCELLED])
    assert conn.execute("select status, typeof(status) from t").fetchone() == ("cancelled", "text")
    # the lists other modules show derive from it, in its order
    assert ranking.JOB_STATUSES == runs.JOB_STATES == tuple(JobStatus)
    assert [s.value for s in JobStatus] == [
        "queued",
        "running",
        "succeeded",
        "failed",
        "interrupted",
        "cancelled",
    ]


def test_every_write_of_a_job_state_is_in_the_queue_module():
    """Outside sinkin_pipeline/queue.py (and the frozen migrations) no code sets jobs.status:
    no SQL ``update jobs set status`` / ``insert into jobs`` and no ``status=`` keyword."""
    writes = re.compile(
        r"update\s+jobs\s+set\s(?:(?!\bwhere\b).)*\bstatus\s*=|insert\s+into\s+jobs\b", re.I | re.S
    )
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in FROZEN or rel == "sinkin_pipeline/queue.py":
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and writes.search(node.value)
                ):
                    offenders.append("{}:{}".format(rel, node.lineno))
                if isinstance(node, ast.Call):
                    name = getattr(node.func, "attr", getattr(node.func, "id", ""))
                    if name in ("update_job", "write_job_columns", "insert", "upsert") and any(
                        k.arg == "status" for k in node.keywords
                    ):
                        offenders.append("{}:{}".format(rel, node.lineno))
    assert offenders == []
