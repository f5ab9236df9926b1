"""Datasette's streamed CSV of image_table is served by csvfast.py at sqlite3 speed: the bytes and
headers are exactly what Datasette (with our cell re-escaping) sends, tricky cells included, and any
other CSV request still goes to Datasette."""

import csv
import io
import sqlite3

import pytest

from datasette_sinkin import csvfast
from datasette_sinkin.app import make_datasette
from sinkin_pipeline.worker import work

TRICKY = [
    # (column, value) written straight into image_table rows 1..n
    ("prompt", "a fox, in the snow"),
    ("prompt", 'say "cheese"'),
    ("prompt", "two\nlines\r\nhere"),
    ("prompt", '=HYPERLINK("http://x")'),
    ("prompt", "-5"),
    ("prompt", "+1.5e3"),
    ("prompt", "-2+3"),
    ("prompt", "@SUM(A1)"),
    ("prompt", "\tindented"),
    ("prompt", ""),
    ("run_name", None),
    ("model_title", "café ✓"),
    ("scale", 1 / 3),
    ("scale", -0.0),
    ("scale", 1e20),
    ("scale", 0.00001),
    ("scale", 7.5),
    ("score", -3),
    ("score", 6.5),  # a non-integer in an INTEGER column
    ("negative_prompt", "-"),
    ("run_name", "a, b"),
    ("lora", "x\ny"),
    ("model_id", '"quoted"'),
    ("seed", -7),
]
#: values the fast path leaves to Datasette: a blob, text in a numeric column
ODD = [("lora", b"\x00\xffblob"), ("steps", "=1")]
URLS = [
    "image_table.csv?_stream=on",
    "image_table.csv?_stream=on&_size=max",
    "image_table.csv?_stream=1&_nocol=thumbnail&_dl=1",
    "image_table.csv?_stream=on&_nofacet=1&_nocount=1&_size=max&_nocol=thumbnail&_nocol=url",
]


@pytest.fixture(scope="module")
def tricky_db(tmp_path_factory):
    from sinkin_pipeline.db import open_db
    from sinkin_pipeline.runs import create_run
    from sinkin_pipeline.spec import check_spec

    db_path = tmp_path_factory.mktemp("csvfast") / "lab.db"
    db = open_db(db_path)
    spec = {"provider": "simulator", "model_id": "m", "prompt": "a fox", "width": 128, "height": 128}
    create_run(db, check_spec(dict(spec, seed=list(range(len(TRICKY) + 3)))))
    db.conn.close()
    work(db_path, concurrency=2)
    conn = sqlite3.connect(db_path)
    with conn:
        for image_id, (column, value) in enumerate(TRICKY, start=1):
            conn.execute(
                'update image_table set "{}" = ? where image_id = ?'.format(column), [value, image_id]
            )
    conn.close()
    return db_path


async def fetch(ds, url, cookie=None):
    response = await ds.client.get("/lab/" + url, headers={"cookie": cookie} if cookie else {})
    return response.status_code, dict(response.headers), response.content


@pytest.mark.asyncio
@pytest.mark.parametrize("url", URLS)
async def test_the_fast_csv_is_byte_for_byte_datasettes(tricky_db, url, monkeypatch):
    ds = make_datasette(tricky_db, "127.0.0.1", 8001)
    served = []
    real_stream = csvfast.stream

    async def spy(*args):
        served.append(await real_stream(*args))
        return served[-1]

    monkeypatch.setattr(csvfast, "stream", spy)
    python_lines = [0]
    real_line = csvfast._python_line

    def counting(values):
        python_lines[0] += 1
        return real_line(values)

    monkeypatch.setattr(csvfast, "_python_line", counting)
    fast = await fetch(ds, url)
    with_cookie = await fetch(ds, url, cookie="ds_csrftoken=x")
    assert served == [True, True], "the fast path did not answer"
    monkeypatch.setattr(csvfast, "plan", lambda datasette, scope: None)
    slow = await fetch(ds, url)
    assert fast == slow and fast[0] == 200
    assert with_cookie == await fetch(ds, url, cookie="ds_csrftoken=x")
    rows = list(csv.reader(io.StringIO(fast[2].decode(), newline="")))
    assert len(rows) == len(TRICKY) + 4
    assert python_lines[0] <= 2 * (len(TRICKY) + 1)  # two requests; the other rows are written by SQLite
    cells = {cell for row in rows for cell in row}
    assert '\'=HYPERLINK("http://x")' in cells and "'@SUM(A1)" in cells and "'\tindented" in cells
    assert "'-2+3" in cells and "-5" in cells and "+1.5e3" in cells and "a, b" in cells and "-7" in cells
    assert not any(cell.startswith(("=", "@", "\t")) or cell.startswith("-2") for cell in cells)


@pytest.mark.asyncio
async def test_other_csv_requests_still_go_to_datasette_and_are_escaped(tricky_db, monkeypatch):
    ds = make_datasette(tricky_db, "127.0.0.1", 8001)

    async def refuse(*args):
        raise AssertionError("served by the fast path")

    monkeypatch.setattr(csvfast, "stream", refuse)
    for url in (
        "image_table.csv",
        "image_table.csv?_stream=on&prompt__startswith=%40",
        "image_table.csv?_stream=on&_sort=score",
        "image_table.csv?_stream=on&_col=prompt",
        "image_table.csv?_stream=on&_size=0",
    ):
        status, _, body = await fetch(ds, url)
        assert status in (200, 400), url
        assert b"\n@SUM" not in body and b",@SUM" not in body
    status, _, body = await fetch(ds, "image_table.csv?_stream=on&prompt__startswith=%40")
    assert status == 200 and b"'@SUM(A1)" in body


@pytest.mark.asyncio
@pytest.mark.parametrize("column, value", ODD)
async def test_a_blob_or_text_in_a_numeric_column_is_left_to_datasette(
    tricky_db, tmp_path, column, value, monkeypatch
):
    import shutil

    db_path = tmp_path / "lab.db"
    shutil.copy(tricky_db, db_path)
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute('update image_table set "{}" = ? where image_id = 2'.format(column), [value])
    conn.close()
    ds = make_datasette(db_path, "127.0.0.1", 8001)
    served = []
    real_stream = csvfast.stream

    async def spy(*args):
        served.append(await real_stream(*args))
        return served[-1]

    monkeypatch.setattr(csvfast, "stream", spy)
    status, _, body = await fetch(ds, "image_table.csv?_stream=on")
    assert served == [False] and status == 200
    if column == "steps":
        assert b",'=1," in body
