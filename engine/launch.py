"""Start the engine as a detached process on a run directory (used by the CLI and the UI).

Torch-free. The engine gets its own session (a dropped SSH connection or a closed UI does not
signal it), no stdin, and writes its own output to the run's `engine.log`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .config import cuda_index
from .rundir import LOG


def cuda_device_count() -> int:
    """GPUs the NVIDIA driver exposes, found without importing torch (the UI process never does)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    gpus = Path("/proc/driver/nvidia/gpus")
    count = len(list(gpus.iterdir())) if gpus.is_dir() else 0
    if visible is not None:
        count = min(count, len([v for v in visible.split(",") if v.strip() and v.strip() != "-1"]))
    return count


def check_device_available(spec: str) -> None:
    """A torch-free early check of `train.device`, so a detached launch is refused up front.

    The engine checks again with torch when it starts; this only catches the clear cases.
    """
    spec = spec.strip().lower()
    if not spec.startswith("cuda"):
        return
    cuda_index(spec, cuda_device_count())


def engine_command(run_dir: Path, resume: bool = False) -> list[str]:
    return [sys.executable, "-m", "engine", "resume" if resume else "run", "--run-dir", str(run_dir)]


def launch_detached(
    run_dir: Path, resume: bool = False, env: dict[str, str] | None = None, command: list[str] | None = None,
) -> subprocess.Popen:
    """Start `python -m engine run|resume --run-dir DIR` (or `command`, e.g. a sweep's run task) in
    its own session; returns the Popen."""
    log = open(Path(run_dir) / LOG, "ab")
    try:
        return subprocess.Popen(
            command or engine_command(Path(run_dir), resume),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            cwd=os.getcwd(),
            env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
        )
    finally:
        log.close()
