"""Web CSV export benchmark (not a test): a 100,000-row, 25-column table (numbers and text, a fifth
of the text cells formula-like) in a SinkIn database, served by a real `sinkin serve` server:

* ``/-/sinkin/export/<table>.csv`` (the app's streamed, formula-escaped route),
* Datasette's own ``/<db>/<table>.csv?_stream=on`` (re-escaped on the way out),
* ``sqlite3 -csv`` on the same table, the target being the export route within 2× of it.

    python bench/bench_csv.py [ROWS]      # prints Markdown; see docs/benchmarks.md
"""

import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def build(path, n):
    from sinkin_pipeline.db import open_db

    open_db(path).conn.close()
    conn = sqlite3.connect(path)
    cols = ["c{} {}".format(i, "text" if i % 2 else "real") for i in range(24)]
    conn.execute("create table big (id integer primary key, {})".format(", ".join(cols)))

    def row(i):
        return [i] + [
            ("=prompt {}".format(i) if j % 5 == 1 else "a prompt, number {}".format(i)) if j % 2 else i * 0.5
            for j in range(24)
        ]

    conn.executemany("insert into big values ({})".format(",".join("?" * 25)), (row(i) for i in range(n)))
    conn.commit()
    conn.close()


def fetch(url):
    """Download time, with curl in another process (a client in this process would compete with
    the server for the GIL)."""
    start = time.perf_counter()
    done = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{size_download}", url], check=True, capture_output=True
    )
    return time.perf_counter() - start, int(done.stdout)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    path = Path(tempfile.mkdtemp()) / "bench.db"
    build(path, n)
    start = time.perf_counter()
    subprocess.run(
        ["sqlite3", "-csv", "-header", str(path), "select * from big"], check=True, capture_output=True
    )
    base = time.perf_counter() - start
    from sinkin_pipeline.testing.serving import serve_in_thread

    url, stop = serve_in_thread(path)
    ours, _ = fetch(url + "/-/sinkin/export/big.csv")
    theirs, _ = fetch(url + "/bench/big.csv?_stream=on")
    stop()
    print("| {:,} rows × 25 columns | seconds | × `sqlite3 -csv` |".format(n))
    print("|---|---|---|")
    print("| `sqlite3 -csv` | {:.2f} | 1.0 |".format(base))
    print("| `/-/sinkin/export/big.csv` (escaped, streamed) | {:.2f} | {:.1f} |".format(ours, ours / base))
    print("| Datasette `big.csv?_stream=on` (re-escaped) | {:.2f} | {:.1f} |".format(theirs, theirs / base))


if __name__ == "__main__":
    main()
