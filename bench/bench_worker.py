"""Pipeline benchmark (not a test): drain one-image jobs against the local stand-in SinkIn server
(its own process) with 500 ms latency at concurrency 1, 4, 8, 16 and 32 (8 jobs per slot, at
least 32), then at concurrency 16 against a stand-in that answers 429 beyond 4 calls at once
(SinkIn's own limit), and time `sinkin plan` on 100,000 configs.

    python bench/bench_worker.py                  # prints Markdown tables; see docs/benchmarks.md
    python bench/bench_worker.py --latency 0.2    # the earlier setting
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


class WriteCounter:
    """Counts the write transactions the worker's connections open: each ``BEGIN`` (Python's
    sqlite3 opens one implicitly before the first write; ``BEGIN IMMEDIATE`` explicitly) and each
    ``SAVEPOINT`` outside a transaction (it opens one). The final empty claim of each thread counts
    too (one per thread; :func:`drain` leaves those out)."""

    def __init__(self):
        import threading

        from sinkin_pipeline import db

        self.count = 0
        self._lock = threading.Lock()
        self._db = db
        self._original = db.configure_connection

    def _trace(self, conn, statement):
        words = statement.lstrip().upper()
        if words.startswith("BEGIN") or words.startswith("SAVEPOINT") and not conn.in_transaction:
            with self._lock:
                self.count += 1

    def __enter__(self):
        original = self._original

        def configure(conn):
            original(conn)
            conn.set_trace_callback(lambda statement: self._trace(conn, statement))

        self._db.configure_connection = configure
        return self

    def __exit__(self, *exc):
        self._db.configure_connection = self._original


def queue_jobs(db_path, jobs):
    """A database at ``db_path`` with ``jobs`` queued one-image 128×128 SinkIn jobs."""
    from sinkin_pipeline.db import open_db
    from sinkin_pipeline.runs import create_run
    from sinkin_pipeline.spec import check_spec

    db = open_db(db_path)
    spec = {"provider": "sinkin", "model_id": "4zdwGOB", "prompt": "a fox", "width": 128, "height": 128}
    create_run(db, check_spec(dict(spec, steps=10, num_images=1, seed=list(range(jobs)))))
    db.conn.close()
    return db_path


def drain(standin, jobs, concurrency, latency):
    from sinkin_pipeline.worker import work

    with tempfile.TemporaryDirectory() as tmp:
        db_path = queue_jobs(Path(tmp) / "bench.db", jobs)
        start = time.perf_counter()
        cpu = time.process_time()
        with WriteCounter() as writes:
            summary = work(db_path, concurrency=concurrency)
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu
        assert summary.succeeded == jobs and summary.images == jobs, summary
    ideal = jobs * latency / concurrency
    overhead_ms = (wall - ideal) / jobs * concurrency * 1000
    # each thread's last claim finds the queue empty: not a job's transaction
    return wall, ideal, wall / ideal, overhead_ms, (writes.count - concurrency) / jobs, cpu / jobs * 1000


def plan_time(configs_side=(100, 100, 10)):
    import yaml

    a, b, c = configs_side
    spec = {
        "provider": "sinkin",
        "model_id": "4zdwGOB",
        "prompt": ["prompt {}".format(i) for i in range(a)],
        "seed": list(range(b)),
        "steps": list(range(10, 10 + c)),
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.yml"
        path.write_text(yaml.safe_dump(spec))
        env = dict(os.environ, SINKIN_DB=str(Path(tmp) / "plan.db"))
        subprocess.run(
            [sys.executable, "-m", "sinkin_pipeline", "init"], env=env, check=True, capture_output=True
        )
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "sinkin_pipeline", "plan", str(path)],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import sinkin_pipeline.cli"], check=True, capture_output=True)
        startup = time.perf_counter() - start
    assert "{} jobs".format(a * b * c) in out.stdout, out.stdout
    return wall, startup


def start_standin(latency, max_concurrent=None):
    import socket

    # the stand-in runs in its own process, as SinkIn would be on its own machine
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = [
        sys.executable,
        "-m",
        "sinkin_pipeline.testing.standin",
        "--port",
        str(port),
        "--latency",
        str(latency),
    ]
    if max_concurrent:
        args += ["--max-concurrent", str(max_concurrent)]
    server = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    server.stdout.readline()  # "Stand-in SinkIn API at ..."
    os.environ["SINKIN_API_KEY"] = "bench-key"
    os.environ["SINKIN_API_BASE"] = "http://127.0.0.1:{}".format(port)
    return server


def drain_counting(jobs, concurrency, latency):
    """Like :func:`drain`, but jobs may fail: (wall, ideal at the service's limit, succeeded, failed)."""
    from sinkin_pipeline.worker import work

    with tempfile.TemporaryDirectory() as tmp:
        db_path = queue_jobs(Path(tmp) / "bench.db", jobs)
        start = time.perf_counter()
        summary = work(db_path, concurrency=concurrency)
        return time.perf_counter() - start, summary.succeeded, summary.failed, summary.messages[:3]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, action="append", help="levels (default 1 4 8 16 32)")
    parser.add_argument("--drain-only", action="store_true", help="skip the 429 and `plan` measurements")
    args = parser.parse_args()
    server = start_standin(args.latency)
    try:
        print(
            "| concurrency | jobs | wall (s) | ideal (s) | wall / ideal | overhead per job (ms) "
            "| write transactions per job | worker CPU per job (ms) |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for concurrency in args.concurrency or (1, 4, 8, 16, 32):
            jobs = min(256, max(32, 8 * concurrency))
            wall, ideal, ratio, overhead, writes, cpu = drain(None, jobs, concurrency, args.latency)
            print(
                "| {} | {} | {:.2f} | {:.2f} | {:.3f}x | {:.1f} | {:.2f} | {:.1f} |".format(
                    concurrency, jobs, wall, ideal, ratio, overhead, writes, cpu
                ),
                flush=True,
            )
    finally:
        server.terminate()
        server.wait()
    if args.drain_only:
        return
    limit, concurrency, jobs = 4, 16, 64
    server = start_standin(args.latency, max_concurrent=limit)
    try:
        wall, ok, failed, messages = drain_counting(jobs, concurrency, args.latency)
    finally:
        server.terminate()
        server.wait()
    ideal = jobs * args.latency / limit
    print()
    print(
        "Against a stand-in that answers 429 beyond {} calls at once, at concurrency {}: {} of {} jobs "
        "succeeded, {} failed; wall {:.2f} s vs {:.2f} s ideal at the service's limit ({:.2f}x).{}".format(
            limit,
            concurrency,
            ok,
            jobs,
            failed,
            wall,
            ideal,
            wall / ideal,
            " Failures: " + "; ".join(messages) if messages else "",
        )
    )
    wall, startup = plan_time()
    print()
    print(
        "`sinkin plan` on a 100,000-config spec: {:.2f} s wall for the whole command "
        "({:.2f} s of it is Python start-up and imports).".format(wall, startup)
    )


if __name__ == "__main__":
    main()
