"""What live logging costs the engine: the same run trained with and without `--log BACKEND`.

    python scripts/bench_live_log.py                       # digits-unif60, 30 epochs, 3 pairs, tensorboard
    python scripts/bench_live_log.py --step-events-per-s 10000   # the worst case: a step event every iteration
    python scripts/bench_live_log.py --cost-of RUN_DIR            # CPU per event, from a recorded run's events

Each pair trains the preset twice in fresh engine processes (`python -m engine run`, as the CLI
and the UI launch it), without and with live logging, both at the same time: on a machine
shared with other work the two see the same load, which one after the other they would not.
Both are held at their run_start (the engine's test hold, engine/hold.py) and released together,
so their training overlaps from the first iteration (live logging's start-up is not timed).
The figure is the engine's own: seconds per training iteration, from its epoch events (the
median over epochs of train_s / iterations, the first epoch left out as warm-up). Prints one
JSON object: per-pair figures, the medians and the overhead in percent.

On a machine shared with other work that wall-clock figure carries the load's noise. `--cost-of`
measures what does not depend on it: the CPU seconds live logging spends per event of each kind,
feeding a recorded run's events (e.g. an 80-epoch CIFAR-100 run from scripts/replay_run.py)
through the real LiveLog and TensorBoard sink, and the share of one core that makes at the
engine's event rates (10 step events a second, 4 ω snapshots and 1 epoch event an epoch) for a
given epoch time. The training thread itself only queues each event; the writer thread can slow
it at most by the CPU it takes (the GIL), so that share bounds the slowdown.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.config import load_preset  # noqa: E402
from engine.events import read_events  # noqa: E402
from engine.runs import EVENTS, create_run  # noqa: E402


def start(runs: Path, overrides: dict) -> tuple[Path, subprocess.Popen]:
    run_dir = create_run(runs, load_preset(overrides.pop("preset"), overrides))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GDW_TEST_HOLD": f"run_start:{run_dir}/release"}
    return run_dir, subprocess.Popen([sys.executable, "-m", "engine", "run", "--run-dir", str(run_dir)], cwd=ROOT,
                                     env=env, stdout=subprocess.DEVNULL)


def seconds_per_iteration(run_dir: Path) -> float:
    events = read_events(run_dir / EVENTS)
    iters = next(e["iters_per_epoch"] for e in events if e["type"] == "run_start")
    return statistics.median(e["train_s"] / iters for e in events if e["type"] == "epoch" and e["epoch"] > 0)


def cost_of(run_dir: Path, epoch_s: float) -> dict:
    from engine.export.live import LiveLog
    from engine.export.to_tensorboard import TensorBoardSink

    events = read_events(run_dir / EVENTS)
    kinds = {"step": [], "weights": [], "weights_epoch_end": [], "epoch": []}
    for e in events:
        kind = "weights_epoch_end" if e["type"] == "weights" and e.get("epoch_end") else e["type"]
        if kind in kinds:
            kinds[kind].append(e)
    out = {}
    with tempfile.TemporaryDirectory(prefix="gdw-bench-live-") as tmp:
        for kind, batch in kinds.items():
            live = LiveLog(run_dir, TensorBoardSink(Path(tmp) / kind), "tensorboard")
            live.stream.iters_per_epoch = 490
            cpu = time.process_time()
            queued = time.perf_counter()
            for e in batch:
                live(e)
            queue_s = time.perf_counter() - queued
            live.close()
            out[kind] = {"events": len(batch), "cpu_ms_per_event": round(1000 * (time.process_time() - cpu) / len(batch), 4),
                         "queue_us_per_event": round(1e6 * queue_s / len(batch), 3)}
    per_s = {"step": 10.0, "weights": 3 / epoch_s, "weights_epoch_end": 1 / epoch_s, "epoch": 1 / epoch_s}
    share = sum(per_s[k] * out[k]["cpu_ms_per_event"] / 1000 for k in out)
    return {"run": run_dir.name, "classes": len(next(e for e in events if e["type"] == "run_start")["classes"]),
            "per_kind": out, "epoch_s": epoch_s, "events_per_s": per_s, "core_share_pct": round(100 * share, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="digits-unif60")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--backend", default="tensorboard", choices=["tensorboard", "mlflow", "wandb"])
    parser.add_argument("--step-events-per-s", type=float, default=10.0, help="train.step_events_per_s (the engine's default: 10)")
    parser.add_argument("--cost-of", metavar="RUN_DIR", help="CPU per event of live logging to TensorBoard, from this run's events")
    parser.add_argument("--epoch-s", type=float, default=10.0, help="with --cost-of: seconds per epoch to work out the rates")
    args = parser.parse_args()
    if args.cost_of:
        print(json.dumps(cost_of(Path(args.cost_of), args.epoch_s), indent=2))
        return
    with tempfile.TemporaryDirectory(prefix="gdw-bench-live-") as tmp:
        runs = Path(tmp) / "runs"
        base = {"preset": args.preset, "train.epochs": args.epochs, "train.device": "cpu",
                "train.step_events_per_s": args.step_events_per_s}
        logged = {**base, "train.log": args.backend, "train.log_to": str(Path(tmp) / args.backend)}
        pairs = []
        for _ in range(args.pairs):
            started = {name: start(runs, dict(cfg)) for name, cfg in (("without", base), ("with", logged))}
            while not all((run_dir / "release.held").exists() for run_dir, _ in started.values()):
                if any(proc.poll() is not None for _, proc in started.values()):
                    raise SystemExit("an engine ended before it started training")
                time.sleep(0.05)
            for run_dir, _ in started.values():
                (run_dir / "release").touch()
            for _, proc in started.values():
                if proc.wait() != 0:
                    raise SystemExit("an engine failed; see its run directory")
            pairs.append({name: seconds_per_iteration(run_dir) for name, (run_dir, _) in started.items()})
    without = statistics.median(p["without"] for p in pairs)
    with_log = statistics.median(p["with"] for p in pairs)
    print(json.dumps({
        "preset": args.preset, "epochs": args.epochs, "backend": args.backend,
        "step_events_per_s": args.step_events_per_s, "pairs": pairs,
        "median_s_per_iter": {"without": without, "with": with_log},
        "overhead_pct": round(100 * (with_log - without) / without, 2),
        "pair_overheads_pct": [round(100 * (p["with"] - p["without"]) / p["without"], 2) for p in pairs],
    }, indent=2))


if __name__ == "__main__":
    main()
