"""The run form and a provider's own options (``Provider.options``): an input per declared Field
(passed from the server), lists make a grid, values are checked exactly as in a spec file (a bad
value is a 4xx naming the option, nothing written), they reach the plan, the stored configs, Clone,
Remix and "Queue this". The form's limits and defaults come from ``fields.py``."""

import io
import json
import re
import sqlite3

import pytest
from PIL import Image

from datasette_sinkin.formspec import form_to_spec, spec_to_form
from sinkin_pipeline import Field, GeneratedImage, InferenceResult, Provider, hookimpl
from sinkin_pipeline.fields import FIELDS
from sinkin_pipeline.plugins import pm
from sinkin_pipeline.providers import provider_options


def png():
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (20, 120, 200)).save(out, "PNG")
    return out.getvalue()


class LocalProvider(Provider):
    """A free local provider with options of every kind and a sampler list."""

    name = "local"
    free = True
    catalogue = "local"
    options = [
        Field("clip_skip", "int", default=None, min=1, max=12, help="layers to skip"),
        Field("sampler_name", "str", default=None, help="a sampler by name", extra={"menu": "sampler"}),
        Field("hires", "bool", default=None, help="second pass"),
        Field("style", "choice", default=None, choices=("plain", "vivid")),
    ]
    calls: list = []

    def inference(self, payload, init_image=None):
        LocalProvider.calls.append(dict(payload))
        return InferenceResult(images=[GeneratedImage(data=png(), seed=7)], credit_cost=0.0)

    def models(self):
        return {
            "models": [{"id": "local_ckpt", "title": "Local checkpoint"}],
            "loras": [],
            "samplers": [{"id": "Euler a", "title": "Euler a"}, {"id": "DPM++ 2M Karras"}],
        }


class Plugin:
    @hookimpl
    def register_providers(self, register):
        register(LocalProvider)


@pytest.fixture
def local_provider():
    LocalProvider.calls = []
    pm.register(Plugin(), name="test-local-provider")
    try:
        yield LocalProvider
    finally:
        pm.unregister(name="test-local-provider")


FORM = {
    "name": "local grid",
    "provider": "local",
    "model_id": "local_ckpt",
    "prompt": "a lighthouse",
    "steps": "20",
    "seed_mode": "list",
    "seed": "1",
    "options": {"clip_skip": "1, 2", "sampler_name": "Euler a, DPM++ 2M Karras", "hires": "both"},
}


def page_data(html):
    match = re.search(r'<script type="application/json" id="sinkin-form-data">(.*?)</script>', html, re.S)
    return json.loads(match.group(1))


def rows(db_path, sql, params=()):
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def test_options_are_read_by_their_kind_and_round_trip(local_provider):
    options = provider_options("local")
    spec = form_to_spec(dict(FORM, options=dict(FORM["options"], style=["vivid", "plain"])), {}, options)
    assert spec["clip_skip"] == [1, 2] and spec["hires"] == [True, False]
    assert spec["sampler_name"] == ["Euler a", "DPM++ 2M Karras"]  # names keep their spaces
    assert spec["style"] == ["vivid", "plain"]
    # the options come after SinkIn's fields in the YAML order
    assert list(spec).index("clip_skip") > list(spec).index("steps")
    form = spec_to_form(spec, (), options)
    assert form["options"] == {
        "clip_skip": "1, 2",
        "sampler_name": "Euler a, DPM++ 2M Karras",
        "hires": "both",
        "style": ["vivid", "plain"],
    }
    assert form_to_spec(form, {}, options) == spec


@pytest.mark.asyncio
async def test_the_page_carries_each_providers_options_and_the_fields_limits(lab, local_provider):
    r = await lab.ds.client.get("/-/sinkin/new")
    data = page_data(r.text)
    declared = {f["name"]: f for f in data["provider_options"]["local"]}
    assert list(declared) == ["clip_skip", "sampler_name", "hires", "style"]
    assert (declared["clip_skip"]["kind"], declared["clip_skip"]["min"], declared["clip_skip"]["max"]) == (
        "int",
        1,
        12,
    )
    assert declared["clip_skip"]["help"] == "layers to skip" and declared["sampler_name"]["menu"] == "sampler"
    assert declared["style"]["choices"] == ["plain", "vivid"]
    assert data["provider_options"]["simulator"] == []
    # the SinkIn fields' limits and defaults reach the page from fields.py (the JS writes none)
    assert data["fields"]["steps"]["max"] == FIELDS["steps"].max
    assert data["fields"]["width"]["default"] == FIELDS["width"].default
    assert data["limits"]["upload_bytes"] > 0 and data["limits"]["random_seeds"] > 1
    hint = "{:g}–{:g}".format(FIELDS["steps"].min, FIELDS["steps"].max)
    assert '<label for="f-steps">Steps <span class="sk-hint">{}</span>'.format(hint) in r.text


