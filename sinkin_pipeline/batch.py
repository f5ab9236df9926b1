"""Working on a run's best images at once: upscale every image scored at least N (planned and
estimated first, run only when confirmed), and a zip of the top images with a CSV of their
settings (formula-escaped like ``sinkin export``)."""

import csv
import io
import zipfile
from pathlib import Path

from .db import open_db
from .export import escape_cell
from .media import media_dir, resolve_media
from .providers import get_provider
from .ranking import IMAGE_SETTINGS
from .upscaling import UpscaleError, estimate_upscale, get_upscalers, upscale_image, upscalers_for

#: the most images one zip holds
MAX_ZIP_IMAGES = 500


class BatchError(ValueError):
    """Options that cannot be applied; nothing was written or spent."""


def _min_score(value):
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BatchError("min_score must be a whole number from 1 to 10, got {!r}".format(value))
    fractional = isinstance(value, float) and not value.is_integer()
    if isinstance(value, bool) or fractional or not 1 <= number <= 10:
        raise BatchError("min_score must be a whole number from 1 to 10, got {!r}".format(value))
    return number


def _run(db, run_id):
    row = db.execute("select id, name, provider from runs where id = ?", [int(run_id)]).fetchone()
    if row is None:
        raise LookupError("run {} not found".format(run_id))
    return {"id": row[0], "name": row[1], "provider": row[2]}


def _usable(row, source):
    """Whether an image can go to an upscaler that needs its ``source`` (SinkIn's id and URL, or
    the stored file)."""
    return bool(row["path"]) if source == "file" else bool(row["inf_id"] and row["url"])


def plan_upscale_batch(db, run_id, min_score, upscale_type=None, scale=None, strength=None, options=None):
    """What "upscale every image scored ≥ min_score" would do, writing nothing: ``images`` (ids to
    upscale, best first), ``already`` (already upscaled: skipped, never paid twice),
    ``unusable`` (without what the upscaler needs: SinkIn's id and URL, or the stored file),
    ``credits`` (estimated), ``params``, and ``upscalers``: the upscale types offered for the run's
    provider (from the registry, with their declared options). ``upscale_type`` None is the first
    of them; ``options`` holds its options by name (``scale``/``strength`` may be given as
    arguments). Raises BatchError, UpscaleError (bad type or options), LookupError (no such run)."""
    min_score = _min_score(min_score)
    run = _run(db, run_id)
    upscalers = get_upscalers()
    offered = upscalers_for(run["provider"])
    if upscale_type is not None and (not isinstance(upscale_type, str) or upscale_type not in upscalers):
        raise UpscaleError(
            "unknown upscale type {!r}; use one of {}".format(
                upscale_type, ", ".join(offered) or ", ".join(sorted(upscalers))
            )
        )
    if not offered:
        raise BatchError(
            "images of provider {} cannot be upscaled (no upscaler applies to it)".format(run["provider"])
        )
    if upscale_type is None:
        upscale_type = next(iter(offered))
    if upscale_type not in offered:
        raise UpscaleError(
            "{} does not apply to images of provider {}; use one of {}".format(
                upscale_type, run["provider"], ", ".join(offered)
            )
        )
    if options is not None and not isinstance(options, dict):
        raise UpscaleError("options: expected {name: value} for the upscaler's options")
    given = dict(options or {})
    given.pop("type", None)
    given.update({k: v for k, v in (("scale", scale), ("strength", strength)) if v is not None})
    upscaler = offered[upscale_type]
    params = upscaler.validate(given)
    found = list(
        db.query(
            "select id, score, inf_id, url, path, upscale_path from images "
            "where run_id = ? and score >= ? order by score desc, id",
            [run["id"], min_score],
        )
    )
    images = [r["id"] for r in found if not r["upscale_path"] and _usable(r, upscaler.source)]
    already = [r["id"] for r in found if r["upscale_path"]]
    unusable = [r["id"] for r in found if not r["upscale_path"] and not _usable(r, upscaler.source)]
    provider = get_provider(run["provider"])
    each = estimate_upscale(db, provider, params["type"])
    return {
        "run_id": run["id"],
        "provider": provider.name,
        "min_score": min_score,
        "type": upscale_type,
        "params": params,
        "upscalers": [u.as_json() for u in offered.values()],
        "images": images,
        "already": already,
        "unusable": unusable,
        "unusable_reason": "no stored file" if upscaler.source == "file" else "no SinkIn id and URL",
        "credits_each": each,
        "credits": round(each * len(images), 4),
    }


