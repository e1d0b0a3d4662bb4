"""A run's events as backend-neutral records, and what is known about the run (config, tags, summary).

One conversion for every backend, so TensorBoard, MLflow, W&B and the CSV receive the same numbers:
- scalars keyed by iteration (`iter/…`, from step and weights events: the events' `global_iter`)
  or by epoch (`epoch/…`, from epoch events: the events' 0-based `epoch`);
- histograms of the target-class weight, clean and corrupted (`weights/target_*`, by iteration);
- images: the ω heatmap and, for GDW, the increase-ratio matrix of Table 6, at each epoch's end.
Every file of a run directory is untrusted input: values of the wrong type are left out, never
guessed, and one run's bad file never stops another's export.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, NamedTuple

from ..config import ConfigError
from ..rundir import CONFIG, EVENTS, SUMMARY
from ..runs import load_run_config, read_summary

# event field -> scalar tag
STEP_SCALARS = {k: f"iter/{k}" for k in ("loss", "meta_loss", "train_acc", "meta_acc", "lr", "it_s", "samples_s")}
EPOCH_SCALARS = {k: f"epoch/{k}" for k in ("test_loss", "test_acc", "train_loss", "train_acc", "meta_loss", "meta_acc",
                                           "lr", "best_acc", "epoch_s", "train_s")}
TARGET_WEIGHT_SCALARS = {"clean_mean": "iter/target_weight_clean", "corrupted_mean": "iter/target_weight_corrupted"}
SUMMARY_FIGURES = ("final_acc", "best_acc", "best_epoch", "wall_s")
OMEGA, TABLE6 = "omega", "table6_increase_ratio"
# Colour scales: Table 6's fractions on 0..1 at every epoch; ω on each image's own min..max (its
# values depend on the method and the epoch: instance weights of L2RW are ~0.01, GDW's ω ~0.1-1).
IMAGE_RANGES: dict[str, tuple[float, float] | None] = {OMEGA: None, TABLE6: (0.0, 1.0)}


class Scalar(NamedTuple):  # NamedTuples: a CIFAR-100 run has a quarter of a million of these
    tag: str
    value: float
    epoch: int
    iteration: int | None  # global iteration; None for an epoch scalar of a run that never said its iterations per epoch
    wall: float
    by_epoch: bool  # keyed by epoch (else by iteration)

    @property
    def step(self) -> int:
        return self.epoch if self.by_epoch or self.iteration is None else self.iteration


class Histogram(NamedTuple):
    tag: str
    edges: list[float]
    counts: list[float]
    epoch: int
    step: int  # global iteration
    wall: float


class Image(NamedTuple):
    tag: str
    matrix: Any  # C×C float numpy array, NaN where a label was not seen
    epoch: int
    step: int  # the epoch (images are written at epoch ends)
    wall: float

    def png(self) -> bytes:
        from .png import encode_png

        return encode_png(self.rgb())

    def scale(self) -> tuple[float, float]:
        """The colour scale's ends: the kind's fixed range, or this matrix's own min..max."""
        import numpy as np

        fixed = IMAGE_RANGES[self.tag]
        if fixed is not None:
            return fixed
        finite = self.matrix[np.isfinite(self.matrix)]
        if finite.size == 0:
            return (0.0, 1.0)
        lo, hi = float(finite.min()), float(finite.max())
        return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)

    def caption(self) -> str:
        lo, hi = self.scale()
        return f"{self.tag}, epoch {self.epoch}, colour scale {lo:.4g} (dark) to {hi:.4g} (yellow); grey: not seen"

    def rgb(self) -> Any:
        """H×W×3 uint8 pixels (numpy) of the heatmap."""
        from .png import heatmap_rgb

        return heatmap_rgb(self.matrix, *self.scale())


Record = Scalar | Histogram | Image


@dataclass
class RunInfo:
    """What a backend needs to name, tag and group a run; read from config.toml, summary.json and run_start."""

    run_dir: Path
    run_id: str
    config: dict[str, Any]  # resolved config: {title, description, preset, data: {...}, model: {...}, train: {...}}
    summary: dict[str, Any]
    classes: list[str] = field(default_factory=list)

    @property
    def preset(self) -> str:
        return str(self.config.get("preset", ""))

    @property
    def method(self) -> str:
        return str(self.config["train"]["method"])

    @property
    def seed(self) -> int:
        return int(self.config["train"]["seed"])

    @property
    def sweep(self) -> str | None:
        value = self.summary.get("sweep")
        return value if isinstance(value, str) and value else None

    @property
    def status(self) -> str:
        from ..runs import run_status

        return run_status(self.run_dir, self.summary)

    def tags(self) -> dict[str, str]:
        tags = {"preset": self.preset, "method": self.method, "seed": str(self.seed), "run_id": self.run_id,
                "dataset": str(self.config["data"]["dataset"])}
        if self.sweep:
            tags["sweep"] = self.sweep
            setting = self.summary.get("setting")
            if isinstance(setting, str):
                tags["setting"] = setting
        return tags

    def hparams(self) -> dict[str, bool | int | float | str]:
        """The resolved config, flattened to `section.key` (what `--set` takes)."""
        return {f"{section}.{key}": value for section in ("data", "model", "train")
                for key, value in self.config[section].items()}

    def figures(self) -> dict[str, float]:
        """The summary's headline numbers that are numbers (a wrong type is left out, not guessed)."""
        out = {}
        for key in SUMMARY_FIGURES:
            value = self.summary.get(key)
            if _number(value):
                out[key] = float(value)
        return out

    def epochs_done(self) -> int:
        value = self.summary.get("epoch")
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0

    def artifacts(self) -> list[Path]:
        return [p for p in (self.run_dir / CONFIG, self.run_dir / SUMMARY) if p.is_file()]


