"""A run directory's layout and the rules of its states: which runs can be stopped or resumed, and why not.

Torch-free: the engine, the CLI and the UI all read the rules here, so `gdw resume`, the runs
screen and the dashboard accept and refuse the same runs with the same reason. The operations on
run directories (create, lock, list, find, stop) are engine.runs.
"""

from __future__ import annotations

import json
from pathlib import Path

# The files of a run directory.
CONFIG = "config.toml"  # the resolved config the run was created with
EVENTS = "events.jsonl"  # every event, appended (engine.events)
SUMMARY = "summary.json"  # status and headline numbers, rewritten atomically
LOCK = "engine.lock"  # held with flock by the engine process while it runs
HEARTBEAT = "heartbeat.json"  # rewritten while the engine runs, for readers on other hosts (engine.heartbeat)
LOG = "engine.log"  # the engine's own output when launched detached
CHECKPOINTS = "checkpoints"
CHECKPOINT = f"{CHECKPOINTS}/last.pt"  # the last good checkpoint, replaced only by a complete one

# What each status means. The honest status (engine.runs.run_status) also checks the lock.
STATUSES: dict[str, str] = {
    "created": "made with its config; no engine has touched it yet",
    "running": "an engine holds the run's lock and is training (on another host: its heartbeat is fresh)",
    "finished": "every epoch ran; final_acc is in the summary",
    "failed": "the engine reported an error, a divergence or out-of-memory (message and traceback in the events)",
    "stopped": "stopped on request (gdw stop, S, a signal): it checkpointed and exited",
    "interrupted": "marked running, but its engine is gone without a final event (killed, crashed, machine down)",
}


def checkpoint_path(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINT


def can_stop(status: str) -> bool:
    return status == "running"


def resume_refusal(run_dir: Path, status: str) -> str | None:
    """Why the run cannot be resumed, as words that follow "run NAME ", or None when it can.

    Stopped, interrupted and failed runs resume from their last good checkpoint (a failed run
    too: a full disk or an out-of-memory error is fixed outside the run).
    """
    if status == "running":
        return "is still running; stop it first"
    if status == "finished":
        return "already finished; nothing to resume"
    if not checkpoint_path(run_dir).exists():
        reached = _epochs_done(run_dir)
        if reached:  # it did checkpoint: the file was removed since
            return (f"has no checkpoint: {CHECKPOINT} is gone though it reached epoch {reached} "
                    "(deleted or moved?); start it again")
        return "has no checkpoint yet (it stopped before its first epoch ended); start it again"
    return None


def _epochs_done(run_dir: Path) -> int:
    """Epochs the run finished by its summary (each one ended with a checkpoint); 0 if unknown."""
    try:
        epoch = json.loads((Path(run_dir) / SUMMARY).read_text(encoding="utf-8")).get("epoch")
    except (OSError, ValueError, AttributeError):
        return 0
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch > 0 else 0