def upscale_batch(
    db_path, run_id, min_score, upscale_type=None, scale=None, strength=None, expect=None, options=None
):
    """Upscale the images :func:`plan_upscale_batch` lists, one after another, each through
    :func:`upscaling.upscale_image` (payload stored first, answer committed before the download).
    ``expect`` (the number of images the user confirmed) must match the plan, or nothing is done.
    Returns the plan with ``done`` (ids) and ``failed`` ([id, message]); an image that fails does
    not stop the others."""
    db = open_db(db_path)
    try:
        plan = plan_upscale_batch(db, run_id, min_score, upscale_type, scale, strength, options)
    finally:
        db.conn.close()
    if expect is not None and int(expect) != len(plan["images"]):
        raise BatchError(
            "the run changed since the estimate: {} images to upscale now, {} confirmed; "
            "look at the new estimate".format(len(plan["images"]), expect)
        )
    done, failed = [], []
    for image_id in plan["images"]:
        try:
            upscale_image(db_path, image_id, plan["type"], options=plan["params"])
            done.append(image_id)
        except (UpscaleError, LookupError) as e:
            failed.append([image_id, str(e)])
        except Exception as e:  # the provider's errors: keep going, report each
            failed.append([image_id, str(e) or e.__class__.__name__])
    return dict(plan, done=done, failed=failed)


#: the settings written beside each image in the zip's CSV
CSV_COLUMNS = (
    "image_id",
    "file",
    "upscaled_file",
    "score",
    "run_id",
    "run_name",
    *IMAGE_SETTINGS,
    "inf_id",
    "upscale_type",
    "created_at",
)


def top_images(db, run_id, min_score=1, limit=50):
    """The run's images scored ≥ ``min_score`` with their settings, best first (at most ``limit``)."""
    min_score = _min_score(min_score)
    try:
        limit = int(limit)
    except (TypeError, ValueError):
        raise BatchError("limit must be a whole number from 1 to {}, got {!r}".format(MAX_ZIP_IMAGES, limit))
    if not 1 <= limit <= MAX_ZIP_IMAGES:
        raise BatchError("limit must be a whole number from 1 to {}, got {!r}".format(MAX_ZIP_IMAGES, limit))
    _run(db, run_id)
    return list(
        db.query(
            "select * from image_table where run_id = ? and score >= ? order by score desc, image_id limit ?",
            [int(run_id), min_score, limit],
        )
    )


def top_images_zip(db_path, run_id, min_score=1, limit=50):
    """``(zip bytes, number of images)``: the top images' files (and their upscales) and
    ``settings.csv``, one row per image, formula-escaped."""
    db = open_db(db_path)
    try:
        found = top_images(db, run_id, min_score, limit)
    finally:
        db.conn.close()
    buffer = io.BytesIO()
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(CSV_COLUMNS)
    root = media_dir(db_path).resolve()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:  # PNGs are compressed already
        for image in found:
            names = {}
            for column, suffix in (("path", ""), ("upscale_path", "-upscaled")):
                if not image.get(column):
                    continue
                source = resolve_media(db_path, image[column]).resolve()
                if root not in source.parents or not source.is_file():
                    continue
                name = "score{:02d}-image{}{}{}".format(
                    image["score"], image["image_id"], suffix, Path(image[column]).suffix or ".png"
                )
                archive.write(source, name)
                names[column] = name
            row = dict(image, file=names.get("path", ""), upscaled_file=names.get("upscale_path", ""))
            writer.writerow([escape_cell(row.get(c)) for c in CSV_COLUMNS])
        archive.writestr("settings.csv", table.getvalue())
    return buffer.getvalue(), len(found)


__all__ = ["BatchError", "plan_upscale_batch", "upscale_batch", "top_images", "top_images_zip"]
