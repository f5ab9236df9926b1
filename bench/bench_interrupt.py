"""Interruption trials (not a test): Ctrl-C / SIGTERM / SIGHUP at a random moment of
`sinkin work --concurrency 8`, then the documented recovery (`sinkin work`, `sinkin retry`,
`sinkin work`), against the stand-in SinkIn server in its own process with its charge log.
Each trial checks charges == jobs, images == jobs and that no job is left `running`. A second
set sends two SIGINTs (stop at once) and checks that nothing is left `running`.

    python bench/bench_interrupt.py               # 10 trials per signal + 5 double Ctrl-C
    python bench/bench_interrupt.py --trials 3    # quicker
"""

import argparse
import json
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

JOBS = 24


def sinkin(env, *args):
    return subprocess.run(
        [sys.executable, "-m", "sinkin_pipeline", *args], env=env, capture_output=True, text=True, timeout=300
    )


def charges(log):
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def one(db_path, sql):
    conn = sqlite3.connect(db_path, timeout=30)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def trial(base_url, log, sig, double=False):
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "trial.db"
        spec = Path(tmp) / "spec.yml"
        # trials run one after another: a trial's charges are the log lines after "before"
        tag = "trial-{}".format(random.getrandbits(40))
        spec.write_text(
            "provider: sinkin\nmodel_id: 4zdwGOB\nprompt: {}\nsteps: 5\nwidth: 128\nheight: 128\n"
            "seed: [{}]\n".format(tag, ", ".join(str(i) for i in range(JOBS)))
        )
        env = dict(
            os.environ,
            SINKIN_API_KEY="bench-key",
            SINKIN_API_BASE=base_url,
            SINKIN_DB=str(db_path),
            SINKIN_RETRY_BASE_DELAY="0.01",
        )
        assert sinkin(env, "run", str(spec), "--yes").returncode == 0
        before = len(charges(log))
        worker = subprocess.Popen(
            [sys.executable, "-m", "sinkin_pipeline", "work", "--concurrency", "8"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        while len(charges(log)) == before:  # the first request has arrived
            time.sleep(0.01)
        time.sleep(random.uniform(0.0, 1.2))
        worker.send_signal(sig)
        sent_at = time.perf_counter()
        if double:
            time.sleep(random.uniform(0.0, 0.2))
            worker.send_signal(signal.SIGINT)
        worker.communicate(timeout=120)
        stop = time.perf_counter() - sent_at
        code = worker.returncode
        left_running = one(db_path, "select count(*) from jobs where status = 'running'")
        interrupted = one(db_path, "select count(*) from jobs where status = 'interrupted'")
        # the documented recovery
        sinkin(env, "work")
        sinkin(env, "retry")
        sinkin(env, "work")
        paid = sum(1 for c in charges(log)[before:] if c.get("endpoint") == "inference")
        images = one(db_path, "select count(*) from images where path is not null")
        still_running = one(db_path, "select count(*) from jobs where status = 'running'")
        return {
            "code": code,
            "stop": stop,
            "left_running": left_running + still_running,
            "interrupted": interrupted,
            "charges": paid,
            "images": images,
        }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10, help="trials per signal")
    parser.add_argument("--double", type=int, default=5, help="trials with two SIGINTs")
    parser.add_argument("--latency", type=float, default=0.3)
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = Path(tempfile.mkdtemp()) / "charges.jsonl"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sinkin_pipeline.standin",
            "--port",
            str(port),
            "--latency",
            str(args.latency),
            "--charge-log",
            str(log),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    server.stdout.readline()
    base_url = "http://127.0.0.1:{}".format(port)
    rows = []
    try:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            rows.append((signal.Signals(sig).name, [trial(base_url, log, sig) for _ in range(args.trials)]))
        rows.append(("SIGINT ×2", [trial(base_url, log, signal.SIGINT, True) for _ in range(args.double)]))
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(10)
    print(
        "| signal | trials | exit code | stop time p50 / max (s) | charges == jobs | images == jobs "
        "| left running | interrupted (sent, no answer kept) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, results in rows:
        stops = [r["stop"] for r in results]
        print(
            "| {} | {} | {} | {:.2f} / {:.2f} | {}/{} | {}/{} | {} | {} |".format(
                name,
                len(results),
                ", ".join(sorted({str(r["code"]) for r in results})),
                statistics.median(stops),
                max(stops),
                sum(r["charges"] == JOBS for r in results),
                len(results),
                sum(r["images"] == JOBS for r in results),
                len(results),
                sum(r["left_running"] for r in results),
                sum(r["interrupted"] for r in results),
            )
        )
    print(
        "\n{} jobs per trial, stand-in latency {} s; recovery: work, retry, work.".format(JOBS, args.latency)
    )


if __name__ == "__main__":
    main()
