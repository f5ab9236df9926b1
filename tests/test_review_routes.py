"""The review app's routes through datasette.client: pages, image files, JSON reads, score and
upscale writes, bad input, and the cross-site / token / Origin / Host protections."""

import re
import sqlite3

import pytest

from datasette_sinkin.app import make_datasette
from sinkin_pipeline.worker import work


@pytest.fixture
def review(db_path, make_run):
    make_run(
        db_path,
        {
            "provider": "simulator",
            "model_id": "4zdwGOB",
            "prompt": ["a fox", "a cat"],
            "scheduler": ["DDIM", "KLMS"],
            "seed": [1, 2],
            "width": 128,
            "height": 128,
            "steps": 5,
        },
    )
    work(db_path)
    return make_datasette(db_path, "127.0.0.1", 8001), db_path


def scores(db_path):
    conn = sqlite3.connect(db_path)
    try:
        return dict(conn.execute("select id, score from images").fetchall())
    finally:
        conn.close()


def upscale_jobs(db_path):
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("select count(*) from jobs where kind = 'upscale'").fetchone()[0]
    finally:
        conn.close()


async def token_for(ds):
    page = await ds.client.get("/-/sinkin/images/1")
    assert page.status_code == 200
    return page.cookies["ds_csrftoken"]


async def post(ds, path, data, token, **headers):
    sent = {"content-type": "application/json", "x-csrftoken": token, "cookie": "ds_csrftoken=" + token}
    sent.update(headers)
    import json

    return await ds.client.post(path, content=json.dumps(data), headers=sent)


@pytest.mark.asyncio
async def test_gallery_filters_sorts_and_unrated(review):
    ds, db_path = review
    page = await ds.client.get("/-/sinkin/runs/1")
    assert page.status_code == 200 and page.text.count('class="sk-tile"') == 8
    assert "Unrated only" in page.text and 'name="scheduler"' in page.text
    page = await ds.client.get("/-/sinkin/runs/1?scheduler=DDIM")
    assert page.text.count('class="sk-tile"') == 4
    order = (await ds.client.get("/-/sinkin/runs/1/order.json?scheduler=KLMS&sort=oldest")).json()
    assert len(order["ids"]) == 4 and order["ids"] == sorted(order["ids"])
    assert (await ds.client.get("/-/sinkin/runs/99")).status_code == 404


@pytest.mark.asyncio
async def test_captions_show_exactly_the_settings_that_vary(review, make_run):
    import html
    import re

    ds, db_path = review
    long_neg = "blurry, low quality, watermark, signature, jpeg artifacts, extra fingers, deformed hands"
    make_run(
        db_path,
        {
            "provider": "simulator",
            "model_id": ["4zdwGOB", "r2La2w2"],
            "prompt": "a fox",
            "negative_prompt": ["", long_neg],
            "seed": [1],
            "width": 128,
            "height": 128,
            "steps": 5,
        },
    )
    work(db_path)
    captions = lambda text: [
        html.unescape(c) for c in re.findall(r'<span class="sk-caption" title="([^"]*)"', text)
    ]
    page = await ds.client.get("/-/sinkin/runs/1")
    assert sorted(captions(page.text)) == [
        "prompt {} · seed {} · scheduler {}".format(p, seed, sch)
        for p in ("a cat", "a fox")
        for seed in (1, 2)
        for sch in ("DDIM", "KLMS")
    ]
    page = await ds.client.get("/-/sinkin/runs/2")
    shown = captions(page.text)
    assert len(shown) == 4 and "model_id r2La2w2 · negative_prompt " + long_neg in shown
    assert "model_id 4zdwGOB · negative_prompt (none)" in shown
    grid = page.text.split('id="sk-grid"')[1].split("</ul>")[0]
    assert "…" not in grid and "..." not in grid
    assert long_neg in page.text.split('id="sk-filters"')[1].split("</form>")[0]  # the filter's option, whole
    info = (await ds.client.get("/-/sinkin/images/9.json")).json()["image"]
    assert info["varying"] == ["model_id", "negative_prompt"] and info["label"] in shown


