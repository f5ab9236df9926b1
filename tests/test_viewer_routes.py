"""The viewer's routes: where Esc goes back to (the grid it was opened from, checked), and blind
mode (no setting of an unscored image in any response the gallery or viewer fetches)."""

import json
import re

import pytest
from test_insights import build_planted


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from datasette.app import Datasette

    db_path = tmp_path_factory.mktemp("viewer-routes") / "lab.db"
    run_id = build_planted(db_path)
    return Datasette([str(db_path)], settings={"default_cache_ttl": 0}), db_path, run_id


def back_link(html):
    return re.search(r'<a id="sk-back" href="([^"]*)"', html).group(1)


@pytest.mark.asyncio
async def test_the_grid_links_to_the_viewer_which_links_back_to_the_same_grid_page(site):
    ds, _, run_id = site
    grid = (
        await ds.client.get("/-/sinkin/runs/{}/grid?x=scheduler&y=seed&z=steps&zpage=2".format(run_id))
    ).text
    href = re.search(r'class="sk-gimg" href="([^"]*)" data-id="(\d+)"', grid)
    assert href.group(1).endswith("?grid=x%3Dscheduler%26y%3Dseed%26z%3Dsteps%26zpage%3D2")
    viewer = (await ds.client.get(href.group(1).replace("&amp;", "&"))).text
    assert back_link(
        viewer
    ) == "/-/sinkin/runs/{}/grid?x=scheduler&amp;y=seed&amp;z=steps&amp;zpage=2#img-{}".format(
        run_id, href.group(2)
    )
    boot = json.loads(re.search(r'id="sk-boot">(.*?)</script>', viewer).group(1))
    assert boot["grid"] == "x=scheduler&y=seed&z=steps&zpage=2"  # the script's Esc goes there too
    plain = (await ds.client.get("/-/sinkin/images/{}?sort=oldest".format(href.group(2)))).text
    assert back_link(plain) == "/-/sinkin/runs/{}?sort=oldest".format(run_id)


@pytest.mark.asyncio
async def test_a_forged_grid_return_keeps_only_axes_and_the_page(site):
    ds, _, run_id = site
    forged = "x%3Dscheduler%26x%3D%22%3E%3Cscript%3E%26zpage%3D-1%26next%3Dhttps%3A%2F%2Fevil.example"
    response = await ds.client.get("/-/sinkin/images/1?grid=" + forged)
    assert response.status_code == 200
    assert back_link(response.text) == "/-/sinkin/runs/{}/grid?x=scheduler#img-1".format(run_id)
    assert "evil.example" not in response.text and "<script>" not in response.text.split("sk-boot")[1][:400]


#: what would tell an unscored image's settings in the planted run (values, keys, the A1111 line)
SECRETS = ("a fox", "4zdwGOB", "DDIM", "K_EULER", "PNDM", "simulator://", "Steps:")
SETTING_KEYS = (
    "prompt",
    "model_id",
    "scheduler",
    "steps",
    "scale",
    "seed",
    "lora",
    "config_id",
    "inf_id",
    "url",
)


def unscored_and_scored(db_path):
    from sinkin_pipeline.db import open_db

    db = open_db(db_path)
    try:
        unscored = [r[0] for r in db.execute("select id from images where score is null order by id")]
        scored = db.execute("select id from images where score is not null limit 1").fetchone()[0]
    finally:
        db.conn.close()
    return unscored, scored


def assert_tells_nothing(text, where):
    for secret in SECRETS:
        assert secret not in text, (where, secret)


