"""The SinkIn database seen from a Datasette route: which file it is, running the pipeline's
library functions on it in a worker thread (never on the event loop), and JSON answers.

The routes of the dashboard and the run form call exactly the functions the ``sinkin`` CLI
calls (``runs.create_run``, ``queue.retry_jobs``, ``worker.work``...). Each call opens the file
with :func:`sinkin_pipeline.db.open_db` (WAL, busy timeout, foreign keys) in a thread, as the
CLI does, and closes it afterwards, so the server and a ``sinkin work`` process in a terminal
share the database the same way two CLI processes do.
"""

import asyncio
import json
import sqlite3

from datasette import Response
from datasette.utils import async_call_with_supported_arguments
from datasette.utils.asgi import BadRequest, NotFound
from datasette.views.base import DatasetteError

from sinkin_pipeline.db import DatabaseProblem

from .security import plugin_config


class NoDatabase(Exception):
    pass


def database_path(datasette):
    """The file path of the SinkIn database this Datasette serves.

    The plugin config key ``database`` names it; otherwise the first file-backed database."""
    name = plugin_config(datasette).get("database")
    if name:
        db = datasette.databases.get(name)
        if db is None or not db.path:
            raise NoDatabase("database {!r} (plugin config) is not served here".format(name))
        return db.path
    for name, db in datasette.databases.items():
        if name != "_internal" and not db.is_memory and db.path:
            return db.path
    raise NoDatabase("no database file is served: start it with `sinkin serve`")


def database_name(datasette):
    """The name Datasette gives the SinkIn database (for links such as /<db>/image_table)."""
    path = database_path(datasette)
    for name, db in datasette.databases.items():
        if db.path == path:
            return db.route or name
    return None


def _call(path, fn, args, kwargs):
    from sinkin_pipeline.db import open_db

    db = open_db(path)
    try:
        return fn(db, *args, **kwargs)
    finally:
        db.conn.close()


async def with_db(datasette, fn, *args, **kwargs):
    """Run ``fn(db, *args, **kwargs)`` in a thread on a freshly opened sqlite_utils Database."""
    path = database_path(datasette)
    return await asyncio.to_thread(_call, path, fn, args, kwargs)


def rows(db, sql, params=None):
    """A query's rows as dicts."""
    cursor = db.execute(sql, params or [])
    cols = [c[0] for c in cursor.description]
    return [dict(zip(cols, r)) for r in cursor.fetchall()]


#: the largest integer SQLite stores: an id above it names nothing
MAX_ID = 2**63 - 1


def url_id(request, name):
    """The integer URL part ``name`` (the route's regex makes it digits); NotFound above SQLite's
    range, where no row can be."""
    value = int(request.url_vars[name])
    if value > MAX_ID:
        raise NotFound("{} {} not found (ids are below 2^63)".format(name.replace("_", " "), value))
    return value


def guarded(view):
    """``view`` with the plugin's exception mapping: what bad input raises deep down (a number
    SQLite cannot hold, JSON nested too deeply, no database served, the database locked for too
    long) becomes a clear 4xx/503 instead of a 500. Errors render as JSON on ``.json`` paths and
    as Datasette's error page otherwise (raise Datasette's ``NotFound`` / ``Forbidden`` /
    ``BadRequest`` in a view for the same effect)."""

    async def run(datasette, request, scope, send, receive):
        try:
            return await async_call_with_supported_arguments(
                view, datasette=datasette, request=request, scope=scope, send=send, receive=receive
            )
        except Exception as e:
            mapped = map_exception(e)
            if mapped is None:
                raise
            raise mapped from e

    run.__name__ = getattr(view, "__name__", "view")
    run.__doc__ = view.__doc__
    run.view = view
    return run


