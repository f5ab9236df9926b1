"""The plugin contract: providers registered as classes (and the older name/factory form), typed
results with images as bytes or URLs, provider-declared options, registry-built upscalers that say
which providers they apply to, and guarded hooks that never fail a paid job."""

import io
import json
import sqlite3

import pytest
from click.testing import CliRunner
from PIL import Image

from sinkin_pipeline import (
    Field,
    GeneratedImage,
    InferenceResult,
    Provider,
    ServiceError,
    Upscaler,
    UpscaleResult,
    hookimpl,
)
from sinkin_pipeline.plugins import pm
from sinkin_pipeline.providers import get_provider, get_providers
from sinkin_pipeline.spec import SpecError, check_spec
from sinkin_pipeline.upscaling import UpscaleError, upscale_image, upscalers_for
from sinkin_pipeline.worker import work


def png(width=64, height=48, colour=(200, 30, 30)):
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


class BytesProvider(Provider):
    """A local provider: images come back as bytes with the seed it used; an option of its own."""

    name = "bytes"
    free = True
    options = [
        Field("clip_skip", "int", default=1, min=1, max=4, help="layers to skip"),
        Field("sampler", "choice", default=None, choices=("Euler a", "DPM++ 2M")),
    ]
    calls = []

    def inference(self, payload, init_image=None):
        BytesProvider.calls.append(dict(payload))
        n = int(payload.get("num_images") or 1)
        return InferenceResult(
            images=[GeneratedImage(data=png(), seed=1000 + i) for i in range(n)],
            credit_cost=0.0,
            inf_id="b1",
            raw={"info": "local"},
        )

    def upscale(self, payload, image=None):
        BytesProvider.calls.append({"upscale": payload, "image": image[0] if image else None})
        with Image.open(io.BytesIO(image[1])) as im:
            factor = int(payload["factor"])
            return UpscaleResult(data=png(im.width * factor, im.height * factor))


class Plugin:
    @hookimpl
    def register_providers(self, register):
        register(BytesProvider)
        register("legacy", lambda: BytesProvider())

    @hookimpl
    def register_upscalers(self, register):
        register(
            Upscaler(
                "lanczos",
                [Field("factor", "int", default=2, min=2, max=3)],
                "Lanczos",
                providers=("bytes",),
                source="file",
            )
        )


@pytest.fixture
def bytes_plugin():
    BytesProvider.calls = []
    pm.register(Plugin(), name="test-bytes")
    try:
        yield BytesProvider
    finally:
        pm.unregister(name="test-bytes")


def rows(db_path, sql, params=()):
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def test_providers_register_as_classes_or_by_name_and_factory(bytes_plugin):
    providers = get_providers()
    assert providers["bytes"] is BytesProvider and providers["sinkin"].__name__ == "SinkinProvider"
    assert isinstance(get_provider("legacy"), BytesProvider)


def test_bytes_images_are_stored_directly_with_their_seed_and_the_answer_without_bytes(
    db_path, make_run, bytes_plugin
):
    make_run(db_path, {"provider": "bytes", "model_id": "m", "prompt": "a fox", "num_images": 2})
    summary = work(db_path)
    assert (summary.succeeded, summary.images) == (1, 2)
    images = rows(db_path, "select * from images order by image_index")
    assert [(i["url"], i["provider_seed"], i["width"]) for i in images] == [
        (None, 1000, 64),
        (None, 1001, 64),
    ]
    assert all((db_path.parent / i["path"]).read_bytes() == png() for i in images)
    job = rows(db_path, "select * from jobs")[0]
    answer = json.loads(job["raw_response"])
    assert answer["images"] == [
        {"url": None, "seed": 1000, "inline": True},
        {"url": None, "seed": 1001, "inline": True},
    ]
    assert answer["raw"] == {"info": "local"} and job["inf_id"] == "b1"