def run_info(run_dir: Path, events: Iterable[dict[str, Any]] = ()) -> RunInfo:
    """ConfigError (one line) when the run's config is unusable."""
    cfg = load_run_config(run_dir)
    classes: list[str] = []
    for event in events:
        if event.get("type") == "run_start":
            names = event.get("classes")
            if isinstance(names, list):
                classes = [str(c) for c in names]
            break
    return RunInfo(run_dir, run_dir.name, cfg, read_summary(run_dir), classes)


def _number(value: Any) -> bool:
    return (type(value) is float and math.isfinite(value)) or type(value) is int  # bool is not a number here


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _matrix(value: Any) -> Any:
    """A square matrix of numbers (None where a label was not seen) as a float array with NaN for None,
    or None when it is anything else."""
    import numpy as np

    if not isinstance(value, list) or not value or not all(type(r) is list and len(r) == len(value) for r in value):
        return None
    if not all(set(map(type, r)) <= _CELL_TYPES for r in value):  # the types, at C speed
        return None
    array = np.array(value, dtype=float)  # None becomes NaN
    missing = sum(r.count(None) for r in value)
    if not np.isfinite(array).sum() == array.size - missing:  # a NaN or an infinity that was in the file
        return None
    return array


_CELL_TYPES = {int, float, type(None)}


class RecordStream:
    """Events in, records out, one event at a time: the same conversion for a finished run and a live one."""

    def __init__(self) -> None:
        self.iters_per_epoch: int | None = None

    def feed(self, event: dict[str, Any]) -> list[Record]:
        kind, wall = event.get("type"), event.get("t")
        wall = float(wall) if _number(wall) else 0.0
        if kind == "run_start":
            self.iters_per_epoch = _int(event.get("iters_per_epoch"))
            return []
        epoch = _int(event.get("epoch"))
        if epoch is None:
            return []
        if kind == "step":
            it = _int(event.get("global_iter"))
            if it is None:
                return []
            return [Scalar(tag, float(event[k]), epoch, it, wall, False)
                    for k, tag in STEP_SCALARS.items() if _number(event.get(k))]
        if kind == "epoch":
            last_iter = None if self.iters_per_epoch is None else (epoch + 1) * self.iters_per_epoch - 1
            return [Scalar(tag, float(event[k]), epoch, last_iter, wall, True)
                    for k, tag in EPOCH_SCALARS.items() if _number(event.get(k))]
        if kind == "weights":
            return self._weights(event, epoch, wall)
        return []

    def _weights(self, event: dict[str, Any], epoch: int, wall: float) -> list[Record]:
        it = _int(event.get("global_iter"))
        if it is None:
            return []
        out: list[Record] = []
        target = event.get("target_weight")
        if isinstance(target, dict):
            out += [Scalar(tag, float(target[k]), epoch, it, wall, False)
                    for k, tag in TARGET_WEIGHT_SCALARS.items() if _number(target.get(k))]
            edges = target.get("bins")
            for side in ("clean", "corrupted"):
                counts = target.get(f"{side}_hist")
                if (isinstance(edges, list) and isinstance(counts, list) and len(edges) == len(counts) + 1
                        and all(_number(x) for x in edges + counts) and sum(counts) > 0):
                    out.append(Histogram(f"weights/target_{side}", [float(x) for x in edges],
                                         [float(x) for x in counts], epoch, it, wall))
        if event.get("epoch_end") is True:
            for tag, key in ((OMEGA, "omega"), (TABLE6, "increase_ratio")):
                matrix = _matrix(event.get(key))
                if matrix is not None:
                    out.append(Image(tag, matrix, epoch, epoch, wall))
        return out


def records_of(events: Iterable[dict[str, Any]]) -> list[Record]:
    """Every record of a run, in order; where a resumed run redid iterations, the later value wins
    (one point per tag and step, never two)."""
    stream = RecordStream()
    latest: dict[tuple[type, str, int], Record] = {}
    for event in events:
        for record in stream.feed(event):
            key = (type(record), record.tag, record.step)
            latest.pop(key, None)  # re-inserted: the redone point takes the later place
            latest[key] = record
    return list(latest.values())  # in event order (a redone point moved to where it was redone)


def read_run(run_dir: Path) -> tuple[RunInfo, list[Record]]:
    """A run's information and all its records; ConfigError for a run this version cannot read."""
    import gc

    from ..events import SchemaError, read_events

    # Millions of parsed objects and no cycles among them: the cyclic collector would walk them all
    # again and again while the records are made (a third of a CIFAR-100 run's export time).
    collecting = gc.isenabled()
    gc.disable()
    try:
        events = read_events(run_dir / EVENTS)
        return run_info(run_dir, events), records_of(events)
    except SchemaError as e:
        raise ConfigError(f"run {run_dir.name}: {e}") from None
    finally:
        if collecting:
            gc.enable()

