"""Opening the database: WAL, a busy timeout, foreign keys, migrations; write transactions that
wait for the busy timeout; read-only opening; where media files live.

Writing commands open with :func:`open_db` (creates the file only when asked, migrates);
read-only commands with :func:`open_readonly` (never creates, migrates or switches the journal
mode; works on a read-only filesystem). Both refuse a file that is not a SinkIn Lab database
and turn a damaged one into a :class:`DatabaseProblem` with a readable message.
"""

import contextlib
import datetime
import os
import sqlite3
import threading
from pathlib import Path

import sqlite_utils

from .media import make_database_private
from .migrations import migrations

DEFAULT_DB = "experiments.db"
BUSY_TIMEOUT_MS = 30000
MIGRATION_SET = migrations.name


class DatabaseProblem(Exception):
    """A database that cannot be used as it is; the message says what to do."""


class NoDatabase(DatabaseProblem):
    """No database file where one was expected."""


class ForeignDatabase(DatabaseProblem):
    """A file that is not a SinkIn Lab database (another program's SQLite file, or not SQLite)."""


class CorruptDatabase(DatabaseProblem):
    """A damaged SQLite file ("database disk image is malformed")."""


class OutdatedDatabase(DatabaseProblem):
    """A SinkIn Lab database whose schema is older than this version (read-only opening)."""


def default_db_path():
    return os.environ.get("SINKIN_DB") or DEFAULT_DB


