"""Everything the dashboard shows about one run, folded from its events with bounded memory.

The model is plain Python (no Textual), so it is unit-tested directly and shared by the
dashboard and the compare screen. `apply()` records which facets changed in `dirty`, so the
screen repaints only the panes whose data moved.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .formatting import plural
from .series import BoundedSeries

MAX_SNAPSHOTS = 240  # ω snapshots kept for scrubbing (100 classes: ~80 kB each)
MAX_LOG_LINES = 2000
CURVE_POINTS = 1024  # per curve: twice the braille resolution of a 250-column chart

# Facets a pane can depend on.
INFO, PROGRESS, LOSS, ACCURACY, WEIGHTS, CLASSES, LOG = "info", "progress", "loss", "accuracy", "weights", "classes", "log"


def flat_matrix(rows: Any, size: int) -> array | None:
    """A C×C list of lists (None entries allowed) as a flat float32 array, NaN for missing."""
    if not rows:
        return None
    nan = math.nan
    out = array("f", [nan]) * (size * size)
    for a, row in enumerate(rows[:size]):
        if not row:
            continue
        base = a * size
        for j, value in enumerate(row[:size]):
            if value is not None:
                out[base + j] = value
    return out


@dataclass
class Snapshot:
    """One `weights` event, compacted."""

    epoch: int
    iter: int
    global_iter: int
    epoch_end: bool
    omega: array | None
    increase_ratio: array | None
    target_weight: dict[str, Any] | None
    vnet: dict[str, Any] | None


@dataclass
class LogLine:
    t: float
    level: str
    message: str


@dataclass
class RunModel:
    """The state of a run as read so far from its events."""

    run_id: str = ""
    preset: str = ""
    title: str = ""
    method: str = ""
    dataset: str = ""
    seed: int | None = None
    device: str = ""
    device_name: str = ""
    classes: list[str] = field(default_factory=list)
    epochs: int = 0
    iters_per_epoch: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    noise: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    started: bool = False  # a run_start was read

    # progress
    epoch: int = 0  # 0-based epoch in progress (or last finished)
    iter: int = -1
    global_iter: int = -1
    it_s: float | None = None
    lr: float | None = None
    epochs_done: int = 0
    best_acc: float | None = None
    final_acc: float | None = None
    epoch_seconds: list[float] = field(default_factory=list)
    segments: list[list[float]] = field(default_factory=list)  # [start t, last t] per engine segment
    last_t: float | None = None
    wall_s: float | None = None
    ended: str = ""  # finished | failed | stopped, from the events
    failure: dict[str, Any] | None = None
    stop: dict[str, Any] | None = None

    # curves
    loss: BoundedSeries = field(default_factory=lambda: BoundedSeries(CURVE_POINTS))
    meta_loss: BoundedSeries = field(default_factory=lambda: BoundedSeries(CURVE_POINTS))
    test_acc: BoundedSeries = field(default_factory=lambda: BoundedSeries(CURVE_POINTS))
    train_acc: BoundedSeries = field(default_factory=lambda: BoundedSeries(CURVE_POINTS))
    meta_acc: BoundedSeries = field(default_factory=lambda: BoundedSeries(CURVE_POINTS))
    clean_weight: BoundedSeries = field(default_factory=lambda: BoundedSeries(CURVE_POINTS))
    corrupted_weight: BoundedSeries = field(default_factory=lambda: BoundedSeries(CURVE_POINTS))
    per_class_acc: list[float] = field(default_factory=list)
    # What a method adds to its epoch events (events schema 1.2): Co-teaching's second network, the
    # label precision of each network's selection and the forget rate (percent); GLC's estimate Ĉ.
    net2_acc: BoundedSeries = field(default_factory=lambda: BoundedSeries(CURVE_POINTS))
    precision1: BoundedSeries = field(default_factory=lambda: BoundedSeries(CURVE_POINTS))
    precision2: BoundedSeries = field(default_factory=lambda: BoundedSeries(CURVE_POINTS))
    forget_rate: BoundedSeries = field(default_factory=lambda: BoundedSeries(CURVE_POINTS))
    c_hat: list[list[float]] | None = None

    snapshots: list[Snapshot] = field(default_factory=list)
    first_vnet: dict[str, Any] | None = None  # V(ℓ) of the first snapshot, kept whatever thinning drops
    first_vnet_at: tuple[int, int] = (0, 0)  # its (epoch, global_iter)
    log: deque[LogLine] = field(default_factory=lambda: deque(maxlen=MAX_LOG_LINES))
    log_total: int = 0  # log lines ever appended (the deque keeps the newest)
    events_read: int = 0
    dirty: set[str] = field(default_factory=set)

    def glc_phase1_epochs(self) -> int:
        """GLC's phase-1 epochs: train.glc_phase1_epochs, 0 meaning half the run's (docs/algorithm.md §9)."""
        train = self.config.get("train") or {}
        return int(train.get("glc_phase1_epochs") or 0) or self.epochs // 2

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    # --- the stored config (before any event) -------------------------------------------------

    def apply_config(self, cfg: dict[str, Any]) -> None:
        """What config.toml says, for a run that has no run_start yet (or never will: it failed at setup)."""
        data, train = cfg.get("data") or {}, cfg.get("train") or {}
        self.preset = self.preset or str(cfg.get("preset") or "")
        self.title = self.title or str(cfg.get("title") or "")
        self.method = self.method or str(train.get("method") or "")
        self.dataset = self.dataset or str(data.get("dataset") or "")
        if self.seed is None and isinstance(train.get("seed"), int):
            self.seed = train["seed"]
        self.epochs = self.epochs or int(train.get("epochs") or 0)
        self.dirty.add(INFO)

    # --- folding events ----------------------------------------------------------------------

    def apply_all(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.apply(event)

    def apply(self, event: dict[str, Any]) -> None:
        handler = getattr(self, "_on_" + str(event.get("type")), None)
        self.events_read += 1
        t = event.get("t")
        if isinstance(t, (int, float)):
            self.last_t = t
            if self.segments:
                self.segments[-1][1] = t
        if handler is not None:  # readers ignore types they do not know (schema rule)
            handler(event)

    def _on_run_start(self, e: dict[str, Any]) -> None:
        self.started = True
        self.run_id = e.get("run_id", self.run_id)
        self.preset = e.get("preset", self.preset)
        self.title = e.get("title", self.title)
        self.method = e.get("method", self.method)
        self.seed = e.get("seed", self.seed)
        self.device = e.get("device", self.device)
        self.device_name = e.get("device_name", self.device_name)
        self.classes = [str(c) for c in e.get("classes") or []] or self.classes
        if not self.classes and e.get("num_classes"):
            self.classes = [str(i) for i in range(int(e["num_classes"]))]
        self.epochs = int(e.get("epochs") or self.epochs)
        self.iters_per_epoch = int(e.get("iters_per_epoch") or self.iters_per_epoch)
        self.config = e.get("config") or self.config
        self.dataset = str((self.config.get("data") or {}).get("dataset") or self.dataset)
        self.noise = e.get("noise") or self.noise
        self.counts = e.get("counts") or self.counts
        t = float(e.get("t") or 0.0)
        self.segments.append([t, t])
        self.ended, self.failure, self.stop = "", None, None
        self.epoch = int(e.get("start_epoch") or 0)
        self._log(e, "info", f"{'resumed' if e.get('resumed') else 'started'} on {self.device or '?'}"
                  + (f" ({self.device_name})" if self.device_name else ""))
        self.dirty |= {INFO, PROGRESS, LOG}

    def _on_resume(self, e: dict[str, Any]) -> None:
        # Work after the checkpoint is redone: drop the points it had produced.
        done = int(e.get("from_epoch") or 0)
        done_iters = done * self.iters_per_epoch + int(e.get("from_iter") or 0)
        if self.iters_per_epoch:
            for s in (self.loss, self.meta_loss, self.clean_weight, self.corrupted_weight):
                _truncate(s, done_iters)
            self.snapshots = [s for s in self.snapshots if s.global_iter < done_iters]
        else:
            self.snapshots = [s for s in self.snapshots if s.epoch < done]
        first_epoch, first_iter = self.first_vnet_at
        if (first_iter >= done_iters) if self.iters_per_epoch else (first_epoch >= done):
            self.first_vnet = None  # that work is redone: the first curve comes again
        for s in (self.test_acc, self.train_acc, self.meta_acc, self.net2_acc, self.precision1, self.precision2,
                  self.forget_rate):
            _truncate(s, done + 1)  # epoch points sit at x = epoch + 1
        self.epoch_seconds = self.epoch_seconds[:done]
        self.epochs_done = min(self.epochs_done, done)
        where = plural(done, "epoch") + (f" and {plural(int(e['from_iter']), 'iteration')}" if e.get("from_iter") else "")
        self._log(e, "info", f"resuming from {e.get('checkpoint', 'checkpoint')} after {where}")
        self.dirty |= {PROGRESS, LOSS, ACCURACY, WEIGHTS, LOG}

    def _on_step(self, e: dict[str, Any]) -> None:
        self.epoch = int(e.get("epoch", self.epoch))
        self.iter = int(e.get("iter", self.iter))
        gi = e.get("global_iter")
        self.global_iter = int(gi) if gi is not None else self.epoch * self.iters_per_epoch + self.iter
        x = float(self.global_iter)
        if _is_number(e.get("loss")):
            self.loss.append(x, e["loss"], e.get("t"))
        if _is_number(e.get("meta_loss")):
            self.meta_loss.append(x, e["meta_loss"], e.get("t"))
        if _is_number(e.get("it_s")):
            self.it_s = float(e["it_s"])
        if _is_number(e.get("lr")):
            self.lr = float(e["lr"])
        self.dirty |= {PROGRESS, LOSS}

    def _on_weights(self, e: dict[str, Any]) -> None:
        c = self.num_classes or len(e.get("omega") or [])
        if not self.classes and c:
            self.classes = [str(i) for i in range(c)]
        tw = e.get("target_weight") or None
        gi = e.get("global_iter")
        gi = int(gi) if gi is not None else int(e.get("epoch", 0)) * self.iters_per_epoch + int(e.get("iter", 0))
        if tw:
            if _is_number(tw.get("clean_mean")):
                self.clean_weight.append(gi, tw["clean_mean"], e.get("t"))
            if _is_number(tw.get("corrupted_mean")):
                self.corrupted_weight.append(gi, tw["corrupted_mean"], e.get("t"))
        self.snapshots.append(
            Snapshot(
                epoch=int(e.get("epoch", 0)),
                iter=int(e.get("iter", 0)),
                global_iter=gi,
                epoch_end=bool(e.get("epoch_end")),
                omega=flat_matrix(e.get("omega"), c),
                increase_ratio=flat_matrix(e.get("increase_ratio"), c),
                target_weight=tw,
                vnet=e.get("vnet") or None,
            )
        )
        if self.first_vnet is None and self.snapshots[-1].vnet:
            self.first_vnet, self.first_vnet_at = self.snapshots[-1].vnet, (self.snapshots[-1].epoch, gi)
        if len(self.snapshots) > MAX_SNAPSHOTS:
            self.snapshots = thin_snapshots(self.snapshots)
        self.dirty |= {WEIGHTS}

    def _on_epoch(self, e: dict[str, Any]) -> None:
        ep = int(e.get("epoch", self.epoch))
        x = ep + 1.0  # charts count epochs from 1
        for series, key in ((self.test_acc, "test_acc"), (self.train_acc, "train_acc"), (self.meta_acc, "meta_acc")):
            if _is_number(e.get(key)):
                series.append(x, e[key], e.get("t"))
        if e.get("per_class_acc"):
            self.per_class_acc = [float(v) if _is_number(v) else math.nan for v in e["per_class_acc"]]
        accs, precision = e.get("net_accs"), e.get("label_precision")
        if isinstance(accs, list) and len(accs) > 1 and _is_number(accs[1]):
            self.net2_acc.append(x, accs[1], e.get("t"))
        if isinstance(precision, list):
            for series, value in zip((self.precision1, self.precision2), precision):
                if _is_number(value):
                    series.append(x, 100 * value, e.get("t"))
        if _is_number(e.get("forget_rate")):
            self.forget_rate.append(x, 100 * e["forget_rate"], e.get("t"))
        if isinstance(e.get("c_hat"), list):
            self.c_hat = e["c_hat"]
            self.dirty |= {WEIGHTS}
        if _is_number(e.get("best_acc")):
            self.best_acc = float(e["best_acc"])
        if _is_number(e.get("epoch_s")):
            self.epoch_seconds.append(float(e["epoch_s"]))
        self.epochs_done = max(self.epochs_done, ep + 1)
        self.epoch = ep
        self.dirty |= {PROGRESS, ACCURACY, CLASSES}

    def _on_checkpoint(self, e: dict[str, Any]) -> None:
        pass  # one per epoch: too frequent for the log pane, and the header already shows epochs

    def _on_log(self, e: dict[str, Any]) -> None:
        self._log(e, str(e.get("level", "info")), str(e.get("message", "")))

    def _on_stopped(self, e: dict[str, Any]) -> None:
        self.ended, self.stop = "stopped", e
        where = f"epoch {_one_based(e.get('epoch'))} iter {e.get('iter', '?')}"
        self._log(e, "warning", f"stopped at {where} ({e.get('reason', 'on request')})")
        self.dirty |= {PROGRESS, LOG}

    def _on_run_end(self, e: dict[str, Any]) -> None:
        self.ended = "finished"
        if _is_number(e.get("final_acc")):
            self.final_acc = float(e["final_acc"])
        if _is_number(e.get("best_acc")):
            self.best_acc = float(e["best_acc"])
        if _is_number(e.get("wall_s")):
            self.wall_s = float(e["wall_s"])
        final = f"{self.final_acc:.2f}" if self.final_acc is not None else "–"
        best = f"{self.best_acc:.2f}" if self.best_acc is not None else "–"
        self._log(e, "info", f"finished: final accuracy {final}%, best {best}% (epoch {_one_based(e.get('best_epoch'))})")
        self.dirty |= {PROGRESS, LOG}

    def _on_failure(self, e: dict[str, Any]) -> None:
        self.ended, self.failure = "failed", e
        kind, message = e.get("kind", "error"), e.get("message", "")
        where = ""
        if e.get("epoch") is not None:  # the event's are 0-based; people read 1-based
            where = f" at epoch {_one_based(e.get('epoch'))}" + (f", iteration {_one_based(e['iter'])}" if e.get("iter") is not None else "")
        # "diverged at epoch 1, iteration 4: …" says where already: not twice.
        self._log(e, "error", message if message.startswith(kind + " at ") else f"{kind}{where}: {message}")
        self.dirty |= {PROGRESS, LOG}

    def _log(self, e: dict[str, Any], level: str, message: str) -> None:
        self.log.append(LogLine(float(e.get("t") or 0.0), level, message))
        self.log_total += 1
        self.dirty.add(LOG)

    # --- derived values ----------------------------------------------------------------------

    def elapsed(self, now: float | None = None) -> float:
        """Wall seconds the engine has worked; `now` extends the current segment of a live run."""
        if self.wall_s is not None:
            return self.wall_s
        total = sum(last - start for start, last in self.segments)
        if now is not None and self.segments:
            total += max(0.0, now - self.segments[-1][1])
        return total

    def progress_fraction(self) -> float:
        total = self.epochs * self.iters_per_epoch
        if not total:
            return self.epochs_done / self.epochs if self.epochs else 0.0
        done = max(self.global_iter + 1, self.epochs_done * self.iters_per_epoch)
        return min(1.0, done / total)

    def eta(self) -> float | None:
        """Seconds left: the mean epoch time (training + test) when known, else from it/s."""
        if self.ended or not self.epochs:
            return None
        left = 1.0 - self.progress_fraction()
        if self.epoch_seconds:
            return left * self.epochs * (sum(self.epoch_seconds) / len(self.epoch_seconds))
        if self.it_s and self.iters_per_epoch:
            return left * self.epochs * self.iters_per_epoch / self.it_s
        return None

    def snapshot_at(self, index: int | None) -> Snapshot | None:
        """Snapshot `index` (None: the newest)."""
        if not self.snapshots:
            return None
        if index is None:
            return self.snapshots[-1]
        return self.snapshots[max(0, min(index, len(self.snapshots) - 1))]

    def ratio_at(self, index: int | None) -> Snapshot | None:
        """The newest snapshot with an increase-ratio matrix at or before `index`."""
        end = len(self.snapshots) if index is None else min(index + 1, len(self.snapshots))
        for snap in reversed(self.snapshots[:end]):
            if snap.increase_ratio is not None:
                return snap
        return None

    def take_dirty(self, only: frozenset[str] | None = None, exclude: frozenset[str] | None = None) -> set[str]:
        """The changed facets (those in `only`, or all but `exclude`), now marked clean."""
        taken = set(self.dirty)
        if only is not None:
            taken &= only
        if exclude is not None:
            taken -= exclude
        self.dirty -= taken
        return taken


def thin_snapshots(snapshots: list[Snapshot]) -> list[Snapshot]:
    """Drop every second mid-epoch snapshot (epoch ends are kept while possible); the first and
    the newest are always kept (the first is the baseline a user compares against)."""
    mid = [i for i, s in enumerate(snapshots[1:-1], start=1) if not s.epoch_end]
    drop = set(mid[::2]) if mid else set(range(1, len(snapshots) - 1, 2))
    return [s for i, s in enumerate(snapshots) if i not in drop]


def _truncate(series: BoundedSeries, x_limit: float) -> None:
    keep = [(x, y, t) for (x, y), t in zip(series.points(), series.times()) if x < x_limit]
    series.clear()
    for x, y, t in keep:
        series.append(x, y, t)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _one_based(epoch: Any) -> str:
    return str(int(epoch) + 1) if isinstance(epoch, int) else "?"
