"""Every CSV the app offers is complete and safe to open in a spreadsheet.

* ``/-/sinkin/export/<table>.csv?<the table page's query string>``: one streamed CSV of a table or
  view of the SinkIn database, honouring the page's filters (``col=value``, ``col__gte=…``,
  ``_where``, ``_search``…, through Datasette's own filter code), its sort, and ``_col`` /
  ``_nocol``; cells escaped with :func:`sinkin_pipeline.export.escape_cell` exactly as
  ``sinkin export`` does. It reads one cursor in a thread (no paging), so it keeps pace with
  ``sqlite3 -csv``. The "Export CSV" action of a table page links here with that page's filters.
* Datasette's own ``.csv`` pages (tables, views, SQL and canned queries) are re-escaped as they
  stream out (:func:`escape_datasette_csv`), so the same cells are escaped there too; the plain
  streamed CSV of the whole ``image_table`` is written by :mod:`datasette_sinkin.csvfast` instead,
  byte for byte the same, at ``sqlite3 -csv`` speed.
"""

import asyncio
import re
import sqlite3
import time
from urllib.parse import quote

from datasette.utils import escape_sqlite
from datasette.utils.asgi import BadRequest, NotFound

from sinkin_pipeline.export import escaped_sql

from .appdb import database_name, database_path

#: how long the export's query may run before it is stopped
EXPORT_TIME_LIMIT = 120.0
ROUTE = r"^/-/sinkin/export/(?P<table>[^/]+)\.csv$"


def routes():
    return [(ROUTE, export_view)]


def export_url(datasette, table, query_string=""):
    """The export link for ``table``, carrying a table page's query string (minus paging)."""
    from urllib.parse import parse_qsl, urlencode

    args = [
        (k, v)
        for k, v in parse_qsl(query_string, keep_blank_values=True)
        if k not in ("_next", "_size", "_facet", "_stream", "_dl", "_labels")
    ]
    if table == "image_table" and not any(k in ("_col", "_nocol") for k, _ in args):
        args.append(("_nocol", "thumbnail"))  # a link to a picture: as `sinkin export`, left out
    url = datasette.urls.path("/-/sinkin/export/{}.csv".format(quote(table, safe="")))
    return url + ("?" + urlencode(args) if args else "")


async def _filters(datasette, request, database, table):
    """``(where clauses, params)`` from the request, as Datasette's table page builds them."""
    from datasette.filters import Filters
    from datasette.plugins import pm
    from datasette.utils import await_me_maybe

    pairs = [
        (k, v)
        for k in request.args
        if not (k.startswith("_") and "__" not in k)
        for v in request.args.getlist(k)
    ]
    where, params = Filters(sorted(pairs)).build_where_clauses(table)
    for hook in pm.hook.filters_from_request(
        request=request, table=table, database=database, datasette=datasette
    ):
        extra = await await_me_maybe(hook)
        if extra:
            where.extend(extra.where_clauses)
            params.update(extra.params)
    return where, params


def _order(request, metadata, columns):
    sort, sort_desc = request.args.get("_sort"), request.args.get("_sort_desc")
    if not sort and not sort_desc:
        sort, sort_desc = metadata.get("sort"), metadata.get("sort_desc")
    for name in (sort, sort_desc):
        if name and name not in columns:
            raise BadRequest("cannot sort by {!r}: no such column".format(name))
    if sort_desc:
        return " order by {} desc".format(escape_sqlite(sort_desc))
    if sort:
        return " order by {}".format(escape_sqlite(sort))
    return ""


def _select(column):
    """One column of the export: escaped by SQLite (:func:`escaped_sql`); blobs left out."""
    quoted = '"{}"'.format(column.replace('"', '""'))
    return "case when typeof({0}) = 'blob' then null else {1} end as {0}".format(
        quoted, escaped_sql(column.replace('"', '""'))
    )


