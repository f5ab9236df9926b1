"""The plugin system: hook names checked, built-ins listed, and a third-party plugin installed
through an entry point (the example in docs/plugins.md) running a job end to end."""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from sinkin_pipeline.cli import cli
from sinkin_pipeline.plugins import load_plugins, pm

EXAMPLE = Path(__file__).parent.parent / "examples" / "plugins" / "sinkin_echo"
BUILT_INS = {"simulator": ["register_providers"], "sinkin_api": ["register_providers"],
             "expand": ["expand_spec"], "fallback": ["handle_inference_error"],
             "upscalers": ["register_upscalers"], "thumbnails": ["image_saved"]}


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
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
               SINKIN_DB=str(tmp_path / "lab.db"))
    spec = tmp_path / "spec.yml"
    spec.write_text("provider: echo\nmodel_id: echo-1\nprompt: [hello, world]\nnum_images: 2\n"
                    "width: 256\nheight: 256\n")

    def sinkin(*args):
        result = subprocess.run([sys.executable, "-m", "sinkin_pipeline", *args], env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    listed = {p["name"]: p for p in json.loads(sinkin("plugins"))}
    assert listed["echo"]["hooks"] == ["register_commands", "register_providers"]
    assert listed["echo"]["version"] == "0.1"
    assert "echo-1 Echo" in sinkin("echo-models")
    assert "2 jobs, 4 images on provider echo" in sinkin("plan", str(spec))
    sinkin("run", str(spec))
    assert "4 images" in sinkin("work")
    conn = sqlite3.connect(tmp_path / "lab.db")
    rows = conn.execute("select path, width, thumbnail is not null from images").fetchall()
    assert len(rows) == 4 and all((tmp_path / p).exists() and w == 256 and t for p, w, t in rows)
    assert conn.execute("select distinct provider from jobs").fetchall() == [("echo",)]
