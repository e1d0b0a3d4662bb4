"""One run of a sweep, executed idempotently: start it, resume it from its checkpoint, or skip it.

Used by the local executor (one detached process per run) and by Slurm array tasks. Torch is
imported only when the run actually trains (through engine.__main__).

`python -m engine.sweep.task --run-dir DIR`. The task holds the run's claim (`task.lock`, flock)
for its whole life, and decides under it what to do, so two tasks never run one run: the second
one exits with CLAIMED at once.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from ..heartbeat import alive_elsewhere
from ..rundir import CHECKPOINTS, LOG, checkpoint_path
from ..runs import (EVENTS, SUMMARY, engine_alive, initial_summary, load_run_config, lock_held, read_summary, try_lock,
                    write_summary)

TASK_LOCK = "task.lock"
CLAIMED = 3  # exit code: another task holds this run's claim (it is running or starting it)


def claim(run_dir: Path) -> int | None:
    """Take the run's claim for this process; None if another process holds it."""
    # Who holds it and where: the local scheduler reads the GPU slot back when it adopts the run.
    holder = {"pid": os.getpid(), "host": os.uname().nodename, "gpus": os.environ.get("CUDA_VISIBLE_DEVICES")}
    return try_lock(run_dir / TASK_LOCK, json.dumps(holder))


def claimed(run_dir: Path) -> bool:
    """True while some task holds the run's claim (a shared probe: probes never block each other)."""
    return lock_held(run_dir / TASK_LOCK)


def claim_info(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / TASK_LOCK).read_text() or "{}")
    except (OSError, ValueError):
        return {}


def busy(run_dir: Path) -> bool:
    """A task holds the run, or an engine runs it (e.g. a `gdw resume RUN` by hand), here or on
    another host (a fresh heartbeat: the rule engine.runs.run_status uses)."""
    return claimed(run_dir) or engine_alive(run_dir) or alive_elsewhere(run_dir)


def plan(run_dir: Path) -> str:
    """What a task does with this run now: "skip" (finished), "resume" (has a checkpoint),
    "restart" (ran, but no checkpoint: its attempt is archived and it starts over) or "run"."""
    summary = read_summary(run_dir)
    if summary.get("status") == "finished":
        return "skip"
    if checkpoint_path(run_dir).exists():
        return "resume"
    events = run_dir / EVENTS
    if events.exists() and events.stat().st_size > 0:
        return "restart"
    return "run"


def archive_attempt(run_dir: Path) -> None:
    """Keep a failed attempt's events, summary and checkpoints under attempts/N/ and make the run
    fresh again (the next task starts it over)."""
    attempts = run_dir / "attempts"
    attempts.mkdir(exist_ok=True)
    n = 1 + sum(1 for _ in attempts.iterdir())
    dest = attempts / str(n)
    dest.mkdir()
    old = read_summary(run_dir)
    for name in (EVENTS, SUMMARY, CHECKPOINTS):
        if (run_dir / name).exists():
            os.replace(run_dir / name, dest / name)
    fresh = initial_summary(run_dir, load_run_config(run_dir))
    for key in ("created", "sweep", "setting", "grid", "changes"):  # the run's identity stays
        if key in old:
            fresh[key] = old[key]
    fresh["attempts"] = n
    write_summary(run_dir, fresh)


def restart(run_dir: Path) -> None:
    """Start a run over (`gdw resume SWEEP --restart RUN`): its attempt is archived under the run's
    claim; ConfigError if a task or an engine holds the run."""
    from ..config import ConfigError
    from ..runs import engine_alive

    fd = claim(run_dir)
    if fd is None or engine_alive(run_dir):
        if fd is not None:
            os.close(fd)
        raise ConfigError(f"run {run_dir.name} is running; stop it first (`gdw stop {run_dir.name}`)")
    try:
        if read_summary(run_dir).get("status") == "finished":
            raise ConfigError(f"run {run_dir.name} already finished; nothing to start over")
        archive_attempt(run_dir)
    except OSError as e:
        raise ConfigError(f"cannot start {run_dir.name} over: {e.strerror or e}") from None
    finally:
        os.close(fd)


