"""Messages between the event-reading worker and the screens (small dataclasses, toolong-style)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message


@dataclass
class EventsRead(Message):
    """A batch of new events from a run's events.jsonl (the worker waits until it is applied)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    restarted: bool = False  # the file was truncated or replaced: start over
    at_end: bool = False  # the reader has caught up with the file
    error: str = ""  # the file cannot be read (e.g. a newer schema): reading stopped



@dataclass
class ResourcesRead(Message):
    """The engine process's resources, sampled in a worker (None: not running / unknown)."""

    usage: Any = None
