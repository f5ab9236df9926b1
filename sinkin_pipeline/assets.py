"""Init images (img2img), stored once per content in the media folder."""

import hashlib
from io import BytesIO
from pathlib import Path

from PIL import Image

from .db import db_path_of, now, write_transaction
from .media import media_dir, relative_to_db, write_private
from .spec import SpecError, check_image_bytes


def store_asset(db, data, filename):
    """Store image bytes as an asset (once per sha256); returns the asset id.
    Raises SpecError when the bytes are not an acceptable image."""
    problem = check_image_bytes(data)
    if problem:
        raise SpecError(["init_image: {!r} – {}".format(filename, problem)])
    digest = hashlib.sha256(data).hexdigest()
    with Image.open(BytesIO(data)) as im:
        width, height = im.size
        ext = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}[im.format]
    folder = media_dir(db_path_of(db)) / "assets"
    path = folder / (digest + ext)
    if not path.exists():
        write_private(path, data)  # owner-only, whatever the umask
    with write_transaction(db):  # read then insert: take the write lock first
        row = db.execute("select id from assets where sha256 = ?", [digest]).fetchone()
        if row:
            return row[0]
        return (
            db["assets"]
            .insert(
                {
                    "sha256": digest,
                    "filename": Path(filename).name,
                    "path": relative_to_db(db_path_of(db), path),
                    "width": width,
                    "height": height,
                    "bytes": len(data),
                    "created_at": now(),
                }
            )
            .last_pk
        )


def read_asset(db, asset_id):
    """``(filename, bytes)`` of an asset."""
    from .media import resolve_media

    row = db.execute("select filename, path from assets where id = ?", [asset_id]).fetchone()
    if row is None:
        raise LookupError("asset {} not found".format(asset_id))
    return row[0], resolve_media(db_path_of(db), row[1]).read_bytes()
