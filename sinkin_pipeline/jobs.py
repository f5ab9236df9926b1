"""Running one claimed job: the state machine that keeps money and images safe.

1. The payload is stored before it is sent (never with the access token: providers add it), in
   the claim's own transaction (:func:`claim_payload`).
2. A job that already holds SinkIn's answer is never sent again: it only downloads.
3. Transient failures (nothing processed) are retried with capped, jittered backoff; SinkIn's
   ``error_code`` answers are final (a plugin may offer a fallback payload); a request that was
   sent but got no answer leaves the job ``interrupted``, never re-sent automatically.
4. The answer (inf_id, credit_cost, URLs; never image bytes) is committed before anything is
   downloaded. Images that came inline (bytes) are written to their files first – their bytes
   exist nowhere else – so no recorded answer ever refers to an inline image that was lost.
5. Each image goes to a temp file (fsynced), is checked with Pillow and renamed, and its thumbnail
   is made, all before the write lock is taken; then one transaction records every image row with
   its thumbnail and the job's final status (:mod:`sinkin_pipeline.saving`). A paid image that
   cannot be fetched keeps its URL and fails the job with a message saying so.
6. Plugin hooks run after an image is saved are guarded: a failure is recorded in ``plugin_errors``
   against the image and never fails the job.
"""

import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from .db import db_path_of, dicts, now, write_transaction
from .fields import FIELDS
from .media import media_dir, resolve_media
from .plugins import load_plugins, pm
from .providers import DownloadError, OutcomeUnknown, ServiceError, TransientError
from .queue import JobStatus, finish_job, set_final_status, update_job
from .results import InferenceResult, UpscaleResult, as_inference_result, as_upscale_result
from .saving import (
    Saved,
    existing_files,
    image_name,
    image_saved,
    prepare,
    record_images,
    upscale_name,
)

MAX_ATTEMPTS = int(os.environ.get("SINKIN_RETRY_ATTEMPTS", "5"))
BASE_DELAY = float(os.environ.get("SINKIN_RETRY_BASE_DELAY", "0.5"))
MAX_DELAY = float(os.environ.get("SINKIN_RETRY_MAX_DELAY", "20"))
BOOL_FIELDS = tuple(name for name, fld in FIELDS.items() if fld.kind == "bool")
SEND_FIELDS = tuple(FIELDS)
IMG2IMG_ONLY = tuple(name for name, fld in FIELDS.items() if fld.img2img_only)