def test_provider_options_are_checked_expanded_stored_and_sent(db_path, make_run, bytes_plugin):
    make_run(db_path, {"provider": "bytes", "model_id": "m", "prompt": "a fox", "clip_skip": [1, 3]})
    work(db_path)
    stored = [json.loads(r["provider_options"]) for r in rows(db_path, "select * from configs order by id")]
    assert stored == [{"clip_skip": 1}, {"clip_skip": 3}]
    assert sorted(c["clip_skip"] for c in bytes_plugin.calls) == [1, 3]
    assert all("sampler" not in c for c in bytes_plugin.calls)  # no default: not sent


@pytest.mark.parametrize(
    "spec,problem",
    [
        ({"clip_skip": 9}, "clip_skip: 9 – out of range: expected a whole number from 1 to 4"),
        (
            {"sampler": "Euler"},
            "sampler: 'Euler' – expected one of Euler a, DPM++ 2M (did you mean Euler a?)",
        ),
        ({"clip_skp": 2}, "clip_skp: unknown key (did you mean clip_skip?)"),
    ],
)
def test_bad_provider_options_are_reported_like_any_field(bytes_plugin, spec, problem):
    with pytest.raises(SpecError) as e:
        check_spec(dict({"provider": "bytes", "model_id": "m", "prompt": "p"}, **spec))
    assert problem in e.value.problems


def test_another_providers_options_are_unknown_keys(bytes_plugin):
    with pytest.raises(SpecError, match="clip_skip: unknown key"):
        check_spec({"provider": "simulator", "model_id": "m", "prompt": "p", "clip_skip": 2})
    # --provider bytes overrides the spec's provider, options included
    assert check_spec(
        {"provider": "simulator", "model_id": "m", "prompt": "p", "clip_skip": 2}, provider="bytes"
    ).values["clip_skip"] == [2]


def test_an_option_that_reuses_a_sinkin_field_is_reported(bytes_plugin, monkeypatch):
    monkeypatch.setattr(BytesProvider, "options", [Field("steps", "int", min=1, max=9)])
    with pytest.raises(SpecError, match="declares the option 'steps'"):
        check_spec({"provider": "bytes", "model_id": "m", "prompt": "p"})


def test_upscalers_say_which_providers_they_apply_to(db_path, make_run, bytes_plugin):
    assert list(upscalers_for("bytes")) == ["lanczos"]
    assert list(upscalers_for("simulator")) == ["esrgan", "hires_fix"]
    make_run(db_path, {"provider": "bytes", "model_id": "m", "prompt": "a fox"})
    work(db_path)
    with pytest.raises(
        UpscaleError, match="esrgan does not apply to images of provider bytes; use one of lanczos"
    ):
        upscale_image(db_path, 1, "esrgan")
    with pytest.raises(UpscaleError, match="factor must be from 2 to 3 for lanczos"):
        upscale_image(db_path, 1, "lanczos", options={"factor": 5})
    image = upscale_image(db_path, 1, options={"factor": 3})  # the provider's first upscaler
    assert image["upscale_type"] == "lanczos" and image["upscale_url"] is None
    with Image.open(db_path.parent / image["upscale_path"]) as im:
        assert im.size == (192, 144)
    assert bytes_plugin.calls[-1] == {
        "upscale": {"inf_id": "b1", "url": None, "type": "lanczos", "factor": 3},
        "image": "job_1_0.png",
    }


def test_the_cli_lists_upscalers_and_takes_their_declared_options(db_path, make_run, bytes_plugin):
    from sinkin_pipeline.cli import cli

    listed = json.loads(CliRunner().invoke(cli, ["upscalers", "--json"]).output)
    assert {u["name"]: u["providers"] for u in listed} == {
        "esrgan": None,
        "hires_fix": None,
        "lanczos": ["bytes"],
    }
    make_run(db_path, {"provider": "bytes", "model_id": "m", "prompt": "a fox"})
    work(db_path)
    bad = CliRunner().invoke(cli, ["upscale", "1", "-o", "factor=4", "--db", str(db_path)])
    assert bad.exit_code != 0 and "factor must be from 2 to 3" in bad.output
    ok = CliRunner().invoke(cli, ["upscale", "1", "-o", "factor=2", "--db", str(db_path)])
    assert ok.exit_code == 0 and "upscaled (lanczos)" in ok.output


