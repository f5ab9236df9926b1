"""The gallery's setting filters and their counts.

A run's images can be filtered by every setting the ranking table has a column for
(:func:`sinkin_pipeline.ranking.value_fields`: the SinkIn fields of ``fields.py``, the init image and
the upscale type) and by the provider-declared options its configs were made with
(``configs.provider_options``, e.g. a1111's ``clip_skip``). Each filter is a URL parameter named
after the setting (``?scheduler=DDIM&clip_skip=2``; ``(none)`` for a missing value). The counts
follow the other filters (and "unrated only"): each value's count is what choosing it would show.
"""

import re
from collections import Counter

from sinkin_pipeline.ranking import value_counts, value_fields
from sinkin_pipeline.varying import LABELS

from .gallery_order import per_run

#: URL parameters of the gallery and the viewer that are never a setting filter
RESERVED = frozenset({"unrated", "sort", "page", "blind", "grid", "around", "span", "run_id", "image_id"})
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
#: the most filters one URL may carry, and the longest value (a prompt)
MAX_FILTERS = 32
MAX_VALUE = 4000
NONE = "(none)"


def requested(args):
    """The setting filters asked for in the URL (any setting-like name; :func:`resolve` keeps the
    run's own)."""
    found = {}
    for key in args.keys():
        value = args.get(key)
        if key in RESERVED or not _NAME.match(key) or value in (None, "") or len(value) > MAX_VALUE:
            continue
        found[key] = value
        if len(found) == MAX_FILTERS:
            break
    return found


def option_names(db, run_id):
    """The provider-declared options set in the run's configs (e.g. ``clip_skip``), sorted; names
    that are not plain identifiers or that clash with a column or a gallery parameter are left out.
    Cached until the run's configs change."""

    def compute():
        if "provider_options" not in {r[1] for r in db.execute("pragma table_info(configs)")}:
            return ()
        names = db.execute(
            "select distinct o.key from configs, json_each(configs.provider_options) o "
            "where configs.run_id = ? and json_valid(configs.provider_options)",
            [run_id],
        ).fetchall()
        taken = set(value_fields(db)) | RESERVED
        return tuple(sorted(n for (n,) in names if isinstance(n, str) and _NAME.match(n) and n not in taken))

    return per_run(db, run_id, "options", compute, column="config_version")


def resolve(db, run_id, state):
    """``state`` with only the filters the run has (a column or one of its options); the options
    among them are listed in ``state["options"]`` (their SQL differs, see :func:`expression`)."""
    columns = set(value_fields(db))
    options = set(option_names(db, run_id))
    filters = {k: v for k, v in state["filters"].items() if k in columns or k in options}
    return dict(state, filters=filters, options=tuple(sorted(k for k in filters if k in options)))


def expression(key, options):
    """The SQL value of filter ``key`` for a row of ``image_table``: its column, or the option read
    from its config (``key`` is a checked identifier)."""
    if key in options:
        return (
            "(select json_extract(configs.provider_options, '$.{}') from configs "
            "where configs.id = image_table.config_id)".format(key)
        )
    return key


def condition(key, value, options):
    """``(sql, params)``: the row matches ``key = value`` as the URL spells it. Options have no
    column type, so they are compared as text (``2``, ``0.5``, ``1`` for true)."""
    expr = expression(key, options)
    if value == NONE:
        return "{} is null".format(expr), []
    if key in options:
        return "cast({} as text) = ?".format(expr), [value]
    return "{} = ?".format(expr), [value]


def _option_counts(db, run_id, names):
    def compute():
        counts = {}
        for name in names:
            counts[name] = dict(
                db.execute(
                    "select {0}, count(*) from image_table where run_id = ? group by {0}".format(
                        expression(name, names)
                    ),
                    [run_id],
                ).fetchall()
            )
        return counts

    return per_run(db, run_id, ("option_counts", names), compute)


def _label(key, value, assets):
    if value is None:
        return NONE
    if key == "init_asset_id" and value in assets:
        return "{} (#{})".format(assets[value], value)
    return str(value)


def filter_choices(db, run_id, state):
    """For each setting that varies in the run (or is filtered on), its values with image counts
    and labels, in the order of :func:`value_fields` then the options: ``{key: [{value, n,
    label}]}``. ``state`` is :func:`resolve`'s."""
    options = option_names(db, run_id)
    counts = dict(value_counts(db, run_id))  # kept by triggers: no scan of the run's images
    counts.update(_option_counts(db, run_id, options))
    keys = value_fields(db) + list(options)
    shown = [key for key in keys if len(counts.get(key, {})) > 1 or key in state["filters"]]
    if state["filters"] or state["unrated"]:
        counts = dict(counts, **filtered_counts(db, run_id, dict(state, options=options), shown, counts))
    assets = {}
    if "init_asset_id" in shown:
        assets = dict(db.execute("select id, filename from assets").fetchall())
    choices = {}
    for key in shown:
        ordered = sorted(
            counts.get(key, {}).items(), key=lambda kv: (kv[0] is None, 0 if kv[0] is None else kv[0])
        )
        choices[key] = [{"value": v, "n": n, "label": _label(key, v, assets)} for v, n in ordered]
    return choices


def filter_labels(choices):
    """How each filter is named on the page (``init image`` for the init image)."""
    return {key: LABELS.get(key, key) for key in choices}


def filtered_counts(db, run_id, state, keys, every):
    """``{key: {value: n}}``: for each of ``keys``, its values' image counts under every other
    filter and "unrated only"; each value of the run (``every``) is kept, 0 when hidden. Cached until
    the run's images or scores change; computed in one pass over the run's images."""
    kind = ("counts", state["unrated"], tuple(sorted(state["filters"].items())), tuple(keys))
    found = per_run(
        db, run_id, kind, lambda: _filtered_counts(db, run_id, state, keys), column="version, score_version"
    )
    result = {}
    for key in keys:
        counted = dict(found.get(key, {}))
        result[key] = {value: counted.pop(value, 0) for value in every.get(key, {})}
        result[key].update(counted)
    return result


def _filtered_counts(db, run_id, state, keys):
    """One GROUP BY over the run's (unrated) images by every key, with a column per filter saying
    whether the row matches it (SQLite's own comparison); each key's counts then sum the groups that
    match every other filter."""
    from .gallery_order import where_sql

    if not keys:
        return {}
    options = state.get("options", ())
    filters = list(state["filters"].items())
    matches = []
    params = []
    for key, value in filters:
        sql, values = condition(key, value, options)
        matches.append(sql)
        params += values
    where, where_params = where_sql(run_id, dict(state, filters={}))
    aliases = ["sk_key_{}".format(i) for i in range(len(keys))]
    aliases += ["sk_match_{}".format(i) for i in range(len(matches))]
    exprs = [expression(key, options) for key in keys] + ["({})".format(m) for m in matches]
    sql = "select {}, count(*) from image_table{} group by {}".format(
        ", ".join("{} as {}".format(e, a) for e, a in zip(exprs, aliases)), where, ", ".join(aliases)
    )
    counts = {key: Counter() for key in keys}
    for row in db.execute(sql, params + where_params).fetchall():
        values, hits, n = row[: len(keys)], row[len(keys) : -1], row[-1]
        for i, key in enumerate(keys):
            if all(hit for (name, _), hit in zip(filters, hits) if name != key):
                counts[key][values[i]] += n
    return {key: dict(counter) for key, counter in counts.items()}