@dataclass
class Outcome:
    status: "JobStatus"
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
    return finish_job(db, job["id"], status, error, **fields)


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
            _finish(db, job, JobStatus.FAILED, message)
        except Exception:
            pass  # the database itself failed: the job's lease runs out and it is recovered
        return Outcome(
            JobStatus.FAILED,
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
        _finish(db, job, JobStatus.FAILED, error)
        return Outcome(JobStatus.FAILED, error=error)
    except OutcomeUnknown as e:
        error = (
            "no answer after the request was sent ({}): it may have been charged, so it is not "
            "sent again automatically; `sinkin retry --resend` re-sends it"
        ).format(e)
        _finish(db, job, JobStatus.INTERRUPTED, error)
        return Outcome(JobStatus.INTERRUPTED, error=error, charge_unknown=True)


def _store_answer(db, job, result, then=None):
    """Commit a provider's answer (without image bytes), with ``then()``'s writes in the same
    transaction when given (returns what it returns). If the database cannot take it (deleted, full,
    read-only), keep it in the rescue file beside the database and raise StorageError (the session
    stops spending)."""
    from .storage import StorageError, rescue_answer

    record = result.record()
    try:
        guard = getattr(db, "sinkin_guard", None)
        if guard is not None:
            guard.check_db()
        with write_transaction(db):
            write_job_columns(
                db,
                job["id"],
                raw_response=json.dumps(record, default=str),
                inf_id=getattr(result, "inf_id", None),
                credit_cost=float(result.credit_cost or 0),
                response_at=now(),
            )
            return then() if then is not None else None
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


def _in_one_transaction(db, job, answer, then):
    """``then()`` in one write transaction, with the answer when it is not stored yet."""
    if answer is not None:
        return _store_answer(db, job, answer, then)
    with write_transaction(db):
        return then()


def write_job_columns(db, job_id, **fields):
    """Set columns of one job (not its status: see :func:`_set_status`) inside the caller's
    transaction (no commit of its own)."""
    if "status" in fields:
        raise ValueError("a job's status changes through the queue module")
    db.execute(
        "update jobs set {} where id = ?".format(", ".join("{} = ?".format(k) for k in fields)),
        list(fields.values()) + [job_id],
    )


def _set_status(db, job, status, error=None, **fields):
    """Set a job's final status inside the caller's transaction."""
    set_final_status(db, job["id"], status, error, **fields)


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


def claim_payload(job, conn):
    """Columns a claim stores with ``job`` in its own transaction: the payload of an inference about
    to be sent (on record before it is sent, without a write transaction of its own)."""
    if job.get("raw_response") or job["kind"] != "inference":
        return {}
    found = dicts(conn.execute("select * from configs where id = ?", [job["config_id"]]))
    return {"raw_payload": json.dumps(build_payload(found[0]))} if found else {}


def _run_inference(db, job, provider):
    from .assets import read_asset

    config = db["configs"].get(job["config_id"])
    resumed = bool(job.get("raw_response"))
    if resumed:
        response = InferenceResult.from_record(json.loads(job["raw_response"]))
    else:
        if job.get("raw_payload"):  # stored when the job was claimed
            payload = json.loads(job["raw_payload"])
        else:
            payload = build_payload(config)
            update_job(db, job["id"], raw_payload=json.dumps(payload))
        init = read_asset(db, config["init_asset_id"]) if config.get("init_asset_id") else None
        try:
            response = _send(db, job, provider.inference, payload, init)
        except ServiceError as e:
            replacement, plugin_error = _fallback_payload(job, config, payload, e)
            if replacement is None:
                error = e.message if plugin_error is None else "{} ({})".format(e.message, plugin_error)
                _finish(db, job, JobStatus.FAILED, error)
                return Outcome(JobStatus.FAILED, error=error, service_error=True)
            update_job(db, job["id"], fallback=1, error=e.message, raw_payload=json.dumps(replacement))
            try:
                response = _send(db, job, provider.inference, replacement, None)
            except ServiceError as e2:
                error = "{} (the txt2img fallback failed too: {})".format(e.message, e2.message)
                _finish(db, job, JobStatus.FAILED, error)
                return Outcome(JobStatus.FAILED, error=error, service_error=True)
        if isinstance(response, Outcome):
            return response
        response = as_inference_result(response)
    return _save_all(db, job, config, response, provider, answer=None if resumed else response)


def _downloader(provider, url):
    def fetch():
        try:
            return with_retries(provider.download, url)
        except TransientError as e:
            raise DownloadError(str(e)) from e

    return fetch


def _fetcher(provider, url, data):
    """The bytes of an image: its inline ``data``, its download, or None (look for its file)."""
    if data is not None:
        return lambda: data
    return _downloader(provider, url) if url else (lambda: None)


def _save_all(db, job, config, response, provider, answer=None):
    """Write the images of ``response`` and record them with the job's final status in one
    transaction. ``answer`` is a new answer not stored yet: inline images are written first (their
    bytes exist nowhere else), then – before any download – the answer is committed on its own if
    some images are URLs; otherwise it is committed with the images."""
    db_path = db_path_of(db)
    paid = answer is not None
    done = {} if paid else existing_files(db, job["id"])
    todo = [Saved(i, url=im.url, seed=im.seed) for i, im in enumerate(response.images) if i not in done]
    inline = [s for s in todo if response.images[s.index].data is not None or not s.url]
    for saved in inline:
        prepare(
            db_path,
            saved,
            _fetcher(provider, saved.url, response.images[saved.index].data),
            image_name(job, saved.index),
        )
    if answer is not None and len(inline) < len(todo):
        _store_answer(db, job, answer)  # the answer is committed before any download
        answer = None
    for saved in todo:
        if saved not in inline:
            prepare(db_path, saved, _downloader(provider, saved.url), image_name(job, saved.index))
    missing = [s for s in todo if s.path is None]
    storage = next((s.error for s in missing if s.storage), None)
    count = len(response.images) - len(missing)
    cost = float(response.credit_cost or 0) if paid else 0.0  # a resume costs nothing new
    error = None
    if missing:
        error = (
            "paid, but {} of {} images could not be {} ({}); their URLs are kept and "
            "`sinkin retry` fetches them again with no new charge"
        ).format(len(missing), len(response.images), "saved" if storage else "downloaded", missing[-1].error)

    def record():
        rows = record_images(db, job, config["id"], response.inf_id, todo)
        if missing:
            _set_status(db, job, JobStatus.FAILED, error)
        else:  # a fallback job keeps the original img2img error beside fallback = 1
            fallback, old = db.execute(
                "select fallback, error from jobs where id = ?", [job["id"]]
            ).fetchone()
            _set_status(db, job, JobStatus.SUCCEEDED, old if fallback else None)
        return rows

    for row in _in_one_transaction(db, job, answer, record):
        image_saved(db, row, str(resolve_media(db_path, row["path"])))
    if missing:
        return Outcome(
            JobStatus.FAILED,
            images=count,
            credit_cost=cost,
            error=error,
            paid=paid,
            messages=["job {}: {}".format(job["id"], error)],
            unsaved=len(missing),
            storage_error=storage,
        )
    return Outcome(JobStatus.SUCCEEDED, images=count, credit_cost=cost, paid=paid)


#: an image shows its newest finished upscale: an older upscale job that completes later (a retried
#: download) keeps its file in ``jobs.output_path`` and leaves the image's columns alone
_NOT_SUPERSEDED = " and (upscale_job_id is null or upscale_job_id <= ? or upscale_path is null)"


def _run_upscale(db, job, provider):
    options = json.loads(job.get("options") or "{}")
    image = db["images"].get(job["image_id"])
    answer = None
    if job.get("raw_response"):
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
            _finish(db, job, JobStatus.FAILED, e.message)
            return Outcome(JobStatus.FAILED, error=e.message, service_error=True)
        if isinstance(response, Outcome):
            return response
        answer = response = as_upscale_result(response)

    def show_url():
        db.execute(
            "update images set upscale_url = ?, upscale_type = ?, upscale_job_id = ? where id = ?"
            + _NOT_SUPERSEDED,
            [response.url, options.get("type"), job["id"], image["id"], job["id"]],
        )

    if answer is not None and response.data is None and response.url:
        _store_answer(db, job, answer, show_url)  # the answer is committed before the download
        answer = None
    paid = not job.get("raw_response")
    cost = float(response.credit_cost or 0) if paid else 0.0  # a resume costs nothing new
    saved = prepare(
        db_path_of(db),
        Saved(0, url=response.url),
        _fetcher(provider, response.url, response.data),
        upscale_name(image, job),
        thumbnail=False,
    )
    if saved.path is None:
        storage = saved.error if saved.storage else None
        error = (
            "paid, but the upscaled image could not be {} ({}); its URL is kept and "
            "`sinkin retry` fetches it again with no new charge"
        ).format("saved" if storage else "downloaded", saved.error)

        def failed():
            if answer is not None:
                show_url()
            _set_status(db, job, JobStatus.FAILED, error)

        _in_one_transaction(db, job, answer, failed)
        return Outcome(
            JobStatus.FAILED,
            credit_cost=cost,
            error=error,
            paid=paid,
            unsaved=1,
            storage_error=storage,
            messages=["job {}: {}".format(job["id"], error)],
        )

    def succeeded():
        db.execute(
            "update images set upscale_url = ?, upscale_path = ?, upscale_type = ?, upscale_job_id = ? "
            "where id = ?" + _NOT_SUPERSEDED,
            [response.url, saved.path, options.get("type"), job["id"], image["id"], job["id"]],
        )
        _set_status(db, job, JobStatus.SUCCEEDED, output_path=saved.path)  # the paid file stays referenced

    _in_one_transaction(db, job, answer, succeeded)
    return Outcome(JobStatus.SUCCEEDED, images=1, credit_cost=cost, paid=paid)


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
