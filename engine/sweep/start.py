"""Checking and starting a sweep: what `gdw sweep` and the UI's sweep form share.

Torch-free. `check_sweep` is every check `gdw sweep` makes before it creates anything (the runs'
configs, the datasets' files, the executor's pre-flight, the device and the local slots), so the form refuses exactly
what the command line refuses, with the same one-line ConfigErrors. `start_sweep` creates the
sweep and starts its scheduler detached, as `gdw sweep ... --detach` does.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import ConfigError
from ..launch import check_data_present, check_device_available
from .executor import make_executor, preflight
from .spec import RunPlan, SweepSpec, expand

if TYPE_CHECKING:
    import subprocess

    from .local import Slot
    from .store import Sweep


@dataclass
class CheckedSweep:
    spec: SweepSpec
    plans: list[RunPlan]
    slots: list["Slot"] = field(default_factory=list)  # the local pool (empty for slurm)
    presets_dir: str | None = None  # where the presets were read: the runs' stored changes are against them


class DataMissing(ConfigError):
    """A dataset's files are not where the runs would read them (the form shows it by its data fields)."""


def check_sweep(spec: SweepSpec, presets_dir: str | os.PathLike[str] | None = None) -> CheckedSweep:
    """The runs of the sweep, checked; ConfigError (one line) on the first problem, nothing created."""
    plans = expand(spec, presets_dir)
    # The dataset files, as `gdw run` checks them, once per dataset and place (not once per run).
    for data in {json.dumps(p.config["data"], sort_keys=True): p.config for p in plans}.values():
        try:
            check_data_present(data)
        except ConfigError as e:
            raise DataMissing(str(e)) from None
    preflight(spec.executor, spec.options)
    slots: list[Any] = []
    if spec.executor == "local":
        from .local import plan_slots

        for device in dict.fromkeys(p.config["train"]["device"] for p in plans):
            check_device_available(device)
            slots = plan_slots(spec.options, device)
    checked_logs: set[tuple[str, str]] = set()
    for plan in plans:  # live logging: its extra installed, its MLflow server answering (once per destination)
        log = (plan.config["train"]["log"], plan.config["train"]["log_to"])
        if log[0] != "none" and log not in checked_logs:
            from ..export.live import check_live_log

            check_live_log(plan.config)
            checked_logs.add(log)
    return CheckedSweep(spec, plans, slots, None if presets_dir is None else str(presets_dir))


def start_sweep(runs_dir: Path, checked: CheckedSweep) -> tuple["Sweep", "subprocess.Popen | None"]:
    """Create the sweep and its runs, then start its scheduler detached (`gdw sweep ... --detach`).
    Returns the sweep and the local scheduler's process (None for Slurm), for the caller to reap.

    ConfigError when the sweep cannot be created (nothing is left behind) or the executor refuses
    to take the runs (the sweep is kept; `gdw resume SWEEP` tries again).
    """
    from .store import create_sweep

    sweep = create_sweep(runs_dir, checked.spec, checked.plans, checked.presets_dir)
    executor = make_executor(sweep.executor, {**sweep.options, "detach": True})
    try:
        executor.submit(sweep, sweep.run_dirs())
    except ConfigError as e:  # e.g. the cluster rejected the jobs: the runs wait, as with `gdw sweep`
        raise ConfigError(f"{e} (the sweep's runs are kept; `gdw resume {sweep.id}` tries again)") from None
    return sweep, getattr(executor, "scheduler_proc", None)
