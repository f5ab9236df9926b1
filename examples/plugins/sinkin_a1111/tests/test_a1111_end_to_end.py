"""The whole loop on provider a1111, as a user runs it: the installed plugin distribution is
listed, a grid runs against the web UI stand-in, is scored, upscaled with one of the server's
upscalers, and its settings are compared with a simulator run in insights."""

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from sinkin_a1111.standin import A1111StandIn

SINKIN = shutil.which("sinkin") or str(Path(sys.executable).with_name("sinkin"))

SPEC = """\
name: local sweep
provider: a1111
model_id: [dreamshaper_8, realisticVisionV60B1_v51VAE]
prompt: a lighthouse on a cliff at dusk
scheduler: [DDIM, K_EULER]
steps: 8
scale: 7
width: 128
height: 128
num_images: 1
clip_skip: [1, 2]
"""
SIM_SPEC = """\
name: simulator twin
provider: simulator
model_id: 4zdwGOB
prompt: a lighthouse on a cliff at dusk
scheduler: [DDIM, K_EULER]
steps: 8
width: 128
height: 128
num_images: 1
"""


@pytest.fixture
def env(tmp_path):
    with A1111StandIn() as webui:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("SINKIN_")}
        environ.update({"SINKIN_A1111_URL": webui.base_url, "SINKIN_DB": str(tmp_path / "lab.db")})
        yield environ, webui


def sinkin(environ, *args, ok=True):
    result = subprocess.run([SINKIN, *args], capture_output=True, text=True, env=environ, timeout=120)
    if ok:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_grid_on_a1111_runs_is_scored_upscaled_and_compared(env, tmp_path):
    environ, webui = env
    listed = sinkin(environ, "plugins")
    assert "a1111" in listed.stdout or "sinkin_a1111" in listed.stdout
    # the web UI's models, LoRAs, samplers and schedulers are cached in a1111's own catalogue
    sinkin(environ, "init")
    refreshed = sinkin(environ, "models", "--refresh", "--provider", "a1111")
    assert "(7 samplers, 4 schedulers) cached from a1111" in refreshed.stderr
    assert re.search(r"DPM\+\+ 2M Karras\s+sampler\s+a1111", refreshed.stdout), refreshed.stdout
    assert re.search(r"Karras\s+schedule_type\s+a1111", refreshed.stdout), refreshed.stdout
    (tmp_path / "local.yml").write_text(SPEC)
    (tmp_path / "sim.yml").write_text(SIM_SPEC)

    plan = sinkin(environ, "plan", str(tmp_path / "local.yml"))
    assert "8 jobs" in plan.stdout
    sinkin(environ, "run", str(tmp_path / "local.yml"), "--yes")
    sinkin(environ, "work")
    assert webui.generations() == 8
    sent = [c["body"] for c in webui.calls if c["endpoint"] == "txt2img"]
    assert {b["override_settings"]["CLIP_stop_at_last_layers"] for b in sent} == {1, 2}
    assert {b["sampler_name"] for b in sent} == {"DDIM", "Euler"}

    db = sqlite3.connect(environ["SINKIN_DB"])
    db.row_factory = sqlite3.Row
    images = db.execute("select * from images where run_id = 1 order by id").fetchall()
    assert len(images) == 8
    media = Path(environ["SINKIN_DB"]).parent
    for image in images:
        assert image["path"] and (media / image["path"]).exists()
        assert image["url"] is None
        assert isinstance(image["provider_seed"], int)  # the random seed the web UI used is recorded
    jobs = db.execute("select status, credit_cost from jobs where run_id = 1").fetchall()
    assert {(j["status"], j["credit_cost"]) for j in jobs} == {("succeeded", 0.0)}

    for n, image in enumerate(images):
        sinkin(environ, "score", str(image["id"]), str(8 if n % 2 == 0 else 3))

    upscalers = sinkin(environ, "upscalers", str(images[0]["id"]), ok=False)
    up = sinkin(
        environ, "upscale", str(images[0]["id"]), "--type", "R-ESRGAN 4x+", "-o", "upscaling_resize=2"
    )
    assert webui.calls[-1]["endpoint"] == "extra-single-image"
    row = db.execute("select upscale_path from images where id = ?", [images[0]["id"]]).fetchone()
    assert row["upscale_path"] and (media / row["upscale_path"]).exists(), up.stdout + upscalers.stdout

    sinkin(environ, "run", str(tmp_path / "sim.yml"), "--yes")
    sinkin(environ, "work")
    sim_images = db.execute("select id from images where run_id = 2").fetchall()
    for image in sim_images:
        sinkin(environ, "score", str(image["id"]), "5")
    report = json.loads(sinkin(environ, "insights", "--run", "1", "--run", "2", "--json").stdout)
    axes = {a["axis"]: a for a in report["axes"]}
    assert report["rated"] == 10
    assert "model_id" in axes  # local checkpoints next to SinkIn's model, in one table
    assert "clip_skip" in axes  # the provider's own option is an axis like SinkIn's fields
    assert {v["value"] for v in axes["clip_skip"]["values"]} >= {1, 2}
    # the suggested next run of the local grid is a spec `plan` accepts, options included
    sinkin(environ, "suggest", "--run", "1", "-o", str(tmp_path / "next.yml"))
    assert "clip_skip" in (tmp_path / "next.yml").read_text()
    assert "on provider a1111" in sinkin(environ, "plan", str(tmp_path / "next.yml")).stdout
    values = {v["value"] for v in axes["model_id"]["values"]}
    assert {"dreamshaper_8", "4zdwGOB"} <= values
