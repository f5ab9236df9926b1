"""CSV export of ``image_table`` (without the thumbnail), safe to open in a spreadsheet."""
import csv

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value):
    """Prefix text cells that a spreadsheet would run as a formula with a single quote."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def escaped_sql(column):
    """SQL for ``column`` escaped as :func:`escape_cell` does (text starting with a formula prefix
    gets a leading quote)."""
    prefixes = ", ".join("char({})".format(ord(p)) for p in FORMULA_PREFIXES)
    return ("case when typeof({0}) = 'text' and substr({0}, 1, 1) in ({1}) then char(39) || {0} "
            "else {0} end".format('"{}"'.format(column), prefixes))


def export_query(db, run_id=None):
    """``(columns, sql)``: every column of image_table but the thumbnail, formula-escaped, in
    image order (of one run if ``run_id`` is given)."""
    cols = [r[1] for r in db.execute("pragma table_info(image_table)").fetchall() if r[1] != "thumbnail"]
    sql = "select {} from image_table".format(", ".join('{} as "{}"'.format(escaped_sql(c), c) for c in cols))
    if run_id is not None:
        sql += " where run_id = {:d}".format(int(run_id))
    return cols, sql + " order by image_id"


def export_csv(db, fp, run_id=None, use_cli=True):
    """Write every row of image_table (one run, or all) to ``fp``; returns the row count.

    When ``fp`` is a real file and the ``sqlite3`` command-line shell is installed, the shell
    writes the rows straight into it (about 3× faster than Python's sqlite3 + csv at 100,000
    images; see docs/benchmarks.md); otherwise Python does. Both run the same formula-escaping
    query, and their output parses to the same cells (the shell quotes more cells, e.g. text with
    spaces, which changes nothing for a CSV reader)."""
    cols, sql = export_query(db, run_id)
    n = db.execute("select count(*) from image_table" + (" where run_id = {:d}".format(int(run_id))
                                                          if run_id is not None else "")).fetchone()[0]
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
    done = subprocess.run([shell, "-readonly", "-bail", "-csv", "-header", "-newline", "\r\n", "-cmd", ".timeout 30000",
                           str(db_path_of(db)), sql], stdout=fd, stderr=subprocess.PIPE,
                          env=dict(os.environ, SQLITE_HISTORY="/dev/null"))
    if done.returncode != 0:
        raise RuntimeError("sqlite3 could not export: {}".format(done.stderr.decode(errors="replace").strip()))
    return True
