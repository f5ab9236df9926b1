"""Opening the database: WAL, a busy timeout, foreign keys, migrations; where media files live."""
import datetime
import os
from pathlib import Path

import sqlite_utils

from .migrations import migrations

DEFAULT_DB = "experiments.db"
BUSY_TIMEOUT_MS = 30000


def default_db_path():
    return os.environ.get("SINKIN_DB") or DEFAULT_DB


def now():
    """UTC timestamp as ISO 8601 text."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def configure_connection(conn):
    conn.execute("PRAGMA busy_timeout = {}".format(BUSY_TIMEOUT_MS))
    conn.execute("PRAGMA foreign_keys = ON")


def open_db(path=None, migrate=True):
    """Open (creating if needed) the SinkIn Lab database at ``path`` and bring its schema up to date."""
    path = Path(path or default_db_path())
    if path.parent and not path.parent.exists():
        raise FileNotFoundError("folder for the database does not exist: {}".format(path.parent))
    db = sqlite_utils.Database(path)
    configure_connection(db.conn)
    if db.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        db.conn.execute("PRAGMA journal_mode = wal")
    if migrate and migrations.pending(db):
        migrations.apply(db)
    return db


def dicts(cursor):
    """A cursor's rows as dicts keyed by column name."""
    cols = [c[0] for c in cursor.description]
    return [dict(zip(cols, row)) for row in cursor.fetchall()]


def db_path_of(db):
    """The file path of an open sqlite_utils Database."""
    row = db.conn.execute("PRAGMA database_list").fetchone()
    return Path(row[2])


def media_dir(db_path):
    """The media folder beside the database: ``experiments.db`` → ``experiments_media/``."""
    db_path = Path(db_path)
    return db_path.parent / (db_path.stem + "_media")


def relative_to_db(db_path, file_path):
    return os.path.relpath(Path(file_path).resolve(), Path(db_path).resolve().parent)


def resolve_media(db_path, rel_path):
    """The absolute path of a media file stored relative to the database's folder."""
    return Path(db_path).resolve().parent / rel_path
