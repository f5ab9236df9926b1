"""Loading a set of runs' images for insights and grids, and keeping them in memory.

The settings that vary are the config columns of :data:`sinkin_pipeline.varying.VARYING_COLUMNS`
(the SinkIn fields of :mod:`sinkin_pipeline.fields`, and the init image) and the provider options
stored in ``configs.provider_options`` that take more than one value (one scan of the configs).

:func:`load_groups` reads the images grouped by those settings, prompt and image index in one SQL
pass over the lean ``image_table`` (the trigger-kept copy of every image with its settings and
score), with counts, score sums, generation seconds and the best image of each group. It is
cached per database and runs until their ``run_stats`` counters move (bumped by triggers, whichever
process writes). When only scores moved (a user scored an image, then came back), the cached
groups are *patched*: the runs' current scores are read from a covering index and compared with
the scores the groups were built from, and only the groups of the changed images are updated.
"""

import os
import re
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from .fields import FIELDS
from .queue import JobStatus
from .varying import VARYING_COLUMNS

#: loaded runs kept in memory (per kind of data, database and set of runs)
CACHE_SIZE = 8
_cache: OrderedDict = OrderedDict()
_lock = threading.Lock()
#: best-image keys pack (score, image id) in one integer: image ids stay below this
ID_SPAN = 1 << 40


class InsightsError(ValueError):
    """A request that cannot be answered (unknown axis, bad option); nothing was read."""


@dataclass
class Groups:
    """A set of runs' images grouped by their varying settings and image index (one SQL pass):
    ``rows`` holds ``(values, prompt, image_index, images, rated, total, total_sq, seconds, timed)``
    with ``values`` a tuple in ``axes`` order; ``best`` per row the ``(image_id, score)`` of its
    highest-scored image (the lowest id on ties; score None when none is rated). ``rated`` (per row
    the rated images as ``image_id << SCORE_BITS | score``, as read) or ``scores`` (the same, as a
    set) are the scores a later score change is compared with."""

    run_ids: list
    runs: list
    axes: list
    constants: dict
    rows: list
    best: list = field(default_factory=list)
    rated: list = field(default_factory=list, repr=False)
    scores: set | None = field(default=None, repr=False)
    _row_of_key: dict | None = field(default=None, repr=False)

    @property
    def image_count(self):
        return sum(r[3] for r in self.rows)

    def score_snapshot(self) -> set:
        """The images rated when the groups were read (or last patched), packed as
        ``image_id << SCORE_BITS | score``."""
        if self.scores is None:
            self.scores = _packed(",".join(text for text in self.rated if text))
        return self.scores

    def row_of_key(self) -> dict:
        """``(values, prompt, image_index)`` → row number."""
        if self._row_of_key is None:
            self._row_of_key = {(r[0], r[1], r[2]): n for n, r in enumerate(self.rows)}
        return self._row_of_key


#: a rated image packed in one integer for the snapshot: ``image_id << SCORE_BITS | score``
SCORE_BITS, SCORE_MASK = 4, 15


def _packed(text):
    """The set of packed scores in a ``group_concat`` (C-speed: split, int, set)."""
    return set(map(int, text.split(","))) if text else set()


def placeholders(ids):
    """``?,?,…``: one SQL parameter per id."""
    return ",".join("?" for _ in ids)


def typed_value(name, value):
    """A stored setting as Python sees it: booleans (stored 0/1) as bool, the rest as stored."""
    fld = FIELDS.get(name)
    if fld is not None and fld.kind == "bool" and value is not None:
        return bool(value)
    return value


def sort_key(value):
    """Numbers ascending, then text, then None (no value)."""
    if value is None:
        return (2, 0, "")
    if isinstance(value, (int, float)):
        return (0, value, "")
    return (1, 0, str(value))


_OPTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def column_sql(name, alias=""):
    """The SQL for setting ``name``: a configs column, or a provider-declared option read from the
    ``provider_options`` JSON (names are checked identifiers, see :func:`_option_names`)."""
    prefix = alias + "." if alias else ""
    if name in VARYING_COLUMNS:
        return prefix + name
    return "json_extract({}provider_options, '$.{}')".format(prefix, name)


