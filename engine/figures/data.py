"""What the figures draw, read from the runs' own files: per-epoch records, and groups of seeds.

Torch- and matplotlib-free. A run's `events.jsonl` is replayed the way the dashboard replays it:
after a `resume` event, the points the earlier segment wrote past the checkpoint are dropped (that
work was redone), so each epoch counts once. Epochs are 0-based in the events and 1-based on every
axis and in every sidecar CSV (x = epoch + 1, as on the dashboard).

A sweep contributes its finished runs, grouped by setting and method (the mean over seeds with a
sample-std band); a run named on its own is a group of one, whatever its status.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ConfigError
from ..events import SchemaError, check_file_version, read_events
from ..method_table import method_info
from ..runs import EVENTS, find_run, read_summary, run_status


@dataclass
class TargetWeight:
    """Count-weighted sums of one epoch's target-class weights (clean and corrupted samples)."""

    clean_sum: float = 0.0
    clean_n: int = 0
    corrupted_sum: float = 0.0
    corrupted_n: int = 0

    def add(self, tw: dict[str, Any]) -> None:
        for kind in ("clean", "corrupted"):
            mean, n = tw.get(f"{kind}_mean"), tw.get(f"{kind}_count")
            if _finite(mean) and isinstance(n, int) and n > 0:
                setattr(self, f"{kind}_sum", getattr(self, f"{kind}_sum") + mean * n)
                setattr(self, f"{kind}_n", getattr(self, f"{kind}_n") + n)

    def mean(self, kind: str) -> float | None:
        n = getattr(self, f"{kind}_n")
        return getattr(self, f"{kind}_sum") / n if n else None


@dataclass
class RunRecord:
    run_dir: Path
    method: str
    seed: Any
    setting: str
    status: str
    classes: list[str] = field(default_factory=list)
    batch_size: int = 1
    noise_matrix: list[list[float]] | None = None  # the C×C corruption the labels were drawn from (run_start)
    epochs: dict[int, dict[str, Any]] = field(default_factory=dict)  # 0-based epoch -> its `epoch` event
    epoch_end_weights: dict[int, dict[str, Any]] = field(default_factory=dict)  # epoch -> epoch-end `weights`
    target_events: list[tuple[int, int, dict[str, Any]]] = field(default_factory=list)  # (epoch, global_iter, target_weight)

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    def target(self) -> dict[int, TargetWeight]:
        """Epoch -> that epoch's target weights, summed over its weights events."""
        out: dict[int, TargetWeight] = {}
        for epoch, _, tw in self.target_events:
            out.setdefault(epoch, TargetWeight()).add(tw)
        return out

    def last_epoch(self) -> int | None:
        return max(self.epochs) if self.epochs else None


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def load_run(run_dir: Path) -> RunRecord:
    """One run's records; a run written by a newer gdw-tui is refused (ConfigError, one line)."""
    summary = read_summary(run_dir)
    try:
        check_file_version(run_dir / EVENTS)
        events = read_events(run_dir / EVENTS)
    except SchemaError as e:
        raise ConfigError(f"run {run_dir.name}: {e}") from None
    rec = RunRecord(run_dir, str(summary.get("method") or "?"), summary.get("seed"),
                    str(summary.get("setting") or summary.get("preset") or run_dir.name), run_status(run_dir, summary))
    iters_per_epoch = 0
    for e in events:
        kind = e.get("type")
        if kind == "run_start":
            rec.method = str(e.get("method") or rec.method)
            rec.classes = [str(c) for c in e.get("classes") or []] or rec.classes
            iters_per_epoch = int(e.get("iters_per_epoch") or iters_per_epoch)
            rec.batch_size = int(((e.get("config") or {}).get("train") or {}).get("batch_size") or rec.batch_size)
            matrix = (e.get("noise") or {}).get("matrix")
            rec.noise_matrix = matrix if isinstance(matrix, list) else rec.noise_matrix
        elif kind == "resume":
            _drop_redone(rec, int(e.get("from_epoch") or 0), int(e.get("from_iter") or 0), iters_per_epoch)
        elif kind == "epoch" and isinstance(e.get("epoch"), int):
            rec.epochs[e["epoch"]] = e
        elif kind == "weights" and isinstance(e.get("epoch"), int):
            if isinstance(e.get("target_weight"), dict) and isinstance(e.get("global_iter"), int):
                rec.target_events.append((e["epoch"], e["global_iter"], e["target_weight"]))
            if e.get("epoch_end"):
                rec.epoch_end_weights[e["epoch"]] = e
    return rec


