"""The gallery filters by a provider-declared option (``configs.provider_options``, here a local
provider's ``clip_skip``) and by the init image, with counts like every other filter, and the
insights page's rows and heatmap cells for those axes open the gallery filtered to them."""

import re
import sqlite3

import pytest
from PIL import Image
from test_runform_options import local_provider  # noqa: F401  (a fixture)

from datasette_sinkin.app import make_datasette
from sinkin_pipeline.scoring import score_image
from sinkin_pipeline.worker import work


@pytest.fixture
def lab(db_path, make_run, local_provider):  # noqa: F811
    for name, colour in (("red.png", (200, 30, 30)), ("blue.png", (30, 30, 200))):
        Image.new("RGB", (64, 64), colour).save(db_path.parent / name)
    make_run(
        db_path,
        {
            "provider": "local",
            "model_id": "local_ckpt",
            "prompt": "a lighthouse",
            "seed": 1,
            "clip_skip": [1, 2],
            "init_image": ["red.png", "blue.png"],
        },
    )
    work(db_path)
    conn = sqlite3.connect(db_path)
    images = conn.execute(
        "select i.image_id, json_extract(c.provider_options, '$.clip_skip'), a.filename, a.id "
        "from image_table i join configs c on c.id = i.config_id join assets a on a.id = c.init_asset_id"
    ).fetchall()
    assert len(images) == 4
    for image_id, clip_skip, filename, _ in images:  # scores for insights: clip_skip 2 is better
        score_image(conn, image_id, 2 + 3 * clip_skip + (filename == "red.png"))
    conn.commit()
    conn.close()
    return make_datasette(db_path, "127.0.0.1", 8001), images


def tiles(page):
    return sorted(int(i) for i in re.findall(r'class="sk-tile"[^>]*data-id="(\d+)"', page.text))


@pytest.mark.asyncio
async def test_the_gallery_filters_by_a_provider_option_and_the_init_image(lab):
    ds, images = lab
    red = next(asset for _, _, name, asset in images if name == "red.png")
    page = await ds.client.get("/-/sinkin/runs/1")
    assert page.status_code == 200 and len(tiles(page)) == 4
    # both are filters with their counts; the init image is named and shows its file name
    assert '<select name="clip_skip" class="sk-filter">' in page.text
    assert '<option value="2">2 (2)</option>' in page.text
    assert "<label>init image" in page.text and ">red.png (#{}) (2)</option>".format(red) in page.text
    two = sorted(i for i, clip, _, _ in images if clip == 2)
    page = await ds.client.get("/-/sinkin/runs/1?clip_skip=2")
    assert tiles(page) == two
    order = (await ds.client.get("/-/sinkin/runs/1/order.json?clip_skip=2&sort=oldest")).json()
    assert order["ids"] == two and order["total"] == 2
    both = [i for i, clip, _, asset in images if clip == 2 and asset == red]
    page = await ds.client.get("/-/sinkin/runs/1?clip_skip=2&init_asset_id={}".format(red))
    assert tiles(page) == both
    # the counts follow the other filter: one red image per clip_skip
    assert '<option value="1">1 (1)</option>' in page.text
    assert '<option value="2" selected>2 (1)</option>' in page.text
    # a value no image has, a missing option, and a name that is no setting of the run
    assert tiles(await ds.client.get("/-/sinkin/runs/1?clip_skip=3")) == []
    assert tiles(await ds.client.get("/-/sinkin/runs/1?clip_skip=(none)")) == []
    assert len(tiles(await ds.client.get("/-/sinkin/runs/1?nonsense=1&page_size=2"))) == 4
    # the viewer carries the filter in its order
    viewer = await ds.client.get("/-/sinkin/images/{}?clip_skip=2".format(two[0]))
    assert viewer.status_code == 200 and "clip_skip=2" in viewer.text


@pytest.mark.asyncio
async def test_insights_rows_and_heatmap_cells_of_those_axes_open_the_filtered_gallery(lab):
    ds, images = lab
    page = await ds.client.get("/-/sinkin/runs/1/insights?x=clip_skip&y=init_asset_id")
    assert page.status_code == 200
    hrefs = set(re.findall(r'href="(/-/sinkin/runs/1\?[^"]+)"', page.text))
    red = next(asset for _, _, name, asset in images if name == "red.png")
    assert "/-/sinkin/runs/1?clip_skip=2" in hrefs
    cell = "/-/sinkin/runs/1?clip_skip=2&amp;init_asset_id={}".format(red)
    assert cell in hrefs
    gallery = await ds.client.get(cell.replace("&amp;", "&"))
    assert tiles(gallery) == [i for i, clip, _, asset in images if clip == 2 and asset == red]


@pytest.mark.asyncio
async def test_across_runs_an_option_axis_has_no_broken_link(lab):
    ds, _ = lab
    page = await ds.client.get("/-/sinkin/insights?runs=1,1&x=clip_skip&y=init_asset_id")
    assert page.status_code == 200
    assert "clip_skip=" not in page.text  # the ranking table has no column for a provider option
    assert "init_asset_id=" in page.text  # it has one for the init image
