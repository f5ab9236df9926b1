"""Batch and reuse: upscale every image scored ≥ N (plan, confirmation, never twice), the zip of the
top images with their settings, Remix (the run form prefilled from one image) and the A1111 line."""

import csv
import io
import json
import sqlite3
import zipfile

import pytest
from test_plugin_contract import BytesProvider, Plugin

from datasette_sinkin.app import make_datasette
from sinkin_pipeline.db import open_db
from sinkin_pipeline.plugins import pm
from sinkin_pipeline.remix import a1111_parameters, image_config, image_spec
from sinkin_pipeline.worker import work


@pytest.fixture
def lab(db_path, make_run):
    make_run(
        db_path,
        {
            "name": "batch",
            "provider": "simulator",
            "model_id": "4zdwGOB",
            "prompt": ["=cmd|' /C calc'!A0", "a cat"],
            "negative_prompt": "blurry",
            "scheduler": ["DDIM", "K_EULER_ANCESTRAL"],
            "seed": [1, 2],
            "width": 128,
            "height": 128,
            "steps": 5,
            "lora": "abc",
            "lora_scale": 0.5,
        },
    )
    work(db_path)
    conn = sqlite3.connect(db_path)
    for image_id, score in {1: 9, 2: 8, 3: 3, 4: 10, 5: 7}.items():
        conn.execute("update images set score = ? where id = ?", [score, image_id])
    conn.commit()
    conn.close()
    return make_datasette(db_path, "127.0.0.1", 8001), db_path


async def post(ds, path, data):
    page = await ds.client.get("/-/sinkin")
    token = page.cookies["ds_csrftoken"]
    return await ds.client.post(
        path,
        content=json.dumps(data),
        headers={"content-type": "application/json", "x-csrftoken": token, "cookie": "ds_csrftoken=" + token},
    )


def upscales(db_path):
    conn = sqlite3.connect(db_path)
    try:
        return (
            conn.execute("select count(*) from jobs where kind = 'upscale'").fetchone()[0],
            [r[0] for r in conn.execute("select id from images where upscale_path is not null order by id")],
        )
    finally:
        conn.close()


@pytest.mark.asyncio
async def test_upscale_every_image_scored_at_least_n_after_an_estimate(lab):
    ds, db_path = lab
    url = "/-/sinkin/runs/1/upscale-batch.json"
    r = await post(ds, url, {"min_score": 8, "type": "esrgan", "scale": 2})
    plan = r.json()["plan"]
    assert r.status_code == 200 and plan["images"] == [4, 1, 2] and plan["already"] == []
    assert plan["provider"] == "simulator" and plan["credits"] == 0
    assert upscales(db_path) == (0, [])  # the estimate spends nothing
    r = await post(ds, url, {"min_score": 8, "type": "esrgan", "scale": 2, "confirm": True, "expect": 2})
    assert r.status_code == 400 and "3 images to upscale now, 2 confirmed" in r.json()["error"]
    assert upscales(db_path) == (0, [])
    r = await post(ds, url, {"min_score": 8, "type": "esrgan", "scale": 2, "confirm": True, "expect": 3})
    result = r.json()["result"]
    assert r.status_code == 200 and result["done"] == [4, 1, 2] and result["failed"] == []
    assert upscales(db_path) == (3, [1, 2, 4])
    # never twice: the upscaled ones are skipped
    plan = (await post(ds, url, {"min_score": 7})).json()["plan"]
    assert plan["images"] == [5] and plan["already"] == [4, 1, 2]
    for bad, status, text in (
        ({"min_score": 11}, 400, "min_score must be"),
        ({"min_score": "x"}, 400, "min_score"),
        ({"min_score": 8, "scale": 9}, 400, "scale must be"),
        ({"min_score": 8, "type": "waifu"}, 400, "unknown upscale type"),
        ({"min_score": 8, "confirm": True}, 400, "expect"),
    ):
        r = await post(ds, url, bad)
        assert r.status_code == status and text in r.json()["error"], (bad, r.text)
    r = await post(ds, "/-/sinkin/runs/99/upscale-batch.json", {"min_score": 8})
    assert r.status_code == 404
    assert upscales(db_path) == (3, [1, 2, 4])
    # a cross-site POST is refused and spends nothing
    r = await ds.client.post(
        url,
        content=json.dumps({"min_score": 1, "confirm": True, "expect": 5}),
        headers={"content-type": "application/json", "sec-fetch-site": "cross-site"},
    )
    assert r.status_code == 403 and upscales(db_path) == (3, [1, 2, 4])