@pytest.mark.asyncio
async def test_the_viewer_offers_the_upscalers_of_the_runs_provider(db_path, make_run, bytes_plugin):
    from datasette_sinkin.app import make_datasette

    make_run(db_path, {"provider": "bytes", "model_id": "m", "prompt": "a fox"})
    make_run(
        db_path, {"provider": "simulator", "model_id": "m", "prompt": "a fox", "width": 128, "height": 128}
    )
    work(db_path)
    ds = make_datasette(db_path, "127.0.0.1", 8001)
    local = (await ds.client.get("/-/sinkin/images/1")).text
    assert 'value="lanczos"' in local and 'name="factor"' in local and 'min="2" max="3"' in local
    assert 'value="esrgan"' not in local
    sim = (await ds.client.get("/-/sinkin/images/2")).text
    assert 'value="esrgan"' in sim and 'name="scale"' in sim and 'min="2" max="4"' in sim
    assert 'value="hires_fix"' in sim and 'name="strength"' in sim and 'value="lanczos"' not in sim


class Broken:
    @hookimpl(tryfirst=True)
    def image_saved(self, db, image, path):
        db.execute("update images set score = 1 where id = ?", [image["id"]])  # left uncommitted
        raise RuntimeError("no GPU for the aesthetic model")

    @hookimpl
    def handle_inference_error(self, job, config, payload, error):
        raise KeyError("oops")


@pytest.fixture
def broken_plugin():
    pm.register(Broken(), name="test-broken")
    try:
        yield
    finally:
        pm.unregister(name="test-broken")


def test_a_failing_image_saved_hook_is_logged_against_the_image_and_never_fails_the_job(
    db_path, make_run, broken_plugin
):
    make_run(
        db_path,
        {
            "provider": "simulator",
            "model_id": "m",
            "prompt": "a fox",
            "num_images": 2,
            "width": 128,
            "height": 128,
        },
    )
    summary = work(db_path)
    assert (summary.succeeded, summary.failed, summary.images) == (1, 0, 2)
    images = rows(db_path, "select id, score, thumbnail is not null as thumb from images order by id")
    assert images == [{"id": 1, "score": None, "thumb": 1}, {"id": 2, "score": None, "thumb": 1}]
    errors = rows(db_path, "select image_id, job_id, plugin, hook, error from plugin_errors order by id")
    assert errors == [
        {
            "image_id": i,
            "job_id": 1,
            "plugin": "test-broken",
            "hook": "image_saved",
            "error": "RuntimeError: no GPU for the aesthetic model",
        }
        for i in (1, 2)
    ]


def test_a_failing_handle_inference_error_hook_fails_the_job_with_both_messages(
    db_path, make_run, fake_provider, broken_plugin
):
    make_run(db_path, {"provider": "fake", "model_id": "m", "prompt": "a fox"})
    fake_provider.script["inference"] = [ServiceError("model not found")]
    work(db_path)
    job = rows(db_path, "select status, error from jobs")[0]
    assert job["status"] == "failed"
    assert job["error"] == "model not found (a plugin's handle_inference_error failed (KeyError: 'oops'))"


def test_the_default_download_fetches_http_urls(api_env):
    from sinkin_pipeline import DownloadError

    answer = get_provider("sinkin").inference(
        {"model_id": "4zdwGOB", "prompt": "a fox", "width": 128, "height": 128, "num_images": 1}
    )
    with Image.open(io.BytesIO(Provider().download(answer.images[0].url))) as im:
        assert im.size == (128, 128)
    with pytest.raises(DownloadError, match="not an http"):
        Provider().download("file:///etc/passwd")


def test_the_viewers_upscale_quote_lists_the_upscalers_of_the_images_provider(
    db_path, make_run, bytes_plugin
):
    from sinkin_pipeline.db import open_db
    from sinkin_pipeline.imagequote import upscale_quote

    make_run(db_path, {"provider": "bytes", "model_id": "m", "prompt": "a fox"})
    work(db_path)
    db = open_db(db_path)
    try:
        assert upscale_quote(db, 1)["estimates"] == {"lanczos": 0.0}
    finally:
        db.conn.close()
