"""Measure what event writing costs: the same run with train.events on and off, seconds per iteration.

Usage: python scripts/bench_events.py [PRESET] [--epochs N] [--repeats R] [--set k=v ...]
Runs are made in a temporary runs directory and discarded. Prints one line per setting and the
overhead in percent (events on vs off), the median over the repeats.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.config import load_preset, parse_set  # noqa: E402
from engine.events import read_events  # noqa: E402
from engine.runs import create_run  # noqa: E402
from engine.lifecycle import train_run  # noqa: E402


def seconds_per_iteration(preset: str, overrides: dict, events: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_preset(preset, {**overrides, "train.events": events})
        run_dir = create_run(Path(tmp), cfg)
        train_run(run_dir)
        evs = read_events(run_dir / "events.jsonl")
        start = next(e for e in evs if e["type"] == "run_start")
        epochs = [e for e in evs if e["type"] == "epoch"]
        train_s = sum(e["train_s"] for e in epochs)  # training iterations only, not the test pass
        return train_s / (len(epochs) * start["iters_per_epoch"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("preset", nargs="?", default="digits-unif60")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    overrides = dict(parse_set(s) for s in args.sets)
    overrides["train.epochs"] = args.epochs
    on, off = [], []
    for _ in range(args.repeats):  # interleaved, so drift in machine load hits both alike
        off.append(seconds_per_iteration(args.preset, overrides, events=False))
        on.append(seconds_per_iteration(args.preset, overrides, events=True))
    result = {"preset": args.preset, "events_off_s_per_it": statistics.median(off),
              "events_on_s_per_it": statistics.median(on)}
    result["overhead_pct"] = 100 * (result["events_on_s_per_it"] / result["events_off_s_per_it"] - 1)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.preset}: events off {1000 * result['events_off_s_per_it']:.2f} ms/it · "
              f"on {1000 * result['events_on_s_per_it']:.2f} ms/it · overhead {result['overhead_pct']:+.2f}%")


if __name__ == "__main__":
    main()
