"""Running one claimed job: the state machine that keeps money and images safe.

1. The payload is stored before it is sent (never with the access token: providers add it).
2. A job that already holds SinkIn's answer is never sent again: it only downloads.
3. Transient failures (nothing processed) are retried with capped, jittered backoff; SinkIn's
   ``error_code`` answers are final (a plugin may offer a fallback payload); a request that was
   sent but got no answer leaves the job ``interrupted``, never re-sent automatically.
4. The answer (inf_id, credit_cost, URLs) is committed before anything is downloaded.
5. Each image goes to a temp file, is checked with Pillow, renamed, and only then recorded; a paid
   image that cannot be fetched keeps its URL and fails the job with a message saying so.
"""
import json
import os
import random
import time
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

from .db import db_path_of, media_dir, now, relative_to_db, resolve_media, write_private
from .plugins import load_plugins, pm
from .providers import DownloadError, OutcomeUnknown, ServiceError, TransientError
from .queue import rows_as_dicts, update_job

MAX_ATTEMPTS = int(os.environ.get("SINKIN_RETRY_ATTEMPTS", "5"))
BASE_DELAY = float(os.environ.get("SINKIN_RETRY_BASE_DELAY", "0.5"))
MAX_DELAY = float(os.environ.get("SINKIN_RETRY_MAX_DELAY", "20"))
BOOL_FIELDS = ("use_default_neg", "lcm")
SEND_FIELDS = ("model_id", "prompt", "negative_prompt", "use_default_neg", "width", "height", "steps",
               "scale", "num_images", "seed", "scheduler", "lora", "lora_scale", "lcm", "version",
               "image_strength", "controlnet")


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


def backoff_delay(attempt, retry_after=None):
    """Seconds to wait before retry number ``attempt`` (0-based): Retry-After when given (capped),
    else full jitter over an exponential ramp, capped."""
    if retry_after is not None:
        return min(float(retry_after), MAX_DELAY)
    return random.uniform(BASE_DELAY / 2, min(MAX_DELAY, BASE_DELAY * 2 ** attempt))


