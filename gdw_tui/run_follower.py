"""One run followed: its events.jsonl folded into a RunModel, and the run's status as the UI says it.

No widgets here. The reader loop runs in a worker thread the dashboard starts (`read_events`): it
reads the file in bounded batches and posts each one, one batch in flight, so a slow paint slows
the reader instead of piling up memory. The dashboard applies the batches on the UI thread
(`apply`, then `applied` lets the reader go on).

Status policy: the run directory says finished / failed / stopped / interrupted / running /
created (engine.runs.run_status); the UI adds `starting` (an engine this UI launched has not
locked the run yet) and `stopping` (the user asked to stop and the engine is still running).
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

from engine.config import ConfigError
from engine.rundir import can_stop, resume_refusal
from engine.runs import EVENTS, engine_alive, load_run_config, lock_pid, run_status

from .messages import EventsRead, ResourcesRead
from .resources import EngineMeter, Usage
from .run_model import ACCURACY, CLASSES, INFO, LOG, LOSS, PROGRESS, WEIGHTS, RunModel, Snapshot
from .tailer import RunTail

LIVE_POLL_S = 0.1
IDLE_POLL_S = 1.0
RESOURCES_S = 1.0  # the engine's CPU, memory and GPU are read this often (in a worker thread)
LIVE_STATUSES = ("running", "starting", "stopping")
ALL_FACETS = frozenset({INFO, PROGRESS, LOSS, ACCURACY, WEIGHTS, CLASSES, LOG})


def _no_engine() -> subprocess.Popen | None:
    return None


class RunFollower:
    def __init__(self, run_dir: Path, engine: Callable[[], subprocess.Popen | None] = _no_engine) -> None:
        """`engine`: the engine process this UI launched for the run, if any (asked each time: a
        resume launches a new one)."""
        self.run_dir = Path(run_dir)
        self.engine = engine
        try:
            self.stored_config = load_run_config(self.run_dir)
        except ConfigError:
            self.stored_config = {}  # missing or unreadable: the events still tell
        self.model = self._new_model()
        self.snapshot_index: int | None = None  # the ω snapshot shown; None: follow the newest
        self.status = "created"
        self.caught_up = False  # the reader reached the end of the file at least once
        self.read_error = ""
        self.usage: Usage | None = None  # the engine process's resources, while it runs
        self.stop_requested = False
        self._applied = threading.Event()

    def _new_model(self) -> RunModel:
        model = RunModel(run_id=self.run_dir.name)
        model.apply_config(self.stored_config)  # the header has something to show before run_start
        return model

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES

    # --- reading (worker threads) ----------------------------------------------------------------

    def read_events(self, cancelled: Callable[[], bool], post: Callable[[EventsRead], object]) -> None:
        """The reader loop: until `cancelled()`, post each new batch and wait until it is applied."""
        tail = RunTail(str(self.run_dir / EVENTS))
        reported_end = False
        while not cancelled():
            batch = tail.read()
            news = bool(batch.events or batch.restarted or batch.error) or (batch.at_end and not reported_end)
            if news:
                reported_end = batch.at_end
                self._applied.clear()
                post(EventsRead(batch.events, batch.restarted, batch.at_end, batch.error))
                while not self._applied.wait(0.2):  # one batch in flight
                    if cancelled():
                        return
            if batch.error:
                return
            if batch.at_end:
                finished = bool(self.model.ended) and not engine_alive(self.run_dir)
                time.sleep(IDLE_POLL_S if finished else LIVE_POLL_S)

    def measure_engine(self, cancelled: Callable[[], bool], post: Callable[[ResourcesRead], object]) -> None:
        """Once a second while the run is live: post the engine's CPU %, RSS and (CUDA) GPU use."""
        meter: EngineMeter | None = None
        while not cancelled():
            usage = None
            if self.live:
                pid = lock_pid(self.run_dir)
                if pid is not None and (meter is None or meter.pid != pid):
                    meter = EngineMeter(pid, self.model.device)
                usage = meter.sample() if meter is not None and pid is not None else None
            if usage != self.usage:
                post(ResourcesRead(usage))
            time.sleep(RESOURCES_S)

    # --- applying (UI thread) --------------------------------------------------------------------

    def apply(self, message: EventsRead) -> None:
        """Fold a batch into the model (a restarted file starts a new model)."""
        if message.restarted:
            self.model = self._new_model()
            self.snapshot_index = None
            self.model.dirty |= ALL_FACETS
        pinned = self.model.snapshot_at(self.snapshot_index) if self.snapshot_index is not None else None
        self.model.apply_all(message.events)
        if pinned is not None:  # thinning may have moved (or dropped) the snapshot shown
            self.snapshot_index = next((i for i, s in enumerate(self.model.snapshots) if s is pinned), self.snapshot_index)
        if message.error:
            self.read_error = message.error

    def applied(self) -> None:
        """The batch in flight is applied (or will never be): the reader goes on."""
        self._applied.set()

    def reading_failed(self, error: BaseException | None) -> None:
        self.read_error = f"{type(error).__name__}: {error}"
        self.caught_up = True  # nothing more will come: the header stops saying `catching up…`
        self.applied()

    # --- status ----------------------------------------------------------------------------------

    def current_status(self) -> str:
        if self.model.ended:
            return self.model.ended
        status = run_status(self.run_dir)
        if status == "running" and self.stop_requested:
            return "stopping"
        process = self.engine()
        if process is None or status == "running":
            return status
        if process.poll() is None and status in ("created", "stopped", "interrupted", "failed"):
            return "starting"  # launched or resumed here, not locked yet: torch is still importing
        return "failed" if status == "created" else status

    def update_status(self) -> str | None:
        """Read the status again; the previous one when it changed, else None."""
        status = self.current_status()
        if status == self.status:
            return None
        previous, self.status = self.status, status
        return previous

    def stoppable(self) -> bool:
        """Whether `s` applies: the engine runs or is starting (the footer offers stop)."""
        return self.status in ("running", "starting")

    def can_stop(self) -> bool:
        return can_stop("running" if self.status == "starting" else self.status)

    def resume_refusal(self) -> str | None:
        """Why R cannot resume the run now (None: it can)."""
        # The UI's own "starting" and "stopping" are running to the rule (engine.rundir).
        return resume_refusal(self.run_dir, "running" if self.status in ("starting", "stopping") else self.status)

    def stopping(self) -> None:
        self.stop_requested = True

    def resuming(self) -> None:
        self.model.ended = ""
        self.stop_requested = False

    # --- the ω snapshot shown (scrubbing) --------------------------------------------------------

    def snapshot(self) -> Snapshot | None:
        return self.model.snapshot_at(self.snapshot_index)

    def ratio_snapshot(self) -> Snapshot | None:
        return self.model.ratio_at(self.snapshot_index)

    def scrub(self, step: int) -> bool:
        """Show an older (-1) or newer (+1) snapshot; the newest follows the run again. False: none."""
        n = len(self.model.snapshots)
        if not n:
            return False
        index = (n - 1 if self.snapshot_index is None else self.snapshot_index) + step
        self.snapshot_index = None if index >= n - 1 else max(0, index)
        return True

    def scrub_text(self) -> str:
        """`snapshot k/n`: the newest is n/n, each `[` counts down; `live` while it follows a live run."""
        n = len(self.model.snapshots)
        if not n:
            return ""
        if self.snapshot_index is None:
            return f"snapshot {n}/{n}" + (" · live" if self.live else "")
        return f"snapshot {min(self.snapshot_index, n - 1) + 1}/{n}"