@pytest.mark.asyncio
async def test_zip_of_the_top_images_with_their_settings(lab):
    ds, db_path = lab
    r = await ds.client.get("/-/sinkin/runs/1/top.zip?min_score=8")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert 'filename="run1-top3.zip"' in r.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    assert sorted(archive.namelist()) == [
        "score08-image2.png",
        "score09-image1.png",
        "score10-image4.png",
        "settings.csv",
    ]
    assert archive.read("score10-image4.png")[:4] == b"\x89PNG"
    rows = list(csv.DictReader(io.StringIO(archive.read("settings.csv").decode())))
    assert [r["image_id"] for r in rows] == ["4", "1", "2"] and rows[0]["file"] == "score10-image4.png"
    conn = sqlite3.connect(db_path)
    stored = dict(conn.execute("select image_id, prompt from image_table").fetchall())
    conn.close()
    assert "=cmd|' /C calc'!A0" in {stored[i] for i in (4, 1, 2)}
    # formula-escaped like `sinkin export`
    escaped = [("'" if stored[i].startswith("=") else "") + stored[i] for i in (4, 1, 2)]
    assert [r["prompt"] for r in rows] == escaped
    r = await ds.client.get("/-/sinkin/runs/1/top.zip?min_score=1&limit=2")
    assert len(zipfile.ZipFile(io.BytesIO(r.content)).namelist()) == 3
    assert (await ds.client.get("/-/sinkin/runs/1/top.zip?min_score=0")).status_code == 400
    assert (await ds.client.get("/-/sinkin/runs/1/top.zip?limit=100000")).status_code == 400
    assert (await ds.client.get("/-/sinkin/runs/99/top.zip")).status_code == 404
    conn = sqlite3.connect(db_path)
    conn.execute("update images set score = null")
    conn.commit()
    conn.close()
    r = await ds.client.get("/-/sinkin/runs/1/top.zip?min_score=1")
    assert r.status_code == 404 and "no image of run 1 is scored" in r.text


@pytest.mark.asyncio
async def test_remix_opens_the_run_form_with_the_images_settings(lab):
    ds, db_path = lab
    db = open_db(db_path)
    config = image_config(db, 4)
    spec = image_spec(config)
    assert spec["provider"] == "simulator" and spec["seed"] == config["seed"] and spec["lora"] == "abc"
    assert all(not isinstance(v, list) for v in spec.values())
    page = await ds.client.get("/-/sinkin/new?image=4")
    assert page.status_code == 200 and "from image 4 of run 1" in page.text
    data = json.loads(page.text.split('id="sinkin-form-data">')[1].split("</script>")[0])
    form = data["form"]
    assert form["name"] == "remix of image 4" and form["seed"] == str(config["seed"])
    assert form["scheduler"] == [config["scheduler"]] and form["steps"] == "5"
    assert form["provider"] == "simulator"
    page = await ds.client.get("/-/sinkin/new?image=999")
    assert page.status_code == 200 and "Image 999 not found" in page.text


