"""Disk and database faults stop spending.

Before each job is claimed, :meth:`StorageGuard.check` makes sure its answer and files can be kept:
the database is still the file the session opened (same device and inode: not deleted or replaced),
the media folder exists and is writable, and both have at least ``SINKIN_MIN_FREE_MB`` (default
50) MB free. A failure raises :class:`StorageError`, which stops the session before anything more
is paid for. An answer SinkIn sent that the database can no longer take is appended to
``<db>.unsaved-answers.jsonl`` beside it (:func:`rescue_answer`), so it is never lost silently.
"""

import json
import os
import shutil
from pathlib import Path

from .db import now
from .media import media_dir, private_dir


class StorageError(Exception):
    """The database or the media folder cannot keep what a paid call returns."""


def min_free_bytes():
    try:
        return int(float(os.environ.get("SINKIN_MIN_FREE_MB", "50")) * 1024 * 1024)
    except ValueError:
        return 50 * 1024 * 1024


def _identity(path):
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _free(folder):
    return shutil.disk_usage(folder).free


class StorageGuard:
    """The storage checks of one worker session (see the module docstring)."""

    def __init__(self, db_path):
        self.db_path = Path(db_path).resolve()
        self.media = media_dir(self.db_path)
        self.identity = _identity(self.db_path)

    def check_db(self):
        try:
            same = _identity(self.db_path) == self.identity
        except OSError:
            same = False
        if not same:
            raise StorageError(
                "the database file {} was deleted or replaced while working".format(self.db_path)
            )

    def check(self):
        """Raise StorageError unless a paid answer and its images can be kept now."""
        self.check_db()
        try:
            if not self.media.exists():
                private_dir(self.media)
        except OSError as e:
            raise StorageError(
                "the media folder {} cannot be created ({})".format(self.media, e.strerror or e)
            )
        if not os.access(self.media, os.W_OK):
            raise StorageError("the media folder {} is not writable".format(self.media))
        need = min_free_bytes()
        for folder in {self.media, self.db_path.parent}:
            free = _free(folder)
            if free < need:
                raise StorageError(
                    "only {:.1f} MB free for {} ({:g} MB needed before a paid call; "
                    "SINKIN_MIN_FREE_MB sets it)".format(free / 2**20, folder, need / 2**20)
                )


def rescue_path(db_path):
    db_path = Path(db_path)
    return db_path.with_name(db_path.name + ".unsaved-answers.jsonl")


def rescue_answer(db_path, job, response):
    """Append a paid answer the database could not take to the rescue file; returns its path, or
    None when even that cannot be written."""
    path = rescue_path(db_path)
    line = json.dumps(
        {"job_id": job.get("id"), "run_id": job.get("run_id"), "saved_at": now(), "response": response},
        default=str,
    )
    try:
        with open(path, "a", encoding="utf-8") as fp:
            fp.write(line + "\n")
            fp.flush()
            os.fsync(fp.fileno())
    except OSError:
        return None
    return path


def is_storage_failure(error):
    """True for an exception that means the disk or the database cannot keep data."""
    import sqlite3

    if isinstance(error, StorageError):
        return True
    if isinstance(error, sqlite3.OperationalError):
        text = str(error).lower()
        return any(k in text for k in ("disk", "full", "readonly", "read-only", "i/o", "unable to open"))
    if isinstance(error, sqlite3.DatabaseError) and "malformed" in str(error).lower():
        return True
    return isinstance(error, OSError) and not isinstance(error, (ConnectionError, TimeoutError))
