"""Scheduling overhead of the local executor: a 40-run sweep of 1-epoch digits runs on 2 workers.

    .venv/bin/python scripts/bench_sweep.py [--runs-dir DIR] [--workers 2]

Overhead = sweep wall time / (sum of the runs' process wall times / workers) − 1, where a run's
process wall time is from its launch to its exit as the scheduler saw them (schedule.jsonl:
imports, data, training, teardown). The sweep wall time is the whole `gdw sweep` command
(its own start, creating 40 run directories, scheduling, the last run's exit). Target: ≤ 10%.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.time() - t0
    if r.returncode != 0:
        print(r.stdout[-2000:], r.stderr[-2000:], file=sys.stderr)
        return 1
    sweep_id = r.stdout.strip().splitlines()[-1].removeprefix("sweep=")
    records = [json.loads(line) for line in (runs / "sweeps" / sweep_id / "schedule.jsonl").read_text().splitlines()]
    start = {x["run_id"]: x["t"] for x in records if x["event"] == "start"}
    end = {x["run_id"]: x["t"] for x in records if x["event"] == "end"}
    per_run = [end[k] - start[k] for k in start]
    train = [json.loads((runs / k / "summary.json").read_text())["wall_s"] for k in start]
    ideal = sum(per_run) / args.workers
    first_launch, last_exit = min(start.values()) - t0, wall - (max(end.values()) - t0)
    print(f"runs: {len(per_run)} on {args.workers} workers · process wall per run: mean {sum(per_run) / len(per_run):.2f} s "
          f"(training itself {sum(train) / len(train):.2f} s)")
    print(f"sweep wall {wall:.1f} s · sum of run walls / {args.workers} = {ideal:.1f} s · "
          f"overhead {100 * (wall / ideal - 1):+.1f}% (command start to first launch {first_launch:.1f} s, "
          f"last exit to command end {last_exit:.1f} s)")
    print(json.dumps({"runs": len(per_run), "workers": args.workers, "sweep_wall_s": round(wall, 2),
                      "sum_run_wall_over_workers_s": round(ideal, 2), "overhead": round(wall / ideal - 1, 4)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
