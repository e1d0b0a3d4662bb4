"""Heartbeats: how an engine running on another machine shows that it is alive.

Torch-free. On its own machine an engine is known alive by the flock on its run's `engine.lock`
(engine.runs.engine_alive). A lock taken on a Slurm compute node is not visible from the login
node on most shared filesystems, so the engine also rewrites `heartbeat.json` (host, pid, time)
every HEARTBEAT_S seconds. A reader on another host takes a fresh heartbeat for "running"; on
the engine's own host the lock stays the only truth, so a killed engine reads `interrupted` at
once there, not after its heartbeat ages.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from .rundir import HEARTBEAT

HEARTBEAT_S = 30.0
MAX_AGE_S = 3 * HEARTBEAT_S  # two missed beats are tolerated (a busy shared filesystem, a slow node)
MAX_SKEW_S = MAX_AGE_S  # how far ahead of the reader's clock a beat may be and still be believed

# Slurm job states in which the job may still run (or run again) the engine; in any other state
# (COMPLETED, FAILED, CANCELLED, TIMEOUT, NODE_FAIL, PREEMPTED, OUT_OF_MEMORY, ...) it will not.
ACTIVE_JOB_STATES = frozenset({
    "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
    "RESIZING", "SUSPENDED", "SIGNALING", "STAGE_OUT", "STOPPED",
})


def this_host() -> str:
    return socket.gethostname()


def write_heartbeat(run_dir: Path) -> None:
    """Replace the heartbeat atomically (readers never see half a file); no fsync: a lost beat only ages."""
    path = Path(run_dir) / HEARTBEAT
    tmp = path.with_name(f".{HEARTBEAT}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps({"host": this_host(), "pid": os.getpid(), "time": time.time()}) + "\n")
    os.replace(tmp, path)


def read_heartbeat(run_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((Path(run_dir) / HEARTBEAT).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("time"), (int, float)) else None


def beat_fresh(beat: dict[str, Any], max_age_s: float = MAX_AGE_S, now: float | None = None) -> bool:
    """The one freshness rule, tolerant of clocks that disagree (the writer's clock is another node's).

    A beat is fresh when it was written less than max_age_s ago by the writer's clock, and is not
    more than MAX_SKEW_S ahead of this one: a node whose clock is up to a minute behind still
    beats within the age (a beat every 30 s), and one up to MAX_SKEW_S ahead still counts. A beat
    from further in the future (a wrong clock, a forged file) is not believed: it would otherwise
    keep a dead run "running" forever.
    """
    age = (time.time() if now is None else now) - beat["time"]
    return -MAX_SKEW_S <= age < max_age_s


def heartbeat_fresh(run_dir: Path, max_age_s: float = MAX_AGE_S, now: float | None = None) -> bool:
    beat = read_heartbeat(run_dir)
    return beat is not None and beat_fresh(beat, max_age_s, now)


def running_elsewhere(run_dir: Path, max_age_s: float = MAX_AGE_S) -> dict[str, Any] | None:
    """The fresh heartbeat of an engine on another host (one this machine's lock probe cannot see), or None."""
    beat = read_heartbeat(run_dir)
    if beat is None or beat.get("host") == this_host() or not beat_fresh(beat, max_age_s):
        return None
    return beat


def alive_elsewhere(run_dir: Path, max_age_s: float = MAX_AGE_S) -> bool:
    return running_elsewhere(run_dir, max_age_s) is not None


def describe_heartbeat(run_dir: Path, now: float | None = None) -> str | None:
    """The heartbeat in words for `gdw show` (host, age, and whether it is believed), or None."""
    beat = read_heartbeat(run_dir)
    if beat is None:
        return None
    age = (time.time() if now is None else now) - beat["time"]
    where = f"host {beat.get('host', '?')}"
    if age < -MAX_SKEW_S:
        return (f"{where}, {_span(-age)} ahead of this machine's clock: not believed (clock skew beyond "
                f"{MAX_SKEW_S:.0f} s, or a forged file)")
    when = f"{_span(age)} ago" if age >= 0 else f"{_span(-age)} ahead of this clock (tolerated skew)"
    return f"{where}, {when}" + ("" if beat_fresh(beat, now=now) else " (stale)")


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def status_with_job(status: str, job_state: str | None) -> str:
    """A run the scheduler no longer runs is not running, whatever its heartbeat says.

    `job_state` is the scheduler's state of the run's job (None: unknown; then the heartbeat
    alone decides, and a gone engine reads `interrupted` once its heartbeat is MAX_AGE_S old).
    """
    if status == "running" and job_state and job_state.split()[0] not in ACTIVE_JOB_STATES:
        return "interrupted"
    return status


class Heartbeat:
    """A daemon thread that rewrites the heartbeat while the engine runs; removed on a clean exit."""

    def __init__(self, run_dir: Path, interval_s: float = HEARTBEAT_S):
        self.run_dir, self.interval_s = Path(run_dir), interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)

    def start(self) -> "Heartbeat":
        self._write()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        try:
            (self.run_dir / HEARTBEAT).unlink()
        except OSError:
            pass

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._write()

    def _write(self) -> None:
        try:
            write_heartbeat(self.run_dir)
        except OSError:
            pass  # a full disk must not stop training; the beat just ages
