"""The cached lists of models, LoRAs (and a web UI's samplers), one per catalogue (table ``models``, column
``catalogue``): refreshing one, filling it on first use, and warning about ids that are not in it
(typos cost credits only when paid for). A provider's catalogue is its name unless it declares
``catalogue`` (the simulator mirrors SinkIn's ids, so it shares ``sinkin``'s list); one catalogue
never hides or replaces another: SinkIn's models and a local web UI's checkpoints live side by side."""

from .db import now, write_transaction
from .wording import plural

#: the lists of a provider's ``models()`` answer cached, and the ``kind`` of their rows; a web UI's
#: samplers and schedulers are cached too (the run form offers them as the menu of an option
#: declaring ``extra={"menu": "sampler"}`` or ``"schedule_type"``)
KINDS = {
    "models": "model",
    "loras": "lora",
    "video_models": "video",
    "samplers": "sampler",
    "schedule_types": "schedule_type",
}


def catalogue_of(provider_name):
    """The catalogue whose cached list provider ``provider_name`` uses (its name by default)."""
    from .providers import get_providers

    factory = get_providers().get(provider_name)
    return getattr(factory, "catalogue", None) or provider_name


def _rows(answer, fetched, provider):
    """Cache rows from a provider's ``models()`` answer."""
    rows = []
    for key, kind in KINDS.items():
        for m in answer.get(key) or []:
            if not isinstance(m, dict) or not m.get("id"):
                continue
            rows.append(
                {
                    "id": str(m["id"]),
                    "title": m.get("title"),
                    "kind": kind,
                    "cover_img": m.get("cover_img"),
                    "link": m.get("link"),
                    "fetched_at": fetched,
                    "catalogue": provider,
                }
            )
    return rows


def cache_if_empty(db, rows):
    """Store ``rows`` (from :func:`known_models` with ``store=False``) when the cache is still
    empty for their provider: a run that was actually created fills the cache, a refused one
    writes nothing."""
    if not rows:
        return
    catalogue = rows[0]["catalogue"]
    if not db.execute("select 1 from models where catalogue = ? limit 1", [catalogue]).fetchone():
        _store(db, rows, catalogue)


def _store(db, rows, catalogue):
    with write_transaction(db):
        db.execute("delete from models where catalogue = ?", [catalogue])
        if rows:
            db["models"].insert_all(rows, pk="id", replace=True)


def refresh_models(db, provider):
    """Ask the provider for its models and replace its part of the cache; returns how many were
    stored."""
    catalogue = catalogue_of(provider.name)
    rows = _rows(provider.models(), now(), catalogue)
    _store(db, rows, catalogue)
    return len(rows)


def list_models(db, kind=None, provider=None):
    """Cached rows (of one ``kind`` and/or the catalogue of one ``provider`` when given)."""
    sql = "select id, title, kind, cover_img, link, catalogue from models"
    where, params = [], []
    if kind:
        where.append("kind = ?")
        params.append(kind)
    if provider:
        where.append("catalogue = ?")
        params.append(catalogue_of(provider))
    if where:
        sql += " where " + " and ".join(where)
    sql += " order by catalogue, kind, title"
    return list(db.query(sql, params))


def count_by_kind(db, provider=None):
    """``{"model": n, "lora": n, "video": n}`` of the cache, or of one provider's catalogue
    (kinds with no rows are 0)."""
    counts = {kind: 0 for kind in KINDS.values()}
    sql, params = "select kind, count(*) from models", []
    if provider:
        sql, params = sql + " where catalogue = ?", [catalogue_of(provider)]
    for kind, n in db.execute(sql + " group by kind", params).fetchall():
        counts[kind] = n
    return counts


def describe_counts(counts):
    """``"6 models and 2 LoRAs"``: what a refresh stored, models and LoRAs counted separately."""
    text = "{} and {}".format(plural(counts.get("model", 0), "model"), plural(counts.get("lora", 0), "LoRA"))
    if counts.get("video"):
        text += " ({})".format(plural(counts["video"], "video model"))
    menus = [
        plural(counts[k], w)
        for k, w in (("sampler", "sampler"), ("schedule_type", "scheduler"))
        if counts.get(k)
    ]
    if menus:
        text += " ({})".format(", ".join(menus))
    return text


def known_models(db, provider_name, store=True):
    """The cached models and LoRAs; on first use (an empty cache) the provider's list, stored in
    the cache when ``store`` (``sinkin plan`` writes nothing, so it only reads it). [] when the
    provider cannot be asked (no API key, offline...): checking ids is then skipped, never an error."""
    from .providers import ProviderError, get_provider

    rows = list_models(db, provider=provider_name)
    if rows:
        return rows
    try:
        provider = get_provider(provider_name)
        provider.check_ready()
        rows = _rows(provider.models() or {}, now(), catalogue_of(provider_name))
    except (ProviderError, NotImplementedError, OSError, AttributeError):  # a provider without a list
        return []
    if store and rows:
        _store(db, rows, catalogue_of(provider_name))
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
            hint = (
                "nearest: {}".format(
                    ", ".join("{} ({})".format(i, titles[i]) if titles.get(i) else i for i in close)
                )
                if close
                else "see `sinkin models`"
            )
            warnings.append(
                "{}: {!r} is not in the cached {} list – {}".format(
                    key, ident, "LoRA" if kind == "lora" else "model", hint
                )
            )
    return warnings
