"""CSV that is safe to open in a spreadsheet: ``sinkin export`` of ``image_table`` (without the
thumbnail), and the escaping every CSV of the web app uses (its export route, and Datasette's own
CSV links, re-escaped on the way out). :func:`escape_cell` is the rule; :func:`escaped_sql` is the
same rule in SQL (for the sqlite3 shell and the web route, which let SQLite do it)."""

import codecs
import csv
import io
import re

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def escape_cell(value):
    """Prefix text cells that a spreadsheet would run as a formula (``=HYPERLINK(…)``, ``+1+1``,
    ``@SUM(…)``…) with a single quote. Numbers are never changed."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def escaped_sql(column):
    """SQL for ``column`` escaped as :func:`escape_cell` does (text starting with a formula prefix
    gets a leading quote).

    Written with comparisons only (no function call per cell: about 1.2× the plain column in the
    sqlite3 shell where ``typeof``/``substr`` cost 2–3×). Every prefix sorts below ``'A'`` and every
    number below any text, so ``c >= ''`` keeps numbers out, ``c < 'A'`` lets most text through at
    once, and the rest is narrowed to the one-character ranges of the prefixes."""
    c = '"{}"'.format(column)
    # hand-derived for FORMULA_PREFIXES (tests/test_csv_export.py checks it against escape_cell)
    test = (
        "{c} >= '' and {c} < 'A' and ({c} >= '=' and {c} < '>' or {c} >= '@' or {c} < '.' and "
        "({c} >= '-' or {c} >= '+' and {c} < ',' or {c} < char(14) and ({c} >= char(13) or "
        "{c} >= char(9) and {c} < char(10))))"
    ).format(c=c)
    return "case when {} then char(39) || {c} else {c} end".format(test, c=c)


def escape_row(row):
    return [escape_cell(v) for v in row]


def csv_chunks(header, rows, chunk_rows=5000):
    """The CSV text of ``header`` and ``rows`` as UTF-8 chunks of ``chunk_rows`` rows. The rows
    must already be escaped (selected with :func:`escaped_sql`)."""
    import itertools

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(escape_row(header))
    rows = iter(rows)
    while True:
        writer.writerows(itertools.islice(rows, chunk_rows))
        if not buffer.tell():
            return
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()


def escape_text_cell(text):
    """:func:`escape_cell` for a cell of CSV text, where a number and text look alike: a cell that
    is just a number (``-5``, ``+1.5e3``) is taken as the number it is and left alone."""
    return text if _NUMBER.fullmatch(text) else escape_cell(text)


def reescape_csv(text):
    """CSV ``text`` (whole records) with every cell escaped by :func:`escape_text_cell`."""
    out = io.StringIO()
    writer = csv.writer(out)
    for row in csv.reader(io.StringIO(text, newline="")):
        writer.writerow([escape_text_cell(cell) for cell in row])
    return out.getvalue()


class CsvReescaper:
    """Escapes the cells of CSV text produced elsewhere (Datasette's ``.csv`` pages) as it
    streams through: ``feed(bytes)`` returns the escaped bytes of the complete records received so
    far, ``close()`` the rest. Records are split where a newline is outside quotes."""

    def __init__(self):
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending = ""

    def _escape(self, text):
        return reescape_csv(text).encode("utf-8")

    def feed(self, data):
        text = self._pending + self._decoder.decode(data)
        end = text.rfind("\n")
        while end != -1 and text.count('"', 0, end) % 2:
            end = text.rfind("\n", 0, end)  # that newline is inside a quoted cell
        if end == -1:
            self._pending = text
            return b""
        self._pending = text[end + 1 :]
        return self._escape(text[: end + 1])

    def close(self):
        text = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        return self._escape(text) if text else b""


def numeric_affinity(declared):
    """True when SQLite gives a column declared ``declared`` INTEGER, REAL or NUMERIC affinity."""
    t = (declared or "").upper()
    if "INT" in t:
        return True
    if any(k in t for k in ("CHAR", "CLOB", "TEXT")) or "BLOB" in t or not t:
        return False
    return True


def export_query(db, run_id=None):
    """``(columns, sql)``: every column of image_table but the thumbnail, formula-escaped, in
    image order (of one run if ``run_id`` is given).

    Only text can start a formula: columns of numeric affinity hold numbers (SQLite converts any
    text that looks like one), so they are escaped only when one of them holds other text (one
    quick scan checks); the text columns always are (:func:`escaped_sql`)."""
    info = [
        (r[1], r[2]) for r in db.execute("pragma table_info(image_table)").fetchall() if r[1] != "thumbnail"
    ]
    where = " where run_id = {:d}".format(int(run_id)) if run_id is not None else ""
    numeric = [c for c, declared in info if numeric_affinity(declared)]
    holding_text = set()
    if numeric:
        sql = "select {} from image_table{}".format(
            ", ".join("max(\"{}\" >= '')".format(c) for c in numeric), where
        )
        if any(db.execute(_any_text(numeric, where)).fetchone() or ()):
            holding_text = {c for c, found in zip(numeric, db.execute(sql).fetchone()) if found}
    cols = [c for c, _ in info]
    sql = "select {} from image_table".format(
        ", ".join(
            '"{0}"'.format(c)
            if c in numeric and c not in holding_text
            else '{} as "{}"'.format(escaped_sql(c), c)
            for c in cols
        )
    )
    return cols, sql + where + " order by image_id"


def _any_text(columns, where):
    """A query answering one row when any of ``columns`` holds text (numbers sort below text)."""
    test = " or ".join("\"{}\" >= ''".format(c) for c in columns)
    return "select 1 from image_table{} limit 1".format(
        (where + " and (" + test + ")") if where else " where " + test
    )


def export_csv(db, fp, run_id=None, use_cli=True):
    """Write every row of image_table (one run, or all) to ``fp``; returns the row count.

    When ``fp`` is a real file and the ``sqlite3`` command-line shell is installed, the shell
    writes the rows straight into it (about 3× faster than Python's sqlite3 + csv at 100,000
    images, and within 1.5× of a plain ``sqlite3 -csv``: see docs/benchmarks.md); otherwise Python
    does. Both run the same formula-escaping
    query, and their output parses to the same cells (the shell quotes more cells, e.g. text with
    spaces, which changes nothing for a CSV reader)."""
    cols, sql = export_query(db, run_id)
    n = db.execute(
        "select count(*) from image_table"
        + (" where run_id = {:d}".format(int(run_id)) if run_id is not None else "")
    ).fetchone()[0]
    if use_cli and _cli_export(db, fp, sql):
        return n
    writer = csv.writer(fp)
    writer.writerow(cols)
    writer.writerows(db.execute(sql))
    return n


def _cli_export(db, fp, sql):
    import os
    import shutil
    import subprocess

    from .db import db_path_of

    shell = shutil.which("sqlite3")
    try:
        fd = fp.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    if not shell:
        return False
    fp.flush()
    done = subprocess.run(
        [
            shell,
            "-readonly",
            "-bail",
            "-csv",
            "-header",
            "-newline",
            "\r\n",
            "-cmd",
            ".timeout 30000",
            str(db_path_of(db)),
            sql,
        ],
        stdout=fd,
        stderr=subprocess.PIPE,
        env=dict(os.environ, SQLITE_HISTORY="/dev/null"),
    )
    if done.returncode != 0:
        raise RuntimeError(
            "sqlite3 could not export: {}".format(done.stderr.decode(errors="replace").strip())
        )
    return True
