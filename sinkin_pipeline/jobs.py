"""Running one claimed job: the state machine that keeps money and images safe.

1. The payload is stored before it is sent (never with the access token: providers add it).
2. A job that already holds SinkIn's answer is never sent again: it only downloads.
3. Transient failures (nothing processed) are retried with capped, jittered backoff; SinkIn's
   ``error_code`` answers are final (a plugin may offer a fallback payload); a request that was
   sent but got no answer leaves the job ``interrupted``, never re-sent automatically.
4. The answer (inf_id, credit_cost, URLs; never image bytes) is committed before anything is
   downloaded or written.
5. Each image (downloaded from its URL, or the bytes the provider returned) goes to a temp file, is
   checked with Pillow, renamed, and only then recorded; a paid image that cannot be fetched keeps
   its URL and fails the job with a message saying so.
6. Plugin hooks run after an image is saved are guarded: a failure is recorded in ``plugin_errors``
   against the image and never fails the job.
"""

import json
import os
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

from .db import db_path_of, media_dir, now, relative_to_db, resolve_media, write_private
from .fields import FIELDS
from .plugins import call_guarded, load_plugins, pm
from .providers import DownloadError, OutcomeUnknown, ServiceError, TransientError
from .queue import rows_as_dicts, update_job
from .results import InferenceResult, UpscaleResult, as_inference_result, as_upscale_result

MAX_ATTEMPTS = int(os.environ.get("SINKIN_RETRY_ATTEMPTS", "5"))
BASE_DELAY = float(os.environ.get("SINKIN_RETRY_BASE_DELAY", "0.5"))
MAX_DELAY = float(os.environ.get("SINKIN_RETRY_MAX_DELAY", "20"))
BOOL_FIELDS = tuple(name for name, fld in FIELDS.items() if fld.kind == "bool")
SEND_FIELDS = tuple(FIELDS)
IMG2IMG_ONLY = tuple(name for name, fld in FIELDS.items() if fld.img2img_only)


@dataclass
class Outcome:
    status: str
    images: int = 0
    credit_cost: float = 0.0
    error: str | None = None
    service_error: bool = False
    messages: list = field(default_factory=list)
    #: a new answer came in this time (``credit_cost`` is its price; 0 for a download-only resume)
    paid: bool = False
    #: the request was sent and no answer came: it may have been charged
    charge_unknown: bool = False
    #: the disk or the database could not keep what came back: the session must stop spending
    storage_error: str | None = None
    #: paid images kept only as URLs (their files could not be saved)
    unsaved: int = 0


def backoff_delay(attempt, retry_after=None):
    """Seconds to wait before retry number ``attempt`` (0-based): Retry-After when given (capped),
    else full jitter over an exponential ramp, capped."""
    if retry_after is not None:
        return min(float(retry_after), MAX_DELAY)
    return random.uniform(BASE_DELAY / 2, min(MAX_DELAY, BASE_DELAY * 2**attempt))


def with_retries(fn, *args):
    """Call ``fn(*args)``, retrying TransientError a bounded number of times."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            return fn(*args)
        except TransientError as e:
            if attempt == MAX_ATTEMPTS - 1:
                raise TransientError(
                    "gave up after {} attempts: {}".format(MAX_ATTEMPTS, e),
                    retry_after=e.retry_after,
                    status=e.status,
                )
            time.sleep(backoff_delay(attempt, e.retry_after))


def build_payload(config):
    """The payload for a config row: its SinkIn fields (None left out; img2img fields only with an
    init image), then the provider's own options stored with it (``provider_options``)."""
    payload = {}
    img2img = bool(config.get("init_asset_id"))
    for name, fld in FIELDS.items():  # every SinkIn field, read when called (fields.py is the source)
        value = config.get(name)
        if value is None or fld.img2img_only and not img2img:
            continue
        payload[name] = bool(value) if fld.kind == "bool" else value
    extra = json.loads(config.get("provider_options") or "{}")
    payload.update({k: v for k, v in extra.items() if v is not None and k not in payload})
    return payload


def _finish(db, job, status, error=None, **fields):
    update_job(db, job["id"], status=status, error=error, finished_at=now(), **fields)
    return status