def with_retries(fn, *args):
    """Call ``fn(*args)``, retrying TransientError a bounded number of times."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            return fn(*args)
        except TransientError as e:
            if attempt == MAX_ATTEMPTS - 1:
                raise TransientError("gave up after {} attempts: {}".format(MAX_ATTEMPTS, e),
                                     retry_after=e.retry_after, status=e.status)
            time.sleep(backoff_delay(attempt, e.retry_after))


def build_payload(config):
    """The SinkIn payload for a config row (None fields left out; img2img fields only with an init image)."""
    payload = {}
    for name in SEND_FIELDS:
        value = config.get(name)
        if value is None:
            continue
        if name in BOOL_FIELDS:
            value = bool(value)
        payload[name] = value
    if not config.get("init_asset_id"):
        payload.pop("image_strength", None)
        payload.pop("controlnet", None)
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
        message = "internal error: {}: {}".format(type(e).__name__, e)
        _finish(db, job, "failed", message)
        return Outcome("failed", error=message)


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
        error = ("no answer after the request was sent ({}): it may have been charged, so it is not "
                 "sent again automatically; `sinkin retry --resend` re-sends it").format(e)
        _finish(db, job, "interrupted", error)
        return Outcome("interrupted", error=error, charge_unknown=True)


def _store_answer(db, job, response):
    update_job(db, job["id"], raw_response=json.dumps(response), inf_id=response.get("inf_id"),
               credit_cost=float(response.get("credit_cost") or 0), response_at=now())


def _run_inference(db, job, provider):
    from .assets import read_asset

    config = rows_as_dicts(db.execute("select * from configs where id = ?", [job["config_id"]]))[0]
    resumed = bool(job.get("raw_response"))
    if resumed:
        response = json.loads(job["raw_response"])
    else:
        payload = build_payload(config)
        init = read_asset(db, config["init_asset_id"]) if config.get("init_asset_id") else None
        update_job(db, job["id"], raw_payload=json.dumps(payload))
        try:
            response = _send(db, job, provider.inference, payload, init)
        except ServiceError as e:
            replacement = pm.hook.handle_inference_error(job=job, config=config, payload=payload, error=e)
            if replacement is None:
                _finish(db, job, "failed", e.message)
                return Outcome("failed", error=e.message, service_error=True)
            update_job(db, job["id"], fallback=1, error=e.message, raw_payload=json.dumps(replacement))
            try:
                response = _send(db, job, provider.inference, replacement, None)
            except ServiceError as e2:
                error = "{} (the txt2img fallback failed too: {})".format(e.message, e2.message)
                _finish(db, job, "failed", error)
                return Outcome("failed", error=error, service_error=True)
        if isinstance(response, Outcome):
            return response
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
    found = rows_as_dicts(db.execute("select * from images where job_id = ? and image_index = ?", [job_id, index]))
    return found[0] if found else None


def _upsert_image(db, job, config, response, index, url, **fields):
    db.execute(
        """insert into images (run_id, config_id, job_id, image_index, inf_id, url, path, width, height,
                               download_error, created_at)
           values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           on conflict (job_id, image_index) do update set url = excluded.url,
               path = coalesce(excluded.path, images.path), width = coalesce(excluded.width, images.width),
               height = coalesce(excluded.height, images.height), download_error = excluded.download_error""",
        [job["run_id"], config["id"], job["id"], index, response.get("inf_id"), url, fields.get("path"),
         fields.get("width"), fields.get("height"), fields.get("download_error"), now()])
    db.conn.commit()
    return _image_row(db, job["id"], index)


def _download_all(db, job, config, response, provider, paid=True):
    urls = response.get("images") or []
    db_path = db_path_of(db)
    saved, missing, errors = 0, [], []
    for index, url in enumerate(urls):
        existing = _image_row(db, job["id"], index)
        if existing and existing["path"] and resolve_media(db_path, existing["path"]).exists():
            saved += 1
            continue
        try:
            data = with_retries(provider.download, url)
            rel, width, height = save_image(db, data, "run_{}/job_{}_{}".format(job["run_id"], job["id"], index))
        except (TransientError, DownloadError) as e:
            _upsert_image(db, job, config, response, index, url, download_error=str(e))
            missing.append(index)
            errors.append(str(e))
            continue
        row = _upsert_image(db, job, config, response, index, url, path=rel, width=width, height=height)
        pm.hook.image_saved(db=db, image=row, path=str(resolve_media(db_path, rel)))
        saved += 1
    cost = float(response.get("credit_cost") or 0) if paid else 0.0  # a resume costs nothing new
    if missing:
        error = ("paid, but {} of {} images could not be downloaded ({}); their URLs are kept and "
                 "`sinkin retry` fetches them again with no new charge").format(
                     len(missing), len(urls), errors[-1])
        _finish(db, job, "failed", error)
        return Outcome("failed", images=saved, credit_cost=cost, error=error, paid=paid,
                       messages=["job {}: {}".format(job["id"], error)])
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
        response = json.loads(job["raw_response"])
    else:
        payload = {"inf_id": image["inf_id"], "url": image["url"], **options}
        update_job(db, job["id"], raw_payload=json.dumps(payload))
        try:
            response = _send(db, job, provider.upscale, payload)
        except ServiceError as e:
            _finish(db, job, "failed", e.message)
            return Outcome("failed", error=e.message, service_error=True)
        if isinstance(response, Outcome):
            return response
        _store_answer(db, job, response)
        db.execute("update images set upscale_url = ?, upscale_type = ?, upscale_job_id = ? where id = ?"
                   + _NOT_SUPERSEDED, [response.get("output"), options.get("type"), job["id"], image["id"],
                                       job["id"]])
        db.conn.commit()
    cost = float(response.get("credit_cost") or 0) if paid else 0.0  # a resume costs nothing new
    try:
        data = with_retries(provider.download, response["output"])
        rel, _, _ = save_image(db, data, "run_{}/upscale_{}_{}".format(image["run_id"], image["id"], job["id"]))
    except (TransientError, DownloadError, KeyError) as e:
        error = ("paid, but the upscaled image could not be downloaded ({}); its URL is kept and "
                 "`sinkin retry` fetches it again with no new charge").format(e)
        _finish(db, job, "failed", error)
        return Outcome("failed", credit_cost=cost, error=error, paid=paid,
                       messages=["job {}: {}".format(job["id"], error)])
    db.execute("update images set upscale_url = ?, upscale_path = ?, upscale_type = ?, upscale_job_id = ? "
               "where id = ?" + _NOT_SUPERSEDED,
               [response.get("output"), rel, options.get("type"), job["id"], image["id"], job["id"]])
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
