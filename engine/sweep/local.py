"""The local executor: a bounded pool of run processes on this machine.

Torch-free. Each run is its own engine process running engine.sweep.task, forked from the
scheduler's fork server (engine.sweep.forkserver: torch and the engine are imported once per
scheduler, not once per run; a detached `python -m engine.sweep.task` if the server is not
available), placed on a slot: a GPU (`CUDA_VISIBLE_DEVICES`, `per_gpu` runs per GPU) or,
without GPUs, one of `workers` CPU slots with the cores divided among them (OMP/MKL threads).

The scheduler holds the sweep's `scheduler.lock` while it works. It starts each run at most once
per scheduler session; a run that fails (or diverges) is reported and the sweep goes on. It
adopts runs already claimed by a task (a scheduler killed earlier, a second `gdw resume`): it
waits for them instead of starting them again. Killing the scheduler leaves its runs going.

`python -m engine.sweep.local --sweep-dir DIR` is the detached scheduler (`--detach`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..config import ConfigError
from ..launch import cuda_device_count, launch_detached
from ..rundir import LOG
from ..runs import atomic_write_text, engine_alive, load_run_config, read_summary
from .forkserver import ForkedRun, ForkServer, ForkServerGone
from .store import SCHEDULER_LOG, SCHEDULER_PID, Sweep, find_sweep, scheduler_alive, take_scheduler_lock
from .task import CLAIMED, busy, claim_info, claimed, record_exit, task_command

POLL_S = 0.05  # how often finished children are noticed: a free slot is refilled within this
REFRESH_S = 1.0  # how often the whole sweep's status is shown
SCHEDULE = "schedule.jsonl"


@dataclass(frozen=True)
class Slot:
    gpu: str | None  # CUDA_VISIBLE_DEVICES for runs in this slot, None on CPU
    threads: int  # CPU threads for a run in this slot

    def env(self) -> dict[str, str]:
        env = {"OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)}
        if self.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.gpu
        return env

    def label(self) -> str:
        return f"gpu{self.gpu}" if self.gpu is not None else "cpu"


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def plan_slots(options: dict[str, Any], device: str) -> list[Slot]:
    """The pool: GPU slots where GPUs are used, CPU worker slots otherwise. ConfigError for GPUs
    that are not there or a device that cannot be combined with GPU slots."""
    visible = cuda_device_count()
    gpus = options.get("gpus")
    per_gpu = options.get("per_gpu", 1)
    device = (device or "auto").strip().lower()
    if gpus is not None:
        if visible == 0:
            raise ConfigError("--gpus: no CUDA device found on this machine; use --workers N (CPU) instead")
        bad = [g for g in gpus if g >= visible]
        if bad:
            raise ConfigError(f"--gpus {bad[0]} is not available: this machine has {visible} CUDA device(s), 0..{visible - 1}")
        if device == "cpu":
            raise ConfigError("--gpus with --device cpu: choose one (--workers N for CPU runs)")
    use_gpus = device != "cpu" and (gpus is not None or visible > 0)
    if use_gpus and device.startswith("cuda:") and device != "cuda:0":
        raise ConfigError(f"--device {device} cannot be combined with GPU slots (each run sees its slot's GPU as cuda:0); use --gpus instead")
    if use_gpus:
        indices = gpus if gpus is not None else list(range(visible))
        n = len(indices) * per_gpu
        threads = max(1, cpu_cores() // n)
        return [Slot(str(g), threads) for _ in range(per_gpu) for g in indices]
    workers = options.get("workers", 1)
    most = max_workers()
    if workers > most:
        raise ConfigError(f"--workers {workers}: this machine holds at most {most} parallel runs ({cpu_cores()} CPU "
                          f"core(s), {memory_bytes() / 2**30:.0f} GiB of memory; each run needs half a core and "
                          f"{RUN_MEMORY >> 20} MiB at least)")
    return [Slot(None, max(1, cpu_cores() // workers)) for _ in range(workers)]


RUN_MEMORY = 512 << 20  # what one engine process needs at least (torch alone is ~300 MiB resident)


def memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 1 << 40


def max_workers() -> int:
    """CPU workers this machine can hold: two runs per core at most (more only queue for the cores)
    and the memory each engine needs."""
    return max(1, min(2 * cpu_cores(), memory_bytes() // RUN_MEMORY))


def sweep_device(sweep: Sweep) -> str:
    for run_dir in sweep.run_dirs():
        try:
            return load_run_config(run_dir)["train"]["device"]
        except ConfigError:
            continue
    return "auto"


class Scheduler:
    """Fill the slots with the sweep's runs until each has ended once (or the sweep is stopped)."""

    def __init__(self, sweep: Sweep, slots: list[Slot], on_refresh: Callable[[Sweep], None] | None = None,
                 say: Callable[[str], None] = print):
        self.sweep, self.slots, self.on_refresh, self.say = sweep, slots, on_refresh, say
        self.free = list(range(len(slots)))
        self.children: dict[str, tuple[subprocess.Popen | ForkedRun, int]] = {}
        self.adopted: dict[str, int | None] = {}  # run_id -> slot it occupies (None: over capacity)
        self.forkserver: ForkServer | None = None  # started with the first run
        self.forkserver_failed = False
        self.stop_requested = False  # SIGTERM (`gdw stop` where sweep.json cannot be written): as if stopped

    def stopping(self) -> bool:
        return self.stop_requested or self.sweep.reload().stopped

    def _take_slot(self, gpu: str | None = None) -> int | None:
        for i in self.free:
            if gpu is None or self.slots[i].gpu == gpu:
                self.free.remove(i)
                return i
        return None

    def _adopt(self, run_dir: Path) -> None:
        gpus = claim_info(run_dir).get("gpus")
        self.adopted[run_dir.name] = self._take_slot(gpus) if gpus else self._take_slot()
        self.say(f"{time.strftime('%H:%M:%S')} adopted {run_dir.name} (already running)")

    def _record(self, **fields: Any) -> None:
        """schedule.jsonl: when each run's process started and ended, on which slot (benchmarks read it)."""
        try:
            with open(self.sweep.dir / SCHEDULE, "a", encoding="utf-8") as f:
                f.write(json.dumps({"t": time.time(), **fields}) + "\n")
        except OSError:
            pass

    def _start_process(self, run_dir: Path, slot: Slot) -> subprocess.Popen | ForkedRun:
        """The run's own process: forked from the fork server, or a fresh `python -m engine.sweep.task`.
        OSError when the run cannot be started (e.g. its directory was deleted)."""
        if not self.forkserver_failed:
            open(run_dir / LOG, "ab").close()  # the child writes there: fail here, as a detached launch would
            try:
                if self.forkserver is None:
                    self.forkserver = ForkServer()
                return self.forkserver.start(run_dir, run_dir / LOG, slot.env(), slot.threads)
            except ForkServerGone as e:
                self.forkserver_failed = True
                self.say(f"{time.strftime('%H:%M:%S')} fork server unavailable ({e}); each run now starts its own Python")
        return launch_detached(run_dir, env=slot.env(), command=task_command(run_dir))

    def _launch(self, run_dir: Path, slot: int) -> None:
        try:
            proc = self._start_process(run_dir, self.slots[slot])
        except OSError as e:  # e.g. its directory was deleted meanwhile: said, and the sweep goes on
            self.free.append(slot)
            self.say(f"{time.strftime('%H:%M:%S')} cannot start {run_dir.name}: {e.strerror or e}")
            return
        self.children[run_dir.name] = (proc, slot)
        self._record(event="start", run_id=run_dir.name, slot=slot, pid=proc.pid)
        self.say(f"{time.strftime('%H:%M:%S')} started {run_dir.name} on {self.slots[slot].label()}")

    def _reap(self) -> None:
        for run_id, (proc, slot) in list(self.children.items()):
            rc = proc.poll()
            if rc is None:
                continue
            del self.children[run_id]
            self.free.append(slot)
            self._record(event="end", run_id=run_id, slot=slot, rc=rc)
            run_dir = self.sweep.runs_dir / run_id
            if rc == CLAIMED:  # another task got there first: wait for it instead
                self._adopt(run_dir)
                continue
            if isinstance(proc, ForkedRun) and proc.status_lost:
                rc = None  # its fork server died: the exit code is unknown, as for an adopted run
            s = record_exit(run_dir, rc, self.stopping())
            status = s.get("status")
            detail = f" final_acc={s['final_acc']:.2f}" if status == "finished" and s.get("final_acc") is not None else (
                f" ({s.get('message')})" if s.get("message") else "")
            self.say(f"{time.strftime('%H:%M:%S')} {status or 'ended'} {run_id}{detail}")
        for run_id, slot in list(self.adopted.items()):
            if not busy(self.sweep.runs_dir / run_id):
                del self.adopted[run_id]
                if slot is not None:
                    self.free.append(slot)
                s = record_exit(self.sweep.runs_dir / run_id, None, self.stopping())
                detail = f" ({s.get('message')})" if s.get("status") == "failed" and s.get("message") else ""
                self.say(f"{time.strftime('%H:%M:%S')} {s.get('status', 'ended')} {run_id} (adopted){detail}")

    def run(self, run_dirs: list[Path] | None = None) -> int:
        lock = take_scheduler_lock(self.sweep)
        if lock is None:
            self.say(f"sweep {self.sweep.id}: another scheduler is running it; it starts the remaining runs")
            return 0
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, self._stop_requested)
        try:
            todo: deque[Path] = deque()
            for run_dir in run_dirs if run_dirs is not None else self.sweep.run_dirs():
                if not run_dir.is_dir():  # deleted (the runs screen offers it): said; the others run
                    self.say(f"{time.strftime('%H:%M:%S')} missing {run_dir.name} (its directory is gone; not started)")
                    continue
                if read_summary(run_dir).get("status") == "finished":
                    continue
                if busy(run_dir):
                    self._adopt(run_dir)
                else:
                    todo.append(run_dir)
            last_refresh = 0.0
            while True:
                self._reap()
                while self.free and todo and not self.stopping():
                    run_dir = todo.popleft()
                    if read_summary(run_dir).get("status") == "finished":
                        continue
                    if busy(run_dir):
                        self._adopt(run_dir)
                        continue
                    self._launch(run_dir, self.free.pop(0))
                if self.on_refresh is not None and time.monotonic() - last_refresh >= REFRESH_S:
                    last_refresh = time.monotonic()
                    self.on_refresh(self.sweep)
                if not self.children and not self.adopted and (not todo or self.stopping()):
                    break
                time.sleep(POLL_S)
            if self.on_refresh is not None:
                self.on_refresh(self.sweep)
            return 0
        finally:
            if self.forkserver is not None:
                self.forkserver.close()
            os.close(lock)
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    def _stop_requested(self, signum: int, frame: Any) -> None:
        if not self.stop_requested:
            self.say(f"{time.strftime('%H:%M:%S')} stop requested by signal: no more runs start")
        self.stop_requested = True