@pytest.mark.asyncio
async def test_blind_mode_sends_no_setting_of_an_unscored_image(site):
    ds, db_path, run_id = site
    unscored, scored = unscored_and_scored(db_path)
    for image_id in unscored:
        response = await ds.client.get("/-/sinkin/images/{}.json?blind=7".format(image_id))
        image = response.json()["image"]
        assert_tells_nothing(response.text, "image.json")
        assert not set(SETTING_KEYS) & set(image), image
        assert image["hidden"] is True and image["settings"] == [] and image["a1111"] is None
        assert image["full_url"] == "/-/sinkin/images/{}/full".format(image_id)  # the picture itself
        extras = await ds.client.get("/-/sinkin/images/{}/extras.json?blind=7".format(image_id))
        assert extras.status_code == 200 and extras.json()["init_image"] is None
        assert_tells_nothing(extras.text, "extras.json")
        viewer = await ds.client.get("/-/sinkin/images/{}?blind=7".format(image_id))
        assert_tells_nothing(viewer.text, "viewer page")
        assert '<a id="sk-remix" class="sk-button" aria-disabled="true"' in viewer.text
        assert re.search(r'<button type="button" id="sk-copy" disabled', viewer.text)
    order = await ds.client.get("/-/sinkin/runs/{}/order.json?blind=7&around={}".format(run_id, unscored[0]))
    assert_tells_nothing(order.text, "order.json")
    assert set(order.json()) == {"ok", "run_id", "ids", "offset", "index", "total", "scores", "progress"}
    # the gallery: no caption, prompt, tooltip or filter menu tells an unscored tile's settings,
    # and a filter on a setting (it would tell every shown image's value) is not applied
    gallery = (await ds.client.get("/-/sinkin/runs/{}?blind=7&scheduler=DDIM".format(run_id))).text
    assert 'class="sk-filter"' not in gallery
    tiles = dict(re.findall(r'<li id="img-(\d+)">(.*?)</li>', gallery, re.S))
    assert len(tiles) == 18
    for image_id in unscored:
        assert_tells_nothing(tiles[str(image_id)], "gallery tile")
    assert "DDIM" in tiles[str(scored)] or "K_EULER" in tiles[str(scored)] or "PNDM" in tiles[str(scored)]


@pytest.mark.asyncio
async def test_blind_mode_shows_a_scored_image_and_normal_mode_shows_all(site):
    ds, db_path, _ = site
    unscored, scored = unscored_and_scored(db_path)
    image = (await ds.client.get("/-/sinkin/images/{}.json?blind=7".format(scored))).json()["image"]
    assert image["prompt"] == "a fox" and image["a1111"].startswith("a fox") and "hidden" not in image
    image = (await ds.client.get("/-/sinkin/images/{}.json".format(unscored[0]))).json()["image"]
    assert image["prompt"] == "a fox" and image["scheduler"] in ("DDIM", "K_EULER", "PNDM")
    viewer = (await ds.client.get("/-/sinkin/images/{}?blind=7".format(scored))).text
    assert "a fox" in viewer and 'href="/-/sinkin/new?image={}"'.format(scored) in viewer


@pytest.mark.asyncio
async def test_an_upscale_in_blind_mode_answers_without_the_settings_of_an_unscored_image(site):
    ds, db_path, _ = site
    unscored, _ = unscored_and_scored(db_path)
    token = (await ds.client.get("/-/sinkin")).cookies["ds_csrftoken"]
    headers = {"content-type": "application/json", "x-csrftoken": token, "cookie": "ds_csrftoken=" + token}
    body = json.dumps({"type": "esrgan", "scale": 2})
    response = await ds.client.post(
        "/-/sinkin/images/{}/upscale.json?blind=7".format(unscored[-1]), content=body, headers=headers
    )
    assert response.status_code == 200, response.text
    image = response.json()["image"]
    assert image["hidden"] is True and image["upscale_url_local"]  # the upscale is there to compare
    assert_tells_nothing(response.text, "upscale.json")
    assert not set(SETTING_KEYS) & set(image), image


@pytest.mark.asyncio
async def test_opened_from_the_grid_the_viewer_walks_that_grid_page_in_reading_order(site):
    ds, _, run_id = site
    grid_page = (
        await ds.client.get("/-/sinkin/runs/{}/grid?x=scheduler&y=seed&z=steps&zpage=2".format(run_id))
    ).text
    on_page = [int(i) for i in re.findall(r'class="sk-gimg" href="[^"]*" data-id="(\d+)"', grid_page)]
    assert len(on_page) > 2
    order = (
        await ds.client.get(
            "/-/sinkin/runs/{}/order.json".format(run_id),
            params={"grid": "x=scheduler&y=seed&z=steps&zpage=2", "around": on_page[1]},
        )
    ).json()
    assert order["ids"] == on_page and order["total"] == len(on_page)  # the grid's rows, then columns
    assert order["index"] == 1
    gallery = (
        await ds.client.get("/-/sinkin/runs/{}/order.json".format(run_id), params={"around": on_page[1]})
    ).json()
    assert gallery["total"] > len(on_page)  # without it: the whole run in the gallery's order
    # a grid the run cannot draw (an axis it does not vary) falls back to the gallery's order
    fallback = (
        await ds.client.get(
            "/-/sinkin/runs/{}/order.json".format(run_id),
            params={"grid": "x=lora&y=seed", "around": on_page[1]},
        )
    ).json()
    assert fallback["total"] == gallery["total"]
