"""Start the engine as a detached process on a run directory (used by the CLI and the UI).

Torch-free. The engine gets its own session (a dropped SSH connection or a closed UI does not
signal it), no stdin, and writes its own output to the run's `engine.log`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .runs import LOG


def engine_command(run_dir: Path, resume: bool = False) -> list[str]:
    return [sys.executable, "-m", "engine", "resume" if resume else "run", "--run-dir", str(run_dir)]


def launch_detached(run_dir: Path, resume: bool = False, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start `python -m engine run|resume --run-dir DIR` in its own session; returns the Popen."""
    log = open(Path(run_dir) / LOG, "ab")
    try:
        return subprocess.Popen(
            engine_command(Path(run_dir), resume),
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
