"""Start the engine as a detached process on a run directory (used by the CLI and the UI).

Torch-free. The engine gets its own session (a dropped SSH connection or a closed UI does not
signal it), no stdin, and writes its own output to the run's `engine.log`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .config import ConfigError, cuda_index
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


# torchvision's file layout for CIFAR (engine/data/datasets.py loads them with torchvision itself).
CIFAR_FILES = {
    "cifar10": ("cifar-10-batches-py", ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                                        "data_batch_5", "test_batch", "batches.meta")),
    "cifar100": ("cifar-100-python", ("train", "test", "meta")),
}
IMAGEFOLDER_SPLITS = ("train", "meta", "test")


def missing_cifar_message(name: str, folder: str | os.PathLike) -> str:
    """The one message for absent CIFAR files (this pre-flight and the engine's loader)."""
    return (f"{name} files not found: expected {', '.join(CIFAR_FILES[name][1])} in {folder}; pass --download"
            " (in the UI's form: download) to fetch them, or point data.data_dir at them")


def check_data_present(cfg: dict) -> None:
    """A torch-free early check that the dataset's files are where `data.data_dir` says.

    The engine loads (and md5-checks) them again; this only refuses a run that would fail at once.
    """
    data = cfg["data"]
    name, root = data["dataset"], data["data_dir"]
    if name in CIFAR_FILES and not data["download"]:
        folder, files = CIFAR_FILES[name]
        path = Path(root).expanduser() / folder
        if any(not (path / f).is_file() for f in files):
            raise ConfigError(missing_cifar_message(name, path))
    if name == "imagefolder":
        missing = [s for s in IMAGEFOLDER_SPLITS if not (Path(root).expanduser() / s).is_dir()]
        if missing:
            raise ConfigError(
                f"imagefolder data needs {root}/train, {root}/meta and {root}/test (one sub-folder per class);"
                f" missing: {', '.join(missing)}"
            )


def preflight(cfg: dict) -> None:
    """Everything checked before a run directory is made (CLI and UI alike): device, data, live logging."""
    check_device_available(cfg["train"]["device"])
    check_data_present(cfg)
    if cfg["train"]["log"] != "none":
        from .export.live import check_live_log

        check_live_log(cfg)