def run_job(db, job, provider):
    """Run a claimed job (status 'running') to its end; returns an :class:`Outcome`."""
    load_plugins()
    try:
        if job["kind"] == "upscale":
            return _run_upscale(db, job, provider)
        return _run_inference(db, job, provider)
    except Exception as e:  # a bug or a disk error: keep what is stored, say what happened
        from .storage import StorageError, is_storage_failure

        storage = is_storage_failure(e)
        detail = str(e) if isinstance(e, StorageError) else "{}: {}".format(type(e).__name__, e)
        message = ("storage error: " if storage else "internal error: ") + detail
        try:
            _finish(db, job, "failed", message)
        except Exception:
            pass  # the database itself failed: the job's lease runs out and it is recovered
        return Outcome(
            "failed",
            error=message,
            storage_error=message if storage else None,
            credit_cost=getattr(e, "credit_cost", 0.0),
            paid=bool(getattr(e, "credit_cost", 0.0)),
            unsaved=getattr(e, "unsaved", 0),
        )


def _send(db, job, fn, *args):
    """Send a request that may be charged: returns the answer or an Outcome for the job."""
    try:
        return with_retries(fn, *args)
    except ServiceError:
        raise
    except TransientError as e:
        error = "not sent successfully, nothing charged: {}".format(e)
        _finish(db, job, "failed", error)
        return Outcome("failed", error=error)
    except OutcomeUnknown as e:
        error = (
            "no answer after the request was sent ({}): it may have been charged, so it is not "
            "sent again automatically; `sinkin retry --resend` re-sends it"
        ).format(e)
        _finish(db, job, "interrupted", error)
        return Outcome("interrupted", error=error, charge_unknown=True)


def _store_answer(db, job, result):
    """Commit a provider's answer (without image bytes) before any image is written. If the database
    cannot take it (deleted, full, read-only), keep it in the rescue file beside the database and
    raise StorageError (the session stops spending)."""
    from .storage import StorageError, rescue_answer

    record = result.record()
    try:
        guard = getattr(db, "sinkin_guard", None)
        if guard is not None:
            guard.check_db()
        update_job(
            db,
            job["id"],
            raw_response=json.dumps(record, default=str),
            inf_id=getattr(result, "inf_id", None),
            credit_cost=float(result.credit_cost or 0),
            response_at=now(),
        )
    except Exception as e:
        urls = _answer_urls(result)
        kept = rescue_answer(
            getattr(getattr(db, "sinkin_guard", None), "db_path", None) or db_path_of(db), job, record
        )
        error = StorageError(
            "the provider answered job {} (paid) but the database could not store the answer ({}); {}".format(
                job["id"],
                e,
                "it is kept in {}".format(kept) if kept else "its image URLs are: " + " ".join(urls),
            )
        )
        error.credit_cost = float(result.credit_cost or 0)
        error.unsaved = len(getattr(result, "images", None) or [1])
        raise error from e


def _answer_urls(result):
    if hasattr(result, "images"):
        return [i.url for i in result.images if i.url]
    return [result.url] if result.url else []


def _fallback_payload(job, config, payload, error):
    """The ``handle_inference_error`` hook, guarded: a plugin that raises offers no fallback."""
    try:
        return pm.hook.handle_inference_error(job=job, config=config, payload=payload, error=error), None
    except Exception as e:
        return None, "a plugin's handle_inference_error failed ({}: {})".format(type(e).__name__, e)


def _run_inference(db, job, provider):
    from .assets import read_asset

    config = rows_as_dicts(db.execute("select * from configs where id = ?", [job["config_id"]]))[0]
    resumed = bool(job.get("raw_response"))
    if resumed:
        response = InferenceResult.from_record(json.loads(job["raw_response"]))
    else:
        payload = build_payload(config)
        init = read_asset(db, config["init_asset_id"]) if config.get("init_asset_id") else None
        update_job(db, job["id"], raw_payload=json.dumps(payload))
        try:
            response = _send(db, job, provider.inference, payload, init)
        except ServiceError as e:
            replacement, plugin_error = _fallback_payload(job, config, payload, e)
            if replacement is None:
                error = e.message if plugin_error is None else "{} ({})".format(e.message, plugin_error)
                _finish(db, job, "failed", error)
                return Outcome("failed", error=error, service_error=True)
            update_job(db, job["id"], fallback=1, error=e.message, raw_payload=json.dumps(replacement))
            try:
                response = _send(db, job, provider.inference, replacement, None)
            except ServiceError as e2:
                error = "{} (the txt2img fallback failed too: {})".format(e.message, e2.message)
                _finish(db, job, "failed", error)
                return Outcome("failed", error=error, service_error=True)
        if isinstance(response, Outcome):
            return response
        response = as_inference_result(response)
        _store_answer(db, job, response)
    return _download_all(db, job, config, response, provider, paid=not resumed)


