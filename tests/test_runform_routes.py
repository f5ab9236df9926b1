"""The run form's routes (/-/sinkin/new...): live checking, creating runs (once per form load,
with a confirmation for large grids), uploads, the model refresh, clone with changes, safety."""

import asyncio
import base64
import io
import json
import re

import pytest
import yaml
from PIL import Image

from datasette_sinkin import runform
from datasette_sinkin.formspec import form_to_spec, spec_to_form, spec_yaml
from sinkin_pipeline.runs import CONFIRM_JOBS
from sinkin_pipeline.spec import check_spec, parse_spec_text

GRID = {
    "name": "grid",
    "provider": "simulator",
    "model_id": "4zdwGOB",
    "prompt": "a lighthouse at dusk\na red fox in snow",
    "negative_prompt": "blurry",
    "scheduler": ["DDIM", "K_EULER"],
    "steps": "20",
    "scale": "5, 9",
    "width": "512",
    "height": "512",
    "num_images": "1",
    "seed_mode": "list",
    "seed": "42",
    "use_default_neg": "true",
    "lcm": "false",
}


def png_bytes(size=(64, 48), color=(200, 40, 40), mode="RGB"):
    out = io.BytesIO()
    Image.new(mode, size, color if mode == "RGB" else 0).save(out, "PNG")
    return out.getvalue()


def count(lab, table, where="1=1"):
    db = lab.db()
    try:
        return db.execute("select count(*) from {} where {}".format(table, where)).fetchone()[0]
    finally:
        db.conn.close()


# -- the form's translation -------------------------------------------------------------------


def test_form_to_spec_builds_a_spec_the_cli_accepts():
    spec_dict = form_to_spec(GRID)
    assert spec_dict["prompt"] == ["a lighthouse at dusk", "a red fox in snow"]
    assert spec_dict["scale"] == [5, 9] and spec_dict["steps"] == 20
    assert spec_dict["use_default_neg"] is True and spec_dict["lcm"] is False
    spec = check_spec(spec_dict)
    assert spec.config_count() == 8
    # the YAML shown in the form is a spec `sinkin run` reads back to the same values
    text = spec_yaml(spec_dict)
    assert yaml.safe_load(text) == spec_dict
    assert parse_spec_text(text).values == spec.values


def test_form_round_trips_through_a_stored_spec():
    spec_dict = form_to_spec(dict(GRID, seed_mode="random", random_seeds="3", lcm="both"))
    assert spec_dict["seed"] == {"random": 3} and spec_dict["lcm"] == [True, False]
    assert form_to_spec(spec_to_form(spec_dict)) == spec_dict


def test_lora_scale_only_with_a_lora():
    assert "lora_scale" not in form_to_spec(dict(GRID, lora_scale="0.5"))
    spec_dict = form_to_spec(dict(GRID, lora="lo1, lo2", lora_scale="0.5"))
    assert spec_dict["lora"] == ["lo1", "lo2"] and spec_dict["lora_scale"] == 0.5


def test_img2img_fields_only_with_an_init_image():
    form = dict(GRID, image_strength="0.3, 0.6", controlnet=["canny"])
    assert "image_strength" not in form_to_spec(form)
    with_image = form_to_spec(dict(form, init_image=[7]), asset_paths={"7": "/x/a.png"})
    assert with_image["init_image"] == "/x/a.png"
    assert with_image["image_strength"] == [0.3, 0.6] and with_image["controlnet"] == "canny"


# -- check.json -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_check_counts_jobs_images_and_credits(lab):
    r = await lab.post("/-/sinkin/new/check.json", {"form": GRID})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True and body["problems"] == {}
    assert body["plan"]["jobs"] == 8 and body["plan"]["images"] == 8
    assert body["plan"]["credits"] == 0 and body["plan"]["provider"] == "simulator"
    assert "sinkin run spec.yml" in body["yaml"] and "scheduler: [DDIM, K_EULER]" in body["yaml"]
    assert count(lab, "runs") == 0


@pytest.mark.asyncio
async def test_check_puts_each_problem_next_to_its_field(lab):
    form = dict(
        GRID,
        steps="0",
        scheduler=["DDIM", "ddim_x"],
        prompt="   ",
        width="500",
        seed_mode="random",
        random_seeds="0",
    )
    body = (await lab.post("/-/sinkin/new/check.json", {"form": form})).json()
    assert body["ok"] is False and body["plan"] is None
    problems = body["problems"]
    assert set(problems) == {"steps", "scheduler", "prompt", "width", "seed"}
    assert problems["steps"] == ["steps: 0 – out of range: expected a whole number from 1 to 50"]
    assert "multiple of 8" in problems["width"][0]
    assert "missing" in problems["prompt"][0]
    assert count(lab, "runs") == 0


