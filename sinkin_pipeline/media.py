"""The media folder beside the database and the files in it: where they live
(``experiments.db`` → ``experiments_media/``), paths stored relative to the database's folder,
and writing them owner-only and atomically (a temp file, fsync, rename: complete or absent)."""

import contextlib
import os
import threading
from pathlib import Path


def media_dir(db_path):
    """The media folder beside the database: ``experiments.db`` → ``experiments_media/``."""
    db_path = Path(db_path)
    return db_path.parent / (db_path.stem + "_media")


#: the database, its WAL, images and uploads are the user's alone, whatever the umask
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def make_private(path, mode=PRIVATE_FILE):
    """chmod ``path`` to ``mode`` if it exists and is not already (never opens it). Silently
    leaves it when that is not possible (a read-only filesystem, another owner's file)."""
    try:
        if os.stat(path).st_mode & 0o777 != mode:
            os.chmod(path, mode)
    except OSError:
        pass


def private_dir(path):
    """Create folder ``path`` (and its missing parents) owner-only (0700), or make the existing
    folder owner-only. Only for folders of the media tree (never the database's own folder)."""
    path = Path(path)
    missing = []
    folder = path
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=PRIVATE_DIR)
        make_private(folder, PRIVATE_DIR)
    make_private(path, PRIVATE_DIR)
    return path


def write_private(path, data):
    """Write ``data`` to ``path`` atomically (a temp file, fsync, rename), owner-only (0600)."""
    path = Path(path)
    private_dir(path.parent)
    tmp = path.with_name(path.name + ".part-{}-{}".format(os.getpid(), threading.get_ident()))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    try:
        with os.fdopen(fd, "wb") as fp:
            fp.write(data)
            fp.flush()
            os.fsync(fp.fileno())
        os.chmod(tmp, PRIVATE_FILE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def make_database_private(path):
    """The database file, its WAL and shared-memory files and its media folder: owner-only."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        make_private(str(path) + suffix)
    media = media_dir(path)
    if media.is_dir():
        make_private(media, PRIVATE_DIR)


def relative_to_db(db_path, file_path):
    return os.path.relpath(Path(file_path).resolve(), Path(db_path).resolve().parent)


def resolve_media(db_path, rel_path):
    """The absolute path of a media file stored relative to the database's folder."""
    return Path(db_path).resolve().parent / rel_path
