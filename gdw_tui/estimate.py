"""Run-time estimates from the runs already finished in the runs directory (no benchmark needed).

A finished run only says something about a new one that does the same work per epoch: the same
method, model, data (dataset and everything that changes its size), batch sizes and kind of
device. The label noise, seeds and learning rates change the numbers, not the time, so they are
left out of the comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config import ConfigError, resolved_arch
from engine.launch import cuda_device_count
from engine.runs import load_run_config

NO_ESTIMATE = "no estimate (no finished run with this method, model, data, batch and device)"


@dataclass(frozen=True)
class FinishedRun:
    key: tuple  # work_key of its resolved config and the device it ran on
    seconds_per_epoch: float


@dataclass
class Estimate:
    seconds: float
    runs: int  # finished runs it is based on
    device: str


def device_kind(device: str | None) -> str:
    """cpu or cuda: what a run used (its summary's device) or asks for (train.device)."""
    spec = (device or "").strip().lower()
    if spec == "auto":
        return "cuda" if cuda_device_count() > 0 else "cpu"  # what the engine will pick here
    return "cuda" if spec.startswith("cuda") else spec or "?"


def work_key(cfg: dict[str, Any], device: str) -> tuple:
    """What sets the time of an epoch: method, model, the amount of data, batch sizes, device."""
    d, t = cfg["data"], cfg["train"]
    data = (d["dataset"], d["meta_per_class"], d["imbalance"])
    if d["dataset"] == "synthetic":
        data += (d["synthetic_train"], d["synthetic_test"], d["synthetic_classes"])
    if d["dataset"] == "imagefolder":
        data += (str(Path(d["data_dir"]).expanduser().resolve()), d["image_size"])
    batches = (t["batch_size"], t["meta_batch_size"] or t["batch_size"])
    return (t["method"], resolved_arch(cfg), data, batches, device_kind(device))


def finished_runs(runs: list[dict[str, Any]]) -> list[FinishedRun]:
    """The finished runs (from engine.runs.list_runs) with the work key of their stored config."""
    out = []
    for r in runs:
        if r.get("status") != "finished" or not (r.get("wall_s") or 0) > 0 or not (r.get("epochs") or 0) > 0:
            continue
        try:
            cfg = load_run_config(Path(r["path"]))
        except (ConfigError, KeyError):
            continue  # an unreadable config says nothing about the work
        out.append(FinishedRun(work_key(cfg, r.get("device") or cfg["train"]["device"]), r["wall_s"] / r["epochs"]))
    return out


def estimate_run_time(finished: list[FinishedRun], cfg: dict[str, Any]) -> Estimate | None:
    """Mean seconds per epoch of the finished runs doing the same work as cfg, × cfg's epochs."""
    key = work_key(cfg, cfg["train"]["device"])
    same = [f.seconds_per_epoch for f in finished if f.key == key]
    if not same:
        return None
    return Estimate(sum(same) / len(same) * cfg["train"]["epochs"], len(same), key[-1])
