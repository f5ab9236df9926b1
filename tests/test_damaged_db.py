"""A database damaged while the server runs (a disk fault, another program writing into it) gets
a clear 503 naming the damage and how to save what can be saved, never a bare 500."""

import asyncio

from conftest import queue_run

SPEC = {"provider": "simulator", "model_id": "4zdwGOB", "prompt": "a fox", "seed": list(range(40))}


def damage(path):
    """Overwrite every page after the first (the header stays valid, so SQLite opens the file)."""
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big") or 65536
    for i in range(page, len(data)):
        data[i] = (i * 131) % 251
    path.write_bytes(bytes(data))


def test_a_damaged_database_is_a_clear_503(lab):
    run_id = queue_run(lab.db_path, SPEC)
    damage(lab.db_path)

    async def fetch():
        pages = {}
        for path in (
            "/-/sinkin/runs/{}".format(run_id),
            "/-/sinkin/runs/{}/order.json".format(run_id),
            "/lab/image_table",
            "/lab/jobs.json",
        ):
            pages[path] = await lab.ds.client.get(path)
        return pages

    for path, r in asyncio.run(fetch()).items():
        assert r.status_code == 503, (path, r.status_code, r.text[:300])
        assert "damaged" in r.text and ".recover" in r.text, (path, r.text[:300])