class LocalExecutor:
    """`options`: gpus, per_gpu, workers (the sweep's), and for this call `detach` (bool) and
    `on_refresh`/`say` (the foreground display)."""

    name = "local"

    def __init__(self, options: dict[str, Any]):
        self.options = options
        self.scheduler_proc: subprocess.Popen | None = None  # the detached scheduler this call started

    def submit(self, sweep: Sweep, run_dirs: list[Path]) -> None:
        if self.options.get("detach"):
            self.scheduler_proc = start_detached_scheduler(sweep)
            return
        slots = plan_slots(self.options, sweep_device(sweep))
        Scheduler(sweep, slots, self.options.get("on_refresh"), self.options.get("say", print)).run(run_dirs)

    def job_states(self, sweep: Sweep) -> dict[str, str]:
        return {}  # the run directories (locks, summaries) say everything on this machine

    def cancel(self, sweep: Sweep, run_dirs: list[Path]) -> None:
        stop_runs(run_dirs)


def signal_scheduler(sweep: Sweep) -> bool:
    """SIGTERM to the sweep's local scheduler (its pid is in its lock): it starts no more runs.
    True if one was signalled."""
    from .store import SCHEDULER_LOCK

    if not scheduler_alive(sweep):
        return False
    try:
        os.kill(int((sweep.dir / SCHEDULER_LOCK).read_text().split()[0]), signal.SIGTERM)
        return True
    except (OSError, ValueError, IndexError):
        return False


