"""CLI command ``models``: each provider's cached list of models and LoRAs (refreshed, or filled on
first use). A thin wrapper over models.py."""

import json

import click

from .cli import cli, db_option, fail, opendb, readdb


def _fill_model_cache(db, db_path, rows):
    """Store ``rows`` in the empty model cache of an existing database (nothing else is written:
    no file is created, nothing migrated); on a read-only database the list stays uncached."""
    import sqlite3

    from .db import open_db
    from .models import cache_if_empty

    if not rows:
        return db
    try:
        writable = open_db(db_path, create=False, migrate=False)
        cache_if_empty(writable, rows)
    except sqlite3.OperationalError:  # a read-only file or filesystem
        return db
    db.conn.close()
    return writable


@cli.command()
@click.option(
    "--refresh", is_flag=True, help="Fetch the list from the provider (cached in the models table)."
)
@click.option(
    "--provider",
    default=None,
    help="The provider whose list to show, refresh or fill (default: every cached list; "
    "sinkin when refreshing or when nothing is cached).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@db_option
def models(refresh, provider, as_json, db_path):
    """List models and LoRAs (cached; --refresh asks the provider).

    An empty cache is filled from the provider on first use. `sinkin run` and the run form warn
    about model and LoRA ids that are not in this list.

    \b
    Examples:
        sinkin models --refresh
        sinkin models --refresh --provider simulator   # offline, no key
    """
    from .models import count_by_kind, describe_counts, known_models, list_models, refresh_models
    from .providers import ConfigurationError, ProviderError, get_provider

    listed = provider
    provider = provider or "sinkin"
    if refresh:
        db = opendb(db_path, create=True)
    else:
        db = readdb(db_path)
        if not list_models(db, provider=listed):
            db = _fill_model_cache(db, db_path, known_models(db, provider, store=False))
            if list_models(db, provider=provider) and not as_json:
                # first use: the empty cache was just filled from the provider
                click.echo(
                    "{} cached from {}.".format(describe_counts(count_by_kind(db, provider)), provider),
                    err=True,
                )
    if refresh:
        try:
            prov = get_provider(provider)
            prov.check_ready()
            refresh_models(db, prov)
        except ConfigurationError as e:
            fail(str(e))
        except ProviderError as e:
            fail("could not fetch models: {}".format(e))
        if not as_json:
            click.echo(
                "{} cached from {}.".format(describe_counts(count_by_kind(db, provider)), provider), err=True
            )
    rows = list_models(db, provider=listed)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(
            "No models cached yet, and provider {} cannot be asked now. With SINKIN_API_KEY set, "
            "`sinkin models --refresh` fetches SinkIn's list; offline, "
            "`sinkin models --refresh --provider simulator` caches the simulator's.".format(provider)
        )
    for r in rows:
        click.echo("{:<10} {:<6} {:<10} {}".format(r["id"], r["kind"], r["catalogue"], r["title"]))
