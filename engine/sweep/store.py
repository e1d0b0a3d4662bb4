"""A sweep on disk: `RUNS_DIR/sweeps/SWEEP_ID/sweep.json`, listing its runs and executor options.

Torch-free. The runs themselves are ordinary run directories in RUNS_DIR (created with
engine.runs.create_run), tagged with the sweep id and their setting in summary.json, so every
run command and the UI handle them as any other run. A sweep's status is counted from its runs'
honest statuses (engine.runs.run_status) and, where the executor knows it, the scheduler's state.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..config import ConfigError
from ..heartbeat import status_with_job
from ..runs import atomic_write_text, create_run, ensure_runs_dir, lock_held, read_summary, run_status, try_lock, write_summary
from .executor import EXECUTORS
from .spec import RunPlan, SweepSpec, grid_tag, parse_options
from .task import claimed

SWEEPS = "sweeps"
SWEEP_FILE = "sweep.json"
SCHEDULER_LOCK = "scheduler.lock"
SCHEDULER_LOG = "scheduler.log"
SCHEDULER_PID = "scheduler.pid"  # "PID HOST" of a detached scheduler, written by whoever started it


@dataclass
class Sweep:
    dir: Path
    data: dict[str, Any]

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def runs_dir(self) -> Path:
        return self.dir.parent.parent

    @property
    def name(self) -> str:
        return self.data.get("name", "")

    @property
    def executor(self) -> str:
        return self.data.get("executor", "local")

    @property
    def options(self) -> dict[str, Any]:
        return self.data.get("options", {})

    @property
    def runs(self) -> list[dict[str, Any]]:
        """One entry per run: run_id, setting, preset, method, seed, grid."""
        return self.data.get("runs", [])

    def run_dirs(self) -> list[Path]:
        return [self.runs_dir / r["run_id"] for r in self.runs]

    @property
    def stopped(self) -> bool:
        return bool(self.data.get("stopped"))

    def reload(self) -> "Sweep":
        self.data = _read(self.dir)
        return self

    def save(self) -> None:
        atomic_write_text(self.dir / SWEEP_FILE, json.dumps(self.data, indent=2) + "\n")

    def set_stopped(self, stopped: bool) -> None:
        """The scheduler starts no more runs while a sweep is stopped (`gdw stop`); `gdw resume` clears it."""
        self.reload()
        self.data["stopped"] = stopped
        self.save()


def sweeps_root(runs_dir: Path) -> Path:
    return runs_dir / SWEEPS


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "sweep"


def create_sweep(runs_dir: Path, spec: SweepSpec, plans: list[RunPlan], presets_dir: str | None = None) -> Sweep:
    """The sweep directory and all its runs; on any failure nothing is left behind."""
    ensure_runs_dir(runs_dir)
    root = sweeps_root(runs_dir)
    base = f"{time.strftime('%Y%m%d-%H%M%S')}-{_slug(spec.name or spec.presets[0])}"
    made: list[Path] = []
    presets: dict[str, Any] = {}  # each preset read once for the runs' stored changes
    sweep_dir: Path | None = None
    try:
        root.mkdir(exist_ok=True)
        for n in range(1, 10000):
            candidate = root / (base if n == 1 else f"{base}-{n}")
            try:
                candidate.mkdir()
                sweep_dir = candidate
                break
            except FileExistsError:
                continue
        assert sweep_dir is not None
        entries = []
        for plan in plans:
            run_dir = create_run(runs_dir, plan.config, tag=grid_tag(plan.grid), presets_dir=presets_dir, presets=presets)
            made.append(run_dir)
            summary = read_summary(run_dir)
            summary.update(sweep=sweep_dir.name, setting=plan.setting, grid=plan.grid)
            write_summary(run_dir, summary)
            entries.append({"run_id": run_dir.name, "setting": plan.setting, "preset": plan.preset,
                            "method": plan.method, "seed": plan.seed, "grid": plan.grid})
        data = {
            "id": sweep_dir.name, "name": spec.name or spec.presets[0], "created": time.time(),
            "presets": spec.presets, "methods": spec.methods, "seeds": spec.seeds, "set": spec.sets,
            "grid": spec.grid, "source": spec.source, "executor": spec.executor, "options": spec.options,
            "stopped": False, "runs": entries,
        }
        sweep = Sweep(sweep_dir, data)
        sweep.save()
        return sweep
    except BaseException as e:  # a bad config, a full disk, or Ctrl-C half way: nothing is left behind
        with signals_held():
            for d in made:
                shutil.rmtree(d, ignore_errors=True)
            if sweep_dir is not None:
                shutil.rmtree(sweep_dir, ignore_errors=True)
        if isinstance(e, OSError):
            raise ConfigError(f"cannot create a sweep in {runs_dir}: {e.strerror}") from None
        raise


@contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait while this runs (a second Ctrl-C does not cut a clean-up short)."""
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _read(sweep_dir: Path) -> dict[str, Any]:
    path = sweep_dir / SWEEP_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{sweep_dir} is not a sweep directory (no {SWEEP_FILE})") from None
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path} is unreadable: {e}") from None
    problem = sweep_data_problem(data)
    if problem:
        raise ConfigError(f"{path}: {problem}")
    return data


