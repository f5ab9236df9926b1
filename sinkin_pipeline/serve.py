"""``sinkin serve``: the SinkIn Lab Datasette app (built by ``datasette_sinkin.app``) on
127.0.0.1, or on the network with sign-in when explicitly asked."""

import os
import webbrowser
from pathlib import Path

import click

from .cli import cli, db_option, fail, opendb

TOKEN_ENV = "SINKIN_SERVE_TOKEN"


def _url(host, port, path):
    if host in ("0.0.0.0", "::"):
        import socket

        host = socket.gethostname()
    return "http://{}:{}{}".format("[{}]".format(host) if ":" in host else host, port, path)


@cli.command()
@click.option("--port", "-p", type=click.IntRange(1, 65535), default=8001, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME[:PORT]",
    help="Another Host name browsers use to reach this server (e.g. behind a proxy or a "
    "DNS name). Repeatable.",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the dashboard in a browser.")
@click.option(
    "--i-understand-this-exposes-my-data",
    "expose",
    is_flag=True,
    help="Allow a --host that is not loopback. Other machines must then sign in with a token "
    "(printed at start, or ${} when set).".format(TOKEN_ENV),
)
@db_option
def serve(port, host, allow_hosts, open_browser, expose, db_path):
    """Review, score, upscale and rank images in Datasette, on 127.0.0.1.

    With --host 0.0.0.0 (and --i-understand-this-exposes-my-data) the server answers on every
    address of this machine; browsers on other machines sign in once with the token printed at
    start (or the one in $SINKIN_SERVE_TOKEN). Requests from this machine need no token.

    \b
    Examples:
        sinkin serve --open
        sinkin serve --db experiments.db --port 8002
        sinkin serve --host 0.0.0.0 --i-understand-this-exposes-my-data --allow-host lab.local
    """
    import uvicorn

    from datasette_sinkin.app import is_loopback, make_datasette
    from datasette_sinkin.security import sign_in_token

    if not is_loopback(host) and not expose:
        fail(
            "--host {} would expose your images and your credits to the network; pass "
            "--i-understand-this-exposes-my-data if that is what you want".format(host)
        )
    if not Path(db_path).exists():
        click.echo("Creating {}".format(db_path), err=True)
    token = os.environ.get(TOKEN_ENV) or None if not is_loopback(host) else None
    if token is not None and len(token) < 16:
        fail("${} is too short: use at least 16 random characters".format(TOKEN_ENV))
    opendb(db_path, create=True).conn.close()  # a clear message for a damaged or foreign file
    ds = make_datasette(
        db_path,
        host,
        port,
        allow_hosts=allow_hosts,
        token=token,
        warn=lambda message: click.echo("Warning: " + message, err=True),
    )
    url = _url(host, port, "/-/sinkin")
    click.echo("SinkIn Lab on {} (Ctrl+C to stop)".format(url), err=True)
    token = sign_in_token(ds)
    if token is not None:
        click.echo(
            "Other machines sign in once at {}".format(
                _url(host, port, "/-/sinkin/login") + ("" if os.environ.get(TOKEN_ENV) else "?token=" + token)
            ),
            err=True,
        )
    if open_browser:
        webbrowser.open(url)
    uvicorn.run(ds.app(), host=host, port=port, log_level="warning", lifespan="on")