def _option_names(db, run_ids, columns):
    """The provider options set in the runs' configs (e.g. a1111's ``clip_skip``), sorted."""
    if "provider_options" not in columns:
        return []
    names = db.execute(
        "select distinct o.key from configs, json_each(configs.provider_options) o "
        "where configs.run_id in ({}) and json_valid(configs.provider_options)".format(placeholders(run_ids)),
        run_ids,
    ).fetchall()
    return sorted(
        n for (n,) in names if isinstance(n, str) and _OPTION_NAME.match(n) and n not in VARYING_COLUMNS
    )


def settings(db, run_ids):
    """``(runs, axes, constants)``: the runs' names, the setting columns with more than one value
    among their configs and the values of the others: the first config's values; the settings that
    vary among the images (``run_values``) vary among the configs; one scan checks that no other
    differs from the first config's (else one scan for which do), and whether any provider option
    is set (which takes two more). LookupError for a missing run."""
    run_ids = sorted({int(r) for r in run_ids})
    if not run_ids:
        raise InsightsError("choose at least one run")
    found = {
        r[0]: r[1]
        for r in db.execute(
            "select id, name from runs where id in ({})".format(placeholders(run_ids)), run_ids
        )
    }
    missing = [r for r in run_ids if r not in found]
    if missing:
        raise LookupError("run {} not found".format(", ".join(map(str, missing))))
    columns = {row[1] for row in db.execute("PRAGMA table_info(configs)")}
    names = [name for name in VARYING_COLUMNS if name in columns]
    options = "provider_options" in columns
    first = db.execute(
        "select {} from configs where run_id in ({}) limit 1".format(", ".join(names), placeholders(run_ids)),
        run_ids,
    ).fetchone()
    if first is None:
        return [{"id": r, "name": found[r]} for r in run_ids], [], {c: None for c in names}
    set_options = "(provider_options is not null and provider_options not in ('', '{}'))"
    known = _varying_among_images(db, run_ids, names)
    rest = [(c, v) for c, v in zip(names, first) if c not in known]
    # the settings that vary among the images vary among the configs; the others are usually
    # constant: one scan without aggregates (stopping at the first exception) tells
    anything = " or ".join(["{} is not ?".format(c) for c, _ in rest] + [set_options if options else "0"])
    if (
        db.execute(
            "select 1 from configs where run_id in ({}) and ({}) limit 1".format(
                placeholders(run_ids), anything
            ),
            run_ids + [v for _, v in rest],
        ).fetchone()
        is None
    ):
        differs, has_options = [c in known for c in names], 0
    else:
        differs = db.execute(
            "select {}, {} from configs where run_id in ({})".format(
                ", ".join("max({} is not ?)".format(c) for c in names),
                "max({})".format(set_options) if options else "0",
                placeholders(run_ids),
            ),
            list(first) + run_ids,
        ).fetchone()
        differs, has_options = list(differs[:-1]), differs[-1]
    if has_options:  # provider options (e.g. a1111's clip_skip): a second scan for their values
        more = _option_names(db, run_ids, columns)
        values = db.execute(
            "select {} from configs where run_id in ({}) limit 1".format(
                ", ".join(column_sql(c) for c in more) or "1", placeholders(run_ids)
            ),
            run_ids,
        ).fetchone()[: len(more)]
        if more:
            differs += db.execute(
                "select {} from configs where run_id in ({})".format(
                    ", ".join("max({} is not ?)".format(column_sql(c)) for c in more), placeholders(run_ids)
                ),
                list(values) + run_ids,
            ).fetchone()
        names, first = names + more, tuple(first) + tuple(values)
    axes = [c for c, d in zip(names, differs) if d]
    constants = {c: typed_value(c, v) for c, v in zip(names, first) if c not in axes}
    return [{"id": r, "name": found[r]} for r in run_ids], axes, constants


def _varying_among_images(db, run_ids, names):
    """The settings among ``names`` with more than one value among the runs' images, from the
    trigger-kept ``run_values`` (empty when it cannot be read)."""
    try:
        found = db.execute(
            "select field from run_values where run_id in ({}) and images > 0 and field in ({}) "
            "group by field having count(distinct vkey) > 1".format(
                placeholders(run_ids), placeholders(names)
            ),
            run_ids + names,
        ).fetchall()
    except sqlite3.Error:
        return set()
    return {f for (f,) in found}