def _drop_redone(rec: RunRecord, done_epochs: int, done_iters: int, iters_per_epoch: int) -> None:
    """A resume redoes everything after its checkpoint: what the earlier segment wrote past it goes."""
    rec.epochs = {k: v for k, v in rec.epochs.items() if k < done_epochs}
    rec.epoch_end_weights = {k: v for k, v in rec.epoch_end_weights.items() if k < done_epochs}
    # A weights event at global iteration g covers the iterations up to g: kept if the checkpoint had them.
    done = done_epochs * iters_per_epoch + done_iters
    rec.target_events = [(ep, gi, tw) for ep, gi, tw in rec.target_events
                         if (gi < done if iters_per_epoch else ep < done_epochs)]


@dataclass
class Group:
    """Runs drawn as one line (or one matrix): a sweep's seeds of one setting and method, or one run."""

    setting: str
    method: str
    runs: list[RunRecord]
    label: str  # the legend's text
    key: str = ""  # names its own files: "<setting>_<method>", or the run id

    @property
    def n(self) -> int:
        return len(self.runs)

    @property
    def title(self) -> str:
        return self.label + (f", mean of {self.n} seeds" if self.n > 1 else "")

    @property
    def info(self):
        return method_info(self.method)

    def common_epochs(self, has: Any = None) -> list[int]:
        """0-based epochs every run of the group recorded (`has(run)` gives each run's epochs)."""
        sets = [set(has(r) if has else r.epochs) for r in self.runs]
        return sorted(set.intersection(*sets)) if sets else []


@dataclass
class Selection:
    groups: list[Group]
    name: str  # stem of the output files
    notes: list[str]  # what was left out, said to the user


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """The mean and the sample standard deviation (ddof=1; None for a single value); NaN propagates."""
    if any(not _finite(v) for v in values):
        return math.nan, (None if len(values) < 2 else math.nan)
    return statistics.fmean(values), (statistics.stdev(values) if len(values) >= 2 else None)


def select(runs_dir: Path, refs: list[str]) -> Selection:
    """The groups the refs name: a sweep's finished runs by setting and method, as `gdw report` groups
    them (engine.sweep.report.collect: runs of different configs never share a line; of a seed that ran
    twice, the run listed last counts); a run named on its own is a line of its own."""
    from ..sweep.report import collect
    from ..sweep.store import counts, run_states, sweep_named

    in_sweeps: dict[str, Path] = {}
    singles: list[Path] = []
    for ref in refs:
        sweep = sweep_named(runs_dir, ref)
        if sweep is None:
            try:
                singles.append(find_run(runs_dir, ref))
            except ConfigError:
                raise ConfigError(f"no sweep or run '{ref}' in {runs_dir} (see `gdw sweeps` and `gdw runs`)") from None
            continue
        states = run_states(sweep)
        if "finished" not in states.values():
            tally = ", ".join(f"{n} {s}" for s, n in counts(states).items() if n)
            raise ConfigError(f"sweep {sweep.name or sweep.id} has no finished run yet ({tally}); "
                              "figures average finished runs only")
        in_sweeps.update({d.name: d for d in sweep.run_dirs() if d.is_dir()})
    groups: list[Group] = []
    notes: list[str] = []
    if in_sweeps:
        report = collect(list(in_sweeps.values()))
        notes += report.notes
        for row in report.rows:
            for method in report.methods:
                cell = row.cells.get(method)
                counted = {a.seed: a.run_id for a in (cell.runs if cell else []) if a.acc is not None}  # last listed wins
                if counted:
                    runs = [load_run(in_sweeps[run_id]) for _, run_id in sorted(counted.items())]
                    groups.append(Group(row.setting, method, runs, method, f"{row.setting}_{method}"))
    for d in dict.fromkeys(singles):
        if d.name in in_sweeps:
            continue  # already in its sweep's mean
        rec = load_run(d)
        label = f"{rec.method} seed {rec.seed}" + ("" if rec.status == "finished" else f" ({rec.status})")
        groups.append(Group(rec.setting, rec.method, [rec], label, rec.run_id))
    if not any(g.common_epochs() for g in groups):
        raise ConfigError("no finished epoch to draw yet in " + ", ".join(refs))
    name = _stem(refs[0]) + (f"+{len(refs) - 1}" if len(refs) > 1 else "")
    return Selection(groups, name, notes)


def _stem(ref: str) -> str:
    """A file-name-safe stem from a sweep name, a run id or a run directory."""
    base = Path(ref.rstrip("/")).name or "figure"
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in base)