def stop_runs(run_dirs: list[Path]) -> list[Path]:
    """SIGTERM to each run's task (the engine checkpoints and exits, status `stopped`); the runs signalled."""
    hit = []
    for run_dir in run_dirs:
        if not claimed(run_dir) and not engine_alive(run_dir):
            continue
        from ..runs import lock_pid

        info = claim_info(run_dir)
        pid = info.get("pid") if claimed(run_dir) and info.get("host") == os.uname().nodename else lock_pid(run_dir)
        if pid:
            try:
                os.kill(int(pid), signal.SIGTERM)
                hit.append(run_dir)
            except (ProcessLookupError, PermissionError):
                pass
    return hit


def start_detached_scheduler(sweep: Sweep) -> subprocess.Popen:
    log = open(sweep.dir / SCHEDULER_LOG, "ab")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine.sweep.local", "--sweep-dir", str(sweep.dir)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            close_fds=True, cwd=os.getcwd(), env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    finally:
        log.close()
    try:  # until it holds its lock, readers see it "starting", not "died"
        atomic_write_text(sweep.dir / SCHEDULER_PID, f"{proc.pid} {os.uname().nodename}\n")
    except OSError:
        pass
    return proc


def wait_for_scheduler_exit(sweep: Sweep, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while scheduler_alive(sweep):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.sweep.local", description="the detached local scheduler of a sweep")
    parser.add_argument("--sweep-dir", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        sweep = find_sweep(args.sweep_dir.parent.parent, str(args.sweep_dir))
        slots = plan_slots(sweep.options, sweep_device(sweep))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{time.strftime('%H:%M:%S')} scheduler pid {os.getpid()}: {len(slots)} slot(s) "
          f"({', '.join(s.label() for s in slots)}), {slots[0].threads} thread(s) each", flush=True)
    rc = Scheduler(sweep, slots, say=lambda line: print(line, flush=True)).run()
    print(f"sweep={sweep.id}", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
