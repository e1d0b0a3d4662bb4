"""How long the listing commands take on a big runs directory: `gdw runs`, `gdw sweeps`, `gdw show SWEEP`.

    .venv/bin/python scripts/bench_listing.py [--runs 10000] [--runs-dir DIR] [--repeat 3]

Makes (once; reused when DIR already holds it) one sweep of N runs through `gdw sweep ... --yes`
with the scheduler stopped before it starts anything: N real run directories (config.toml,
summary.json), all `created`. Then times each command as a user runs it (a subprocess, output
to a pipe): wall time (best and median of --repeat) and CPU time (user + system). Target: ≤ 2 s
each for 10,000 runs.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def gdw(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).with_name("gdw")), *args], capture_output=True, text=True, cwd=ROOT)


def make_sweep(runs: Path, n: int) -> str:
    """A sweep of n digits runs (n/2 seeds × erm, gdw), created and stopped before any run starts."""
    from engine.sweep.store import list_sweeps

    have = list_sweeps(runs)
    if have and len(have[0].runs) == n:
        return have[0].id
    seeds = ",".join(str(s) for s in range(1, n // 2 + 1))
    t0 = time.time()
    # Detached, then stopped at once: at most the first run starts (and is stopped).
    r = gdw("sweep", "digits-clean", "--methods", "erm,gdw", "--seeds", seeds, "--yes", "--device", "cpu",
            "--detach", "--runs-dir", str(runs))
    if r.returncode != 0:
        sys.exit(r.stderr)
    sweep_id = r.stdout.strip().splitlines()[-1].removeprefix("sweep=")
    gdw("stop", sweep_id, "--runs-dir", str(runs))
    print(f"created {n} runs in {time.time() - t0:.0f} s (gdw sweep --yes --detach, then gdw stop)")
    return sweep_id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10000)
    parser.add_argument("--runs-dir", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = args.runs_dir or Path(tempfile.mkdtemp(prefix="gdw-bench-listing-"))
    sweep_id = make_sweep(runs, args.runs)
    for command in (["runs"], ["sweeps"], ["show", sweep_id]):
        times, cpu = [], []
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
            r = gdw(*command, "--runs-dir", str(runs))
            c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            times.append(time.perf_counter() - t0)
            cpu.append(c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime)
            if r.returncode != 0:
                sys.exit(r.stderr)
        # CPU time too: on a shared, loaded machine the wall time is mostly waiting for a core.
        print(f"gdw {command[0]:7s} {args.runs} runs: wall best {min(times):.2f} s, median {statistics.median(times):.2f} s; "
              f"CPU best {min(cpu):.2f} s ({len(r.stdout.splitlines())} lines)")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"runs directory: {runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
