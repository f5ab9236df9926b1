"""Leases on running jobs: a job is ``running`` only while the worker session that claimed it keeps
renewing its lease.

A session (one ``sinkin work``, ``sinkin next``, upscale, or the server's "Run all") has an owner
token; claiming a job records the token and an expiry ``LEASE_SECONDS`` ahead, and a heartbeat
thread (:class:`Lease`) pushes the expiry of every job the session still runs forward every quarter
of that. A worker that dies stops renewing: once its leases have run out its jobs are stale,
whatever host or process id they ran under (another container, pid 1 again...). A job whose
worker ran on this host under a process id that no longer exists (and is not ours) is stale at
once, without waiting for its lease.
"""

import os
import sqlite3
import threading
import time
import uuid

from .db import BUSY_TIMEOUT_MS
from .queue import RUNNING_SQL


def lease_seconds():
    """How long a lease lasts without renewal (``SINKIN_LEASE_SECONDS``, default 60)."""
    try:
        return max(0.2, float(os.environ.get("SINKIN_LEASE_SECONDS", "60")))
    except ValueError:
        return 60.0


def new_owner():
    """A token naming one worker session (host, pid and a random part)."""
    import socket

    return "{}:{}:{}".format(socket.gethostname(), os.getpid(), uuid.uuid4().hex[:12])


def expiry():
    """The expiry of a lease taken or renewed now (Unix time)."""
    return time.time() + lease_seconds()


class Lease:
    """The heartbeat of one worker session: renews the leases of the running jobs held by
    ``owner`` until closed. Use as a context manager."""

    def __init__(self, db_path, owner=None):
        self.db_path = str(db_path)
        self.owner = owner or new_owner()
        self.interval = lease_seconds() / 4
        self.renewals = 0
        self.error = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="sinkin-lease", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def renew(self, conn):
        conn.execute(
            "update jobs set lease_expires = ? where lease_owner = ? and " + RUNNING_SQL,
            [expiry(), self.owner],
        )
        conn.commit()
        self.renewals += 1

    def _beat(self):
        conn = None
        while not self._stop.wait(self.interval):
            try:
                if conn is None:
                    conn = sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_MS / 1000)
                self.renew(conn)
            except sqlite3.Error as e:  # the leases then run out: the jobs become stale, never lost
                self.error = e
        if conn is not None:
            conn.close()


def stale_ids(db, own_pid=None):
    """Ids of running jobs whose lease has run out, whose worker process on this host is gone, or
    that have no lease and whose worker is not a live process on this host other than this one."""
    from .queue import pid_alive, this_host

    own_pid = os.getpid() if own_pid is None else own_pid
    host = this_host()
    ids = []
    for job_id, expires, pid, worker_host in db.execute(
        "select id, lease_expires, worker_pid, worker_host from jobs where " + RUNNING_SQL
    ).fetchall():
        if expires is not None:
            # lease ran out; or, at once, a worker on this host whose process is gone
            if expires < time.time() or (worker_host == host and pid != own_pid and not pid_alive(pid)):
                ids.append(job_id)
        elif worker_host != host or pid == own_pid or not pid_alive(pid):
            ids.append(job_id)
    return ids


def live_leases(db):
    """``(count, seconds until the last one runs out)`` of running jobs whose lease is still live."""
    row = db.execute(
        "select count(*), max(lease_expires) from jobs where " + RUNNING_SQL + " and lease_expires >= ?",
        [time.time()],
    ).fetchone()
    return row[0], (max(0.0, row[1] - time.time()) if row[1] is not None else 0.0)
