"""``sinkin serve``: Datasette 0.65 on the experiment database, with the packaged metadata and the
SinkIn Lab plugin, bound to loopback, refusing any Host it was not started on."""
import copy
import ipaddress
import os
import secrets
import webbrowser
from importlib import resources
from pathlib import Path

import click
import yaml

from .cli import cli, db_option, fail, opendb

LOOPBACK = ("127.0.0.1", "localhost", "::1")
METADATA_DB_KEY = "sinkin"  # the database key in the packaged metadata.yml, renamed at start


def load_metadata(db_name):
    """The packaged metadata.yml, with its database entry renamed to ``db_name``."""
    text = resources.files("datasette_sinkin").joinpath("metadata.yml").read_text(encoding="utf-8")
    metadata = yaml.safe_load(text) or {}
    databases = metadata.get("databases") or {}
    if METADATA_DB_KEY in databases:
        databases[db_name] = databases.pop(METADATA_DB_KEY)
    metadata["databases"] = databases
    return metadata


def secret_for(db_path):
    """The signing secret kept beside the database (owner-only file), created once."""
    path = Path(str(db_path) + ".secret")
    if path.exists():
        return path.read_text().strip()
    secret = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fp:
        fp.write(secret)
    return secret


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host, port):
    hosts = []
    names = [host]
    if host in ("127.0.0.1", "localhost"):
        names = ["127.0.0.1", "localhost"]
    elif host == "::1":
        names = ["[::1]"]
    for name in names:
        hosts.append("{}:{}".format(name, port))
        if port == 80:
            hosts.append(name)
    # what in-process clients (datasette.client, `datasette --get`) send; no web page can make a
    # browser send it, so it opens nothing to DNS rebinding
    hosts.append("localhost")
    return hosts


def make_datasette(db_path, host="127.0.0.1", port=8001):
    """A configured Datasette for the SinkIn database at ``db_path`` (created and migrated)."""
    from datasette.app import Datasette

    db_path = Path(db_path).resolve()
    opendb(db_path, create=True).conn.close()
    metadata = copy.deepcopy(load_metadata(db_path.stem))
    plugins = metadata.setdefault("plugins", {})
    plugins.setdefault("sinkin-lab", {})["allowed_hosts"] = allowed_hosts(host, port)
    plugins["sinkin-lab"]["database"] = db_path.stem
    return Datasette(
        files=[str(db_path)],
        metadata=metadata,
        # facet suggestions run a grouped query per column on every table page (most of the ranking
        # table's time); the metadata names the facets that are worth it
        settings={"default_cache_ttl": 0, "sql_time_limit_ms": 3000, "allow_csv_stream": True,
                  "max_csv_mb": 0, "suggest_facets": False},
        secret=secret_for(db_path),
    )


@cli.command()
@click.option("--port", "-p", type=click.IntRange(1, 65535), default=8001, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--open", "open_browser", is_flag=True, help="Open the dashboard in a browser.")
@click.option("--i-understand-this-exposes-my-data", "expose", is_flag=True,
              help="Allow a --host that is not loopback (anyone who reaches it can spend your credits).")
@db_option
def serve(port, host, open_browser, expose, db_path):
    """Review, score, upscale and rank images in Datasette, on 127.0.0.1.

    \b
    Examples:
        sinkin serve --open
        sinkin serve --db experiments.db --port 8002
    """
    import uvicorn

    if not is_loopback(host) and not expose:
        fail("--host {} would expose your images and your credits to the network; pass "
             "--i-understand-this-exposes-my-data if that is what you want".format(host))
    if not Path(db_path).exists():
        click.echo("Creating {}".format(db_path), err=True)
    ds = make_datasette(db_path, host, port)
    url = "http://{}:{}/-/sinkin".format("[{}]".format(host) if ":" in host else host, port)
    click.echo("SinkIn Lab on {} (Ctrl+C to stop)".format(url), err=True)
    if open_browser:
        webbrowser.open(url)
    uvicorn.run(ds.app(), host=host, port=port, log_level="warning", lifespan="on")