def test_the_a1111_parameter_line():
    config = {
        "prompt": "a lighthouse",
        "negative_prompt": "blurry",
        "steps": 30,
        "scheduler": "DPMSolverMultistep",
        "scale": 7.0,
        "seed": 1234,
        "width": 512,
        "height": 768,
        "model_id": "4zdwGOB",
        "lora": "abc",
        "lora_scale": 0.5,
        "lcm": 0,
        "image_strength": None,
    }
    assert a1111_parameters(config, "DreamShaper") == (
        "a lighthouse <lora:abc:0.5>\nNegative prompt: blurry\n"
        "Steps: 30, Sampler: DPM++ 2M, CFG scale: 7, Seed: 1234, Size: 512x768, Model: DreamShaper, "
        "SinkIn model: 4zdwGOB"
    )
    assert a1111_parameters(
        dict(config, negative_prompt="", lora=None, scheduler="K_EULER_ANCESTRAL", image_strength=0.4, lcm=1)
    ).splitlines() == [
        "a lighthouse",
        "Steps: 30, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 512x768, Model: 4zdwGOB, "
        "Denoising strength: 0.4, SinkIn model: 4zdwGOB, LCM: on",
    ]


@pytest.fixture
def bytes_plugin():
    """Provider ``bytes`` and its own upscaler ``lanczos`` (see test_plugin_contract)."""
    BytesProvider.calls = []
    pm.register(Plugin(), name="test-bytes-batch")
    try:
        yield BytesProvider
    finally:
        pm.unregister(name="test-bytes-batch")


@pytest.mark.asyncio
async def test_the_batch_offers_the_upscalers_of_the_runs_provider(db_path, make_run, bytes_plugin):
    """A provider with its own upscaler (source "file", option "factor" 2–3): the batch plans and
    runs with it, from the registry; SinkIn's types do not apply to its images."""
    make_run(db_path, {"provider": "bytes", "model_id": "m", "prompt": "a fox", "seed": [1, 2, 3]})
    work(db_path)
    conn = sqlite3.connect(db_path)
    conn.execute("update images set score = 9")
    conn.commit()
    conn.close()
    ds = make_datasette(db_path, "127.0.0.1", 8001)
    url = "/-/sinkin/runs/1/upscale-batch.json"
    plan = (await post(ds, url, {"min_score": 8})).json()["plan"]
    assert plan["type"] == "lanczos" and plan["params"] == {"type": "lanczos", "factor": 2}
    assert [u["name"] for u in plan["upscalers"]] == ["lanczos"]
    factor = plan["upscalers"][0]["options"][0]
    assert (factor["name"], factor["min"], factor["max"]) == ("factor", 2, 3)
    assert plan["images"] == [1, 2, 3] and plan["unusable"] == []  # stored files, no SinkIn id needed
    for bad, text in (
        ({"type": "esrgan"}, "esrgan does not apply to images of provider bytes; use one of lanczos"),
        ({"options": {"factor": 5}}, "factor must be from 2 to 3"),
        ({"options": {"scale": 2}}, "lanczos does not take the option scale"),
        ({"options": ["factor"]}, "options: expected {name: value}"),
    ):
        r = await post(ds, url, dict(bad, min_score=8))
        assert r.status_code == 400 and text in r.json()["error"], (bad, r.text)
    body = {"min_score": 8, "type": "lanczos", "options": {"factor": 3}, "confirm": True, "expect": 3}
    result = (await post(ds, url, body)).json()["result"]
    assert result["done"] == [1, 2, 3] and result["failed"] == []
    sent = [c["upscale"] for c in bytes_plugin.calls if "upscale" in c]
    assert [(c["type"], c["factor"]) for c in sent] == [("lanczos", 3)] * 3
    # never twice
    plan = (await post(ds, url, {"min_score": 8})).json()["plan"]
    assert plan["images"] == [] and plan["already"] == [1, 2, 3]
    assert upscales(db_path)[0] == 3


@pytest.mark.asyncio
async def test_the_batch_types_for_simulator_images_come_from_the_registry(lab):
    from sinkin_pipeline.upscalers import upscalers_for

    ds, _ = lab
    plan = (await post(ds, "/-/sinkin/runs/1/upscale-batch.json", {"min_score": 8})).json()["plan"]
    offered = upscalers_for("simulator")
    assert [u["name"] for u in plan["upscalers"]] == list(offered)
    assert plan["type"] == next(iter(offered))
    first = plan["upscalers"][0]
    assert [o["name"] for o in first["options"]] == list(offered[first["name"]].options)