def sweep_stopped(run_dir: Path) -> bool:
    """A task started just before `gdw stop SWEEP` marked the sweep stopped does not start its run."""
    sweep_id = read_summary(run_dir).get("sweep")
    if not sweep_id:
        return False
    try:
        data = json.loads((run_dir.parent / "sweeps" / sweep_id / "sweep.json").read_text())
    except (OSError, ValueError):
        return False
    return bool(data.get("stopped"))


def run_task(run_dir: Path) -> int:
    """Run, resume or skip the run under its claim. Exit codes as `python -m engine` (0 finished or
    stopped, 1 failed, 2 bad input), plus CLAIMED when another task holds the run."""
    run_dir = Path(run_dir)
    fd = claim(run_dir)
    if fd is None:
        print(f"run {run_dir.name} is claimed by another task; nothing to do", flush=True)
        return CLAIMED
    try:
        action = plan(run_dir)
        if action != "skip" and sweep_stopped(run_dir):
            print(f"run {run_dir.name}: its sweep is stopped; not started", flush=True)
            return 0
        if action == "skip":
            print(f"run {run_dir.name} already finished", flush=True)
            return 0
        if action == "restart":
            archive_attempt(run_dir)
        from ..__main__ import main as engine_main

        print(f"{time.strftime('%H:%M:%S')} task: {action} {run_dir.name}", flush=True)
        return engine_main(["resume" if action == "resume" else "run", "--run-dir", str(run_dir)])
    finally:
        os.close(fd)


def record_exit(run_dir: Path, rc: int | None, stopped_by_user: bool) -> dict[str, Any]:
    """The run's summary once its task has ended, made honest where the engine could not write it.

    A task killed by a signal (an out-of-memory kill, a SIGKILL) or one that ended without a final
    status is *failed*, with the reason; so is a resume the engine refused (exit 2: e.g. a corrupt
    checkpoint), whose reason was only in engine.log. `rc` is None for an adopted run (not our
    child: its exit code is unknown). A run of a sweep the user stopped (`gdw stop --now` kills) is
    left as it is: it resumes from its checkpoint.
    """
    s = read_summary(run_dir)
    status = s.get("status")
    if status == "finished" or stopped_by_user or not run_dir.is_dir() or busy(run_dir):
        return s
    if rc is not None and rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        why = f"killed ({name}; out of memory?) before it ended"
    elif rc == 2 and checkpoint_path(run_dir).exists():  # the engine refused to resume (e.g. a corrupt checkpoint)
        sweep = s.get("sweep") or "SWEEP"
        why = (f"cannot resume: {engine_error(run_dir) or 'see engine.log'}; `gdw resume {sweep} --restart {run_dir.name}`"
               " starts it over, keeping this attempt")
    elif rc == 2:  # the engine refused to start, before touching the run
        why = f"cannot start: {engine_error(run_dir) or 'see engine.log'}"
    elif status in ("running", "created") and (rc or status == "running"):
        why = "the engine died without a final status (killed?)" if rc is None else (
            f"the engine exited with code {rc} without a final status (see engine.log)")
    else:
        return s
    fd = claim(run_dir)  # under the run's claim: never over a task or an engine that just took it
    if fd is None:
        return s
    try:
        s.update(status="failed", message=why, ended=time.time())
        write_summary(run_dir, s)
    except OSError:
        pass  # said by the caller all the same
    finally:
        os.close(fd)
    return s


def engine_error(run_dir: Path) -> str | None:
    """The engine's last one-line error (`error: ...`) in engine.log, if any."""
    try:
        with open(run_dir / LOG, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    errors = [line[len("error: "):] for line in tail.splitlines() if line.startswith("error: ")]
    return errors[-1] if errors else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.sweep.task", description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True, type=Path)
    args = parser.parse_args(argv)
    return run_task(args.run_dir)


def task_command(run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "engine.sweep.task", "--run-dir", str(run_dir)]


if __name__ == "__main__":
    from ..fast_exit import exit_process

    exit_process(main())
