"""The X/Y/Z grid: every image of the run exactly once across the Z pages, score badges, the
"Download grid" PNG (its size, labels and badges), and readable 4xx answers to bad axes."""

import re
import sqlite3
from html import unescape
from io import BytesIO

import pytest
from PIL import Image
from test_insights import build_planted


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from datasette.app import Datasette

    db_path = tmp_path_factory.mktemp("grid") / "lab.db"
    run_id = build_planted(db_path)
    return Datasette([str(db_path)], settings={"default_cache_ttl": 0}), db_path, run_id


def ids_on(html):
    return [int(i) for i in re.findall(r'class="sk-gimg"[^>]*data-id="(\d+)"', html)]


@pytest.mark.asyncio
async def test_every_image_appears_exactly_once_across_z_pages(site):
    ds, db_path, run_id = site
    conn = sqlite3.connect(db_path)
    all_ids = sorted(r[0] for r in conn.execute("select id from images where run_id = ?", [run_id]))
    score_of = dict(conn.execute("select id, score from images"))
    conn.close()
    seen = []
    for zpage in (1, 2):
        response = await ds.client.get(
            "/-/sinkin/runs/{}/grid?x=scheduler&y=seed&z=steps&zpage={}".format(run_id, zpage)
        )
        assert response.status_code == 200
        seen += ids_on(response.text)
        assert response.text.count('<th scope="row">') == 3  # seeds 1, 2, 3 down the left edge
        assert (
            "DDIM</th>" in response.text and "K_EULER</th>" in response.text and "PNDM</th>" in response.text
        )
    assert sorted(seen) == all_ids
    assert len(seen) == len(set(seen)) == 18
    # each image carries its score badge
    page = (await ds.client.get("/-/sinkin/runs/{}/grid?x=scheduler&y=seed&z=steps".format(run_id))).text
    for image_id, badge in re.findall(r'data-id="(\d+)".*?data-score>([^<]*)</span>', page, re.S):
        expected = score_of[int(image_id)]
        assert badge == (str(expected) if expected is not None else "–")
    assert 'aria-current="page"' in page and "zpage=2" in page  # Z tabs


@pytest.mark.asyncio
async def test_defaults_and_images_side_by_side(site):
    ds, _, run_id = site
    response = await ds.client.get("/-/sinkin/runs/{}/grid".format(run_id))
    assert response.status_code == 200
    assert len(ids_on(response.text)) == 18  # no Z: one page holds them all
    # X = scheduler (3 values), Y = steps (2): seeds go last, side by side in a cell
    assert "side by side, by seed" in response.text
    assert "<option selected>scheduler</option>" in response.text.split('id="sk-y"')[0]


@pytest.mark.asyncio
async def test_download_grid_png_has_the_expected_size_labels_and_badges(site):
    from sinkin_pipeline.gridpng import CELL_PAD, GAP, HEAD_H, LABEL_W, TITLE_H

    ds, _, run_id = site
    response = await ds.client.get("/-/sinkin/runs/{}/grid.png?x=scheduler&y=seed".format(run_id))
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert "run-{}-grid-scheduler-seed.png".format(run_id) in response.headers["content-disposition"]
    picture = Image.open(BytesIO(response.content))
    # 3 schedulers across, 3 seeds down, 2 images (steps 20, 35) of 128 px per cell
    cell_w, cell_h = 2 * 128 + GAP + CELL_PAD, 128 + CELL_PAD
    assert picture.size == (LABEL_W + 3 * cell_w, TITLE_H + HEAD_H + 3 * cell_h)
    assert picture.text["X"] == "scheduler: DDIM, K_EULER, PNDM"
    assert picture.text["Y"] == "seed: 1, 2, 3"
    rgb = picture.convert("RGB")

    def dark_pixels(box):
        data = rgb.crop(box).tobytes()
        return sum(1 for i in range(0, len(data), 3) if data[i] + data[i + 1] + data[i + 2] < 384)

    for i in range(3):  # a label drawn above each column and left of each row
        assert dark_pixels((LABEL_W + i * cell_w, TITLE_H, LABEL_W + (i + 1) * cell_w, TITLE_H + HEAD_H)) > 20
        top = TITLE_H + HEAD_H + i * cell_h
        assert dark_pixels((0, top, LABEL_W, top + cell_h)) > 8  # "1" is a thin label
    assert dark_pixels((0, 0, picture.width, TITLE_H)) > 50  # the title line


@pytest.mark.asyncio
async def test_z_page_png_names_the_z_value(site):
    ds, _, run_id = site
    response = await ds.client.get(
        "/-/sinkin/runs/{}/grid.png?x=scheduler&y=seed&z=steps&zpage=2".format(run_id)
    )
    assert response.status_code == 200
    assert Image.open(BytesIO(response.content)).text["Z"] == "steps: 35"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "query, status, message",
    [
        ("?x=nope", 400, "'nope' is not a setting that varies"),
        ("?x=steps&y=steps", 400, "must be different"),
        ("?x=steps&y=seed&z=scheduler&zpage=9", 400, "z page 9 does not exist"),
        ("?x=steps&y=seed&z=scheduler&zpage=x", 400, "z page must be a whole number"),
        ("?y=seed", 400, "choose X before Y"),
    ],
)
async def test_bad_axes_get_a_readable_400(site, query, status, message):
    ds, _, run_id = site
    for path in ("/grid", "/grid.png"):
        response = await ds.client.get("/-/sinkin/runs/{}{}{}".format(run_id, path, query))
        assert response.status_code == status and message in unescape(response.text)


@pytest.mark.asyncio
async def test_missing_run_is_404(site):
    ds, _, _ = site
    assert (await ds.client.get("/-/sinkin/runs/99/grid")).status_code == 404
    assert (await ds.client.get("/-/sinkin/runs/99/grid.png")).status_code == 404


def test_a_page_over_the_limit_is_cut_with_a_note_and_defaults_add_a_z(site, monkeypatch):
    from sinkin_pipeline import grid as grid_module
    from sinkin_pipeline.db import open_db

    _, db_path, run_id = site
    monkeypatch.setattr(grid_module, "PAGE_LIMIT", 10)
    db = open_db(db_path)
    data = grid_module.meta(db, run_id)
    page = grid_module.grid(db, data, "scheduler", "seed")
    assert (page["shown"], page["total"]) == (10, 18)
    assert sum(len(cell) for row in page["rows"] for cell in row) == 10
    # the first 10 in page order: Y (seed), X (scheduler), then the rest (steps), index, id
    conn = sqlite3.connect(db_path)
    expected = [
        r[0]
        for r in conn.execute(
            "select images.id from images join configs on configs.id = images.config_id "
            "where images.run_id = ? order by seed, scheduler, steps, image_index, images.id limit 10",
            [run_id],
        )
    ]
    conn.close()
    assert [image["id"] for row in page["rows"] for cell in row for image in cell] == expected
    assert grid_module.default_axes(data) == ("scheduler", "steps", "seed")
