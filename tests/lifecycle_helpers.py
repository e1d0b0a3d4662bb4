"""Shared helpers for the run-lifecycle tests (test_reliability, test_cli, test_bad_input).

Everything goes through the real CLI (`gdw`, in a subprocess or Typer's CliRunner) and the
real engine (`python -m engine`) on the embedded digits data, with small settings.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from engine.events import read_events
from engine.runs import EVENTS

ROOT = Path(__file__).resolve().parents[1]

# Every test run uses these settings, so runs that must agree (uninterrupted vs resumed) agree.
# A step event per iteration lets a test signal the engine at a known point inside an epoch.
SMALL = ["--device", "cpu", "--set", "train.step_events_per_s=10000"]


def gdw_command() -> list[str]:
    """The installed `gdw` console script next to this Python, else the module."""
    script = Path(sys.executable).with_name("gdw")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gdw_cli"]


def child_env(**extra: str) -> dict[str, str]:
    # One torch thread per process: the tests run several engines at once on 2 cores, and
    # runs that are compared must use the same thread count.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("GDW_RUNS_DIR", None)
    env.pop("GDW_PRESETS", None)
    env.update(extra)
    return env


def gdw(*args: str, timeout: float = 240, **popen: Any) -> subprocess.CompletedProcess:
    return subprocess.run(gdw_command() + list(args), capture_output=True, text=True, timeout=timeout,
                          env=child_env(), cwd=ROOT, **popen)


def gdw_popen(*args: str) -> subprocess.Popen:
    return subprocess.Popen(gdw_command() + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env(), cwd=ROOT)


def engine_popen(action: str, run_dir: Path, **popen: Any) -> subprocess.Popen:
    """`python -m engine run|resume --run-dir DIR`, as the CLI and UI launch it (own session)."""
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen([sys.executable, "-m", "engine", action, "--run-dir", str(run_dir)], text=True,
                            env=child_env(), cwd=ROOT, start_new_session=True, **popen)


def events(run_dir: Path) -> list[dict]:
    return read_events(run_dir / EVENTS)


def wait_for(predicate: Callable[[], Any], timeout: float = 120, what: str = "condition",
             proc: subprocess.Popen | None = None) -> Any:
    """Poll until predicate() is truthy; fail with `what` on timeout or if `proc` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"process exited ({proc.returncode}) before {what}:\n{out}\n{err}")
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def mid_epoch(run_dir: Path, epoch: int, min_iter: int) -> bool:
    """True once a step event of `epoch` (0-based) at iteration >= min_iter is written."""
    return any(e["type"] == "step" and e["epoch"] == epoch and e["iter"] >= min_iter for e in events(run_dir))


def epoch_records(run_dir: Path) -> list[dict]:
    """The numbers of each epoch event, without timings (those differ between processes)."""
    keep = ("epoch", "test_acc", "test_loss", "per_class_acc", "train_loss", "train_acc", "meta_loss", "meta_acc",
            "lr", "best_acc")
    return [{k: e.get(k) for k in keep} for e in events(run_dir) if e["type"] == "epoch"]


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def sweep_id(stdout: str) -> str:
    """The id from `gdw sweep`'s last line, `sweep=SWEEP_ID`."""
    line = last_line(stdout)
    assert line.startswith("sweep="), stdout
    return line[len("sweep="):]