@pytest.mark.asyncio
async def test_order_carries_scores_and_the_runs_progress_and_unrated_runs_are_listed(review, make_run):
    ds, db_path = review
    make_run(
        db_path,
        {
            "name": "other",
            "provider": "simulator",
            "model_id": "4zdwGOB",
            "prompt": "a hen",
            "seed": [1, 2, 3],
            "width": 128,
            "height": 128,
            "steps": 5,
        },
    )
    work(db_path)
    conn = sqlite3.connect(db_path)
    conn.execute("update images set score = 6 where id in (2, 5)")
    conn.commit()
    order = (await ds.client.get("/-/sinkin/runs/1/order.json?sort=oldest&unrated=1&around=3")).json()
    assert order["ids"] == [1, 3, 4, 6, 7, 8] and order["scores"] == [None] * 6 and order["index"] == 1
    assert order["progress"] == {"total": 8, "rated": 2}
    order = (await ds.client.get("/-/sinkin/runs/1/order.json?sort=oldest&around=2&span=1")).json()
    assert order["ids"] == [1, 2, 3] and order["scores"] == [None, 6, None]
    runs = (await ds.client.get("/-/sinkin/unrated.json")).json()["runs"]
    assert [(r["run_id"], r["name"], r["unrated"], r["first_image"]) for r in runs] == [
        (1, runs[0]["name"], 6, 1),
        (2, "other", 3, 9),
    ]


@pytest.mark.asyncio
async def test_viewer_image_files_and_json(review):
    ds, _ = review
    page = await ds.client.get("/-/sinkin/images/3?unrated=1")
    assert page.status_code == 200 and 'id="sk-boot"' in page.text and 'name="csrftoken"' in page.text
    info = (await ds.client.get("/-/sinkin/images/3.json")).json()["image"]
    assert info["image_id"] == 3 and info["full_url"] == "/-/sinkin/images/3/full"
    assert ["scheduler", info["scheduler"]] in info["settings"]
    full = await ds.client.get("/-/sinkin/images/3/full")
    assert (
        full.status_code == 200
        and full.headers["content-type"] == "image/png"
        and full.content[:4] == b"\x89PNG"
    )
    thumb = await ds.client.get("/-/sinkin/images/3/thumb")
    assert thumb.headers["content-type"] == "image/jpeg" and thumb.content[6:10] == b"JFIF"
    assert (await ds.client.get("/-/sinkin/images/3/upscale")).status_code == 404
    assert (await ds.client.get("/-/sinkin/images/999/full")).status_code == 404
    assert (await ds.client.get("/-/sinkin/images/999.json")).status_code == 404


@pytest.mark.asyncio
async def test_a_path_outside_the_media_folder_is_never_served(review):
    ds, db_path = review
    conn = sqlite3.connect(db_path)
    conn.execute("update images set path = '../../../etc/passwd' where id = 1")
    conn.commit()
    conn.close()
    assert (await ds.client.get("/-/sinkin/images/1/full")).status_code == 404


@pytest.mark.asyncio
async def test_score_saves_clears_and_refuses_bad_input(review):
    ds, db_path = review
    token = await token_for(ds)
    r = await post(ds, "/-/sinkin/images/2/score.json", {"score": 10}, token)
    assert r.status_code == 200 and r.json()["score"] == 10 and scores(db_path)[2] == 10
    for bad, status in [({"score": 11}, 400), ({"score": 0}, 400), ({"score": "x"}, 400), ({}, 400)]:
        r = await post(ds, "/-/sinkin/images/2/score.json", bad, token)
        assert r.status_code == status and r.json()["ok"] is False and r.json()["error"]
    r = await post(ds, "/-/sinkin/images/999/score.json", {"score": 5}, token)
    assert r.status_code == 404 and "image 999 not found" in r.json()["error"]
    r = await ds.client.post(
        "/-/sinkin/images/2/score.json",
        content=b"{not json",
        headers={"content-type": "application/json", "x-csrftoken": token, "cookie": "ds_csrftoken=" + token},
    )
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    assert scores(db_path)[2] == 10
    r = await post(ds, "/-/sinkin/images/2/score.json", {"score": None}, token)
    assert r.status_code == 200 and scores(db_path)[2] is None


