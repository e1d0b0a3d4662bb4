"""Messages (small dataclasses, toolong-style): the event-reading worker to the screens, the screens to the app."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
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


# Screens ask the app to start, stop or resume an engine with these (the app owns the engines it
# launched); a screen never calls the app's methods for it. Handled in GdwApp.on_*_requested.


@dataclass
class LaunchRequested(Message):
    """Create a run for this resolved config, start its engine and open its dashboard."""

    cfg: dict[str, Any] = field(default_factory=dict)


@dataclass
class StopRunRequested(Message):
    """Ask the run's engine to checkpoint and exit."""

    run_dir: Path = field(default_factory=Path)


@dataclass
class ResumeRequested(Message):
    """Start the engine again on a stopped or interrupted run (and open its dashboard when asked)."""

    run_dir: Path = field(default_factory=Path)
    open_dashboard: bool = False


@dataclass
class SweepRequested(Message):
    """Create this checked sweep (engine.sweep.start.CheckedSweep), start its scheduler detached, open the sweeps screen."""

    checked: Any = None