#: SinkIn's answer time of a job divided by its images (``j`` the job, ``t`` the image's row)
SECONDS_SQL = """case when j.status = '{}' and j.started_at is not null and j.response_at is not null
  then max(0, julianday(j.response_at) - julianday(j.started_at)) * 86400.0 / max(t.num_images, 1) end""".format(
    JobStatus.SUCCEEDED
)


def _counters(db, ids):
    """The runs' ``run_stats`` counters, ``((run_id, version, score_version, config_version), …)``,
    or None when they cannot be read."""
    try:
        counters = db.execute(
            "select run_id, version, score_version, config_version from run_stats "
            "where run_id in ({})".format(placeholders(ids)),
            ids,
        ).fetchall()
    except sqlite3.Error:
        return None
    if len(counters) != len(ids) or not ids:
        return None
    return tuple(sorted(tuple(c) for c in counters))


def _cache_key(db, kind, ids):
    """What identifies loaded data apart from the counters: the kind, the database file (path
    and inode) and the runs; None when they cannot be read (no cache)."""
    try:
        path = db.execute("PRAGMA database_list").fetchone()[2]
        inode = os.stat(path).st_ino
    except (sqlite3.Error, OSError, TypeError):
        return None
    return (kind, path, inode, tuple(ids))


def _scores_only(old, new):
    """Whether only score counters moved between two counter tuples."""
    return len(old) == len(new) and all(
        a[0] == b[0] and a[1] == b[1] and a[3] == b[3] for a, b in zip(old, new)
    )


def cached(db, kind, run_ids, build, patch=None):
    """``build()``, or what it returned for the same runs while their counters stood still; when
    only their scores moved, ``patch(old)`` (None: build again)."""
    ids = sorted({int(r) for r in run_ids})
    key = _cache_key(db, kind, ids)
    counters = _counters(db, ids) if key is not None else None
    if counters is None:
        return build()
    with _lock:
        entry = _cache.get(key)
        if entry is not None:
            _cache.move_to_end(key)
    value = None
    if entry is not None:
        if entry[0] == counters:
            return entry[1]
        if patch is not None and _scores_only(entry[0], counters):
            value = patch(entry[1])
    if value is None:
        value = build()
    with _lock:
        # labelled with the counters read before the data: a write in between only means one
        # more (idempotent) patch or build next time
        _cache[key] = (counters, value)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return value


def load_groups(db, run_ids) -> Groups:
    """The runs' images grouped by varying settings and image index, with counts, score sums,
    generation seconds (SinkIn's answer time of the job divided by its images) and the best image
    of each group. Cached until the runs change; patched when only scores changed."""
    return cached(
        db, "groups", run_ids, lambda: _load_groups(db, run_ids), lambda old: _patch_groups(db, old)
    )


def _group_sql(db, axes):
    """``(columns, joins)``: the SQL of a group's key (the axes, prompt and image index) over
    ``image_table t`` and the joins it needs (``images i`` for the index, ``configs c`` for
    provider options)."""
    lean = {row[1] for row in db.execute("PRAGMA table_info(image_table)")}
    cols = [column_sql(a, "t" if a in lean else "c") for a in axes] + ["t.prompt", "i.image_index"]
    joins = (
        "join images i indexed by idx_images_job_id_image_index on i.job_id = t.job_id and i.id = t.image_id"
    )
    if any(a not in lean for a in axes):
        joins += " join configs c on c.id = t.config_id"
    return cols, joins


def _key(axes, row):
    """A group's key from its SQL columns (as :func:`_group_sql` lists them)."""
    k = len(axes)
    return (tuple(typed_value(a, v) for a, v in zip(axes, row[:k])), row[k], row[k + 1])


