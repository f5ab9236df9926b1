"""Saving the images of an answer with few, short write transactions.

Everything slow happens before the write lock is taken: each image is fetched (downloaded, or the
bytes the provider returned), checked with Pillow, written to its file (a temp file, fsync, rename)
and its thumbnail made (the ``image_thumbnail`` hook). Then one transaction records every image row
with its thumbnail and the job's final status – and the answer itself when it is not stored yet
(see :mod:`sinkin_pipeline.jobs`: an answer whose images came inline is stored only once their
files are on disk). The ``image_saved`` hooks run after that commit.

Files have names made from the run, job and image index, so a job resumed after its process died
finds an inline image written before the answer was recorded (:func:`find_saved`) instead of
losing it.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from io import BytesIO

from .db import db_path_of, now
from .media import media_dir, relative_to_db, resolve_media, write_private
from .plugins import call_guarded, pm
from .providers import DownloadError

EXTENSIONS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}


def image_name(job, index):
    """The file name (without extension) of image ``index`` of an inference job."""
    return "run_{}/job_{}_{}".format(job["run_id"], job["id"], index)


def upscale_name(image, job):
    """The file name (without extension) of an upscale job's image."""
    return "run_{}/upscale_{}_{}".format(image["run_id"], image["id"], job["id"])


def check_image(data):
    """``(width, height, extension)`` of image bytes; DownloadError when they are not an image."""
    from PIL import Image

    try:
        with Image.open(BytesIO(data)) as im:
            im.verify()
        with Image.open(BytesIO(data)) as im:
            width, height, fmt = im.width, im.height, im.format
    except Exception as e:
        raise DownloadError("downloaded file is not a valid image ({})".format(e))
    return width, height, EXTENSIONS.get(fmt, "." + (fmt or "img").lower())


def find_saved(db_path, relative_name):
    """``(rel_path, width, height)`` of a valid image already written under ``relative_name`` (any
    known extension), or None."""
    folder = media_dir(db_path)
    for ext in EXTENSIONS.values():
        path = folder / (relative_name + ext)
        if path.is_file():
            try:
                width, height, _ = check_image(path.read_bytes())
            except (DownloadError, OSError):
                continue
            return relative_to_db(db_path, path), width, height
    return None


def make_thumbnail(path):
    """``(JPEG bytes or None, [(plugin, exception)])`` from the ``image_thumbnail`` hook: the first
    plugin that answers wins; one that raises is skipped (and reported)."""
    failures = []
    for impl in reversed(pm.hook.image_thumbnail.get_hookimpls()):  # pluggy's call order
        try:
            data = impl.function(path=path)
        except Exception as e:
            failures.append((impl.plugin_name, e))
            continue
        if data is not None:
            return data, failures
    return None, failures


@dataclass
class Saved:
    """One image of an answer, written (``path``…) or not (``error``), ready to be recorded."""

    index: int
    url: str | None = None
    seed: int | None = None
    path: str | None = None
    width: int | None = None
    height: int | None = None
    thumbnail: bytes | None = None
    thumbnail_errors: list = field(default_factory=list)
    error: str | None = None
    storage: bool = False  # the error is the disk's (the session must stop spending)


def prepare(db_path, saved, fetch, relative_name, thumbnail=True):
    """Fill ``saved`` from ``fetch()`` (the image bytes): its file and thumbnail, or its error. A
    missing inline image (``fetch`` returns None) is looked for among the files already written."""
    try:
        data = fetch()
        if data is None:
            found = find_saved(db_path, relative_name)
            if found is None:
                raise DownloadError(
                    "the provider returned this image inline and the process stopped before it "
                    "was written; its data is not stored"
                )
            saved.path, saved.width, saved.height = found
        else:
            width, height, ext = check_image(data)
            path = media_dir(db_path) / (relative_name + ext)
            write_private(path, data)  # owner-only, fsynced and renamed: complete or absent
            saved.path, saved.width, saved.height = relative_to_db(db_path, path), width, height
    except DownloadError as e:
        saved.error = str(e)
        return saved
    except OSError as e:  # the media folder is full or read-only: keep the URL, stop spending
        if isinstance(e, (ConnectionError, TimeoutError)):
            raise
        saved.error = "could not save the image file ({})".format(e.strerror or e)
        saved.storage = True
        return saved
    if thumbnail:
        saved.thumbnail, saved.thumbnail_errors = make_thumbnail(str(resolve_media(db_path, saved.path)))
    return saved


_UPSERT = """insert into images (run_id, config_id, job_id, image_index, inf_id, url, provider_seed, path,
                        width, height, download_error, created_at)
   values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
   on conflict (job_id, image_index) do update set url = excluded.url,
       provider_seed = coalesce(excluded.provider_seed, images.provider_seed),
       path = coalesce(excluded.path, images.path), width = coalesce(excluded.width, images.width),
       height = coalesce(excluded.height, images.height), download_error = excluded.download_error"""


def record_images(db, job, config_id, inf_id, images):
    """Insert or update the rows of ``images`` (:class:`Saved`), with their thumbnails and the
    thumbnail plugins' errors, inside the caller's transaction. Returns the rows of the saved ones."""
    rows = []
    for saved in images:
        db.execute(
            _UPSERT,
            [
                job["run_id"],
                config_id,
                job["id"],
                saved.index,
                inf_id,
                saved.url,
                saved.seed,
                saved.path,
                saved.width,
                saved.height,
                saved.error,
                now(),
            ],
        )
        if saved.thumbnail is not None:
            # its own statement: inserted with the row, the ~4–8 KB blob would make the ranking
            # triggers read through its overflow pages (about 2.5 ms of CPU per image)
            db.execute(
                "update images set thumbnail = ? where job_id = ? and image_index = ?",
                [saved.thumbnail, job["id"], saved.index],
            )
        if saved.path is None:
            continue
        row = list(
            db.query("select * from images where job_id = ? and image_index = ?", [job["id"], saved.index])
        )[0]
        for plugin, error in saved.thumbnail_errors:
            _log_plugin_error(db, row, plugin, "image_thumbnail", error)
        rows.append(row)
    return rows


def _log_plugin_error(db, row, plugin, hook, error):
    db.execute(
        "insert into plugin_errors (image_id, job_id, plugin, hook, error, created_at) values (?, ?, ?, ?, ?, ?)",
        [row["id"], row["job_id"], plugin, hook, "{}: {}".format(type(error).__name__, error), now()],
    )


def image_saved(db, row, path):
    """Run the ``image_saved`` hooks (after the image's row is committed); a failing plugin is logged
    in ``plugin_errors`` and its uncommitted writes are undone."""

    @contextmanager
    def savepoint():
        db.conn.execute("savepoint sinkin_plugin")
        try:
            yield
        except BaseException:
            if db.conn.in_transaction:
                db.conn.execute("rollback to sinkin_plugin")
                db.conn.execute("release sinkin_plugin")
            raise
        if db.conn.in_transaction:
            db.conn.execute("release sinkin_plugin")

    def log(plugin, error):
        _log_plugin_error(db, row, plugin, "image_saved", error)
        db.conn.commit()

    if pm.hook.image_saved.get_hookimpls():
        call_guarded("image_saved", on_error=log, guard=savepoint, db=db, image=row, path=path)


def existing_files(db, job_id):
    """Image index → row of the images of a job already saved (their files still there)."""
    db_path = db_path_of(db)
    found = {}
    for row in db.query("select * from images where job_id = ?", [job_id]):
        if row["path"] and resolve_media(db_path, row["path"]).exists():
            found[row["image_index"]] = row
    return found
