"""Records to Weights & Biases: offline by default (files under --out, uploaded later with `wandb sync`
from a machine with internet), online only when asked.

A run's W&B id is derived from its run id, so a later `wandb sync` of a re-export updates the same
W&B run; a sweep's runs share a W&B `group` (the sweep id). Scalars are plotted against their own
step metric (`iteration` for `iter/…` and `weights/…`, `epoch` for `epoch/…` and `images/…`).
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path
from typing import Any, Callable

from .records import Histogram, Image, Record, RunInfo, Scalar, read_run


def wandb_id(run_id: str) -> str:
    """A valid, stable W&B run id for a gdw run id."""
    if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", run_id):
        return run_id
    return hashlib.sha1(run_id.encode()).hexdigest()[:16]


def offline_dirs(out: Path, run_id: str) -> list[Path]:
    """The offline run directories W&B wrote under `out` for this run (one per export or live segment)."""
    root = out / "wandb"
    ident = wandb_id(run_id)
    return sorted(root.glob(f"offline-run-*-{ident}")) + sorted(root.glob(f"run-*-{ident}"))


class WandbSink:
    def __init__(self, out: Path, project: str, group: str | None, online: bool = False, resume: bool = False):
        self.out, self.project, self.group, self.online, self.resume = Path(out), project, group, online, resume
        self.run: Any = None

    def start(self, info: RunInfo) -> None:
        import wandb

        self.out.mkdir(parents=True, exist_ok=True)
        config = {k: info.config[k] for k in ("data", "model", "train")}
        config["gdw"] = info.tags()
        self.run = wandb.init(
            mode="online" if self.online else "offline", dir=str(self.out), project=self.project, group=self.group,
            name=info.run_id, id=wandb_id(info.run_id), job_type="train", config=config,
            tags=[info.preset, info.method, f"seed={info.seed}"] + ([info.sweep] if info.sweep else []),
            resume="allow" if self.resume else None,
            settings=wandb.Settings(silent=True, console="off", x_disable_stats=True, save_code=False,
                                    disable_git=True, x_disable_machine_info=True),
        )
        for axis, pattern in (("iteration", "iter/*"), ("iteration", "weights/*"), ("epoch", "epoch/*"), ("epoch", "images/*")):
            self.run.define_metric(axis)
            self.run.define_metric(pattern, step_metric=axis)

    def write(self, records: list[Record]) -> int:
        """One W&B history row per iteration or epoch the records belong to, in their order."""
        import wandb

        row: dict[str, Any] = {}
        key: tuple | None = None
        for r in records:
            by_epoch = isinstance(r, Image) or (isinstance(r, Scalar) and r.by_epoch)
            k = (by_epoch, r.step)
            if k != key and row:
                self.run.log(row)
                row = {}
            key = k
            row["epoch"] = r.epoch
            if not by_epoch:
                row["iteration"] = r.step
            if isinstance(r, Scalar):
                row[r.tag] = r.value
            elif isinstance(r, Histogram):
                row[r.tag] = wandb.Histogram(np_histogram=(r.counts, r.edges))
            elif isinstance(r, Image):
                row[f"images/{r.tag}"] = wandb.Image(r.rgb(), caption=r.caption())
        if row:
            self.run.log(row)
        return len(records)

    def finish(self, info: RunInfo) -> None:
        self.run.summary.update({f"summary/{k}": v for k, v in info.figures().items()})
        for path in info.artifacts():  # copied (a link would follow the run's later changes)
            copy = Path(self.run.dir) / path.name
            shutil.copyfile(path, copy)
            self.run.save(str(copy), base_path=self.run.dir, policy="now")
        self.run.finish(exit_code=0 if info.status in ("finished", "running", "created") else 1)
        self.run = None

    def flush(self) -> None:
        pass  # W&B's own service writes as it goes

    def close(self) -> None:
        if self.run is not None:
            self.run.finish()


def export_run(run_dir: Path, out: Path, project: str, group: str | None, online: bool, say: Callable[[str], None]) -> None:
    """One run to a fresh W&B run; offline, the previous export's files of this run go once the new ones are complete."""
    info, records = read_run(run_dir)
    before = set(offline_dirs(out, info.run_id))
    sink = WandbSink(out, project, group, online)
    try:
        sink.start(info)
        sink.write(records)
        sink.finish(info)
    except BaseException:
        for d in set(offline_dirs(out, info.run_id)) - before:
            shutil.rmtree(d, ignore_errors=True)  # nothing half-written
        raise
    for d in before:
        shutil.rmtree(d, ignore_errors=True)
    where = "W&B (online)" if online else next(iter(set(offline_dirs(out, info.run_id)) - before), out)
    say(f"{info.run_id}: {len(records)} records -> {where}")
