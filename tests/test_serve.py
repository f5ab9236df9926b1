"""`sinkin serve`: loopback only unless told, a per-database secret, the packaged metadata."""

import os
import stat

from click.testing import CliRunner

from datasette_sinkin.app import allowed_hosts, load_metadata, make_datasette, secret_for
from sinkin_pipeline.cli import cli


def test_a_non_loopback_host_is_refused_without_the_explicit_flag(db_path, monkeypatch):
    import uvicorn

    started = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.append(kw))
    result = CliRunner().invoke(cli, ["serve", "--db", str(db_path), "--host", "0.0.0.0"])
    assert result.exit_code == 1 and "--i-understand-this-exposes-my-data" in result.output
    assert started == []
    result = CliRunner().invoke(
        cli,
        [
            "serve",
            "--db",
            str(db_path),
            "--host",
            "0.0.0.0",
            "--i-understand-this-exposes-my-data",
            "--port",
            "8123",
        ],
    )
    assert result.exit_code == 0 and started == [
        {"host": "0.0.0.0", "port": 8123, "log_level": "warning", "lifespan": "on"}
    ]
    result = CliRunner().invoke(cli, ["serve", "--db", str(db_path)])
    assert result.exit_code == 0 and started[-1]["host"] == "127.0.0.1" and started[-1]["port"] == 8001


def test_the_signing_secret_is_kept_beside_the_database_owner_only(db_path):
    first = secret_for(db_path)
    path = str(db_path) + ".secret"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert secret_for(db_path) == first and len(first) >= 32
    ds = make_datasette(db_path, "127.0.0.1", 8001)
    assert ds._secret == first


def test_metadata_is_rekeyed_to_the_database_and_hosts_pinned(db_path):
    metadata = load_metadata("lab")
    assert "lab" in metadata["databases"] and "sinkin" not in metadata["databases"]
    ds = make_datasette(db_path, "127.0.0.1", 8765)
    config = ds.plugin_config("sinkin")
    assert "127.0.0.1:8765" in config["allowed_hosts"] and "localhost:8765" in config["allowed_hosts"]
    assert "evil.example:8765" not in config["allowed_hosts"]
    assert ds.setting("default_cache_ttl") == 0
    assert allowed_hosts("::1", 8001) == ["[::1]:8001", "localhost"]


def test_every_connection_waits_for_locks(db_path):
    import asyncio

    ds = make_datasette(db_path, "127.0.0.1", 8001)

    async def check():
        db = ds.get_database(db_path.stem)
        read = await db.execute("pragma busy_timeout")
        write = await db.execute_write_fn(lambda conn: conn.execute("pragma busy_timeout").fetchone()[0])
        journal = await db.execute("pragma journal_mode")
        return read.first()[0], write, journal.first()[0]

    assert asyncio.run(check()) == (30000, 30000, "wal")


def test_a_secret_other_users_can_read_is_replaced_not_used(db_path):
    path = str(db_path) + ".secret"
    old = os.umask(0o022)
    try:
        with open(path, "w") as fp:
            fp.write("leaked-secret")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    warnings = []
    secret = secret_for(db_path, warn=warnings.append)
    assert secret != "leaked-secret" and len(secret) >= 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert "readable by other users" in warnings[0] and "leaked-secret" not in warnings[0]
    assert secret_for(db_path, warn=warnings.append) == secret and len(warnings) == 1
