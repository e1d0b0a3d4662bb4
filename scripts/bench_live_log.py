"""What live logging costs the engine: the same run trained with and without `--log BACKEND`.

    python scripts/bench_live_log.py                       # digits-unif60, 30 epochs, 3 pairs, tensorboard
    python scripts/bench_live_log.py --step-events-per-s 10000   # the worst case: a step event every iteration

Each pair trains the preset twice in fresh engine processes (`python -m engine run`, as the CLI
and the UI launch it), without and with live logging, alternating which goes first so a machine
whose load drifts favours neither. The figure is the engine's own: seconds per training
iteration, from its epoch events (train_s / iterations, the first epoch left out as warm-up).
Prints one JSON object: per-pair figures, the medians and the overhead in percent.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.config import load_preset  # noqa: E402
from engine.events import read_events  # noqa: E402
from engine.runs import EVENTS, create_run  # noqa: E402


def seconds_per_iteration(runs: Path, overrides: dict) -> float:
    run_dir = create_run(runs, load_preset(overrides.pop("preset"), overrides))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "engine", "run", "--run-dir", str(run_dir)], check=True, cwd=ROOT, env=env,
                   stdout=subprocess.DEVNULL)
    events = read_events(run_dir / EVENTS)
    iters = next(e["iters_per_epoch"] for e in events if e["type"] == "run_start")
    epochs = [e for e in events if e["type"] == "epoch"][1:]
    return sum(e["train_s"] for e in epochs) / (iters * len(epochs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="digits-unif60")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--backend", default="tensorboard", choices=["tensorboard", "mlflow", "wandb"])
    parser.add_argument("--step-events-per-s", type=float, default=10.0, help="train.step_events_per_s (the engine's default: 10)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gdw-bench-live-") as tmp:
        runs = Path(tmp) / "runs"
        base = {"preset": args.preset, "train.epochs": args.epochs, "train.device": "cpu",
                "train.step_events_per_s": args.step_events_per_s}
        logged = {**base, "train.log": args.backend, "train.log_to": str(Path(tmp) / args.backend)}
        pairs = []
        for i in range(args.pairs):
            order = [("without", base), ("with", logged)]
            if i % 2:
                order.reverse()
            pairs.append({name: seconds_per_iteration(runs, dict(cfg)) for name, cfg in order})
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