def map_exception(e):
    """A Datasette exception with a clear status for ``e``, or None for a genuine bug."""
    if isinstance(e, OverflowError):
        return BadRequest("a number is too large (whole numbers must be below 2^63)")
    if isinstance(e, RecursionError):
        return BadRequest("the request is nested too deeply")
    if isinstance(e, NoDatabase):
        return DatasetteError(str(e), status=503)
    if isinstance(e, sqlite3.OperationalError) and "locked" in str(e):
        return DatasetteError("the database is busy (another process holds a lock): try again", status=503)
    if isinstance(e, DatabaseProblem):
        return DatasetteError(str(e), status=503)
    if isinstance(e, sqlite3.DatabaseError) and any(
        words in str(e) for words in ("malformed", "not a database", "disk I/O error")
    ):
        return DatasetteError(
            "the database file is damaged or unreadable ({}): stop the server and save what can be "
            "saved with `sqlite3 DB .recover | sqlite3 recovered.db`".format(e),
            status=503,
        )
    return None


def exception_response(datasette, request, exception):
    """``handle_exception`` for Datasette's own views: the same mapping as :func:`guarded`, so a
    row URL with a 20-digit id gives 400, not 500. None lets Datasette render everything else."""
    from datasette.handle_exception import handle_exception as render

    mapped = map_exception(exception)
    if mapped is None:
        return None
    return render(datasette=datasette, request=request, exception=mapped)


#: the only kinds of file the app serves from its media folder
MEDIA_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
}


def _confined_read(db_path, stored_path):
    """The bytes and type of a media file, or None unless it is a regular image file inside the
    media folder once every symlink and ``..`` is resolved."""
    from sinkin_pipeline.media import media_dir, resolve_media

    root = media_dir(db_path).resolve()
    try:
        path = resolve_media(db_path, stored_path).resolve(strict=True)
    except (OSError, RuntimeError, ValueError, TypeError):
        return None
    content_type = MEDIA_TYPES.get(path.suffix.lower())
    if root not in path.parents or content_type is None or not path.is_file():
        return None
    return path.read_bytes(), content_type


async def media_file(datasette, stored_path, what="file", cache="private, max-age=86400"):
    """The one way a route serves a file the database names (images, upscales, uploads): only an
    image inside the media folder beside the database (an ``assets.path`` of ``/etc/passwd`` or a
    symlink out of the folder is NotFound), with nosniff and a private cache."""
    found = None
    if isinstance(stored_path, str) and stored_path:
        found = await asyncio.to_thread(_confined_read, database_path(datasette), stored_path)
    if found is None:
        raise NotFound("no such {}".format(what))
    data, content_type = found
    return Response(
        data, content_type=content_type, headers={"cache-control": cache, "x-content-type-options": "nosniff"}
    )


def ok(data=None, status=200):
    body = {"ok": True}
    body.update(data or {})
    return Response.json(body, status=status, default=str)


def error(message, status=400, **extra):
    body = {"ok": False, "error": message}
    body.update(extra)
    return Response.json(body, status=status, default=str)


def json_script(data):
    """``data`` as JSON that is safe inside a ``<script type="application/json">`` element."""
    text = json.dumps(data, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def optional_int(data, key, minimum=None, maximum=None):
    """``data[key]`` as an int (None when missing/empty); ValueError with a readable message."""
    value = data.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("{}: expected a whole number".format(key))
    try:
        number = int(value) if not isinstance(value, float) or value.is_integer() else None
    except (TypeError, ValueError):
        number = None
    if number is None:
        raise ValueError("{}: expected a whole number, got {!r}".format(key, value))
    if minimum is not None and number < minimum or maximum is not None and number > maximum:
        raise ValueError(
            "{}: {} is out of range ({} to {})".format(
                key, number, minimum, "∞" if maximum is None else maximum
            )
        )
    return number


def optional_float(data, key, minimum=None):
    value = data.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("{}: expected a number".format(key))
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError("{}: expected a number, got {!r}".format(key, value))
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError("{}: expected a finite number".format(key))
    if minimum is not None and number < minimum:
        raise ValueError("{}: must be at least {:g}".format(key, minimum))
    return number
