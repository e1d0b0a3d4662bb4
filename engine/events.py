"""The event schema: the one contract between the engine and everything that reads a run.

This module is torch-free on purpose: the UI imports it to read `events.jsonl`.
Each line of `events.jsonl` is one JSON object with at least `type`, `v` (the schema's
major version), `vm` (its minor version) and `t` (Unix time, seconds). Minor, additive changes
(new event types, new fields) raise `vm` and keep `v`; readers ignore what they do not know. A
reader refuses a file whose `v` is newer than `SCHEMA_VERSION`. `docs/events.md` is rendered
from `EVENT_TYPES` and `CHANGES`.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

from .method_table import METHODS

SCHEMA_VERSION = 1
SCHEMA_MINOR = 2

# Minor versions: what each added, and the fields it added ((type, field) -> minor). An event whose
# `vm` is older (or absent: minor 1 wrote none) need not carry the fields added after it.
CHANGES = {
    1: "the first schema",
    2: "`vm` on every event; the epoch event's `net_accs` (every network a method trains, tested), and the "
       "method fields `phase`, `c_hat` (GLC), `label_precision` and `forget_rate` (Co-teaching)",
}
# The epoch event's fields that belong to a method (engine.methods: Method.end_epoch fills them; null otherwise).
METHOD_EPOCH_FIELDS = ("phase", "c_hat", "forget_rate")
ADDED_IN = {("epoch", f): 2 for f in ("net_accs", "label_precision", *METHOD_EPOCH_FIELDS)}

# type -> (description, {field: description}). The only place event fields are defined.
EVENT_TYPES: dict[str, tuple[str, dict[str, str]]] = {
    "run_start": (
        "First event of a run (and of every resumed segment, with `resumed: true`).",
        {
            "run_id": "run directory name",
            "preset": "preset name the run came from",
            "title": "preset title",
            "config": "the fully resolved config: {data: {...}, model: {...}, train: {...}}",
            "method": " | ".join(METHODS),
            "seed": "run seed",
            "device": "device actually used, e.g. cpu, cuda:0",
            "device_name": "human name of the device (GPU model or CPU)",
            "classes": "list of class names (length C)",
            "num_classes": "C",
            "epochs": "total epochs planned",
            "iters_per_epoch": "training iterations per epoch",
            "counts": "{train, meta, test, train_per_class: [C], meta_per_class: [C]}",
            "noise": "{kind, rate, imbalance, measured_rate, matrix: C×C transition matrix used or null}",
            "versions": "{engine, python, torch, torchvision, schema}",
            "pid": "engine process id",
            "resumed": "true when this start continues an earlier segment",
            "start_epoch": "first epoch this segment runs (0-based)",
        },
    ),
    "step": (
        "Training progress, at a bounded rate (at most `train.step_events_per_s` a second, plus the last iteration of each epoch).",
        {
            "epoch": "0-based epoch",
            "iter": "0-based iteration within the epoch",
            "global_iter": "0-based iteration since the run began",
            "loss": "mean training cross-entropy (observed labels) of the iterations since the last step event",
            "meta_loss": "mean meta loss over the same iterations (null for erm)",
            "train_acc": "training accuracy against the TRUE labels over the same iterations, percent",
            "meta_acc": "meta-batch accuracy at the virtual parameters, percent (null for erm)",
            "lr": "learning rate of this epoch",
            "it_s": "iterations per second over the same iterations",
            "samples_s": "training samples per second",
        },
    ),
    "weights": (
        "What the weighting does (docs/algorithm.md §5), a few times per epoch and at each epoch's end.",
        {
            "epoch": "0-based epoch",
            "iter": "0-based iteration within the epoch",
            "global_iter": "0-based iteration since the run began",
            "omega": "C×C: row a = samples with observed label a, column j = mean class-level weight ω_j used in the actual update, since the last weights event (instance methods: the instance weight in every column; null entries for labels not seen)",
            "increase_ratio": "C×C, only at epoch end for gdw/gdw-nozm, else null: [i][j] = fraction of samples of class j whose ω_i went up in the outer step during the epoch (appendix Table 6)",
            "epoch_end": "true on the event written at the end of an epoch",
            "target_weight": "{clean_mean, corrupted_mean, clean_count, corrupted_count, bins: [edges], clean_hist: [counts], corrupted_hist: [counts]} of the target-class weight, since the last weights event",
            "vnet": "{loss: [grid], weight: [V(loss)]} or null for methods without V",
        },
    ),
    "epoch": (
        "End of an epoch: evaluation on the test set.",
        {
            "epoch": "0-based epoch just finished",
            "test_loss": "mean test cross-entropy",
            "test_acc": "test accuracy, percent",
            "per_class_acc": "[C] test accuracy per class, percent",
            "train_loss": "mean training loss over the epoch",
            "train_acc": "training accuracy against the true labels over the epoch, percent",
            "meta_loss": "mean meta loss over the epoch (null for erm)",
            "meta_acc": "mean meta accuracy over the epoch (null for erm)",
            "lr": "learning rate used in the epoch",
            "best_acc": "best test accuracy so far",
            "epoch_s": "wall seconds of the epoch (training + test)",
            "train_s": "wall seconds of the epoch's training iterations alone",
            "net_accs": "[K] test accuracy of each of the K networks the method trains, percent (coteach: [net 1, net 2]; test_acc is net 1's); null with one network",
            "phase": "glc: the phase this epoch trained in (1: plain cross-entropy to estimate Ĉ, 2: the corrected loss), else null",
            "c_hat": "glc: the C×C estimate Ĉ[i][j] ≈ p(observed j | true i), only on the last epoch of phase 1 (when it was estimated), else null",
            "label_precision": "coteach: [K] fraction of the samples each network kept (its small-loss selection) whose observed label is correct, over the epoch; else null",
            "forget_rate": "coteach: the fraction R(e) of each batch dropped in this epoch, else null",
        },
    ),
    "checkpoint": (
        "A checkpoint was written atomically.",
        {"epoch": "epochs completed in the checkpoint", "path": "path relative to the run directory"},
    ),
    "log": (
        "A message from the engine.",
        {"level": "info | warning | error", "message": "text"},
    ),
    "resume": (
        "A run continues from a checkpoint (written before its run_start).",
        {
            "from_epoch": "epochs already completed",
            "from_iter": "iterations of epoch `from_epoch` already done (0 after an epoch-end checkpoint, > 0 after a stop mid-epoch); events after this point in the earlier segment are redone",
            "checkpoint": "checkpoint path",
        },
    ),
    "stopped": (
        "The run stopped on request (signal or `gdw stop`), after checkpointing.",
        {"epoch": "0-based epoch in progress", "iter": "iteration reached", "reason": "e.g. SIGTERM"},
    ),
    "run_end": (
        "The run finished all its epochs.",
        {
            "final_acc": "mean test accuracy of the last `train.final_epochs` epochs, percent",
            "best_acc": "best test accuracy, percent",
            "best_epoch": "0-based epoch of the best accuracy",
            "wall_s": "wall seconds of the whole run (all segments)",
        },
    ),
    "failure": (
        "The run failed.",
        {
            "kind": "error | diverged | oom",
            "message": "one line for humans",
            "traceback": "full Python traceback (null for divergence)",
            "epoch": "0-based epoch, or null before training",
            "iter": "0-based iteration within the epoch, or null",
        },
    ),
}

class SchemaError(ValueError):
    """An events file this reader cannot understand (a newer major schema version)."""


def make_event(type_: str, **fields: Any) -> dict[str, Any]:
    """Build an event dict; unknown types are a programming error."""
    if type_ not in EVENT_TYPES:
        raise KeyError(f"unknown event type {type_!r}")
    return {"type": type_, "v": SCHEMA_VERSION, "vm": SCHEMA_MINOR, "t": round(time.time(), 3), **fields}


def validate_event(event: dict[str, Any]) -> None:
    """ValueError naming the problem unless `event` is what this schema's writer emits: a known
    type, the common fields, and exactly the fields EVENT_TYPES declares for it (the engine writes
    every one, null where it does not apply). For writers and their tests; readers stay lenient."""
    type_ = event.get("type")
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type_!r}; known: {', '.join(EVENT_TYPES)}")
    v, t = event.get("v"), event.get("t")
    if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= SCHEMA_VERSION:
        raise ValueError(f"{type_}: v must be an integer 1..{SCHEMA_VERSION} (got {v!r})")
    if not isinstance(t, (int, float)) or isinstance(t, bool):
        raise ValueError(f"{type_}: t must be a number of seconds (got {t!r})")
    vm = event.get("vm", 1)
    if not isinstance(vm, int) or isinstance(vm, bool) or not 1 <= vm:
        raise ValueError(f"{type_}: vm must be a positive integer (got {vm!r})")
    declared = set(EVENT_TYPES[type_][1])
    required = {f for f in declared if ADDED_IN.get((type_, f), 1) <= vm}
    fields = set(event) - {"type", "v", "vm", "t"}
    if fields - declared:
        raise ValueError(f"{type_}: undeclared fields {sorted(fields - declared)}")
    if required - fields:
        raise ValueError(f"{type_}: missing fields {sorted(required - fields)}")


def encode(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"), allow_nan=False, default=_jsonable) + "\n"


def _jsonable(value: Any) -> Any:
    # numpy scalars and arrays, without importing numpy here.
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def check_version(event: dict[str, Any]) -> None:
    v = event.get("v", SCHEMA_VERSION)
    if isinstance(v, (int, float)) and not isinstance(v, bool) and v > SCHEMA_VERSION:
        raise SchemaError(
            f"events written with schema v{v}; this gdw-tui reads up to v{SCHEMA_VERSION} — upgrade gdw-tui"
        )


class EventWriter:
    """Appends events to `events.jsonl`: one write per line, flushed; fsync for rare, important events."""

    DURABLE = ("run_start", "resume", "epoch", "checkpoint", "stopped", "run_end", "failure")

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)
        # Line-buffered append: a reader never sees a half line except while it is being written.
        self._file = open(self.path, "a", encoding="utf-8", buffering=1)
        if not _ends_with_newline(self.path):
            # A killed engine (or a full disk) left a partial last line. End it, so the resumed
            # run's first event starts a line of its own instead of being glued to the fragment
            # (readers skip the fragment; they would skip the glued event with it).
            self._file.write("\n")

    def emit(self, type_: str, **fields: Any) -> dict[str, Any]:
        event = make_event(type_, **fields)
        self._file.write(encode(event))
        if type_ in self.DURABLE:
            self._file.flush()
            os.fsync(self._file.fileno())
        return event

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            self._file.close()


def _ends_with_newline(path: str) -> bool:
    """True for a missing or empty file, or one whose last byte is a newline."""
    try:
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"
    except OSError:  # missing, or empty (cannot seek before the start)
        return True


@dataclass
class EventTail:
    """Incremental reader of a growing `events.jsonl`.

    Handles a file that does not exist yet, a partial last line (kept until its newline
    arrives), growth between reads, truncation or replacement (starts over; a file rewritten
    in place is recognised by its first bytes even when it has already grown past the old read
    position), undecodable lines (skipped and counted) and newer schema versions: the events
    before the first newer one are returned, and the next read raises SchemaError.
    """

    path: str
    offset: int = 0
    skipped: int = 0
    _partial: bytes = b""
    _inode: int | None = None
    _head: bytes = b""
    restarted: bool = field(default=False)

    HEAD_BYTES = 256

    def read_new(self, max_bytes: int = 16 * 1024 * 1024) -> list[dict[str, Any]]:
        self.restarted = False
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            return []
        with f:
            # fstat of the open file, so the size and inode belong to the bytes we read.
            st = os.fstat(f.fileno())
            head = f.read(self.HEAD_BYTES)
            replaced = self._inode is not None and st.st_ino != self._inode
            rewritten = head[: len(self._head)] != self._head
            if replaced or rewritten or st.st_size < self.offset:
                self.offset, self._partial, self.restarted = 0, b"", True
            self._inode, self._head = st.st_ino, head
            if st.st_size == self.offset:
                return []
            f.seek(self.offset)
            data = f.read(max_bytes)
        pos = self.offset - len(self._partial)  # file offset where `data` (with the partial line) starts
        self.offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()  # b"" when data ended with a newline
        events = []
        for raw in lines:
            line_start, pos = pos, pos + len(raw) + 1
            if not raw.strip():
                continue
            try:
                event = json.loads(raw)
            except ValueError:
                self.skipped += 1
                continue
            if not isinstance(event, dict) or "type" not in event:
                self.skipped += 1
                continue
            try:
                check_version(event)
            except SchemaError:
                # Stop before the newer event: what came before it is returned now, and every
                # later read starts at this line and refuses it.
                self.offset, self._partial = line_start, b""
                if events:
                    return events
                raise
            events.append(event)
        return events


def check_file_version(path: str | os.PathLike[str]) -> None:
    """SchemaError if the first or the last complete event of a file is from a newer major schema.

    Cheap (the first line and the last 64 KiB), for commands that only need to know whether
    they can read a run at all; a missing or unreadable file passes.
    """
    try:
        with open(path, "rb") as f:
            first = f.readline()
            f.seek(max(0, os.fstat(f.fileno()).st_size - 65536))
            tail = f.read()
    except OSError:
        return
    for raw in [first] + tail.split(b"\n")[:-1][-1:]:  # [:-1]: what follows the last newline is partial
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        if isinstance(event, dict):
            check_version(event)


def read_events(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All complete events of a file (a truncated last line is ignored)."""
    tail = EventTail(os.fspath(path))
    events: list[dict[str, Any]] = []
    while True:
        batch = tail.read_new()
        if not batch and tail.offset >= _size(tail.path):
            return events
        events.extend(batch)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def render_markdown() -> str:
    """The schema as Markdown (docs/events.md is this text; a test keeps them equal)."""
    out = [
        "# Event schema (`events.jsonl`)",
        "",
        f"Schema version: **{SCHEMA_VERSION}.{SCHEMA_MINOR}** (`v` {SCHEMA_VERSION}, `vm` {SCHEMA_MINOR}). Generated from `engine/events.py` (`python -m engine.events > docs/events.md`).",
        "",
        "Every line of a run's `events.jsonl` is one JSON object with these common fields:",
        "",
        "| field | meaning |",
        "|---|---|",
        "| `type` | one of the event types below |",
        "| `v` | schema major version (integer). Additive changes keep it; readers ignore unknown types and fields and refuse a newer major version |",
        "| `vm` | schema minor version (integer; absent in minor 1). Each additive change raises it |",
        "| `t` | Unix time in seconds (float) |",
        "",
        "Every event carries every field listed for its type (null where it does not apply);",
        "`validate_event` checks this, for writers and their tests.",
        "Events are appended by a single engine process; a line is complete once its newline is written.",
        "A reader must tolerate a partial last line while the run is live (or after a kill).",
        "",
    ]
    for name, (desc, fields) in EVENT_TYPES.items():
        out += [f"## `{name}`", "", desc, "", "| field | meaning |", "|---|---|"]
        out += [f"| `{k}` | {v}" + (f" (since minor {ADDED_IN[(name, k)]})" if (name, k) in ADDED_IN else "") + " |"
                for k, v in fields.items()]
        out.append("")
    out += ["## Minor versions", ""] + [f"- **{SCHEMA_VERSION}.{m}**: {text}" for m, text in CHANGES.items()] + [""]
    return "\n".join(out)


if __name__ == "__main__":
    print(render_markdown(), end="")