def save_image(db, data, relative_name):
    """Check ``data`` is an image, write it via a temp file, return ``(rel_path, width, height)``."""
    from PIL import Image

    try:
        with Image.open(BytesIO(data)) as im:
            im.verify()
        with Image.open(BytesIO(data)) as im:
            width, height, fmt = im.width, im.height, im.format
    except Exception as e:
        raise DownloadError("downloaded file is not a valid image ({})".format(e))
    ext = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}.get(fmt, "." + (fmt or "img").lower())
    db_path = db_path_of(db)
    path = media_dir(db_path) / (relative_name + ext)
    write_private(path, data)  # owner-only (0600) in owner-only folders, whatever the umask
    return relative_to_db(db_path, path), width, height


def _image_row(db, job_id, index):
    found = rows_as_dicts(
        db.execute("select * from images where job_id = ? and image_index = ?", [job_id, index])
    )
    return found[0] if found else None


def _upsert_image(db, job, config, response, index, image, **fields):
    db.execute(
        """insert into images (run_id, config_id, job_id, image_index, inf_id, url, provider_seed, path, width,
                               height, download_error, created_at)
           values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           on conflict (job_id, image_index) do update set url = excluded.url,
               provider_seed = coalesce(excluded.provider_seed, images.provider_seed),
               path = coalesce(excluded.path, images.path), width = coalesce(excluded.width, images.width),
               height = coalesce(excluded.height, images.height), download_error = excluded.download_error""",
        [
            job["run_id"],
            config["id"],
            job["id"],
            index,
            response.inf_id,
            image.url,
            image.seed,
            fields.get("path"),
            fields.get("width"),
            fields.get("height"),
            fields.get("download_error"),
            now(),
        ],
    )
    db.conn.commit()
    return _image_row(db, job["id"], index)


def _image_bytes(provider, image):
    if image.data is not None:
        return image.data
    if image.url:
        return with_retries(provider.download, image.url)
    raise DownloadError(
        "the provider returned this image inline and the process stopped before it "
        "was written; its data is not stored"
    )


def _image_saved(db, row, path):
    """Run the ``image_saved`` hooks; a failing plugin is logged in ``plugin_errors``."""

    @contextmanager
    def savepoint():  # a failing plugin's writes are undone (unless it committed them itself)
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
        db["plugin_errors"].insert(
            {
                "image_id": row["id"],
                "job_id": row["job_id"],
                "plugin": plugin,
                "hook": "image_saved",
                "error": "{}: {}".format(type(error).__name__, error),
                "created_at": now(),
            }
        )
        db.conn.commit()

    call_guarded("image_saved", on_error=log, guard=savepoint, db=db, image=row, path=path)


def _download_all(db, job, config, response, provider, paid=True):
    images = response.images
    db_path = db_path_of(db)
    saved, missing, errors, storage = 0, [], [], None
    for index, image in enumerate(images):
        existing = _image_row(db, job["id"], index)
        if existing and existing["path"] and resolve_media(db_path, existing["path"]).exists():
            saved += 1
            continue
        try:
            data = _image_bytes(provider, image)
            rel, width, height = save_image(
                db, data, "run_{}/job_{}_{}".format(job["run_id"], job["id"], index)
            )
        except (TransientError, DownloadError) as e:
            _upsert_image(db, job, config, response, index, image, download_error=str(e))
            missing.append(index)
            errors.append(str(e))
            continue
        except OSError as e:  # the media folder is full or read-only: keep the URL, stop spending
            if isinstance(e, (ConnectionError, TimeoutError)):
                raise
            storage = "could not save the image file ({})".format(e.strerror or e)
            _upsert_image(db, job, config, response, index, image, download_error=storage)
            missing.append(index)
            errors.append(storage)
            continue
        row = _upsert_image(db, job, config, response, index, image, path=rel, width=width, height=height)
        _image_saved(db, row, str(resolve_media(db_path, rel)))
        saved += 1
    cost = float(response.credit_cost or 0) if paid else 0.0  # a resume costs nothing new
    if missing:
        error = (
            "paid, but {} of {} images could not be {} ({}); their URLs are kept and "
            "`sinkin retry` fetches them again with no new charge"
        ).format(len(missing), len(images), "saved" if storage else "downloaded", errors[-1])
        _finish(db, job, "failed", error)
        return Outcome(
            "failed",
            images=saved,
            credit_cost=cost,
            error=error,
            paid=paid,
            messages=["job {}: {}".format(job["id"], error)],
            unsaved=len(missing),
            storage_error=storage,
        )
    # a fallback job keeps the original img2img error beside fallback = 1
    fallback, error = db.execute("select fallback, error from jobs where id = ?", [job["id"]]).fetchone()
    _finish(db, job, "succeeded", error if fallback else None)
    return Outcome("succeeded", images=saved, credit_cost=cost, paid=paid)


