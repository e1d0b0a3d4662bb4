"""Replay (or synthesise) a run's events into a new run directory at a chosen pace, to measure the UI.

    # the issue's load: an 80-epoch CIFAR-100 run (490 it/epoch, ~39,000 iterations), every
    # iteration a step event at 2,000 a second, a 100×100 ω snapshot every second
    python scripts/replay_run.py ./runs

    # a recorded run, ten times faster than it ran
    python scripts/replay_run.py ./runs --source runs/20251125-151743-digits-unif60-gdw-s1 --speed 10

    # the same CIFAR-100 run written at once, with the engine's 4 ω snapshots per epoch (320):
    # a finished run to open (memory, catch-up time)
    python scripts/replay_run.py ./runs --instant --weights-per-epoch 4

The replayer holds the run's engine lock while it writes, so the UI (and `gdw runs`) see an honest
`running` run, and finishes the summary like the engine does. Timestamps are re-stamped to now.
It prints the run directory on its first line (scripts/ui_bench.py reads it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))  # synth_run, beside this script, also when imported

from engine.config import defaults  # noqa: E402
from engine.events import encode, read_events  # noqa: E402
from engine.runs import EVENTS, acquire_lock, create_run, read_summary, write_summary  # noqa: E402
from synth_run import CIFAR100, synth_events  # noqa: E402


def synthetic(args: argparse.Namespace, run_id: str) -> Iterator[dict[str, Any]]:
    classes = CIFAR100[: args.classes] if args.classes <= 100 else [f"c{i}" for i in range(args.classes)]
    return synth_events(
        run_id=run_id, preset="cifar100-unif40", classes=classes, dataset="cifar100", epochs=args.epochs,
        iters_per_epoch=args.iters_per_epoch, noise_rate=0.4, it_s=args.steps_per_s, step_every=1,
        weights_per_epoch=args.weights_per_epoch or 1,
        weights_every_iters=None if args.weights_per_epoch else max(1, round(args.steps_per_s * args.weights_every_s)),
        t0=time.time(),
    )


def recorded(source: Path) -> list[dict[str, Any]]:
    path = source / EVENTS if source.is_dir() else source
    return read_events(path)


def run_config(args: argparse.Namespace, first: dict[str, Any] | None) -> dict[str, Any]:
    cfg = defaults()
    if first and first.get("config"):
        for section in ("data", "model", "train"):
            cfg[section].update(first["config"].get(section, {}))
        cfg["preset"] = first.get("preset", "replay")
        cfg["title"] = first.get("title", "")
    else:
        cfg["data"].update(dataset="cifar100", noise="unif", noise_rate=0.4)
        cfg["train"].update(epochs=args.epochs, outer_lr=1000.0)
        cfg["preset"] = "cifar100-unif40"
    cfg["preset"] = f"replay-{cfg['preset']}"
    return cfg


def replay(args: argparse.Namespace) -> Path:
    source_events = recorded(Path(args.source)) if args.source else None
    cfg = run_config(args, source_events[0] if source_events else None)
    run_dir = create_run(Path(args.runs_dir), cfg)
    print(run_dir, flush=True)
    lock_fd = acquire_lock(run_dir)  # held while writing: the run's honest status is "running"
    summary = read_summary(run_dir)
    summary.update(status="running", started=time.time(), pid=os.getpid(), device="replay")
    write_summary(run_dir, summary)

    events = source_events if source_events is not None else synthetic(args, run_dir.name)
    start = time.monotonic()
    first_t: float | None = None
    steps = 0
    last: dict[str, Any] = {}
    with open(run_dir / EVENTS, "a", encoding="utf-8") as out:
        pending: list[str] = []
        for event in events:
            event = dict(event)
            if event["type"] == "run_start":
                event["run_id"] = run_dir.name
                event["preset"] = cfg["preset"]
            if not args.instant:
                # When is this event due? Synthetic: by step count; recorded: by its own clock.
                if source_events is None:
                    due = steps / args.steps_per_s
                else:
                    first_t = event["t"] if first_t is None else first_t
                    due = (event["t"] - first_t) / args.speed
                wait = due - (time.monotonic() - start)
                if wait > 0.005:
                    out.write("".join(pending))
                    out.flush()
                    pending = []
                    time.sleep(wait)
            event["t"] = round(time.time(), 3)
            pending.append(encode(event))
            steps += event["type"] == "step"
            last = event
            if len(pending) >= 256:
                out.write("".join(pending))
                out.flush()
                pending = []
        out.write("".join(pending))
    summary = read_summary(run_dir)
    ended = {"run_end": "finished", "failure": "failed", "stopped": "stopped"}.get(last.get("type", ""), "interrupted")
    summary.update(status=ended, ended=time.time(), wall_s=round(time.monotonic() - start, 3),
                   final_acc=last.get("final_acc"), best_acc=last.get("best_acc"), epoch=cfg["train"]["epochs"])
    write_summary(run_dir, summary)
    os.close(lock_fd)
    return run_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs_dir", help="runs directory to create the replayed run in")
    parser.add_argument("--source", help="a run directory or events.jsonl to replay (default: synthesise)")
    parser.add_argument("--speed", type=float, default=1.0, help="with --source: times its recorded pace")
    parser.add_argument("--steps-per-s", type=float, default=2000.0, help="synthetic: step events a second")
    parser.add_argument("--weights-every-s", type=float, default=1.0, help="synthetic: seconds between ω snapshots")
    parser.add_argument("--weights-per-epoch", type=int, help="synthetic: snapshots per epoch instead of per second "
                        "(4 = the engine's default; the epoch-end one carries the increase ratio)")
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--iters-per-epoch", type=int, default=490)
    parser.add_argument("--instant", action="store_true", help="write every event at once")
    args = parser.parse_args()
    run_dir = replay(args)
    print(json.dumps({"run_dir": str(run_dir), "bytes": (run_dir / EVENTS).stat().st_size}), flush=True)


if __name__ == "__main__":
    main()