def _load_groups(db, run_ids) -> Groups:
    runs, axes, constants = settings(db, run_ids)
    ids = [r["id"] for r in runs]
    cols, joins = _group_sql(db, axes)
    sql = """select {cols}, count(*), count(t.score), total(t.score), total(t.score * t.score),
                    total({secs}), count({secs}), max(coalesce(t.score, 0) * {span} - t.image_id),
                    group_concat((t.image_id << {bits}) | t.score)
             from image_table t {joins} left join jobs j on j.id = t.job_id
             where t.run_id in ({ids}) group by {cols}""".format(
        cols=", ".join(cols),
        secs=SECONDS_SQL,
        span=ID_SPAN,
        bits=SCORE_BITS,
        ids=placeholders(ids),
        joins=joins,
    )
    k = len(axes)
    rows, best, rated = [], [], []
    for r in db.execute(sql, ids):
        values, prompt, index = _key(axes, r)
        rows.append((values, prompt, index) + tuple(r[k + 2 : k + 8]))
        best.append(_unpack(r[k + 8]))
        rated.append(r[k + 9])
    return Groups(run_ids=ids, runs=runs, axes=axes, constants=constants, rows=rows, best=best, rated=rated)


def _unpack(packed):
    """``(image_id, score or None)`` from ``score * ID_SPAN - image_id``."""
    score = -(-packed // ID_SPAN)
    return score * ID_SPAN - packed, (score or None)


#: more changed scores than this at once (a bulk `sinkin score`): read the groups again
PATCH_LIMIT = 5000


def _patch_groups(db, old: Groups):
    """``old`` with the runs' current scores, or None (read them again) when too many changed or
    an image is not one of its groups: one read of the scores through a covering index, the groups
    of the changed images looked up by id, and only those groups updated."""
    before = old.score_snapshot()
    now = _packed(
        db.execute(
            "select group_concat((image_id << {}) | score) from image_table "
            "where run_id in ({}) and score is not null".format(SCORE_BITS, placeholders(old.run_ids)),
            old.run_ids,
        ).fetchone()[0]
    )
    diff = before ^ now  # set operations in C: only the changed images reach Python
    was = {p >> SCORE_BITS: p & SCORE_MASK for p in diff & before}
    new = {p >> SCORE_BITS: p & SCORE_MASK for p in diff & now}
    changed = sorted(set(was) | set(new))
    if len(changed) > PATCH_LIMIT:
        return None
    cols, joins = _group_sql(db, old.axes)
    row_of_key = old.row_of_key()
    row_of = {}
    for start in range(0, len(changed), 500):
        chunk = changed[start : start + 500]
        for r in db.execute(
            "select t.image_id, {} from image_table t {} where t.image_id in ({})".format(
                ", ".join(cols), joins, placeholders(chunk)
            ),
            chunk,
        ):
            row_of[r[0]] = row_of_key.get(_key(old.axes, r[1:]))
    if any(row_of.get(i) is None for i in changed):
        return None
    rows, best = list(old.rows), list(old.best)
    was_of = was.get
    recount = set()
    for image_id in changed:
        n = row_of[image_id]
        was, score = was_of(image_id), new.get(image_id)
        r = rows[n]
        rows[n] = (
            r[:4]
            + (
                r[4] + (score is not None) - (was is not None),
                r[5] + (score or 0) - (was or 0),
                r[6] + (score or 0) ** 2 - (was or 0) ** 2,
            )
            + r[7:]
        )
        top, top_score = best[n]
        if (score or 0, -image_id) > (top_score or 0, -top):
            best[n] = (image_id, score)
        elif image_id == top:  # the best image got worse: look again
            recount.add(n)
    for n in recount:
        best[n] = _best_of(db, old, cols, joins, rows[n])
    return Groups(
        run_ids=old.run_ids,
        runs=old.runs,
        axes=old.axes,
        constants=old.constants,
        rows=rows,
        best=best,
        scores=now,
        _row_of_key=row_of_key,
    )


def _best_of(db, groups, cols, joins, row):
    """``(image_id, score)`` of a group's best image, by its key."""
    key = list(row[0]) + [row[1], row[2]]
    found = db.execute(
        "select t.image_id, t.score from image_table t {} where t.run_id in ({}) and {}".format(
            joins, placeholders(groups.run_ids), " and ".join("{} is ?".format(c) for c in cols)
        ),
        groups.run_ids + key,
    ).fetchall()
    return max(found, key=lambda r: (r[1] or 0, -r[0]))
