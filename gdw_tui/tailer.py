"""Reading a run's growing `events.jsonl` in bounded batches (wraps engine.events.EventTail)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from engine.events import EventTail, SchemaError

# Small reads keep the memory of a catch-up bounded: a 100×100 ω snapshot is ~70 kB of JSON but
# ~330 kB once parsed, so 1 MB of text is at most a few MB of Python objects in flight.
BATCH_BYTES = 1 << 20


@dataclass
class Batch:
    events: list[dict[str, Any]]
    restarted: bool  # the file was truncated or replaced: readers must start over
    at_end: bool  # nothing more to read right now
    error: str = ""  # e.g. a newer schema version: reading stops


@dataclass
class RunTail:
    """Incremental, restart-aware reader of one events file, in bounded batches.

    engine.events.EventTail does the reading (partial lines, growth, truncation, replacement,
    rewrites in place, newer schema versions); this adds small reads and a sticky error.
    """

    path: str
    batch_bytes: int = BATCH_BYTES
    _tail: EventTail = field(init=False)
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
        try:
            events = self._tail.read_new(self.batch_bytes)
        except SchemaError as e:
            self.failed = str(e)
            return Batch([], self._tail.restarted, True, self.failed)
        return Batch(events, self._tail.restarted, self._tail.offset >= _size(self.path))


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