# What the readers of sweep.json rely on: each run entry's fields, and the sweep's own.
NUMBER = (int, float)
ENTRY_FIELDS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "run_id": (str, "a run directory name"), "setting": (str, "a string"), "preset": (str, "a string"),
    "method": (str, "a string"), "seed": (int, "an integer"), "grid": (dict, "an object"),
}
SWEEP_FIELDS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "name": (str, "a string"), "created": (NUMBER, "a number"), "executor": (str, "a string"),
    "options": (dict, "an object"), "stopped": (bool, "true or false"),
}


def _got(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _wrong(value: Any, kind: type | tuple[type, ...]) -> bool:
    # JSON's true/false are not numbers here, though Python's bool is an int.
    return not isinstance(value, kind) or (isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)))


def sweep_data_problem(data: Any) -> str | None:
    """Why a parsed sweep.json cannot be used (the first wrong field, in words), or None.

    Every reader (gdw sweeps, show, report, resume, stop, the schedulers and the sweeps screen)
    goes through _read, so a file with wrong types is one line naming it, never a traceback.
    """
    if not isinstance(data, dict):
        return f"not a sweep file (a JSON object with a run list; got {type(data).__name__})"
    if not isinstance(data.get("runs"), list):
        return f"not a sweep file: runs must be a list of runs (got {_got(data.get('runs'))})"
    for key, (kind, what) in SWEEP_FIELDS.items():
        if key in data and _wrong(data[key], kind):
            return f"{key} must be {what} (got {_got(data[key])})"
    executor = data.get("executor", "local")
    if executor not in EXECUTORS:
        return f"executor must be one of {', '.join(EXECUTORS)} (got {_got(executor)})"
    try:
        parse_options(executor, data.get("options", {}), "options")
    except ConfigError as e:
        return str(e)
    for i, entry in enumerate(data["runs"]):
        if not isinstance(entry, dict):
            return f"runs[{i}] must be an object with {', '.join(ENTRY_FIELDS)} (got {_got(entry)})"
        for key, (kind, what) in ENTRY_FIELDS.items():
            if key not in entry:
                return f"runs[{i}] has no {key}"
            if _wrong(entry[key], kind):
                return f"runs[{i}].{key} must be {what} (got {_got(entry[key])})"
        run_id = entry["run_id"]
        if not run_id or "/" in run_id or "\\" in run_id or run_id in (".", "..") or run_id.startswith("."):
            return f"runs[{i}].run_id must be a run directory name in the runs directory (got {_got(run_id)})"
    return None


def list_sweeps(runs_dir: Path, problems: list[str] | None = None) -> list[Sweep]:
    """Every sweep in the runs directory, newest first. An unreadable one is left out, and the
    line that says why is appended to `problems` (for the caller to show)."""
    root = sweeps_root(runs_dir)
    if not root.is_dir():
        return []
    out = []
    for d in root.iterdir():
        if (d / SWEEP_FILE).is_file():
            try:
                out.append(Sweep(d, _read(d)))
            except ConfigError as e:
                if problems is not None:
                    problems.append(str(e))
    out.sort(key=lambda s: s.data.get("created") or 0, reverse=True)
    return out


def is_sweep_ref(runs_dir: Path, ref: str) -> bool:
    try:
        find_sweep(runs_dir, ref)
        return True
    except ConfigError:
        return False


def find_sweep(runs_dir: Path, ref: str) -> Sweep:
    """A sweep id (or unique prefix/suffix, or name), or a path to a sweep directory."""
    p = Path(ref).expanduser()
    if (p / SWEEP_FILE).is_file():
        return Sweep(p, _read(p))
    root = sweeps_root(runs_dir)
    if (root / ref / SWEEP_FILE).is_file():
        return Sweep(root / ref, _read(root / ref))
    sweeps = list_sweeps(runs_dir) if ref else []
    for matches in (
        [s for s in sweeps if s.id.startswith(ref) or s.id.endswith(ref)],
        [s for s in sweeps if s.name == ref],
    ):
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise ConfigError(f"sweep '{ref}' is ambiguous in {runs_dir}: {', '.join(sorted(m.id for m in matches)[:5])}")
    raise ConfigError(f"no sweep '{ref}' in {runs_dir} (see `gdw sweeps`)")


