"""Shared pytest fixtures."""
import json as _json

import pytest


class LabClient:
    """A SinkIn database served by an in-process Datasette, and POSTs the way the pages send them
    (JSON + the X-CSRFToken header + the ds_csrftoken cookie)."""

    def __init__(self, db_path, ds):
        self.db_path = db_path
        self.ds = ds
        self._token = None

    def db(self):
        from sinkin_pipeline.db import open_db

        return open_db(self.db_path)

    async def token(self):
        if self._token is None:
            page = await self.ds.client.get("/-/sinkin")
            self._token = page.cookies["ds_csrftoken"]
        return self._token

    async def post(self, path, data, headers=None, raw=False):
        token = await self.token()
        sent = {"content-type": "application/json", "x-csrftoken": token,
                "cookie": "ds_csrftoken=" + token}
        sent.update(headers or {})
        body = data if raw else _json.dumps(data)
        return await self.ds.client.post(path, content=body, headers=sent)


@pytest.fixture
def lab(tmp_path):
    """LabClient on a fresh, migrated database (tmp_path/lab.db) served by Datasette."""
    from datasette.app import Datasette
    from sinkin_pipeline.db import open_db

    path = tmp_path / "lab.db"
    open_db(path).conn.close()
    return LabClient(path, Datasette([str(path)], settings={"default_cache_ttl": 0}))