@pytest.mark.asyncio
async def test_without_an_api_key_the_plan_shows_and_create_warns_how_to_set_it(lab, monkeypatch):
    monkeypatch.delenv("SINKIN_API_KEY", raising=False)
    body = (await lab.post("/-/sinkin/new/check.json", {"form": dict(GRID, provider="sinkin")})).json()
    # the plan and the estimate are there (as with `sinkin plan`); the key is a caution, not a problem
    assert body["ok"] is True and body["problems"] == {}
    assert (body["plan"]["jobs"], body["plan"]["images"], body["plan"]["provider"]) == (8, 8, "sinkin")
    assert body["plan"]["credits"] > 0
    [caution] = body["cautions"]
    assert (
        "SINKIN_API_KEY" in caution
        and "export SINKIN_API_KEY=" in caution
        and "restart `sinkin serve`" in caution
        and "queued now" in caution
    )
    form = {"form": dict(GRID, provider="sinkin"), "request_key": "form-load-nokey"}
    r = await lab.post("/-/sinkin/new/create.json", form)
    assert r.status_code == 409 and r.json()["needs_confirmation"] is True
    assert r.json()["reasons"] == [caution] and count(lab, "runs") == 0
    r = await lab.post("/-/sinkin/new/create.json", dict(form, confirm=True))
    assert r.status_code == 200 and count(lab, "jobs", "status = 'queued'") == 8
    body = (await lab.post("/-/sinkin/new/check.json", {"form": dict(GRID, provider="nope")})).json()
    assert body["ok"] is False and "Unknown provider" in body["problems"]["provider"][0]


@pytest.mark.asyncio
async def test_the_empty_model_cache_is_filled_on_first_use(lab):
    assert count(lab, "models") == 0
    page = page_data((await lab.ds.client.get("/-/sinkin/new")).text)
    assert "4zdwGOB" in {m["id"] for m in page["models"]} and len(page["loras"]) == 2
    assert count(lab, "models") == len(page["models"]) + 2


@pytest.mark.asyncio
async def test_unknown_model_and_lora_ids_are_named_with_the_nearest_known_ones(lab):
    form = dict(GRID, model_id="4zdwGO8, r2La2w2", lora="lora-flim")
    body = (await lab.post("/-/sinkin/new/check.json", {"form": form})).json()
    assert body["ok"] is True and body["plan"]["jobs"] == 16
    assert body["cautions"] == [
        "model_id: '4zdwGO8' is not in the cached model list – nearest: 4zdwGOB (DreamShaper)",
        "lora: 'lora-flim' is not in the cached LoRA list – nearest: lora-film (Film grain (simulated)), "
        "lora-ink (Ink sketch (simulated))",
    ]
    # nothing is queued without the explicit override; with it a new model id keeps working
    r = await lab.post("/-/sinkin/new/create.json", {"form": form, "request_key": "form-load-typo1"})
    assert r.status_code == 409 and "4zdwGO8" in r.json()["error"] and count(lab, "runs") == 0
    r = await lab.post(
        "/-/sinkin/new/create.json", {"form": form, "request_key": "form-load-typo1", "confirm": True}
    )
    assert r.status_code == 200 and count(lab, "configs", "model_id = '4zdwGO8'") == 8


