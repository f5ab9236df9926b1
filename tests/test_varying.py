"""The settings that vary within a run, and the labels built from them (gallery captions, viewer,
dashboard queue rows)."""

from sinkin_pipeline.db import open_db
from sinkin_pipeline.fields import CONFIG_FIELDS
from sinkin_pipeline.varying import (
    VARYING_COLUMNS,
    config_label,
    config_settings,
    format_value,
    varying_by_run,
    varying_fields,
)

BASE = {"provider": "simulator", "model_id": "4zdwGOB", "prompt": "a fox", "seed": [1]}


def test_only_the_fields_that_take_several_values(db_path, make_run):
    neg = make_run(db_path, dict(BASE, negative_prompt=["blurry", "", "text, watermark"]))
    models = make_run(db_path, dict(BASE, model_id=["4zdwGOB", "r2La2w2"], steps=[10, 20]))
    lcm = make_run(db_path, dict(BASE, lcm=[True, False]))
    single = make_run(db_path, dict(BASE))
    seeds = make_run(db_path, dict(BASE, seed={"random": 3}))
    db = open_db(db_path)
    assert varying_fields(db, neg) == ["negative_prompt"]
    assert varying_fields(db, models) == ["model_id", "steps"]  # in the field list's order
    assert varying_fields(db, lcm) == ["lcm"]
    assert varying_fields(db, single) == []
    assert varying_fields(db, seeds) == ["seed"]
    assert varying_fields(db, 999) == []
    assert varying_by_run(db) == {
        neg: ["negative_prompt"],
        models: ["model_id", "steps"],
        lcm: ["lcm"],
        single: [],
        seeds: ["seed"],
    }
    assert varying_by_run(db, [lcm, 999]) == {lcm: ["lcm"], 999: []}
    assert varying_by_run(db, []) == {}


def test_a_missing_value_counts_as_a_value(db_path, make_run):
    run = make_run(db_path, dict(BASE, lora="abc123"))
    db = open_db(db_path)
    assert varying_fields(db, run) == []
    # a LoRA sweep with "no LoRA" as one of its values: NULL is a value of its own
    row = next(db["configs"].rows_where("run_id = ?", [run]))
    db["configs"].insert(dict(row, id=None, lora=None, position=1))
    assert varying_fields(db, run) == ["lora"]


def test_init_images_vary_with_the_fields(db_path, make_run, tmp_path):
    from sinkin_plugins.render import render_png

    for name in ("a.png", "b.png"):
        (tmp_path / name).write_bytes(render_png({"prompt": name, "width": 128, "height": 128}))
    run = make_run(db_path, dict(BASE, init_image=["a.png", "b.png"], image_strength=[0.4, 0.7]))
    db = open_db(db_path)
    assert varying_fields(db, run) == ["image_strength", "init_asset_id"]
    row = db.execute(
        "select image_strength, init_asset_id from configs where run_id = ? order by position", [run]
    ).fetchone()
    assert config_label(
        {"image_strength": row[0], "init_asset_id": row[1]}, varying_fields(db, run)
    ) == "image_strength 0.4 · init image #{}".format(row[1])


def test_labels_show_the_values_in_full():
    long_neg = "blurry, low quality, watermark, text, signature, extra fingers, deformed hands, bad anatomy"
    config = {
        "model_id": "4zdwGOB",
        "negative_prompt": long_neg,
        "scale": 7.0,
        "lcm": 0,
        "use_default_neg": 1,
        "lora": None,
        "steps": 20,
    }
    fields = ["model_id", "negative_prompt", "steps", "scale", "lora", "lcm", "use_default_neg"]
    assert config_label(config, fields) == (
        "model_id 4zdwGOB · negative_prompt " + long_neg + " · steps 20 · scale 7 · lora (none) · lcm off"
        " · use_default_neg on"
    )
    assert "…" not in config_label(config, fields)
    assert config_label(config, []) == ""
    assert config_settings(config, ["scale", "lcm"]) == [("scale", "7"), ("lcm", "off")]
    assert config_label(config, ["steps", "scale"], separator=", ") == "steps 20, scale 7"
    assert format_value("negative_prompt", "") == "(none)"
    assert format_value("lora_scale", 0.75) == "0.75"


def test_every_sinkin_field_can_vary():
    assert VARYING_COLUMNS[: len(CONFIG_FIELDS)] == CONFIG_FIELDS