@pytest.mark.asyncio
async def test_upscale_from_the_viewer_and_its_bad_input(review):
    ds, db_path = review
    token = await token_for(ds)
    r = await post(ds, "/-/sinkin/images/1/upscale.json", {"type": "esrgan", "scale": 5}, token)
    assert r.status_code == 400 and "scale must be from 2 to 4" in r.json()["error"]
    r = await post(ds, "/-/sinkin/images/999/upscale.json", {"type": "esrgan"}, token)
    assert r.status_code == 404
    r = await post(ds, "/-/sinkin/images/1/upscale.json", {"type": "waifu"}, token)
    assert r.status_code == 400
    assert upscale_jobs(db_path) == 0
    r = await post(ds, "/-/sinkin/images/1/upscale.json", {"type": "esrgan", "scale": 2}, token)
    assert r.status_code == 200
    image = r.json()["image"]
    assert image["upscale_type"] == "esrgan" and image["upscale_url_local"] == "/-/sinkin/images/1/upscale"
    up = await ds.client.get("/-/sinkin/images/1/upscale")
    assert up.status_code == 200 and up.content[:4] == b"\x89PNG"


@pytest.mark.asyncio
async def test_a_refused_upscale_shows_sinkins_message(db_path, make_run, fake_provider):
    from sinkin_pipeline.providers import ServiceError

    make_run(db_path, {"provider": "fake", "model_id": "m", "prompt": "a fox"})
    work(db_path)
    ds = make_datasette(db_path, "127.0.0.1", 8001)
    token = await token_for(ds)
    fake_provider.script["upscale"] = [ServiceError("Not enough credits")]
    r = await post(ds, "/-/sinkin/images/1/upscale.json", {"type": "esrgan"}, token)
    assert r.status_code == 502 and "Not enough credits" in r.json()["error"]


WRITES = [
    ("/-/sinkin/images/1/score.json", {"score": 3}),
    ("/-/sinkin/images/1/upscale.json", {"type": "esrgan"}),
]


