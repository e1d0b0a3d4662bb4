"""What a local sweep of short runs costs beyond its runs' own training: 40 one-epoch digits runs
(4 methods × 10 seeds) on 2 CPU workers.

    .venv/bin/python scripts/bench_sweep.py [--runs-dir DIR] [--workers 2] [--seeds 1,...,10]

Training per worker = Σ the runs' own training time (`wall_s` of run_end: the epochs, without
imports, data set-up or process exit) / workers. The sweep's wall time is the whole `gdw sweep`
command. Reported: wall / training per worker (target ≤ 1.3, plus a couple of `import torch`:
the rest is expressed in imports of torch, measured here), and the older figure, the overhead
against the runs' process wall times (launch to exit, as the scheduler saw them), which hides
every run's start-up. The sweep's own lines are shown as they come (stderr).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.3


def import_torch_s(repeats: int = 3) -> float:
    """Median seconds for a fresh `python -c "import torch"` (the process, start to exit)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch"], check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seeds", default="1,2,3,4,5,6,7,8,9,10")
    args = parser.parse_args()
    runs = args.runs_dir or Path(tempfile.mkdtemp(prefix="gdw-bench-sweep-"))
    gdw = [str(Path(sys.executable).with_name("gdw"))]
    cmd = gdw + ["sweep", "digits-unif60", "--methods", "erm,l2rw,mwnet,gdw", "--seeds", args.seeds,
                 "--set", "train.epochs=1", "--device", "cpu", "--workers", str(args.workers), "--runs-dir", str(runs)]
    print("measuring `import torch` (3 fresh processes)…", file=sys.stderr, flush=True)
    torch_s = import_torch_s()
    print(f"import torch: {torch_s:.2f} s; running the sweep: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if " finished " in line or " failed " in line or " started " in line:
            print(f"  {time.time() - t0:6.1f} s  {line.rstrip()}", file=sys.stderr, flush=True)
    err = proc.stderr.read()
    wall = time.time() - t0
    if proc.wait() != 0:
        print("".join(lines)[-2000:], err[-2000:], file=sys.stderr)
        return 1
    sweep_id = lines[-1].strip().removeprefix("sweep=")
    records = [json.loads(line) for line in (runs / "sweeps" / sweep_id / "schedule.jsonl").read_text().splitlines()]
    start = {x["run_id"]: x["t"] for x in records if x["event"] == "start"}
    end = {x["run_id"]: x["t"] for x in records if x["event"] == "end"}
    process_walls = [end[k] - start[k] for k in start]
    training = [json.loads((runs / k / "summary.json").read_text())["wall_s"] for k in start]
    per_worker = sum(training) / args.workers
    process_per_worker = sum(process_walls) / args.workers
    beyond_target = wall - TARGET * per_worker
    n = len(training)
    print(f"runs: {n} on {args.workers} workers · training per run: mean {sum(training) / n:.2f} s · "
          f"process wall per run: mean {sum(process_walls) / n:.2f} s")
    print(f"sweep wall {wall:.1f} s · training per worker {per_worker:.1f} s · wall / training {wall / per_worker:.2f}× "
          f"(target ≤ {TARGET} + a couple of imports: {TARGET} × training leaves {beyond_target:+.1f} s "
          f"= {beyond_target / torch_s:+.1f} × import torch ({torch_s:.2f} s))")
    print(f"older figure: overhead against the runs' process wall times {100 * (wall / process_per_worker - 1):+.1f}% "
          f"(first launch at {min(start.values()) - t0:.1f} s, last exit {wall - (max(end.values()) - t0):.1f} s before the end)")
    print(json.dumps({"runs": n, "workers": args.workers, "sweep_wall_s": round(wall, 2),
                      "training_per_worker_s": round(per_worker, 2), "wall_over_training": round(wall / per_worker, 3),
                      "beyond_target_in_torch_imports": round(beyond_target / torch_s, 2), "import_torch_s": round(torch_s, 2),
                      "process_wall_per_worker_s": round(process_per_worker, 2),
                      "overhead_vs_process_walls": round(wall / process_per_worker - 1, 4)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
