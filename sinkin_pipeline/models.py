"""The cached list of SinkIn models and LoRAs (table ``models``)."""
from .db import dicts, now

KINDS = {"models": "model", "loras": "lora", "video_models": "video"}


def refresh_models(db, provider):
    """Ask the provider for its models and replace the cache; returns how many were stored."""
    answer = provider.models()
    rows = []
    fetched = now()
    for key, kind in KINDS.items():
        for m in answer.get(key) or []:
            if not isinstance(m, dict) or not m.get("id"):
                continue
            rows.append({"id": str(m["id"]), "title": m.get("title"), "kind": kind,
                         "cover_img": m.get("cover_img"), "link": m.get("link"), "fetched_at": fetched})
    with db.atomic():
        db.execute("delete from models")
        if rows:
            db["models"].insert_all(rows, pk="id", replace=True)
    return len(rows)


def list_models(db, kind=None):
    sql = "select id, title, kind, cover_img, link from models"
    params = []
    if kind:
        sql += " where kind = ?"
        params.append(kind)
    sql += " order by kind, title"
    return dicts(db.execute(sql, params))
