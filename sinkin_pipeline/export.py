"""CSV export of ``image_table`` (without the thumbnail), safe to open in a spreadsheet."""
import csv

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value):
    """Prefix text cells that a spreadsheet would run as a formula with a single quote."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def export_csv(db, fp, run_id=None):
    """Write every row of image_table (one run, or all) to ``fp``; returns the row count."""
    cols = [r[1] for r in db.execute("pragma table_info(image_table)").fetchall() if r[1] != "thumbnail"]
    sql = "select {} from image_table".format(", ".join('"{}"'.format(c) for c in cols))
    params = []
    if run_id is not None:
        sql += " where run_id = ?"
        params.append(run_id)
    sql += " order by image_id"
    writer = csv.writer(fp)
    writer.writerow(cols)
    n = 0
    for row in db.execute(sql, params):
        writer.writerow([escape_cell(v) for v in row])
        n += 1
    return n
