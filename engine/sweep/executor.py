"""The executor interface: what the sweep commands need from "local" and "slurm".

Torch-free. An executor starts or queues a sweep's runs, reports what its scheduler knows about
them, and cancels them. Runs are ordinary run directories; the executor only decides where and
when each one's engine (engine.sweep.task.run_task) executes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..config import ConfigError

if TYPE_CHECKING:
    from .store import Sweep

EXECUTORS = ("local", "slurm")  # the one list: the spec, the CLI and the sweep form check against it


def check_executor(name: str) -> str:
    """`name` when it is an executor; ConfigError (the one "unknown executor" line) otherwise."""
    if name not in EXECUTORS:
        raise ConfigError(f"unknown executor '{name}'; valid executors: {', '.join(EXECUTORS)}")
    return name


def executor_text(name: str, options: dict[str, Any]) -> str:
    """`local (workers=2)`, `slurm (partition=gpu, gpus=1)`: an executor and its options for people."""
    shown = ", ".join(f"{k}={','.join(map(str, v)) if isinstance(v, (list, tuple)) else v}" for k, v in (options or {}).items())
    return f"{name} ({shown})" if shown else name


class Executor(Protocol):
    name: str  # "local" | "slurm"

    def submit(self, sweep: "Sweep", run_dirs: list[Path]) -> None:
        """Start or queue these runs (each ends finished, stopped or failed; never twice at once)."""

    def job_states(self, sweep: "Sweep") -> dict[str, str]:
        """run_id -> the scheduler's state ("PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", ...) where known."""

    def cancel(self, sweep: "Sweep", run_dirs: list[Path]) -> None:
        """Stop these runs (a clean stop: each checkpoints and can be resumed)."""


def preflight(name: str, options: dict[str, Any]) -> None:
    """Checks that must pass before a sweep creates anything; ConfigError (one line) otherwise.

    slurm: `sbatch` on PATH, then engine.sweep.slurm.preflight(options) (e.g. a partition Slurm rejects).
    """
    if check_executor(name) == "local":
        return
    import shutil

    if shutil.which("sbatch") is None:
        raise ConfigError("--executor slurm: no `sbatch` on PATH (Slurm is not installed here or not on PATH; see scripts/slurm-local.sh)")
    try:
        from .slurm import preflight as slurm_preflight
    except ImportError as e:
        raise ConfigError(f"--executor slurm is not usable here: {e}") from None
    slurm_preflight(options)


def make_executor(name: str, options: dict[str, Any]) -> Executor:
    """The executor called `name` with its options; ConfigError (one line) for an unknown or unusable one."""
    if check_executor(name) == "local":
        from .local import LocalExecutor

        return LocalExecutor(options)
    from .slurm import SlurmExecutor  # lazily: submitit is needed only here

    return SlurmExecutor(options)