def sweep_named(runs_dir: Path, ref: str) -> Sweep | None:
    """The sweep `ref` names, or None when it names a run (or nothing): an exact sweep id, path or
    name wins over a run; a sweep id prefix counts only when no run matches."""
    from ..runs import find_run

    p = Path(ref).expanduser()
    if (p / SWEEP_FILE).is_file() or (sweeps_root(runs_dir) / ref / SWEEP_FILE).is_file():
        return find_sweep(runs_dir, ref)
    named = [s for s in list_sweeps(runs_dir) if s.name == ref]
    if len(named) > 1:
        raise ConfigError(f"several sweeps are named '{ref}': {', '.join(s.id for s in named[:5])}; give a sweep id")
    if named:
        return named[0]
    try:
        find_run(runs_dir, ref)
        return None
    except ConfigError:
        pass
    try:
        return find_sweep(runs_dir, ref)
    except ConfigError:
        return None


# --- status -----------------------------------------------------------------------------------------

# The columns of `gdw sweeps`: each run status counts in one of them. A run whose directory was
# deleted is "missing", never counted as failed (it did not fail; its numbers are simply gone).
BUCKETS = {"finished": "done", "running": "running", "failed": "failed",
           "created": "pending", "stopped": "pending", "interrupted": "pending", "queued": "pending",
           "missing": "missing"}


def run_states(sweep: Sweep, job_states: dict[str, str] | None = None) -> dict[str, str]:
    """run_id -> honest status. Where the scheduler knows a job (Slurm) that the run directory
    cannot show (the engine runs on another node), its state counts: queued or running."""
    out = {}
    for entry in sweep.runs:
        run_dir = sweep.runs_dir / entry["run_id"]
        if not run_dir.is_dir():
            out[entry["run_id"]] = "missing"
            continue
        job = (job_states or {}).get(entry["run_id"], "")
        status = status_with_job(run_status(run_dir), job)  # a fresh heartbeat of a job Slurm ended: interrupted
        if status != "running" and status != "finished" and claimed(run_dir):
            status = "running"  # its task holds it: the engine is starting (imports, data) or resuming
        if status in ("created", "interrupted", "stopped", "failed") and job in ("PENDING", "REQUEUED", "CONFIGURING"):
            status = "queued"
        elif status in ("created", "interrupted", "stopped", "failed") and job == "RUNNING":  # a requeued task starting
            status = "running"
        out[entry["run_id"]] = status
    return out


def counts(states: dict[str, str]) -> dict[str, int]:
    out = {"done": 0, "running": 0, "failed": 0, "pending": 0, "missing": 0}
    for status in states.values():
        out[BUCKETS.get(status, "failed")] += 1
    return out


def scheduler_state(sweep: Sweep, states: dict[str, str]) -> str:
    """What the CLI and the sweeps screen say of the sweep's scheduler: "stopped" (`gdw stop`),
    "alive", "starting" (started detached, not yet holding its lock), "died" (gone while runs wait
    that only it starts: killed, or its machine went down) or "-" (nothing left for it to do)."""
    if sweep.stopped:
        return "stopped"
    if sweep.executor != "local":
        return "-"
    if scheduler_alive(sweep):
        return "alive"
    if scheduler_starting(sweep):
        return "starting"
    if any(status in ("created", "interrupted") for status in states.values()):
        return "died"
    return "-"


def died_hint(sweep: Sweep) -> str:
    return f"scheduler died — resume with `gdw resume {sweep.id}`"


def scheduler_starting(sweep: Sweep) -> bool:
    """A scheduler started detached (its pid in scheduler.pid) that is still getting ready."""
    try:
        pid, host = (sweep.dir / SCHEDULER_PID).read_text().split()[:2]
        if host != os.uname().nodename:
            return False
        cmdline = Path(f"/proc/{int(pid)}/cmdline").read_bytes()
        state = Path(f"/proc/{int(pid)}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, ValueError):
        return False
    return state != "Z" and b"engine.sweep.local" in cmdline and str(sweep.dir).encode() in cmdline


def scheduler_alive(sweep: Sweep) -> bool:
    """True while a local scheduler holds the sweep's lock."""
    return lock_held(sweep.dir / SCHEDULER_LOCK)


def take_scheduler_lock(sweep: Sweep) -> int | None:
    """The sweep's scheduler lock for this process (kept for its life); None if another scheduler has it."""
    return try_lock(sweep.dir / SCHEDULER_LOCK, f"{os.getpid()}\n")
