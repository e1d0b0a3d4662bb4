"""Reading a run's growing `events.jsonl` in bounded batches (wraps engine.events.EventTail)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from engine.events import EventTail, SchemaError

# Small reads keep the memory of a catch-up bounded: a 100×100 ω snapshot is ~70 kB of JSON but
# ~330 kB once parsed, so 1 MB of text is at most a few MB of Python objects in flight.
BATCH_BYTES = 1 << 20
HEAD_BYTES = 256


@dataclass
class Batch:
    events: list[dict[str, Any]]
    restarted: bool  # the file was truncated or replaced: readers must start over
    at_end: bool  # nothing more to read right now
    error: str = ""  # e.g. a newer schema version: reading stops


@dataclass
class RunTail:
    """Incremental, restart-aware reader of one events file.

    EventTail notices truncation only when the file shrinks below the read offset, and
    replacement by inode. A file rewritten in place that has grown past the old offset before
    the next read would be missed, so the first bytes are compared as well.
    """

    path: str
    batch_bytes: int = BATCH_BYTES
    _tail: EventTail = field(init=False)
    _head: bytes = b""
    failed: str = ""

    def __post_init__(self) -> None:
        self.path = os.fspath(self.path)
        self._tail = EventTail(self.path)

    @property
    def skipped(self) -> int:
        """Lines that were not valid JSON events (a torn write, a foreign line)."""
        return self._tail.skipped

    def read(self) -> Batch:
        if self.failed:
            return Batch([], False, True, self.failed)
        restarted = self._head_changed()
        if restarted:
            self._tail = EventTail(self.path)
        try:
            events = self._tail.read_new(self.batch_bytes)
        except SchemaError as e:
            self.failed = str(e)
            return Batch([], restarted, True, self.failed)
        restarted = restarted or self._tail.restarted
        if self._tail.offset and len(self._head) < HEAD_BYTES:
            self._head = self._read_head()
        return Batch(events, restarted, self._tail.offset >= _size(self.path))

    def _read_head(self) -> bytes:
        try:
            with open(self.path, "rb") as f:
                return f.read(HEAD_BYTES)
        except OSError:
            return b""

    def _head_changed(self) -> bool:
        if not self._head:
            return False
        head = self._read_head()
        if head[: len(self._head)] == self._head:
            return False
        self._head = b""
        return True


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
