"""Blind mode: the gallery and the viewer's order shuffled with the review pass's fixed seed, the
settings of an unscored image hidden (gallery captions, viewer panel) until it is scored."""

import re

import pytest
from test_insights import build_planted


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from datasette.app import Datasette

    db_path = tmp_path_factory.mktemp("blind") / "lab.db"
    run_id = build_planted(db_path)
    return Datasette([str(db_path)], settings={"default_cache_ttl": 0}), db_path, run_id


def tile_ids(html):
    return [int(i) for i in re.findall(r'class="sk-tile"[^>]*data-id="(\d+)"', html)]


@pytest.mark.asyncio
async def test_blind_order_is_a_fixed_shuffle_per_pass(site):
    ds, _, run_id = site
    plain = tile_ids((await ds.client.get("/-/sinkin/runs/{}?sort=oldest".format(run_id))).text)
    first = tile_ids((await ds.client.get("/-/sinkin/runs/{}?blind=12345".format(run_id))).text)
    again = tile_ids((await ds.client.get("/-/sinkin/runs/{}?blind=12345".format(run_id))).text)
    other = tile_ids((await ds.client.get("/-/sinkin/runs/{}?blind=777".format(run_id))).text)
    assert sorted(first) == plain and len(plain) == 18
    assert first == again  # the same pass, the same order
    assert first != plain and other != first
    order = (await ds.client.get("/-/sinkin/runs/{}/order.json?blind=12345".format(run_id))).json()
    assert order["ids"] == first  # the viewer walks the same shuffle


@pytest.mark.asyncio
async def test_blind_toggle_starts_a_pass_and_hides_unscored_settings(site):
    ds, db_path, run_id = site
    page = (await ds.client.get("/-/sinkin/runs/{}".format(run_id))).text
    href = re.search(r'id="sk-blind" href="\?blind=(\d+)"', page)
    assert href, "the Blind toggle starts a pass with a seed"
    blind = (await ds.client.get("/-/sinkin/runs/{}?blind={}".format(run_id, href.group(1)))).text
    assert 'class="sk-review sk-gallery sk-blind"' in blind
    assert 'id="sk-blind" href="?" aria-pressed="true"' in blind  # on; turning it off drops the seed
    # tiles link to the viewer within the pass
    assert "?blind={}".format(href.group(1)) in blind.split('class="sk-tile"')[1]
    from sinkin_pipeline.db import open_db

    db = open_db(db_path)
    unscored = db.execute("select id from images where score is null limit 1").fetchone()[0]
    scored = db.execute("select id from images where score is not null limit 1").fetchone()[0]
    db.conn.close()
    viewer = (await ds.client.get("/-/sinkin/images/{}?blind=5".format(unscored))).text
    assert "sk-blind sk-unscored-now" in viewer
    viewer = (await ds.client.get("/-/sinkin/images/{}?blind=5".format(scored))).text
    assert "sk-blind" in viewer and "sk-unscored-now" not in viewer
    normal = (await ds.client.get("/-/sinkin/images/{}".format(unscored))).text
    assert "sk-blind" not in normal


@pytest.mark.asyncio
@pytest.mark.parametrize("value", ["x", "-3", "0", str(2**40)])
async def test_a_bad_blind_seed_is_ignored_not_a_500(site, value):
    ds, _, run_id = site
    response = await ds.client.get("/-/sinkin/runs/{}?blind={}".format(run_id, value))
    assert (
        response.status_code == 200 and "sk-blind" not in response.text.split('data-page="gallery"')[0][-80:]
    )
