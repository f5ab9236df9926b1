#!/usr/bin/env python3
"""Big grids: `sinkin run --yes` (creating the run, its configs and queued jobs), `sinkin queue` and
`sinkin work --limit 1` on the resulting queue, at 10^4, 10^5 and 10^6 configs. Each command runs
in its own process; wall time and that process's peak RSS (wait4) are reported.

    python bench/bench_grids.py                 # 10^4, 10^5, 10^6
    python bench/bench_grids.py --sizes 10000   # just one size
Goals (issue 7): run --yes of 10^6 < 20 s and < 200 MB; queue / work --limit 1 on a 10^6 queue
< 1 s and < 100 MB. Results go in docs/benchmarks.md.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def measure(args, env):
    """(wall seconds, peak RSS in MB, output, CPU seconds) of ``sinkin ARGS`` in a fresh process."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sinkin_pipeline", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0,):
        raise SystemExit("sinkin {} failed:\n{}".format(" ".join(args), out.decode()))
    return elapsed, usage.ru_maxrss / 1024, out.decode(), usage.ru_utime + usage.ru_stime


def spec_for(n):
    """A simulator spec of exactly ``n`` configs: n/100 prompts x 100 seeds."""
    return {
        "provider": "simulator",
        "name": "grid {}".format(n),
        "model_id": "4zdwGOB",
        "prompt": ["prompt number {}".format(i) for i in range(n // 100)],
        "seed": list(range(100)),
        "width": 128,
        "height": 128,
        "steps": 2,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10**4, 10**5, 10**6])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, SINKIN_MAX_JOBS=str(max(args.sizes)), SINKIN_RETRY_ATTEMPTS="1")
        env.pop("SINKIN_DB", None)
        python_only = measure(["--version"], env)
        for n in args.sizes:
            db = Path(tmp) / "grid{}.db".format(n)
            spec = Path(tmp) / "grid{}.yml".format(n)
            spec.write_text(yaml.safe_dump(spec_for(n)))
            created = measure(["run", str(spec), "--yes", "--db", str(db)], env)
            assert "Run 1 queued" in created[2], created[2]
            listed = measure(["queue", "--db", str(db)], env)
            assert "{:,} jobs".format(n) in listed[2] or "{} jobs".format(n) in listed[2], listed[2][-200:]
            worked = measure(["work", "--limit", "1", "--db", str(db)], env)
            size = db.stat().st_size / 1e6
            rows.append((n, created, listed, worked, size))
            print(
                "{:>9,} configs: run --yes {:6.2f} s (cpu {:.2f}) {:6.1f} MB | queue {:5.2f} s (cpu {:.2f}) "
                "{:5.1f} MB | work --limit 1 {:5.2f} s (cpu {:.2f}) {:5.1f} MB | db {:.0f} MB".format(
                    n,
                    created[0],
                    created[3],
                    created[1],
                    listed[0],
                    listed[3],
                    listed[1],
                    worked[0],
                    worked[3],
                    worked[1],
                    size,
                ),
                flush=True,
            )
            for suffix in ("", "-wal", "-shm"):
                Path(str(db) + suffix).unlink(missing_ok=True)
    print(
        "(python + sinkin import alone: {:.2f} s, cpu {:.2f} s, {:.1f} MB)".format(
            python_only[0], python_only[3], python_only[1]
        )
    )
    print()
    print(
        "| configs | `run --yes` wall (CPU) | peak RSS | `queue` wall (CPU) | peak RSS "
        "| `work --limit 1` wall (CPU) | peak RSS | DB size |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, created, listed, worked, size in rows:
        print(
            "| {:,} | {:.1f} s ({:.1f} s) | {:.0f} MB | {:.2f} s ({:.2f} s) | {:.0f} MB | {:.2f} s ({:.2f} s) "
            "| {:.0f} MB | {:.0f} MB |".format(
                n,
                created[0],
                created[3],
                created[1],
                listed[0],
                listed[3],
                listed[1],
                worked[0],
                worked[3],
                worked[1],
                size,
            )
        )


if __name__ == "__main__":
    main()
