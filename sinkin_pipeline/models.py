"""The cached list of SinkIn models and LoRAs (table ``models``): refreshing it, filling it on
first use, and warning about ids that are not in it (typos cost credits only when paid for)."""
from .db import dicts, now, write_transaction
from .wording import plural

KINDS = {"models": "model", "loras": "lora", "video_models": "video"}


def _rows(answer, fetched):
    """Cache rows from a provider's ``models()`` answer."""
    rows = []
    for key, kind in KINDS.items():
        for m in answer.get(key) or []:
            if not isinstance(m, dict) or not m.get("id"):
                continue
            rows.append({"id": str(m["id"]), "title": m.get("title"), "kind": kind,
                         "cover_img": m.get("cover_img"), "link": m.get("link"), "fetched_at": fetched})
    return rows


def cache_if_empty(db, rows):
    """Store ``rows`` (from :func:`known_models` with ``store=False``) when the cache is still
    empty: a run that was actually created fills the cache, a refused one writes nothing."""
    if rows and not db.execute("select 1 from models limit 1").fetchone():
        _store(db, rows)


def _store(db, rows):
    with write_transaction(db):
        db.execute("delete from models")
        if rows:
            db["models"].insert_all(rows, pk="id", replace=True)


def refresh_models(db, provider):
    """Ask the provider for its models and replace the cache; returns how many were stored."""
    rows = _rows(provider.models(), now())
    _store(db, rows)
    return len(rows)


def list_models(db, kind=None):
    sql = "select id, title, kind, cover_img, link from models"
    params = []
    if kind:
        sql += " where kind = ?"
        params.append(kind)
    sql += " order by kind, title"
    return dicts(db.execute(sql, params))


def count_by_kind(db):
    """``{"model": n, "lora": n, "video": n}`` of the cache (kinds with no rows are 0)."""
    counts = {kind: 0 for kind in KINDS.values()}
    for kind, n in db.execute("select kind, count(*) from models group by kind").fetchall():
        counts[kind] = n
    return counts


def describe_counts(counts):
    """``"6 models and 2 LoRAs"``: what a refresh stored, models and LoRAs counted separately."""
    text = "{} and {}".format(plural(counts.get("model", 0), "model"), plural(counts.get("lora", 0), "LoRA"))
    if counts.get("video"):
        text += " ({})".format(plural(counts["video"], "video model"))
    return text


def known_models(db, provider_name, store=True):
    """The cached models and LoRAs; on first use (an empty cache) the provider's list, stored in
    the cache when ``store`` (``sinkin plan`` writes nothing, so it only reads it). [] when the
    provider cannot be asked (no API key, offline...): checking ids is then skipped, never an error."""
    from .providers import ProviderError, get_provider

    rows = list_models(db)
    if rows:
        return rows
    try:
        provider = get_provider(provider_name)
        provider.check_ready()
        rows = _rows(provider.models() or {}, now())
    except (ProviderError, NotImplementedError, OSError, AttributeError):  # a provider without a list
        return []
    if store and rows:
        _store(db, rows)
    return rows


#: spec keys whose values are ids from the cache, and the kind of row they name
ID_KINDS = {"model_id": "model", "lora": "lora"}


def nearest(ident, rows, n=3):
    """The cached ids closest to ``ident`` (by id or by title, case-insensitive), best first."""
    import difflib

    by_key = {}
    for row in rows:
        by_key.setdefault(row["id"].lower(), row["id"])
        if row.get("title"):
            by_key.setdefault(row["title"].lower(), row["id"])
    found = []
    for key in difflib.get_close_matches(ident.lower(), list(by_key), n=n * 2, cutoff=0.5):
        if by_key[key] not in found:
            found.append(by_key[key])
    return found[:n]


def unknown_ids(rows, values):
    """Warnings for model and LoRA ids of a spec (``Spec.values``) that are not among ``rows``
    (:func:`known_models`), each naming the nearest known ids. [] when every id is known or there
    is no list of that kind to compare with. Ids new to SinkIn may be used anyway
    (``--allow-unknown-ids`` on the CLI, "Queue anyway" in the run form)."""
    warnings = []
    for key, kind in ID_KINDS.items():
        of_kind = [r for r in rows if r["kind"] == kind]
        if not of_kind:
            continue
        titles = {r["id"]: r.get("title") for r in of_kind}
        for ident in values.get(key) or []:
            if ident is None or str(ident) in titles:
                continue
            close = nearest(str(ident), of_kind)
            hint = "nearest: {}".format(", ".join(
                "{} ({})".format(i, titles[i]) if titles.get(i) else i for i in close)) if close \
                else "see `sinkin models`"
            warnings.append("{}: {!r} is not in the cached {} list – {}".format(
                key, ident, "LoRA" if kind == "lora" else "model", hint))
    return warnings