#: an image shows its newest finished upscale: an older upscale job that completes later (a retried
#: download) keeps its file in ``jobs.output_path`` and leaves the image's columns alone
_NOT_SUPERSEDED = " and (upscale_job_id is null or upscale_job_id <= ? or upscale_path is null)"


def _run_upscale(db, job, provider):
    options = json.loads(job.get("options") or "{}")
    image = rows_as_dicts(db.execute("select * from images where id = ?", [job["image_id"]]))[0]
    paid = not job.get("raw_response")
    if not paid:
        response = UpscaleResult.from_record(json.loads(job["raw_response"]))
    else:
        from .upscalers import get_upscalers

        payload = {"inf_id": image["inf_id"], "url": image["url"], **options}
        upscaler = get_upscalers().get(options.get("type"))
        args = [payload]
        if upscaler is not None and upscaler.source == "file":
            path = resolve_media(db_path_of(db), image["path"])
            args.append((path.name, path.read_bytes()))
        update_job(db, job["id"], raw_payload=json.dumps(payload))
        try:
            response = _send(db, job, provider.upscale, *args)
        except ServiceError as e:
            _finish(db, job, "failed", e.message)
            return Outcome("failed", error=e.message, service_error=True)
        if isinstance(response, Outcome):
            return response
        response = as_upscale_result(response)
        _store_answer(db, job, response)
        db.execute(
            "update images set upscale_url = ?, upscale_type = ?, upscale_job_id = ? where id = ?"
            + _NOT_SUPERSEDED,
            [response.url, options.get("type"), job["id"], image["id"], job["id"]],
        )
        db.conn.commit()
    cost = float(response.credit_cost or 0) if paid else 0.0  # a resume costs nothing new
    try:
        data = _image_bytes(provider, response)
        rel, _, _ = save_image(
            db, data, "run_{}/upscale_{}_{}".format(image["run_id"], image["id"], job["id"])
        )
    except (TransientError, DownloadError, OSError) as e:
        if isinstance(e, (ConnectionError, TimeoutError)):
            raise
        storage = (
            "could not save the image file ({})".format(e.strerror or e) if isinstance(e, OSError) else None
        )
        error = (
            "paid, but the upscaled image could not be {} ({}); its URL is kept and "
            "`sinkin retry` fetches it again with no new charge"
        ).format("saved" if storage else "downloaded", storage or e)
        _finish(db, job, "failed", error)
        return Outcome(
            "failed",
            credit_cost=cost,
            error=error,
            paid=paid,
            unsaved=1,
            storage_error=storage,
            messages=["job {}: {}".format(job["id"], error)],
        )
    db.execute(
        "update images set upscale_url = ?, upscale_path = ?, upscale_type = ?, upscale_job_id = ? "
        "where id = ?" + _NOT_SUPERSEDED,
        [response.url, rel, options.get("type"), job["id"], image["id"], job["id"]],
    )
    db.conn.commit()
    _finish(db, job, "succeeded", output_path=rel)  # the paid file stays referenced either way
    return Outcome("succeeded", images=1, credit_cost=cost, paid=paid)


def remove_partial_files(db_path):
    """Delete temp files left by a worker killed mid-download (they never count as images)."""
    folder = media_dir(db_path)
    if folder.exists():
        for part in Path(folder).glob("run_*/*.part-*"):
            try:
                pid = int(part.name.rsplit("-", 1)[1])
            except ValueError:
                continue
            from .queue import pid_alive

            if not pid_alive(pid):
                part.unlink(missing_ok=True)
