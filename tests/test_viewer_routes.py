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
