"""The gallery's filter menus count what choosing a value would show: the counts follow the other
filters and "unrated only"."""

import re
import sqlite3

import pytest

from datasette_sinkin.app import make_datasette
from sinkin_pipeline.worker import work


def counts(html, key):
    menu = html.split('name="{}"'.format(key))[1].split("</select>")[0]
    return {value: int(n) for value, n in re.findall(r">([^<>]+) \((\d+)\)</option>", menu)}


@pytest.mark.asyncio
async def test_filter_counts_follow_the_other_filters(db_path, make_run):
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
    conn = sqlite3.connect(db_path)
    with conn:  # both images of a fox with DDIM are rated
        conn.execute(
            "update images set score = 7 where config_id in (select id from configs "
            "where prompt = 'a fox' and scheduler = 'DDIM')"
        )
    conn.close()
    ds = make_datasette(db_path, "127.0.0.1", 8001)
    page = (await ds.client.get("/-/sinkin/runs/1")).text
    assert counts(page, "prompt") == {"a fox": 4, "a cat": 4}
    page = (await ds.client.get("/-/sinkin/runs/1?scheduler=DDIM")).text
    assert counts(page, "prompt") == {"a fox": 2, "a cat": 2}
    assert counts(page, "scheduler") == {"DDIM": 4, "KLMS": 4}  # its own filter does not narrow it
    page = (await ds.client.get("/-/sinkin/runs/1?scheduler=DDIM&unrated=1")).text
    assert counts(page, "prompt") == {"a fox": 0, "a cat": 2}
    assert counts(page, "scheduler") == {"DDIM": 2, "KLMS": 4}
    assert page.count('class="sk-tile"') == 2
    page = (await ds.client.get("/-/sinkin/runs/1?prompt=a+cat&seed=1")).text
    assert counts(page, "scheduler") == {"DDIM": 1, "KLMS": 1} and counts(page, "seed") == {"1": 2, "2": 2}
    # the counts are cached per run: a score (here straight into the database, as another process
    # would) shows at once, and so does a new image
    page = (await ds.client.get("/-/sinkin/runs/1?scheduler=KLMS&unrated=1")).text
    assert counts(page, "prompt") == {"a fox": 2, "a cat": 2}
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute(
            "update images set score = 3 where id = (select min(images.id) from images join configs on "
            "configs.id = images.config_id where prompt = 'a cat' and scheduler = 'KLMS')"
        )
    conn.close()
    page = (await ds.client.get("/-/sinkin/runs/1?scheduler=KLMS&unrated=1")).text
    assert counts(page, "prompt") == {"a fox": 2, "a cat": 1}
    assert counts(page, "scheduler") == {"DDIM": 2, "KLMS": 3}
    assert page.count('class="sk-tile"') == 3
    page = (await ds.client.get("/-/sinkin/runs/1?seed=(none)")).text
    assert counts(page, "prompt") == {"a fox": 0, "a cat": 0}
