"""`gdw export`: whole runs and sweeps, converted from what they recorded, to TensorBoard, MLflow, W&B or CSV.

Everything is checked before anything is written: the runs named, the backend's library (its
extra), the destination (a writable --out, a reachable tracking URI). Exporting again replaces
what the previous export wrote (TensorBoard, CSV, W&B: a complete new copy swapped in) or adds
only what is new (MLflow: points after the last exported step), so no point is ever written twice.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..config import ConfigError
from ..runs import atomic_write_text, find_run
from .records import read_run

BACKENDS = ("tensorboard", "mlflow", "wandb", "csv")
DEFAULT_OUT = {"tensorboard": "gdw-export/tensorboard", "csv": "gdw-export/csv", "wandb": "gdw-export/wandb"}
DEFAULT_PROJECT = "gdw"


@dataclass
class Target:
    """One name on the command line: a run, or a sweep and its runs."""

    ref: str
    runs: list[Path]
    sweep_id: str | None = None
    sweep_name: str | None = None

    @property
    def name(self) -> str:
        return self.sweep_id or self.runs[0].name


def resolve(runs_dir: Path, refs: list[str]) -> list[Target]:
    """Each ref as a sweep (id or name) or a run (id, unique part of one, or directory); ConfigError otherwise."""
    from ..sweep.store import sweep_named

    if not refs:
        raise ConfigError("name at least one run or sweep to export (see `gdw runs`, `gdw sweeps`)")
    targets = []
    for ref in refs:
        sweep = sweep_named(runs_dir, ref)
        if sweep is not None:
            runs = [d for d in sweep.run_dirs() if d.is_dir()]
            if not runs:
                raise ConfigError(f"sweep {sweep.id} has no run directories left in {runs_dir}")
            targets.append(Target(ref, runs, sweep.id, sweep.name))
        else:
            targets.append(Target(ref, [find_run(runs_dir, ref)]))
    return targets


def check_options(to: str, out: str | None, tracking_uri: str | None, project: str | None, online: bool) -> None:
    if to not in BACKENDS:
        raise ConfigError(f"unknown export target '{to}'; valid: {', '.join(BACKENDS)}")
    if to == "mlflow" and out is not None:
        raise ConfigError("--out is for tensorboard, wandb and csv; MLflow writes to --tracking-uri")
    if to != "mlflow" and tracking_uri is not None:
        raise ConfigError("--tracking-uri is for --to mlflow")
    if to in ("tensorboard", "csv") and project is not None:
        raise ConfigError("--project is for --to mlflow (the experiment) and --to wandb")
    if online and to != "wandb":
        raise ConfigError("--online is for --to wandb")
    if project is not None and not project.strip():
        raise ConfigError("--project must not be empty")


def check_readable(targets: list[Target]) -> None:
    """Every run's config and event schema are readable (one run's bad file stops the export before any write)."""
    from ..events import SchemaError, check_file_version
    from ..rundir import EVENTS
    from .records import run_info

    for target in targets:
        for run_dir in target.runs:
            run_info(run_dir)
            try:
                check_file_version(run_dir / EVENTS)
            except SchemaError as e:
                raise ConfigError(f"run {run_dir.name}: {e}") from None


def require_backend(to: str) -> None:
    if to != "csv":
        from ..extras import require

        require(to, f"gdw export --to {to}")


def check_writable_dir(path: Path, what: str = "--out") -> None:
    """The directory exists and is writable, or can be made (its nearest existing parent is writable)."""
    path = path.expanduser()
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"{what} {path} is a file, not a directory")
        if not os.access(path, os.W_OK | os.X_OK):
            raise ConfigError(f"{what} {path} is not writable; choose another directory")
        return
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {path} cannot be created ({parent} is not a writable directory); choose another directory")


def export(targets: list[Target], to: str, out: str | None = None, tracking_uri: str | None = None,
           project: str | None = None, online: bool = False, say: Callable[[str], None] = print) -> None:
    """Export every target; bad input is a ConfigError raised before anything is written."""
    check_options(to, out, tracking_uri, project, online)
    check_readable(targets)
    require_backend(to)
    if to == "mlflow":
        from .to_mlflow import check_tracking_uri, export_targets

        uri = check_tracking_uri(tracking_uri)
        export_targets(targets, uri, project or DEFAULT_PROJECT, say)
        return
    dest = Path(out or DEFAULT_OUT[to]).expanduser()
    check_writable_dir(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if to == "csv":
        for target in targets:
            _export_csv(target, dest, say)
    elif to == "tensorboard":
        for target in targets:
            for run_dir in target.runs:
                _export_tensorboard(run_dir, dest / target.sweep_id if target.sweep_id else dest, say)
    else:
        import wandb

        from .to_wandb import export_run

        try:
            for target in targets:
                for run_dir in target.runs:
                    export_run(run_dir, dest, project or DEFAULT_PROJECT, target.sweep_id, online, say)
        finally:
            wandb.teardown()  # W&B's service process ends here, not when the calling process does


def _export_csv(target: Target, dest: Path, say: Callable[[str], None]) -> None:
    from . import to_csv

    parts, count = [to_csv.header()], 0
    for run_dir in target.runs:
        info, records = read_run(run_dir)
        text = to_csv.rows(info, records)
        parts.append(text)
        count += text.count("\n")
    path = dest / f"{target.name}.csv"
    atomic_write_text(path, "".join(parts))
    say(f"{target.name}: {count} rows -> {path}")


def _export_tensorboard(run_dir: Path, parent: Path, say: Callable[[str], None]) -> None:
    from .to_tensorboard import TensorBoardSink

    info, records = read_run(run_dir)
    parent.mkdir(parents=True, exist_ok=True)
    final = parent / info.run_id
    tmp = parent / f".{info.run_id}.gdw-export-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        sink = TensorBoardSink(tmp)
        sink.start(info)
        sink.write(records)
        sink.finish(info)
        sink.close()
        swap_in(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"{info.run_id}: {sum(1 for _ in records)} records -> {final}")


def swap_in(new: Path, final: Path) -> None:
    """Replace `final` with the complete directory `new` (a previous export goes only once the new one is whole)."""
    old = final.with_name(f".{final.name}.gdw-old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    os.replace(new, final)
    shutil.rmtree(old, ignore_errors=True)
