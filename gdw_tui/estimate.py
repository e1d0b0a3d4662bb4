"""Run-time estimates from the runs already finished in the runs directory (no benchmark needed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Estimate:
    seconds: float
    runs: int  # finished runs it is based on
    device: str
    same_method: bool


def estimate_run_time(runs: list[dict[str, Any]], preset: str, method: str, epochs: int) -> Estimate | None:
    """Mean seconds per epoch of finished runs of this preset (this method if any) × epochs."""
    finished = [
        r for r in runs
        if r.get("status") == "finished" and r.get("preset") == preset
        and (r.get("wall_s") or 0) > 0 and (r.get("epochs") or 0) > 0
    ]
    same = [r for r in finished if r.get("method") == method]
    basis = same or finished
    if not basis:
        return None
    per_epoch = sum(r["wall_s"] / r["epochs"] for r in basis) / len(basis)
    devices = sorted({str(r.get("device") or "?") for r in basis})
    return Estimate(per_epoch * epochs, len(basis), ", ".join(devices), bool(same))
