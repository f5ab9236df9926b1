"""Datasette's streamed CSV of ``image_table`` at ``sqlite3 -csv`` speed, byte for byte the same.

Datasette streams a table's CSV one page query and one ASGI message per row, and our middleware
re-escapes every cell (:func:`datasette_plugins.csvexport.escape_datasette_csv`): 16× ``sqlite3
-csv`` at 100,000 images. The one URL people use for the whole table –
``/<db>/image_table.csv?_stream=on`` with only ``_size``, ``_nocol``, ``_nofacet``, ``_nocount``
and ``_dl`` – is answered here instead: SQLite writes each CSV line itself (Python's csv quoting,
Python's number formatting, the formula escaping of :func:`sinkin_pipeline.export.escape_text_cell`)
and lines go out in large chunks. A row SQLite cannot format exactly as Datasette would (a cell
that needs escaping, a float whose text differs between SQLite and Python, a blob) is formatted
by Python the way Datasette and the re-escaper do it. Any other request (filters, another sort,
``_col``, ``_labels``, ``_header``, ``_trace``, HEAD…) goes to Datasette as before. Datasette's
``max_csv_mb`` limit ends the file the same way.
"""

import asyncio
import csv
import io
import re
from urllib.parse import parse_qsl, unquote

from sinkin_pipeline.export import CsvReescaper, reescape_csv

TABLE = "image_table"
ALLOWED = {"_stream", "_size", "_nocol", "_nofacet", "_nocount", "_dl"}
#: rows formatted per round trip to the database thread
BATCH = 5000
NEEDS_QUOTES = (",", '"', "\r", "\n")


def plan(datasette, scope):
    """``(columns, dl)`` when the request is the plain streamed CSV of image_table, else None."""
    from .appdb import database_name

    if scope["type"] != "http" or scope.get("method") != "GET":
        return None
    try:
        name = database_name(datasette)
    except Exception:
        return None
    if unquote(scope.get("path", "")) != datasette.urls.table(name, TABLE, format="csv"):
        return None
    args = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    if not all(k in ALLOWED for k, _ in args) or not any(k == "_stream" and v for k, v in args):
        return None
    size = [v for k, v in args if k == "_size"]
    if size and not all(
        v == "max" or v.isdigit() and 0 < int(v) <= datasette.setting("max_returned_rows") for v in size
    ):
        return None
    if datasette.cors:
        return None
    metadata = datasette.table_metadata(name, TABLE)
    if metadata.get("sort") or metadata.get("sort_desc") not in (None, "image_id"):
        return None
    return [v for k, v in args if k == "_nocol"], any(k == "_dl" and v for k, v in args), metadata


#: a line SQLite wrote that Python must redo: a marked cell, a quote or line break, or a cell
#: starting with a formula prefix (a cell holding a comma shows as one comma too many)
SUSPECT = re.compile(r'[\x01"\r\n]|(?:^|,)[=+\-@\t]')
PREFIXES = ("=", "+", "-", "@", "\t")
PREFIX_PAIRS = tuple(sep + p for sep in (",", "\n") for p in PREFIXES)
#: free-text columns: quoted by SQLite when they hold a comma, a quote or a line break
FREE_TEXT = ("prompt", "negative_prompt")


def _classify(conn, columns, numeric, integer):
    """``(any text in a numeric column or any blob, {numeric columns that may hold non-integers})``:
    two scans with comparisons only (numbers sort below text, text below blobs), each stopping at
    the first hit. The REAL-affinity columns may always hold non-integers."""
    odd = ["\"{}\" >= ''".format(c) for c in numeric] + [
        "\"{}\" >= x''".format(c) for c in columns if c not in numeric
    ]
    if odd and conn.execute("select 1 from {} where {} limit 1".format(TABLE, " or ".join(odd))).fetchone():
        return True, set()
    ints = [c for c in numeric if c in integer]
    test = " or ".join('"{0}" <> cast("{0}" as integer)'.format(c) for c in ints)
    if ints and conn.execute("select 1 from {} where {} limit 1".format(TABLE, test)).fetchone():
        return False, set(numeric)
    return False, set(numeric) - set(ints)


def _cell_sql(column, kind):
    """SQL for one cell inside ``printf('%s,%s…')`` (NULL prints as nothing, as Datasette writes
    None). A real whose text SQLite and Python write differently becomes a marker (\\x01)."""
    c = '"{}"'.format(column)
    if kind == "real":
        return (
            "case when {c} is null then null when {c} = cast({c} as integer) and {c} < 1e15 and {c} > -1e15 and ({c} <> 0 or cast({c} as text) = '0') then {c} "
            "when ({c} >= 0.0001 and {c} < 1e15 or {c} <= -0.0001 and {c} > -1e15) "
            "and cast(cast({c} as text) as real) = {c} then {c} else char(1) end"
        ).format(c=c)
    if kind == "free":
        return (
            "case when {c} glob '*[,\"'||char(13)||char(10)||']*' "
            "then '\"' || replace({c}, '\"', '\"\"') || '\"' else {c} end"
        ).format(c=c)
    return c