def now():
    """UTC timestamp as ISO 8601 text."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def configure_connection(conn):
    conn.execute("PRAGMA busy_timeout = {}".format(BUSY_TIMEOUT_MS))
    conn.execute("PRAGMA foreign_keys = ON")


def no_database_message(path):
    return "no database at {} — `sinkin init --db {}` creates one".format(path, path)


def corrupt_message(path, error):
    if "not a database" in str(error):
        return (
            "{} is not a SQLite database, or a damaged one ({}): SinkIn Lab leaves it untouched. "
            "Choose another --db; if it was a SinkIn Lab database, save what can be saved with "
            "`sqlite3 {} .recover | sqlite3 recovered.db`"
        ).format(path, error, path)
    return (
        "the database {} is damaged ({}): SinkIn Lab cannot use it. Save what can be saved "
        "with `sqlite3 {} .recover | sqlite3 recovered.db`, then use --db recovered.db"
    ).format(path, error, path)


def is_corruption(error):
    """True for the sqlite3 errors that mean a damaged file."""
    text = str(error).lower()
    return isinstance(error, sqlite3.DatabaseError) and (
        "malformed" in text or "not a database" in text or "corrupt" in text
    )


def _check_file(path, create):
    """Raise a DatabaseProblem unless ``path`` is usable; returns True when it must be created."""
    if path.is_dir():
        raise DatabaseProblem("{} is a folder, not a database file".format(path))
    if not path.exists():
        if not create:
            raise NoDatabase(no_database_message(path))
        if not path.parent.exists():
            raise NoDatabase("folder for the database does not exist: {}".format(path.parent))
        return True
    # never open() the file here: closing any descriptor of it would drop the POSIX locks the
    # process's SQLite connections hold on it; stat() is safe
    try:
        size = path.stat().st_size
    except OSError as e:
        raise DatabaseProblem("cannot read {}: {}".format(path, e.strerror or e))
    if not size:
        return create or _raise(
            NoDatabase(
                "{} is an empty file — `sinkin init --db {}` makes it a SinkIn Lab database".format(
                    path, path
                )
            )
        )
    return False


def _raise(error):
    raise error


def _check_ours(conn, path):
    """Raise ForeignDatabase unless the file holds SinkIn Lab's tables (or no table at all).
    Returns True when the file has no table yet."""
    tables = [
        r[0]
        for r in conn.execute("select name from sqlite_master where type in ('table', 'view')").fetchall()
    ]
    if not tables:
        return True
    ours = (
        "_sqlite_migrations" in tables
        and conn.execute(
            "select 1 from _sqlite_migrations where migration_set = ? limit 1", [MIGRATION_SET]
        ).fetchone()
    )
    if not ours:
        shown = ", ".join(sorted(tables)[:5]) + (", …" if len(tables) > 5 else "")
        raise ForeignDatabase(
            "{} is not a SinkIn Lab database (it holds the tables {} of another "
            "program): SinkIn Lab leaves it untouched; choose another --db".format(path, shown)
        )
    return False


def open_db(path=None, migrate=True, create=True):
    """Open the SinkIn Lab database at ``path`` for writing and bring its schema up to date.

    A missing file is created when ``create`` (else :class:`NoDatabase`). Another program's
    SQLite file is refused untouched (:class:`ForeignDatabase`), a damaged one raises
    :class:`CorruptDatabase`."""
    path = Path(path or default_db_path())
    _check_file(path, create)
    db = sqlite_utils.Database(path)
    # before the WAL exists: SQLite gives the -wal and -shm files the database file's mode
    make_database_private(path)
    try:
        configure_connection(db.conn)
        empty = _check_ours(db.conn, path)
        if empty or db.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            db.conn.execute("PRAGMA journal_mode = wal")
        if migrate and (empty or migrations.pending(db)):
            with write_transaction(db):
                if migrations.pending(db):
                    migrations.apply(db)
    except sqlite3.DatabaseError as e:
        db.conn.close()
        if is_corruption(e):
            raise CorruptDatabase(corrupt_message(path, e))
        raise
    except BaseException:
        db.conn.close()
        raise
    return db


def open_readonly(path=None):
    """Open an existing SinkIn Lab database for reading only: never creates a file, migrates or
    changes the journal mode; works on a read-only filesystem. Raises a DatabaseProblem."""
    path = Path(path or default_db_path())
    _check_file(path, create=False)
    uri = Path(os.path.abspath(path)).as_uri()
    conn = None
    try:
        try:
            conn = sqlite3.connect(uri + "?mode=ro", uri=True, check_same_thread=False)
            configure_connection(conn)
            conn.execute("select count(*) from sqlite_master").fetchone()
        except sqlite3.OperationalError:
            # a WAL database on a read-only filesystem: no -shm can be made, so read the file as
            # it is (nothing else can be writing to it there)
            if conn is not None:
                conn.close()
            conn = sqlite3.connect(uri + "?immutable=1", uri=True, check_same_thread=False)
            configure_connection(conn)
        if _check_ours(conn, path):
            raise NoDatabase(
                "{} holds no SinkIn Lab tables yet — `sinkin init --db {}` creates them".format(path, path)
            )
        db = sqlite_utils.Database(conn)
        if migrations.pending(db):
            raise OutdatedDatabase(
                "{} was made by an older SinkIn Lab: `sinkin init --db {}` brings it up to date".format(
                    path, path
                )
            )
        return db
    except sqlite3.DatabaseError as e:
        if conn is not None:
            conn.close()
        if is_corruption(e):
            raise CorruptDatabase(corrupt_message(path, e))
        raise DatabaseProblem("cannot read the database {}: {}".format(path, e))
    except BaseException:
        if conn is not None:
            conn.close()
        raise


_writing = {}  # id(connection) -> depth of write_transaction blocks open on it
_writing_lock = threading.Lock()


@contextlib.contextmanager
def write_transaction(db):
    """A write transaction that waits for the busy timeout instead of failing.

    Starts with ``BEGIN IMMEDIATE`` (the write lock is taken before anything is read, so a
    transaction that reads then writes never fails with "database is locked"), commits at the
    end, rolls back on any exception. ``db`` is a sqlite_utils Database or a sqlite3
    connection. Nested blocks become savepoints; an implicit transaction left open on the
    connection is committed first."""
    conn = getattr(db, "conn", db)
    key = id(conn)
    with _writing_lock:
        depth = _writing.get(key, 0)
    if depth and conn.in_transaction:
        name = "sinkin_{}".format(depth)
        conn.execute("SAVEPOINT " + name)
        with _writing_lock:
            _writing[key] = depth + 1
        try:
            yield db
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK TO SAVEPOINT " + name)
                conn.execute("RELEASE SAVEPOINT " + name)
            raise
        else:
            conn.execute("RELEASE SAVEPOINT " + name)
        finally:
            with _writing_lock:
                _writing[key] = depth
        return
    if conn.in_transaction:
        conn.commit()
    conn.execute("BEGIN IMMEDIATE")
    with _writing_lock:
        _writing[key] = 1
    try:
        yield db
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")
    finally:
        with _writing_lock:
            _writing.pop(key, None)


def dicts(cursor):
    """A cursor's rows as dicts keyed by column name: for a raw ``sqlite3`` connection inside a
    transaction (claims), where sqlite-utils' ``db.query`` / ``table.get`` are not at hand."""
    cols = [c[0] for c in cursor.description]
    return [dict(zip(cols, row)) for row in cursor.fetchall()]


def db_path_of(db):
    """The file path of an open sqlite_utils Database."""
    row = db.conn.execute("PRAGMA database_list").fetchone()
    return Path(row[2])


MAX_ID = 2**63 - 1


def parse_id(value, what="id", error=ValueError):
    """``value`` (an int or its text) as a row id from 1 to 2^63−1; ``error`` with a clear message
    otherwise (SQLite cannot even look up a larger number)."""
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    else:
        try:
            number = int(str(value).strip())
        except (TypeError, ValueError):
            number = None
    if number is None:
        raise error("{} must be a whole number, got {!r}".format(what, value))
    if not 1 <= number <= MAX_ID:
        raise error("{} must be from 1 to {}, got {}".format(what, MAX_ID, number))
    return number