# -- create.json ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_create_queues_the_grid_and_remembers_the_yaml(lab):
    r = await lab.post("/-/sinkin/new/create.json", {"form": GRID, "request_key": "form-load-0001"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["redirect"] == "/-/sinkin?created={}".format(body["run_id"])
    assert count(lab, "jobs", "status = 'queued' and kind = 'inference'") == 8
    db = lab.db()
    run = db.execute("select name, provider, spec_yaml from runs").fetchone()
    db.conn.close()
    assert run[:2] == ("grid", "simulator")
    assert yaml.safe_load(run[2]) == form_to_spec(GRID)


@pytest.mark.asyncio
async def test_the_same_form_submitted_twice_creates_one_run(lab):
    payload = {"form": GRID, "request_key": "form-load-0002"}
    first, second = await asyncio.gather(
        lab.post("/-/sinkin/new/create.json", payload), lab.post("/-/sinkin/new/create.json", payload)
    )
    assert first.status_code == second.status_code == 200
    assert first.json()["run_id"] == second.json()["run_id"]
    again = await lab.post("/-/sinkin/new/create.json", payload)  # e.g. the page reloaded and resent
    assert again.json()["run_id"] == first.json()["run_id"] and again.json()["existing"] is True
    assert count(lab, "runs") == 1 and count(lab, "jobs") == 8


@pytest.mark.asyncio
async def test_create_refuses_bad_input_and_writes_nothing(lab):
    r = await lab.post(
        "/-/sinkin/new/create.json", {"form": dict(GRID, steps="99"), "request_key": "form-load-0003"}
    )
    assert r.status_code == 400 and "steps" in r.json()["problems"]
    r = await lab.post("/-/sinkin/new/create.json", {"form": GRID})
    assert r.status_code == 400 and "request_key" in r.json()["error"]
    r = await lab.post("/-/sinkin/new/create.json", {"form": "steps=3", "request_key": "form-load-0004"})
    assert r.status_code == 400
    r = await lab.post("/-/sinkin/new/create.json", b"{not json", raw=True)
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    assert count(lab, "runs") == 0 and count(lab, "configs") == 0


@pytest.mark.asyncio
async def test_a_large_grid_needs_an_explicit_confirmation(lab):
    form = dict(
        GRID,
        prompt="one prompt",
        scheduler=["DDIM"],
        scale="7",
        seed_mode="random",
        random_seeds=str(CONFIRM_JOBS + 1),
    )
    payload = {"form": form, "request_key": "form-load-0005"}
    r = await lab.post("/-/sinkin/new/create.json", payload)
    assert r.status_code == 409
    assert r.json()["needs_confirmation"] is True and "{} jobs".format(CONFIRM_JOBS + 1) in r.json()["error"]
    assert count(lab, "runs") == 0
    r = await lab.post("/-/sinkin/new/create.json", dict(payload, confirm=True))
    assert r.status_code == 200 and count(lab, "jobs") == CONFIRM_JOBS + 1


# -- uploads ------------------------------------------------------------------------------------


def upload(data, filename="init.png"):
    return {"filename": filename, "data": base64.b64encode(data).decode()}


@pytest.mark.asyncio
async def test_upload_stores_a_real_image_once(lab):
    first = await lab.post("/-/sinkin/new/upload.json", upload(png_bytes()))
    assert first.status_code == 200, first.text
    asset = first.json()["asset"]
    assert (asset["width"], asset["height"]) == (64, 48)
    again = await lab.post("/-/sinkin/new/upload.json", upload(png_bytes(), "same.png"))
    assert again.json()["asset"]["id"] == asset["id"]
    assert count(lab, "assets") == 1
    preview = await lab.ds.client.get(asset["url"])
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/png"
    assert preview.content == png_bytes()


@pytest.mark.asyncio
async def test_upload_refuses_what_is_not_a_safe_image(lab, monkeypatch):
    r = await lab.post("/-/sinkin/new/upload.json", upload(b"GIF89a not really"))
    assert r.status_code == 400 and "not an image" in r.json()["error"]
    r = await lab.post("/-/sinkin/new/upload.json", {"filename": "x.png", "data": "%%%not base64"})
    assert r.status_code == 400 and "base64" in r.json()["error"]
    # a small file that claims a huge canvas (decompression bomb) is refused by its pixel count
    bomb = png_bytes(size=(5000, 5000), mode="1")
    assert len(bomb) < 100_000
    r = await lab.post("/-/sinkin/new/upload.json", upload(bomb))
    assert r.status_code == 400 and "megapixels" in r.json()["error"]
    # the byte cap applies before anything is decoded
    monkeypatch.setattr(runform, "upload_limit", lambda: 1000)
    r = await lab.post("/-/sinkin/new/upload.json", upload(png_bytes() + b"\0" * 2000))
    assert r.status_code == 413
    assert count(lab, "assets") == 0


@pytest.mark.asyncio
async def test_an_uploaded_image_makes_an_img2img_run(lab):
    asset = (await lab.post("/-/sinkin/new/upload.json", upload(png_bytes()))).json()["asset"]
    form = dict(
        GRID,
        init_image=[asset["id"]],
        image_strength="0.4",
        controlnet=["canny"],
        prompt="one",
        scheduler=["DDIM"],
        scale="7",
    )
    check = (await lab.post("/-/sinkin/new/check.json", {"form": form})).json()
    assert check["ok"], check["problems"]
    assert check["spec"]["init_image"].endswith(".png") and check["spec"]["image_strength"] == 0.4
    r = await lab.post("/-/sinkin/new/create.json", {"form": form, "request_key": "form-load-0006"})
    assert r.status_code == 200, r.text
    db = lab.db()
    rows = db.execute("select init_asset_id, image_strength, controlnet from configs").fetchall()
    db.conn.close()
    assert rows == [(asset["id"], 0.4, "canny")]
    assert count(lab, "assets") == 1
    r = await lab.post("/-/sinkin/new/check.json", {"form": dict(form, init_image=[999])})
    assert "upload 999 not found" in r.json()["problems"]["init_image"][0]


# -- clone with changes, models --------------------------------------------------------------------


def page_data(html):
    match = re.search(r'<script type="application/json" id="sinkin-form-data">(.*?)</script>', html, re.S)
    return json.loads(match.group(1))


@pytest.mark.asyncio
async def test_clone_opens_a_past_run_in_the_form(lab):
    run_id = (
        await lab.post("/-/sinkin/new/create.json", {"form": GRID, "request_key": "form-load-0007"})
    ).json()["run_id"]
    r = await lab.ds.client.get("/-/sinkin/new?from={}".format(run_id))
    assert r.status_code == 200
    data = page_data(r.text)
    assert data["from_run"] == {"id": run_id, "name": "grid"}
    form = data["form"]
    assert form["name"] == "grid (copy)"
    assert form_to_spec(form) == dict(form_to_spec(GRID), name="grid (copy)")
    missing = await lab.ds.client.get("/-/sinkin/new?from=999")
    assert "Run 999 not found" in page_data(missing.text)["error"]


@pytest.mark.asyncio
async def test_refresh_models_fills_the_cache(lab):
    r = await lab.post("/-/sinkin/models/refresh.json", {"provider": "simulator"})
    assert r.status_code == 200, r.text
    assert r.json()["count"] == count(lab, "models") > 0
    assert r.json()["message"] == "6 models and 2 LoRAs cached from simulator"
    page = page_data((await lab.ds.client.get("/-/sinkin/new")).text)
    assert {m["id"] for m in page["models"]} == {m["id"] for m in r.json()["models"] if m["kind"] == "model"}
    r = await lab.post("/-/sinkin/models/refresh.json", {"provider": "nope"})
    assert r.status_code == 400 and "Unknown provider" in r.json()["error"]


# -- safety ---------------------------------------------------------------------------------------

GOOD_CREATE = {"form": GRID, "request_key": "form-load-attack"}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "path",
    [
        "/-/sinkin/new/create.json",
        "/-/sinkin/new/upload.json",
        "/-/sinkin/models/refresh.json",
        "/-/sinkin/new/check.json",
    ],
)
async def test_cross_site_and_tokenless_requests_are_refused(lab, path):
    body = (
        GOOD_CREATE
        if "create" in path
        else upload(png_bytes())
        if "upload" in path
        else {"provider": "simulator", "form": GRID}
    )
    # a cookie-less form POST from another site (asgi-csrf lets it through; we do not)
    r = await lab.ds.client.post(
        path,
        data={"form": "x", "request_key": "form-load-attack"},
        headers={"origin": "http://evil.example", "sec-fetch-site": "cross-site"},
    )
    assert r.status_code == 403
    # the same cookie-less form POST without any origin headers (e.g. an old browser)
    r = await lab.ds.client.post(path, data={"form": "x"})
    assert r.status_code == 403
    # JSON without the X-CSRFToken header
    r = await lab.ds.client.post(path, json=body)
    assert r.status_code == 403 and "X-CSRFToken" in r.json()["error"]
    # a valid token, but from a foreign origin
    r = await lab.post(path, body, headers={"origin": "http://evil.example"})
    assert r.status_code == 403 and "foreign origin" in r.json()["error"]
    # a valid token, but a rebinding Host
    r = await lab.post(path, body, headers={"host": "evil.example:8001"})
    assert r.status_code == 403
    assert count(lab, "runs") == 0 and count(lab, "assets") == 0 and count(lab, "models") == 0


@pytest.mark.asyncio
async def test_the_model_menus_carry_every_providers_catalogue(lab):
    """Each provider's cached list reaches the page by catalogue, so the menus follow the provider
    chosen in the form (the simulator shares SinkIn's ids; another provider has its own list)."""
    from sinkin_pipeline.db import open_db

    await lab.post("/-/sinkin/models/refresh.json", {"provider": "simulator"})
    db = open_db(lab.db_path)
    with db.conn:
        db.execute(
            "insert into models (id, title, kind, catalogue) values ('local_ckpt', 'Local', 'model', 'webui')"
        )
    db.conn.close()
    data = page_data((await lab.ds.client.get("/-/sinkin/new")).text)
    assert data["catalogues"]["simulator"] == data["catalogues"]["sinkin"] == "sinkin"
    assert [m["id"] for m in data["models_by_catalogue"]["webui"]["models"]] == ["local_ckpt"]
    sinkin_ids = {m["id"] for m in data["models_by_catalogue"]["sinkin"]["models"]}
    assert "4zdwGOB" in sinkin_ids and "local_ckpt" not in sinkin_ids
