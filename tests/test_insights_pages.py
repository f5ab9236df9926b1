"""The insights pages and their JSON, served by Datasette on a run with planted scores; bad
requests get a 4xx with a readable message."""

import html
import json

import pytest
from test_insights import build_planted


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from datasette.app import Datasette

    db_path = tmp_path_factory.mktemp("insights-pages") / "lab.db"
    run_id = build_planted(db_path)
    return Datasette([str(db_path)], settings={"default_cache_ttl": 0}), db_path, run_id


@pytest.mark.asyncio
async def test_json_is_what_the_cli_prints(site):
    from sinkin_pipeline.db import open_db
    from sinkin_pipeline.insights import insights

    ds, db_path, run_id = site
    response = await ds.client.get("/-/sinkin/runs/{}/insights.json".format(run_id))
    assert response.status_code == 200
    body = response.json()
    expected = json.loads(json.dumps(insights(open_db(db_path), run_id)))
    assert {k: body[k] for k in expected} == expected
    assert body["heatmap"]["x"] == body["axes"][0]["axis"]


@pytest.mark.asyncio
async def test_page_shows_summary_charts_intervals_and_heatmap_links(site):
    ds, _, run_id = site
    response = await ds.client.get("/-/sinkin/runs/{}/insights?x=scheduler&y=steps".format(run_id))
    assert response.status_code == 200
    html = response.text
    assert "scheduler matters most: DDIM 7.7 (6.2–9.1) vs K_EULER 5.3 (4.2–6.4), 6 pairs" in html
    assert html.count('<svg class="sk-bar"') == 3 + 2 + 3  # one bar per value of each axis
    assert "too few ratings" in html  # PNDM has one rating
    assert "−2.3 (−2.9 to −1.8), 6 pairs" in html  # K_EULER vs DDIM, paired
    # a heatmap cell opens the gallery filtered to it
    assert 'href="/-/sinkin/runs/{}?scheduler=DDIM&amp;steps=35"'.format(run_id) in html
    assert "/-/sinkin/runs/{}/grid".format(run_id) in html
    assert "cdn" not in html.lower() and "https://" not in html.split("<footer")[0].split("</header>")[-1]


@pytest.mark.asyncio
async def test_across_runs_and_normalised(site):
    ds, _, run_id = site
    response = await ds.client.get("/-/sinkin/insights.json?runs={}&normalize=prompt".format(run_id))
    assert response.status_code == 200 and response.json()["normalize"] == "prompt"
    page = await ds.client.get("/-/sinkin/insights?runs={}".format(run_id))
    assert page.status_code == 200 and "runs {}".format(run_id) in page.text
    assert "run_id__in={}".format(run_id) in page.text  # cells open Datasette's table across runs


@pytest.mark.asyncio
async def test_choosing_runs_and_the_links_that_lead_here(site):
    ds, _, run_id = site
    chooser = await ds.client.get("/-/sinkin/insights")
    assert chooser.status_code == 200
    assert 'name="runs" value="{}"'.format(run_id) in chooser.text
    # the chooser's form sends ?runs=1&runs=3 without JavaScript
    both = await ds.client.get("/-/sinkin/insights.json?runs={0}&runs={0}".format(run_id))
    assert both.status_code == 200 and both.json()["run_ids"] == [run_id]
    insights = "/-/sinkin/runs/{}/insights".format(run_id)
    assert insights in (await ds.client.get("/-/sinkin/runs/{}".format(run_id))).text  # gallery header
    assert insights in (await ds.client.get("/-/sinkin/images/1")).text  # viewer
    menu = await ds.client.get("/-/sinkin")
    assert "/-/sinkin/insights" in menu.text  # Datasette's menu
    dashboard_js = await ds.client.get("/-/sinkin/static/dashboard.js")
    assert "/insights`" in dashboard_js.text  # each run row of the dashboard


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "path, status, message",
    [
        ("/-/sinkin/runs/99/insights.json", 404, "run 99 not found"),
        ("/-/sinkin/runs/99/insights", 404, "run 99 not found"),
        ("/-/sinkin/insights.json?runs=1,x", 400, "'x' is not a run id"),
        ("/-/sinkin/insights.json", 400, "choose the runs"),
        ("/-/sinkin/insights.json?runs=1,99", 404, "run 99 not found"),
        ("/-/sinkin/runs/1/insights.json?normalize=seed", 400, "normalize: expected 'prompt'"),
        ("/-/sinkin/runs/1/insights.json?x=nope", 400, "'nope' is not a setting that varies"),
        ("/-/sinkin/runs/1/insights?x=steps&y=steps", 400, "two different settings"),
    ],
)
async def test_bad_requests_get_a_readable_4xx(site, path, status, message):
    ds, _, _ = site
    response = await ds.client.get(path)
    assert response.status_code == status
    assert message in html.unescape(response.text)
    if not path.split("?")[0].endswith(".json"):  # Datasette's own error page, not a bare one
        assert "<title>Error {}</title>".format(status) in response.text