@pytest.mark.asyncio
async def test_options_make_a_grid_in_the_plan_and_are_stored_and_sent(lab, local_provider):
    from sinkin_pipeline.worker import work

    body = (await lab.post("/-/sinkin/new/check.json", {"form": FORM})).json()
    assert body["ok"] is True, body
    assert body["plan"]["jobs"] == 8 and body["plan"]["credits"] == 0
    assert set(body["plan"]["axes"]) >= {"clip_skip", "sampler_name", "hires"}
    assert "clip_skip: [1, 2]" in body["yaml"]
    r = await lab.post("/-/sinkin/new/create.json", {"form": FORM, "request_key": "form-load-opts1"})
    assert r.status_code == 200, r.text
    run_id = r.json()["run_id"]
    stored = [json.loads(c["provider_options"]) for c in rows(lab.db_path, "select * from configs")]
    assert len(stored) == 8
    assert {(o["clip_skip"], o["sampler_name"], o["hires"]) for o in stored} == {
        (c, s, h) for c in (1, 2) for s in ("Euler a", "DPM++ 2M Karras") for h in (True, False)
    }
    assert work(lab.db_path).succeeded == 8
    assert {(p["clip_skip"], p["sampler_name"]) for p in LocalProvider.calls} == {
        (c, s) for c in (1, 2) for s in ("Euler a", "DPM++ 2M Karras")
    }
    # Clone: the options come back in the form, and the form makes the same spec again
    clone = page_data((await lab.ds.client.get("/-/sinkin/new?from={}".format(run_id))).text)
    assert clone["form"]["options"] == {
        "clip_skip": "1, 2",
        "sampler_name": "Euler a, DPM++ 2M Karras",
        "hires": "both",
    }
    options = provider_options("local")
    assert form_to_spec(clone["form"], {}, options) == dict(
        form_to_spec(FORM, {}, options), name="local grid (copy)"
    )
    # "Queue this": the suggested next run keeps the options
    suggested = page_data((await lab.ds.client.get("/-/sinkin/new?from={}&suggest=1".format(run_id))).text)
    assert suggested["form"]["options"]["clip_skip"] == "1, 2"
    assert suggested["form"]["options"]["hires"] == "both"
    # Remix of one image: its own option values
    image = rows(
        lab.db_path,
        "select images.id, configs.provider_options from images join configs "
        "on configs.id = images.config_id order by images.id limit 1",
    )[0]
    remix = page_data((await lab.ds.client.get("/-/sinkin/new?image={}".format(image["id"]))).text)
    own = json.loads(image["provider_options"])
    assert remix["form"]["options"]["clip_skip"] == str(own["clip_skip"])
    assert remix["form"]["options"]["hires"] == ("true" if own["hires"] else "false")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "provider, options, key, words",
    [
        ("local", {"clip_skip": "13"}, "clip_skip", "out of range"),
        ("local", {"clip_skip": "two"}, "clip_skip", "whole number"),
        ("local", {"style": ["loud"]}, "style", "one of plain, vivid"),
        ("local", {"hires": "maybe"}, "hires", "true, false or both"),
        ("simulator", {"clip_skip": "2"}, "clip_skip", "unknown key"),
        ("local", {"steps": "3"}, "steps", "not a provider option"),
    ],
)
async def test_a_bad_option_is_refused_by_name_and_nothing_is_written(
    lab, local_provider, provider, options, key, words
):
    form = dict(FORM, provider=provider, options=options)
    r = await lab.post("/-/sinkin/new/create.json", {"form": form, "request_key": "form-load-bad-opt"})
    assert r.status_code == 400, r.text
    problems = r.json()["problems"]
    assert key in problems and words in " ".join(problems[key]), problems
    assert problems[key][0].startswith(key)
    assert rows(lab.db_path, "select count(*) as n from runs")[0]["n"] == 0
    check = (await lab.post("/-/sinkin/new/check.json", {"form": form})).json()
    assert check["ok"] is False and key in check["problems"]


@pytest.mark.asyncio
async def test_options_that_are_not_a_mapping_are_refused(lab, local_provider):
    r = await lab.post(
        "/-/sinkin/new/create.json",
        {"form": dict(FORM, options=["clip_skip"]), "request_key": "form-load-x1"},
    )
    assert r.status_code == 400 and "options" in r.json()["problems"]["_general"][0]


@pytest.mark.asyncio
async def test_cached_samplers_reach_the_page_for_the_providers_menu(lab, local_provider):
    r = await lab.post("/-/sinkin/models/refresh.json", {"provider": "local"})
    assert r.status_code == 200, r.text
    assert r.json()["message"] == "1 model and 0 LoRAs (2 samplers) cached from local"
    data = page_data((await lab.ds.client.get("/-/sinkin/new")).text)
    samplers = data["models_by_catalogue"]["local"]["samplers"]
    assert [s["id"] for s in samplers] == ["DPM++ 2M Karras", "Euler a"]
    assert "samplers" not in data["models_by_catalogue"].get("sinkin", {})