@pytest.mark.asyncio
@pytest.mark.parametrize("path,data", WRITES)
async def test_cookieless_cross_site_form_post_is_refused(review, path, data):
    ds, db_path = review
    before = scores(db_path)
    r = await ds.client.post(
        path,
        content=b"score=3&type=esrgan",
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "sec-fetch-site": "cross-site",
            "origin": "http://evil.example",
        },
    )
    assert r.status_code == 403
    r = await ds.client.post(
        path, content=b"score=3", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 403  # not JSON, even without the browser headers
    assert scores(db_path) == before and upscale_jobs(db_path) == 0


@pytest.mark.asyncio
@pytest.mark.parametrize("path,data", WRITES)
async def test_json_without_the_token_is_refused(review, path, data):
    ds, db_path = review
    before = scores(db_path)
    r = await ds.client.post(path, json=data)
    assert r.status_code == 403 and "X-CSRFToken" in r.json()["error"]
    assert scores(db_path) == before and upscale_jobs(db_path) == 0


@pytest.mark.asyncio
@pytest.mark.parametrize("path,data", WRITES)
async def test_foreign_origin_and_cross_site_fetch_are_refused(review, path, data):
    ds, db_path = review
    token = await token_for(ds)
    before = scores(db_path)
    r = await post(ds, path, data, token, origin="http://evil.example")
    assert r.status_code == 403 and "foreign origin" in r.json()["error"]
    r = await post(ds, path, data, token, **{"sec-fetch-site": "cross-site"})
    assert r.status_code == 403
    assert scores(db_path) == before and upscale_jobs(db_path) == 0


@pytest.mark.asyncio
@pytest.mark.parametrize("path,data", WRITES)
async def test_a_rebinding_host_is_refused(review, path, data):
    ds, db_path = review
    token = await token_for(ds)
    before = scores(db_path)
    r = await post(ds, path, data, token, host="attacker.example:8001")
    assert r.status_code == 403 and "Host" in r.json()["error"]
    r = await ds.client.get("/-/sinkin/runs/1", headers={"host": "attacker.example:8001"})
    assert r.status_code == 403
    assert scores(db_path) == before and upscale_jobs(db_path) == 0


@pytest.mark.asyncio
async def test_ranking_table_canned_queries_and_csv_export(review):
    ds, db_path = review
    name = db_path.stem
    page = await ds.client.get("/{}/image_table".format(name))
    assert page.status_code == 200
    # previews are lazily loaded pictures from the thumbnail route, not inlined base64
    thumbs = re.findall(r'<img class="sk-cell-thumb" src="(/-/sinkin/images/\d+/thumb)"', page.text)
    assert len(thumbs) == 8 and "data:image/jpeg;base64" not in page.text
    thumb = await ds.client.get(thumbs[0])
    assert thumb.status_code == 200 and thumb.content[:3] == b"\xff\xd8\xff"
    assert "Ranking table" in page.text
    home = await ds.client.get("/")
    assert 'href="/{}/image_table">Ranking table'.format(name) in home.text
    for query in ("best_settings", "top_images", "unrated_per_run"):
        assert (await ds.client.get("/{}/{}".format(name, query))).status_code == 200
    best = (await ds.client.get("/{}/best_settings.json?_shape=array".format(name))).json()
    assert {"setting", "value", "images", "rated", "mean_score", "spread"} <= set(best[0])
    csv = await ds.client.get("/{}/image_table.csv?_stream=on&_nocol=thumbnail&_dl=1".format(name))
    assert (
        csv.status_code == 200
        and len(csv.text.strip().splitlines()) == 9
        and "thumbnail" not in csv.text.splitlines()[0]
    )


@pytest.mark.asyncio
async def test_export_csv_action_streams_every_row(review):
    ds, db_path = review
    page = await ds.client.get("/{}/image_table".format(db_path.stem))
    assert "Export CSV (these rows, every page" in page.text
    assert 'href="/-/sinkin/export/image_table.csv?_nocol=thumbnail"' in page.text
    csv = await ds.client.get("/-/sinkin/export/image_table.csv?_nocol=thumbnail")
    lines = csv.text.strip().splitlines()
    assert csv.status_code == 200 and len(lines) == 9 and lines[0].startswith("image_id,score,run_id")
    assert csv.headers["content-disposition"] == 'attachment; filename="image_table.csv"'


@pytest.mark.asyncio
async def test_an_oversized_body_is_refused_unread(review):
    ds, db_path = review
    token = await token_for(ds)
    before = scores(db_path)
    r = await post(
        ds, "/-/sinkin/images/1/score.json", {"score": 3, "padding": "x" * (2 * 1024 * 1024)}, token
    )
    assert r.status_code == 413 and "larger than" in r.json()["error"]
    assert scores(db_path) == before


@pytest.mark.asyncio
async def test_a_facet_is_shown_once_and_thumbnails_open_the_viewer(review):
    ds, db_path = review
    table = "/{}/image_table".format(db_path.stem)
    for query in ("?_facet=scale", "?_facet=scale&_facet=scale", "?_facet=seed&_facet=seed&_sort=score"):
        page = await ds.client.get(table + query)
        assert page.status_code == 200
        for column in ("scale", "seed") if "seed" in query else ("scale",):
            assert page.text.count('data-column="{}">'.format(column)) <= 2  # the header cell and the facet
            assert page.text.count('id="facet-{}"'.format(column)) == 1, (query, column)
    data = (await ds.client.get(table + ".json?_facet=steps&_facet=steps&_shape=objects")).json()
    assert list(data["facet_results"]).count("steps") == 1 and "steps_2" not in data["facet_results"]
    page = await ds.client.get(table)
    assert re.search(
        r'<a class="sk-cell-view" href="/-/sinkin/images/(\d+)"[^>]*><img class="sk-cell-thumb" '
        r'src="/-/sinkin/images/\1/thumb"',
        page.text,
    )
