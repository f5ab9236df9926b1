"""A run's images in the gallery's order (filters, unrated only, sort), cached per run version.

The ordered ids come from one index scan of ``image_table`` and are kept in memory, keyed by the
database file, the run, the gallery state and the run's counters in ``run_stats`` (bumped by
triggers in the same transaction as any change to the run's images or scores, whichever process
makes it). A gallery page, its count and a viewer window are then slices of that list: their cost
does not grow with the run. Orders that do not depend on scores (newest/oldest, no "unrated only")
survive scoring.
"""

import os
import threading
from array import array
from collections import OrderedDict

SORTS = {
    "newest": ("Newest first", "image_id desc"),
    "oldest": ("Oldest first", "image_id asc"),
    "score_desc": ("Score, high to low", "score is null, score desc, image_id desc"),
    "score_asc": ("Score, low to high", "score is null, score asc, image_id desc"),
}
#: the most ordered lists kept (each is 8 bytes per image)
CACHE_SIZE = 16
_cache = OrderedDict()
_lock = threading.Lock()


def where_sql(run_id, state):
    """`` where ...`` and its parameters for a run's images under the gallery state."""
    sql = " where run_id = ?"
    params = [run_id]
    if state["unrated"]:
        sql += " and score is null"
    from .gallery_filters import condition

    for key, value in state["filters"].items():  # checked by gallery_filters.resolve
        term, values = condition(key, value, state.get("options", ()))
        sql += " and " + term
        params += values
    return sql, params


def order_sql(state):
    """The ORDER BY terms; with "unrated only" every score is null, so score sorts are by id."""
    if state["unrated"] and state["sort"].startswith("score"):
        return "image_id desc"
    return SORTS[state["sort"]][1]


def _file_key(db):
    row = db.execute("PRAGMA database_list").fetchone()
    try:
        return row[2], os.stat(row[2]).st_ino
    except OSError:
        return row[2], None


def ordered_ids(db, run_id, state):
    """The run's image ids in gallery order, as an ``array('q')`` (shared: do not modify)."""
    stats = db.execute("select version, score_version from run_stats where run_id = ?", [run_id]).fetchone()
    version, score_version = stats or (None, None)
    scores_matter = state["unrated"] or state["sort"].startswith("score")
    blind = state.get("blind")
    key = (
        _file_key(db),
        run_id,
        state["unrated"],
        state["sort"],
        tuple(sorted(state["filters"].items())),
        version,
        score_version if scores_matter else None,
        blind,
    )
    with _lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    where, params = where_sql(run_id, state)
    ids = array(
        "q",
        (
            r[0]
            for r in db.execute(
                "select image_id from image_table{} order by {}".format(
                    where, "image_id" if blind else order_sql(state)
                ),
                params,
            )
        ),
    )
    if blind:  # blind mode: shuffled with the review pass's fixed seed
        import random

        shuffled = list(ids)
        random.Random(blind).shuffle(shuffled)
        ids = array("q", shuffled)
    if version is not None:
        with _lock:
            _cache[key] = ids
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    return ids


def window(ids, around=None, span=100):
    """``span`` ids on each side of ``around`` (or the first ones): ``(ids, offset, index)`` where
    ``offset`` is the position of the first id in the whole order and ``index`` is where ``around``
    is in the window (-1 when it is not in the order, e.g. scored while "unrated only")."""
    position = -1
    if around is not None:
        try:
            position = ids.index(around)
        except ValueError:
            position = -1
    start = max(0, position - span) if position >= 0 else 0
    part = ids[start : position + span + 1] if position >= 0 else ids[: span + 1]
    return list(part), start, (position - start if position >= 0 else -1)


_per_run = OrderedDict()


def per_run(db, run_id, kind, compute, column="version"):
    """``compute()`` for the run, cached until the ``run_stats`` counters ``column`` change
    (``version``: the run's images, not their scores; ``score_version``: its scores;
    ``config_version``: its configs; several separated by commas)."""
    row = db.execute("select {} from run_stats where run_id = ?".format(column), [run_id]).fetchone()
    key = (_file_key(db), run_id, kind, tuple(row) if row else None)
    with _lock:
        if key in _per_run:
            _per_run.move_to_end(key)
            return _per_run[key]
    value = compute()
    if row is not None:
        with _lock:
            _per_run[key] = value
            while len(_per_run) > 4 * CACHE_SIZE:
                _per_run.popitem(last=False)
    return value