def _python_line(values):
    """One row as Datasette writes it (``csv.writer``, repr of floats), re-escaped cell by cell."""
    raw = io.StringIO()
    csv.writer(raw).writerow(values)
    return raw.getvalue(), reescape_csv(raw.getvalue())


async def stream(datasette, scope, receive, send, columns_plan):
    from datasette.utils import path_from_row_pks
    from datasette.utils.asgi import Request

    from .appdb import database_name, database_path
    from .csvexport import _open_read_only, _watch_disconnect

    nocol, dl, _ = columns_plan
    name = database_name(datasette)
    db = datasette.get_database(name)
    table_columns = await db.table_columns(TABLE)
    pks = await db.primary_keys(TABLE)
    if any(c not in table_columns or c in pks for c in nocol):
        return False
    columns = [c for c in table_columns if c not in nocol]
    from sinkin_pipeline.export import numeric_affinity

    types = dict(
        await db.execute_fn(
            lambda conn: [(r[1], r[2]) for r in conn.execute("pragma table_info(image_table)")]
        )
    )
    numeric = [c for c in columns if numeric_affinity(types.get(c))]
    integer = {c for c in numeric if "INT" in (types.get(c) or "").upper()}
    odd, reals = await db.execute_fn(lambda conn: _classify(conn, columns, numeric, integer))
    if odd:
        return False  # a blob, or text in a numeric column (rare): Datasette's own path formats it
    kinds = {
        c: "real" if c in reals else "int" if c in numeric else "free" if c in FREE_TEXT else "text"
        for c in columns
    }
    sql = "select printf('{}', {}), image_id from {} order by image_id desc".format(
        ",".join(["%s"] * len(columns)), ", ".join(_cell_sql(c, kinds[c]) for c in columns), TABLE
    )
    one_row = "select {} from {} where image_id = ?".format(
        ", ".join('"{}"'.format(c) for c in columns), TABLE
    )
    request = Request(scope, receive)
    limit = datasette.setting("max_csv_mb") * 1024 * 1024
    headers = []
    if dl:
        headers.append([b"content-disposition", 'attachment; filename="{}.csv"'.format(TABLE).encode()])
    headers.append([b"content-type", b"text/csv; charset=utf-8" if dl else b"text/plain; charset=utf-8"])
    # what Datasette's router adds to every response (privacy: credentialed answers are not cached)
    sent = {k.lower() for k, _ in scope.get("headers") or []}
    if b"cookie" in sent or b"authorization" in sent:
        headers.append([b"cache-control", b"private, no-store"])
    headers.append([b"vary", b"Cookie, Authorization"])
    gone = asyncio.Event()
    watcher = asyncio.create_task(_watch_disconnect(receive, gone))
    conn = await asyncio.to_thread(_open_read_only, database_path(datasette))
    try:
        cursor = await asyncio.to_thread(conn.execute, sql)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        header_raw, header_out = _python_line(columns)
        state = {"count": len(header_raw), "stopped": None}
        pending = [header_out]

        def python_line(image_id):
            row = conn.execute(one_row, [image_id]).fetchone()
            values = []
            for column, value in zip(columns, row):
                if isinstance(value, bytes):
                    by_name = dict(zip(columns, row))
                    path = datasette.urls.row_blob(
                        name, TABLE, path_from_row_pks(by_name, pks, False), column
                    )
                    value = datasette.absolute_url(request, path)
                values.append(value)
            return _python_line(values)

        commas, suspect = len(columns) - 1, SUSPECT.search

        def one_by_one(lines):
            out = []
            for line, image_id in lines:
                if line.count(",") == commas and not suspect(line):
                    raw = text = line + "\r\n"
                else:
                    raw, text = python_line(image_id)
                state["count"] += len(raw)
                if limit and state["count"] > limit:
                    state["stopped"] = "CSV contains more than {} bytes".format(limit)
                    break
                out.append(text)
            return "".join(out)

        def batch():
            """The next rows as CSV text (formatted in this thread); "" at the end. A batch whose
            text holds nothing suspect is taken as SQLite wrote it, in one piece."""
            rows = cursor.fetchmany(BATCH)
            n = len(rows)
            text = "\r\n".join([r[0] for r in rows]) + "\r\n" if rows else ""
            clean = (
                text.count(",") == commas * n
                and text.count("\n") == n
                and text.count("\r") == n
                and '"' not in text
                and "\x01" not in text
                and not any(p in text for p in PREFIX_PAIRS)
                and not text.startswith(PREFIXES)
            )
            if clean and not (limit and state["count"] + len(text) > limit):
                state["count"] += len(text)
                return text
            return one_by_one(rows)

        while not gone.is_set() and state["stopped"] is None:
            text = await asyncio.to_thread(batch)
            if not text:
                break
            pending.append(text)
            await send(
                {"type": "http.response.body", "body": "".join(pending).encode("utf-8"), "more_body": True}
            )
            pending = []
        stopped = state["stopped"]
        tail = "".join(pending).encode("utf-8")
        if stopped is not None:
            escaper = CsvReescaper()
            tail += escaper.feed(stopped.encode()) + escaper.close()
        await send({"type": "http.response.body", "body": tail})
    finally:
        watcher.cancel()
        conn.close()
    return True
