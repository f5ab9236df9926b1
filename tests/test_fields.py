"""One source for the SinkIn fields: docs/spec.md's reference is generated from fields.py, and a
field added there is checked, stored and sent without touching any other module."""

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from sinkin_pipeline.fields import FIELDS, SPEC_ONLY_KEYS, Field, setting_columns
from sinkin_pipeline.jobs import build_payload
from sinkin_pipeline.ranking import build
from sinkin_pipeline.spec import SpecError, check_spec

ROOT = Path(__file__).parent.parent


def test_the_spec_reference_is_generated_from_fields():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen-spec-docs"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = (ROOT / "docs" / "spec.md").read_text()
    for key in list(FIELDS) + list(SPEC_ONLY_KEYS):
        assert "| `{}` |".format(key) in text
    assert "| `steps` | int | 30 | 1 to 50 |" in text
    assert "| `image_strength` | float | 0.75 | 0 to 1; img2img only |" in text


def test_setting_columns_follow_the_fields():
    assert [c for c, _ in setting_columns()] == list(FIELDS)
    assert dict(setting_columns())["scale"] == "REAL" and dict(setting_columns())["lcm"] == "INTEGER"


def test_the_form_translation_derives_its_keys_from_fields():
    from datasette_sinkin import formspec

    assert set(formspec.NUMBER_KEYS) == {k for k, f in FIELDS.items() if f.kind in ("int", "float")} - {
        "seed"
    }
    assert set(formspec.IMG2IMG_KEYS) == {k for k, f in FIELDS.items() if f.img2img_only}
    assert set(formspec.ORDER) == set(FIELDS) | set(SPEC_ONLY_KEYS)


@pytest.fixture
def tiling(monkeypatch, db_path):
    """A new SinkIn field, added only to fields.FIELDS (and its column, as a migration would)."""
    monkeypatch.setitem(FIELDS, "tiling", Field("tiling", "bool", default=False, help="seamless tiles"))
    conn = sqlite3.connect(db_path)
    conn.execute("alter table configs add column tiling integer")
    build(conn)  # as a migration adding a setting column does: the ranking table gains it
    conn.commit()
    conn.close()


def test_a_field_added_to_fields_is_checked_stored_and_sent(tiling, db_path, make_run, fake_provider):
    from sinkin_pipeline.worker import work

    with pytest.raises(SpecError, match="tiling: 'sometimes' – expected true or false"):
        check_spec({"model_id": "m", "prompt": "p", "tiling": "sometimes"})
    make_run(db_path, {"provider": "fake", "model_id": "m", "prompt": "p", "tiling": [True, False]})
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    configs = [dict(r) for r in conn.execute("select * from configs order by id")]
    conn.close()
    assert [c["tiling"] for c in configs] == [1, 0]
    assert build_payload(configs[0])["tiling"] is True
    work(db_path)
    assert sorted(c["payload"]["tiling"] for c in fake_provider.calls["inference"]) == [False, True]
    conn = sqlite3.connect(db_path)
    sent = [json.loads(p)["tiling"] for (p,) in conn.execute("select raw_payload from jobs order by id")]
    conn.close()
    assert sent == [True, False]


@pytest.mark.asyncio
async def test_a_field_added_to_fields_is_shown_and_filtered_in_the_gallery_and_viewer(
    tiling, db_path, make_run, fake_provider
):
    from datasette_sinkin.app import make_datasette
    from sinkin_pipeline.worker import work

    make_run(db_path, {"provider": "fake", "model_id": "m", "prompt": "p", "tiling": [True, False]})
    work(db_path)
    conn = sqlite3.connect(db_path)
    by_tiling = dict(conn.execute("select tiling, image_id from image_table").fetchall())
    conn.close()
    assert set(by_tiling) == {0, 1}
    ds = make_datasette(db_path, "127.0.0.1", 8001)
    page = await ds.client.get("/-/sinkin/runs/1")
    assert page.status_code == 200 and 'name="tiling"' in page.text  # a filter, with its counts
    assert '<option value="1">1 (1)</option>' in page.text and '<option value="0">0 (1)</option>' in page.text
    for value in (0, 1):
        page = await ds.client.get("/-/sinkin/runs/1?tiling={}".format(value))
        assert page.text.count('class="sk-tile"') == 1
        assert 'data-id="{}"'.format(by_tiling[value]) in page.text
        order = (await ds.client.get("/-/sinkin/runs/1/order.json?tiling={}".format(value))).json()
        assert order["ids"] == [by_tiling[value]]
    image = (await ds.client.get("/-/sinkin/images/{}.json".format(by_tiling[1]))).json()["image"]
    assert ["tiling", 1] in image["settings"]  # the viewer's settings list
    viewer = await ds.client.get("/-/sinkin/images/{}".format(by_tiling[1]))
    assert viewer.status_code == 200 and "tiling" in viewer.text
