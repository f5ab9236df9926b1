"""Which settings vary within a run, and labels that show exactly those settings.

A run's configs are the cartesian product of its spec's lists, so "what differs between two images
of a run" is "the SinkIn fields (``fields.CONFIG_FIELDS``) that take more than one value across the
run's configs" — plus the init image when a run sweeps several. Gallery captions, the viewer and the
dashboard's queue rows all label a config with :func:`config_label` over :func:`varying_fields`, so
a run that varies the negative prompt or the model shows it, and one that varies nothing shows none.

    >>> label = config_label({"scheduler": "DDIM", "steps": 20, "lcm": 1}, ["scheduler", "lcm"])
    >>> label
    'scheduler DDIM · lcm on'
"""

from collections.abc import Iterable, Mapping

from .fields import CONFIG_FIELDS, FIELDS

#: columns of ``configs`` that can vary within a run, in display order
VARYING_COLUMNS: tuple = CONFIG_FIELDS + ("init_asset_id",)
#: how a column is named in labels (the SinkIn field name unless listed)
LABELS = {"init_asset_id": "init image"}
SEPARATOR = " · "


def _distinct_sql(column: str) -> str:
    # count(distinct) skips NULL: a NULL among other values is one more value
    return "count(distinct {0}) + (count(*) > count({0}))".format(column)


def varying_by_run(db, run_ids: Iterable[int] | None = None) -> dict:
    """``{run_id: [field, ...]}``: for each run (every run, or those given), the columns of
    :data:`VARYING_COLUMNS` with more than one value among its configs, in that order. One query.
    ``db`` is a sqlite3 connection or a sqlite_utils Database."""
    sql = "select run_id, {} from configs".format(", ".join(_distinct_sql(c) for c in VARYING_COLUMNS))
    params: list = []
    if run_ids is not None:
        run_ids = [int(r) for r in run_ids]
        if not run_ids:
            return {}
        sql += " where run_id in ({})".format(", ".join("?" * len(run_ids)))
        params = run_ids
    sql += " group by run_id"
    found = {}
    for row in db.execute(sql, params).fetchall():
        found[row[0]] = [c for c, n in zip(VARYING_COLUMNS, row[1:]) if n > 1]
    for run_id in run_ids or ():
        found.setdefault(run_id, [])
    return found


def varying_fields(db, run_id: int) -> list:
    """The columns that take more than one value among the configs of run ``run_id`` ([] when the
    run has a single config or does not exist)."""
    return varying_by_run(db, [run_id]).get(int(run_id), [])


def format_value(name: str, value) -> str:
    """A setting's value as shown in labels: booleans as on/off, numbers without trailing zeros,
    missing values as "(none)"."""
    if value is None or value == "":
        return "(none)"
    fld = FIELDS.get(name)
    if fld is not None and fld.kind == "bool":
        return "on" if value in (1, True, "1", "true") else "off"
    if name == "init_asset_id":
        return "#{}".format(value)
    if isinstance(value, float):
        return "{:g}".format(value)
    return str(value)


def config_settings(config: Mapping, fields: Iterable[str]) -> list:
    """``[(label, shown value), ...]`` for ``fields`` of one config (or image row)."""
    return [(LABELS.get(f, f), format_value(f, config.get(f))) for f in fields]


def config_label(config: Mapping, fields: Iterable[str], separator: str = SEPARATOR) -> str:
    """One line with exactly ``fields`` of ``config``, e.g. ``"scheduler DDIM · steps 20"``, in
    full (never shortened: pages show it whole on hover/focus). "" when ``fields`` is empty."""
    return separator.join("{} {}".format(k, v) for k, v in config_settings(config, fields))


__all__ = [
    "VARYING_COLUMNS",
    "varying_by_run",
    "varying_fields",
    "format_value",
    "config_settings",
    "config_label",
]
