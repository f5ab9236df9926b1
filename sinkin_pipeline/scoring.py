"""Scoring images: 1..10, or None to clear a score."""

from .db import now, parse_id


class ScoreError(ValueError):
    """A score or image id that cannot be applied; nothing was written."""


def parse_score(value):
    """An int from 1 to 10 (or None to clear), from an int or text; ScoreError otherwise."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ScoreError("score must be a whole number from 1 to 10, got {!r}".format(value))
    if isinstance(value, str):
        if value.strip().lower() in ("", "none", "clear"):
            return None
        try:
            value = int(value.strip())
        except ValueError:
            raise ScoreError("score must be a whole number from 1 to 10, got {!r}".format(value))
    if isinstance(value, float):
        if not value.is_integer():
            raise ScoreError("score must be a whole number from 1 to 10, got {!r}".format(value))
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= 10:
        raise ScoreError("score must be a whole number from 1 to 10, got {!r}".format(value))
    return value


def score_image(conn, image_id, score):
    """Set (or clear, with None) an image's score; returns ``{"id", "score", "scored_at"}``.
    ``conn`` is a sqlite3 connection or sqlite_utils Database. Raises ScoreError, LookupError."""
    score = parse_score(score)
    image_id = parse_id(image_id, "image id", ScoreError)
    scored_at = now() if score is not None else None
    cursor = conn.execute(
        "update images set score = ?, scored_at = ? where id = ?", [score, scored_at, image_id]
    )
    if cursor.rowcount == 0:
        raise LookupError("image {} not found".format(image_id))
    commit = getattr(conn, "commit", None) or conn.conn.commit
    commit()
    return {"id": image_id, "score": score, "scored_at": scored_at}
