"""The plugin system: hook names checked, built-ins listed, and a third-party plugin installed
through an entry point (the example in docs/plugins.md) running a job end to end."""

import ast
import inspect
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from sinkin_pipeline import hookspecs
from sinkin_pipeline.cli import cli
from sinkin_pipeline.plugins import load_plugins, pm

EXAMPLE = Path(__file__).parent.parent / "examples" / "plugins" / "sinkin_echo"
BUILT_INS = {
    "simulator": ["register_providers"],
    "sinkin_api": ["register_providers"],
    "expand": ["expand_spec"],
    "fallback": ["handle_inference_error"],
    "upscalers": ["register_upscalers"],
    "thumbnails": ["image_thumbnail"],
}


def test_every_hook_implemented_is_a_known_hook():
    load_plugins()
    pm.check_pending()  # raises PluginValidationError for a misspelt hook name


def test_sinkin_plugins_lists_the_built_ins_with_their_hooks():
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0
    listed = {p["name"]: p["hooks"] for p in json.loads(result.output)}
    for name, hooks in BUILT_INS.items():
        assert listed[name] == hooks


def install_example(target):
    """Install the example plugin into ``target`` as pip would: the module plus a dist-info
    whose entry_points.txt names it under the ``sinkin_pipeline`` group."""
    shutil.copy(EXAMPLE / "sinkin_echo.py", target / "sinkin_echo.py")
    info = target / "sinkin_echo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sinkin-echo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[sinkin_pipeline]\necho = sinkin_echo\n")
    (info / "RECORD").write_text("")


def test_a_provider_plugin_installed_through_an_entry_point_runs_a_job(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    install_example(site)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
        SINKIN_DB=str(tmp_path / "lab.db"),
        SINKIN_LOAD_PLUGINS="sinkin-echo",
    )
    spec = tmp_path / "spec.yml"
    spec.write_text(
        "provider: echo\nmodel_id: echo-1\nprompt: [hello, world]\nnum_images: 2\n"
        "width: 256\nheight: 256\nbackground: [blue, red]\n"
    )

    def sinkin(*args, **extra):
        result = subprocess.run(
            [sys.executable, "-m", "sinkin_pipeline", *args],
            env=dict(env, **extra),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    listed = {p["name"]: p for p in json.loads(sinkin("plugins"))}
    assert listed["echo"]["hooks"] == ["register_commands", "register_providers"]
    assert listed["echo"]["version"] == "0.1"
    # SINKIN_LOAD_PLUGINS="" loads the built-ins only; unset loads every installed plugin
    assert "echo" not in {p["name"] for p in json.loads(sinkin("plugins", SINKIN_LOAD_PLUGINS=""))}
    assert set(BUILT_INS) <= {p["name"] for p in json.loads(sinkin("plugins", SINKIN_LOAD_PLUGINS=""))}
    unset = {k: v for k, v in env.items() if k != "SINKIN_LOAD_PLUGINS"}
    everything = subprocess.run(
        [sys.executable, "-m", "sinkin_pipeline", "plugins"],
        env=unset,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "echo" in {p["name"] for p in json.loads(everything.stdout)}
    assert "echo-1 Echo" in sinkin("echo-models")
    assert "4 jobs, 8 images on provider echo" in sinkin("plan", str(spec))
    sinkin("run", str(spec))
    assert "8 images" in sinkin("work")
    conn = sqlite3.connect(tmp_path / "lab.db")
    rows = conn.execute("select path, width, url, thumbnail is not null from images").fetchall()
    assert len(rows) == 8 and all(
        (tmp_path / p).exists() and w == 256 and u is None and t for p, w, u, t in rows
    )
    assert conn.execute("select distinct provider from jobs").fetchall() == [("echo",)]
    options = conn.execute("select provider_options from configs order by id").fetchall()
    assert [json.loads(o)["background"] for (o,) in options] == ["blue", "red", "blue", "red"]
    # the option's check, like any field's
    spec.write_text("provider: echo\nmodel_id: echo-1\nprompt: hi\nbackground: purple\n")
    bad = subprocess.run(
        [sys.executable, "-m", "sinkin_pipeline", "plan", str(spec)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        bad.returncode != 0
        and "background: 'purple' – expected one of blue, red, green" in bad.stderr + bad.stdout
    )


def imported_modules(path):
    tree = ast.parse(Path(path).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


def test_the_example_plugin_imports_only_the_public_api():
    modules = {m for m in imported_modules(EXAMPLE / "sinkin_echo.py") if m.startswith("sinkin_pipeline")}
    assert modules == {"sinkin_pipeline"}


def test_every_public_name_is_exported():
    import sinkin_pipeline

    for name in [
        "hookimpl",
        "Provider",
        "InferenceResult",
        "GeneratedImage",
        "UpscaleResult",
        "Upscaler",
        "Field",
        "ProviderError",
        "ServiceError",
        "TransientError",
        "OutcomeUnknown",
        "DownloadError",
        "ConfigurationError",
        "UpscaleError",
    ]:
        assert name in sinkin_pipeline.__all__ and getattr(sinkin_pipeline, name)


def test_every_hook_is_documented_with_its_signature():
    """Like datasette's test_plugin_hooks_are_documented: docs/plugins.md has a heading
    ``### `name(arg, ...)` `` for every hook in hookspecs.py, with the same arguments."""
    docs = (Path(__file__).parent.parent / "docs" / "plugins.md").read_text()
    documented = {
        m.group(1): [a.strip() for a in m.group(2).split(",") if a.strip()]
        for m in re.finditer(r"^### `(\w+)\(([^)]*)\)`", docs, re.M)
    }
    hooks = {
        name: list(inspect.signature(getattr(hookspecs, name)).parameters)
        for name in dir(hookspecs)
        if hasattr(getattr(hookspecs, name), "sinkin_pipeline_spec")
    }
    assert hooks and documented == hooks


def _imports_of_sinkin_pipeline(path):
    """``(line, what)`` for each import of sinkin_pipeline in ``path``: ``what`` is the imported
    module for a submodule import, or the name for ``from sinkin_pipeline import name``."""
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("sinkin_pipeline.")]
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").startswith("sinkin_pipeline")
        ):
            if node.module == "sinkin_pipeline":
                found += [(node.lineno, a.name) for a in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def test_the_built_in_and_example_plugins_import_only_the_public_api(tmp_path):
    """plugins/*.py and the example plugins use ``from sinkin_pipeline import …`` with names of its
    ``__all__`` only, never a submodule (the core's internals)."""
    from pathlib import Path

    import sinkin_pipeline

    root = Path(__file__).resolve().parent.parent
    files = sorted((root / "plugins").glob("*.py")) + sorted((root / "examples" / "plugins").rglob("*.py"))
    files = [f for f in files if "/tests/" not in f.as_posix()]
    assert len(files) > 8
    offenders = [
        "{}:{}: {}".format(f.relative_to(root), line, what)
        for f in files
        for line, what in _imports_of_sinkin_pipeline(f)
        if what not in sinkin_pipeline.__all__
    ]
    assert offenders == []
    # the check sees a submodule import and a private name
    sample = tmp_path / "sample_plugin.py"
    sample.write_text("from sinkin_pipeline.fields import FIELDS\nfrom sinkin_pipeline import pm, hookimpl\n")
    assert _imports_of_sinkin_pipeline(sample) == [(1, "sinkin_pipeline.fields"), (2, "pm"), (2, "hookimpl")]