async def build_query(datasette, request, table):
    """``(sql, params, columns)`` for exporting ``table`` the way ``request`` filters it."""
    name = database_name(datasette)
    db = datasette.get_database(name)
    if not (await db.table_exists(table) or table in await db.view_names()):
        raise NotFound("no table or view {!r} in the SinkIn database".format(table))
    all_columns = await db.table_columns(table)
    columns = request.args.getlist("_col") or all_columns
    unknown = [c for c in columns + request.args.getlist("_nocol") if c not in all_columns]
    if unknown:
        raise BadRequest("no such column: {}".format(", ".join(unknown)))
    columns = [c for c in columns if c not in request.args.getlist("_nocol")]
    where, params = await _filters(datasette, request, name, table)
    sql = "select {} from {}{}{}".format(
        ", ".join(_select(c) for c in columns),
        escape_sqlite(table),
        " where " + " and ".join(where) if where else "",
        _order(request, datasette.table_metadata(name, table), all_columns),
    )
    return sql, params, columns


def _open_read_only(path):
    conn = sqlite3.connect("file:{}?mode=ro".format(quote(str(path))), uri=True, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


async def _watch_disconnect(receive, gone):
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            return


async def export_view(datasette, request, send, receive):
    from sinkin_pipeline.export import csv_chunks

    if request.method not in ("GET", "HEAD"):
        raise BadRequest("use GET")
    table = request.url_vars["table"]
    sql, params, columns = await build_query(datasette, request, table)
    gone = asyncio.Event()  # the client went away: stop reading the table
    watcher = asyncio.create_task(_watch_disconnect(receive, gone))
    conn = await asyncio.to_thread(_open_read_only, database_path(datasette))
    try:
        deadline = time.monotonic() + EXPORT_TIME_LIMIT
        conn.set_progress_handler(lambda: 1 if gone.is_set() or time.monotonic() > deadline else 0, 100000)
        try:
            cursor = await asyncio.to_thread(conn.execute, sql, params)
        except sqlite3.Error as e:
            raise BadRequest("the export's query failed: {}".format(e))
        chunks = csv_chunks(columns, cursor)
        filename = re.sub(r"[^A-Za-z0-9_.-]", "_", table) + ".csv"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/csv; charset=utf-8"),
                    (b"content-disposition", 'attachment; filename="{}"'.format(filename).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        last = b""
        while request.method != "HEAD" and not gone.is_set():
            try:
                chunk = await asyncio.to_thread(next, chunks, None)
            except sqlite3.Error as e:  # interrupted by the time limit: say so in the file
                last = "\r\nexport stopped: {}\r\n".format(e).encode()
                break
            if chunk is None:
                break
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": last})
    finally:
        watcher.cancel()
        conn.close()
    return None


def escape_datasette_csv(datasette):
    """ASGI middleware: Datasette's ``.csv`` answers re-escaped cell by cell as they stream."""
    from sinkin_pipeline.export import CsvReescaper

    own = datasette.urls.path("/-/sinkin/")

    def wrap(app):
        async def escaped(scope, receive, send):
            path = scope.get("path", "") if scope["type"] == "http" else ""
            if not path.endswith(".csv") or path.startswith(own):
                return await app(scope, receive, send)
            from . import csvfast

            fast = csvfast.plan(datasette, scope)  # the whole image_table, streamed: at sqlite3 speed
            if fast is not None and await csvfast.stream(datasette, scope, receive, send, fast):
                return None
            state = {"escaper": None}

            async def send_escaped(message):
                if message["type"] == "http.response.start" and message["status"] == 200:
                    state["escaper"] = CsvReescaper()
                    message = dict(
                        message,
                        headers=[
                            (k, v) for k, v in message.get("headers") or [] if k.lower() != b"content-length"
                        ],
                    )
                elif message["type"] == "http.response.body" and state["escaper"] is not None:
                    body = state["escaper"].feed(message.get("body", b""))
                    if not message.get("more_body"):
                        body += state["escaper"].close()
                    message = dict(message, body=body)
                await send(message)

            await app(scope, receive, send_escaped)

        return escaped

    return wrap
