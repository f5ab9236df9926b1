"""A plain (non-editable) install works from any folder and installs no generic top-level names."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_contents_and_a_plain_install_from_another_folder(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    (wheel,) = wheels.glob("sinkin_pipeline-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"sinkin_pipeline", "sinkin_plugins", "datasette_sinkin"}
    for needed in [
        "datasette_sinkin/metadata.yml",
        "sinkin_plugins/simulator.py",
        "sinkin_pipeline/testing/standin.py",
    ]:
        assert needed in names
    assert any(n.startswith("datasette_sinkin/templates/") for n in names)
    assert any(n.startswith("datasette_sinkin/static/") for n in names)
    entry_points = (
        zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    )
    assert "[sinkin_pipeline]" in entry_points and "[datasette]" in entry_points
    assert "sinkin = sinkin_pipeline.cli:cli" in entry_points

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=180,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "spec.yml").write_text("provider: simulator\nmodel_id: m\nprompt: [a, b]\n")
    env = dict(os.environ, PYTHONPATH=str(target), SINKIN_DB=str(elsewhere / "x.db"))
    # the repo checkout must not be what gets imported
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sinkin_pipeline, sinkin_plugins, datasette_sinkin;"
            "print(sinkin_pipeline.__file__, datasette_sinkin.__file__)",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(target) in check.stdout and str(ROOT / "sinkin_pipeline") not in check.stdout
    result = subprocess.run(
        [sys.executable, "-m", "sinkin_pipeline", "plan", "spec.yml"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "2 jobs, 2 images on provider simulator" in result.stdout
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from datasette_sinkin.app import make_datasette; import asyncio\n"
            "ds = make_datasette('x.db')\n"
            "r = asyncio.run(ds.client.get('/x/image_table'))\n"
            "print(r.status_code)",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.stdout.strip() == "200", result.stderr
