"""Building the Datasette app that ``sinkin serve`` runs: Datasette 0.65 on the SinkIn database
with the packaged metadata and this plugin's config (database name, allowed hosts)."""

import copy
import ipaddress
import os
import secrets
import socket
import stat
from importlib import resources
from pathlib import Path

import yaml

from .security import PLUGIN_NAME

METADATA_DB_KEY = "sinkin"  # the database key in the packaged metadata.yml, renamed at start


def load_metadata(db_name):
    """The packaged metadata.yml, with its database entry renamed to ``db_name``."""
    text = resources.files(__package__).joinpath("metadata.yml").read_text(encoding="utf-8")
    metadata = yaml.safe_load(text) or {}
    databases = metadata.get("databases") or {}
    if METADATA_DB_KEY in databases:
        databases[db_name] = databases.pop(METADATA_DB_KEY)
    metadata["databases"] = databases
    return metadata


def secret_for(db_path, warn=None):
    """The signing secret kept beside the database in ``<db>.secret`` (owner-only), created once.

    A secret file that other users can read is never used: whoever read it could sign cookies. It
    is replaced by a new secret in an owner-only file (open tabs then need a reload) and
    ``warn(message)`` is told."""
    path = Path(str(db_path) + ".secret")
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if not mode & 0o077:
            return path.read_text().strip()
        path.unlink()
        if warn:
            warn(
                "{} was readable by other users (mode {:o}): replaced by a new owner-only secret".format(
                    path, mode
                )
            )
    secret = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fp:
        fp.write(secret)
    os.chmod(path, 0o600)  # whatever the umask
    return secret


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _names_of_this_machine():
    """Host names and addresses a LAN browser may use for this machine (for a wildcard bind)."""
    names = {socket.gethostname(), socket.getfqdn()}
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            names.add(info[4][0])
    except OSError:
        pass
    try:  # the address of the default route (no packet is sent)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))
            names.add(s.getsockname()[0])
    except OSError:
        pass
    return {n for n in names if n}


def _with_port(name, port):
    name = name.lower()
    if ":" in name and not name.startswith("["):
        name = "[{}]".format(name)  # an IPv6 address
    hosts = ["{}:{}".format(name, port)]
    if port == 80:
        hosts.append(name)
    return hosts


def allowed_hosts(host, port, allow_hosts=()):
    """The ``Host`` header values the server answers: the address it listens on (both loopback
    names for loopback; this machine's names and addresses for 0.0.0.0 / ::), each ``--allow-host``
    (with the port, or as given when it names one), and the bare ``localhost`` that in-process
    clients (``datasette.client``) send, which no web page can make a browser send."""
    if host in ("127.0.0.1", "localhost"):
        names = ["127.0.0.1", "localhost"]
    elif host in ("0.0.0.0", "::"):
        names = ["127.0.0.1", "localhost"] + sorted(_names_of_this_machine())
    else:
        names = [host.strip("[]")]
    hosts = []
    for name in names:
        hosts.extend(_with_port(name, port))
    for extra in allow_hosts:
        extra = extra.strip().lower()
        if extra.rsplit(":", 1)[-1].isdigit() and (extra.count(":") == 1 or extra.startswith("[")):
            hosts.append(extra)
        else:
            hosts.extend(_with_port(extra, port))
    hosts.append("localhost")
    return list(dict.fromkeys(hosts))


def _rebase_links(metadata, base_url):
    """Rewrite the app links (``href="/-/…"``) of every ``description_html`` under ``base_url``:
    Datasette does not template metadata, so the packaged links are adjusted here."""
    prefix = 'href="{}/-/'.format(base_url.rstrip("/"))
    for key, value in list(metadata.items()):
        if key == "description_html" and isinstance(value, str):
            metadata[key] = value.replace('href="/-/', prefix)
        elif isinstance(value, dict):
            _rebase_links(value, base_url)


def make_datasette(
    db_path, host="127.0.0.1", port=8001, allow_hosts=(), token=None, warn=None, settings=None
):
    """A configured Datasette for the SinkIn database at ``db_path`` (created and migrated).

    Listening on a non-loopback ``host`` turns on sign-in for every client that is not on this
    machine: ``token`` (random when not given; read it back with :func:`security.sign_in_token`)."""
    from datasette.app import Datasette

    from sinkin_pipeline.db import open_db

    from . import security

    db_path = Path(db_path).resolve()
    open_db(db_path).conn.close()
    metadata = copy.deepcopy(load_metadata(db_path.stem))
    config = metadata.setdefault("plugins", {}).setdefault(PLUGIN_NAME, {})
    config["database"] = db_path.stem
    config["allowed_hosts"] = allowed_hosts(host, port, allow_hosts)
    base_url = (settings or {}).get("base_url", "/")
    if base_url != "/":  # metadata.yml's own links, written from the root, follow Datasette's base_url
        _rebase_links(metadata, base_url)
    ds = Datasette(
        files=[str(db_path)],
        metadata=metadata,
        # facet suggestions run a grouped query per column on every table page (most of the ranking
        # table's time); the metadata names the facets that are worth it
        settings=dict(
            {
                "default_cache_ttl": 0,
                "sql_time_limit_ms": 3000,
                "allow_csv_stream": True,
                "max_csv_mb": 0,
                "suggest_facets": False,
            },
            **(settings or {}),
        ),
        secret=secret_for(db_path, warn=warn),
    )
    if not is_loopback(host):
        security.require_sign_in(ds, token or secrets.token_urlsafe(24))
    return ds
