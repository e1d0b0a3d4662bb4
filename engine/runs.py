"""Run directories: creation with unique ids, the summary file, the engine lock and honest status.

Torch-free: the CLI and the UI list, inspect and stop runs through this module. The layout of a
run directory and what each status means are engine.rundir's. Runs on other hosts (Slurm)
are seen through their heartbeat (engine.heartbeat).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import signal
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

from .config import ConfigError, from_toml_dict, to_toml
from .heartbeat import alive_elsewhere
# The layout's names, also importable from here, where most readers of run directories look.
from .rundir import CONFIG, EVENTS, LOCK, LOG, STATUSES, SUMMARY  # noqa: F401


def runs_dir_from(option: str | os.PathLike[str] | None) -> Path:
    return Path(option or os.environ.get("GDW_RUNS_DIR") or "./runs").expanduser()


def ensure_runs_dir(path: Path) -> Path:
    """Create the runs directory if needed; a clear ConfigError when it cannot be used."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"runs directory {path} is a file, not a directory (choose another with --runs-dir)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create runs directory {path}: {e.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"runs directory {path} is not writable (choose another with --runs-dir)")
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "run"


def create_run(runs_dir: Path, cfg: dict[str, Any], tag: str = "", presets_dir: str | None = None,
               presets: dict[str, dict[str, Any]] | None = None) -> Path:
    """A new, unique run directory with config.toml and a `created` summary. `tag` ends its name
    (a sweep's grid values: `…-gdw-s1-outer_lr10`), so runs of one second differ by more than `-2`.
    The summary keeps what the run changed from its preset (`changes`), so listings need not parse
    every run's config.toml; `presets` caches the presets read for a sweep's many runs.

    mkdir is atomic, so concurrent launches (even in the same second) never share a directory.
    """
    ensure_runs_dir(runs_dir)
    base = f"{time.strftime('%Y%m%d-%H%M%S')}-{_slug(cfg.get('preset', 'run'))}-{cfg['train']['method']}-s{cfg['train']['seed']}"
    if tag:
        base += f"-{_slug(tag)}"
    for n in range(1, 10000):
        run_dir = runs_dir / (base if n == 1 else f"{base}-{n}")
        try:
            run_dir.mkdir()
            break
        except FileExistsError:
            continue
        except OSError as e:
            raise ConfigError(f"cannot create a run in {runs_dir}: {e.strerror}") from None
    else:  # pragma: no cover - 10,000 runs in one second
        raise ConfigError(f"too many runs named {base} in {runs_dir}")
    try:
        atomic_write_text(run_dir / CONFIG, to_toml(cfg))
        summary = initial_summary(run_dir, cfg)
        from .changes import preset_changes  # engine.changes reads run directories through this module

        changes = preset_changes(cfg, presets_dir, presets)
        if changes is not None:  # a preset that cannot be read now: listings compute it from config.toml
            summary["changes"] = changes
        write_summary(run_dir, summary)
    except BaseException as e:  # a full disk, or Ctrl-C: no half-made run is left
        _remove_tree(run_dir)
        if isinstance(e, OSError):
            raise ConfigError(f"cannot write into {run_dir}: {e.strerror}") from None
        raise
    return run_dir


def initial_summary(run_dir: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": run_dir.name,
        "preset": cfg.get("preset", ""),
        "title": cfg.get("title", ""),
        "method": cfg["train"]["method"],
        "seed": cfg["train"]["seed"],
        "dataset": cfg["data"]["dataset"],
        "status": "created",
        "epoch": 0,
        "epochs": cfg["train"]["epochs"],
        "final_acc": None,
        "best_acc": None,
        "best_epoch": None,
        "created": time.time(),
        "started": None,
        "ended": None,
        "wall_s": 0.0,
        "pid": None,
        "device": None,
        "message": "",
    }


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary file, fsync, rename: readers see the old or the new file, never half."""
    # pid and thread in the name: two writers never share a temporary file.
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    atomic_write_text(run_dir / SUMMARY, json.dumps(summary, indent=2, allow_nan=False) + "\n")


def read_summary(run_dir: Path) -> dict[str, Any]:
    """The stored summary, or a minimal one when it is missing or unreadable (read_summary_checked)."""
    return read_summary_checked(run_dir)[0]


# The summary fields readers rely on and their JSON types (None allowed where listed).
_NUM, _INT, _STR = (int, float), (int,), (str,)
SUMMARY_TYPES: dict[str, tuple[tuple[type, ...], bool, str]] = {
    **{k: (_STR, False, "a string") for k in ("run_id", "preset", "title", "method", "dataset", "status", "message",
                                               "sweep", "setting", "changes")},
    **{k: (_INT, False, "an integer") for k in ("seed", "epoch", "epochs", "attempts")},
    **{k: (_NUM, True, "a number or null") for k in ("final_acc", "best_acc", "last_test_acc", "created", "started",
                                                     "ended")},
    "wall_s": (_NUM, False, "a number"), "best_epoch": (_INT, True, "an integer or null"),
    "pid": (_INT, True, "an integer or null"), "device": (_STR, True, "a string or null"),
    "grid": ((dict,), False, "an object"),
}


def _type_problem(key: str, value: Any) -> str | None:
    kinds, nullable, what = SUMMARY_TYPES[key]
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, kinds) or (isinstance(value, float) and value != value):
        shown = json.dumps(value) if not isinstance(value, str) else repr(value)
        return f"{key} must be {what} (got {shown if len(shown) <= 40 else shown[:37] + '...'})"
    return None


def read_summary_checked(run_dir: Path) -> tuple[dict[str, Any], str | None]:
    """The summary and, when the file was unusable, one line naming it and the problem.

    summary.json can be written by anyone who shares the runs directory: a field of the wrong
    type is left out (readers then see it as unknown) rather than crash every listing.
    """
    path = run_dir / SUMMARY
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:  # a run being created (config.toml is written first)
        return {"run_id": run_dir.name, "status": "created", "message": "summary.json missing or unreadable"}, None
    except (OSError, ValueError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e).splitlines()[0] if str(e) else type(e).__name__
        return ({"run_id": run_dir.name, "status": "created", "message": "summary.json missing or unreadable"},
                f"{path} is unreadable ({why}); the run counts as created")
    if not isinstance(data, dict):
        return ({"run_id": run_dir.name, "status": "created", "message": "summary.json missing or unreadable"},
                f"{path} is not a JSON object; the run counts as created")
    problems = [(key, why) for key in SUMMARY_TYPES if key in data and (why := _type_problem(key, data[key]))]
    for key, _ in problems:
        del data[key]
    if not problems:
        return data, None
    return data, f"{path}: {'; '.join(why for _, why in problems)}; shown without {'it' if len(problems) == 1 else 'them'}"


def load_run_config(run_dir: Path) -> dict[str, Any]:
    """The resolved config stored in a run directory; a one-line ConfigError if it is unusable."""
    path = run_dir / CONFIG
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{run_dir} is not a run directory (no {CONFIG})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} is corrupt: {str(e).splitlines()[0]}") from None
    preset = raw.pop("preset", run_dir.name)
    cfg = from_toml_dict(raw, str(path))
    cfg["preset"] = str(preset)
    return cfg


def engine_alive(run_dir: Path) -> bool:
    """True while an engine process holds the run's lock (works even if its pid was reused).

    The probe takes a *shared* lock: probes from several readers (UI, CLI) never mistake each
    other for an engine, which holds the lock exclusively.
    """
    return lock_held(run_dir / LOCK)


def lock_held(path: str | Path) -> bool:
    """True while some process holds an exclusive flock on `path` (engine, task claim, scheduler).

    The probe takes a *shared* lock, so several readers probing at once never see each other.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as e:
        return e.errno in (errno.EAGAIN, errno.EACCES)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def try_lock(path: Path, holder: str) -> int | None:
    """An exclusive flock on `path` for this process, `holder` written in it; None if another holds it.

    The descriptor stays open (and the lock held) for the life of the process (a task's claim, a
    sweep's scheduler lock).
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, holder.encode())
    return fd


def acquire_lock(run_dir: Path, wait_s: float = 0.5) -> int:
    """Take the run's lock for this engine process; ConfigError if another engine holds it.

    Retries for `wait_s`, so a reader's momentary status probe (engine_alive) is not taken
    for a running engine.
    """
    try:
        fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise ConfigError(f"cannot open the lock of run {run_dir.name}: {e.strerror}") from None
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise ConfigError(f"run {run_dir.name} is already running (another engine holds its lock)") from None
            time.sleep(0.02)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd  # kept open (and locked) for the life of the process


def lock_pid(run_dir: Path) -> int | None:
    try:
        return int((run_dir / LOCK).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def run_status(run_dir: Path, summary: dict[str, Any] | None = None) -> str:
    """The honest status: a run marked running whose engine is gone is `interrupted`."""
    summary = summary or read_summary(run_dir)
    status = summary.get("status", "created")
    if status in ("running", "created"):
        lock = os.path.join(run_dir, LOCK)  # string paths: listings call this for every run
        events = os.path.join(run_dir, EVENTS)
        if status == "created" and not os.path.exists(lock) and not os.path.exists(events):
            return "created"  # no engine ever took this run, here or on another host (it creates engine.lock first)
        if lock_held(lock) or alive_elsewhere(run_dir):  # another host: its heartbeat (Slurm)
            return "running"
        # An engine that took the lock (it creates engine.lock) and died during its setup, before
        # any event, is interrupted too; `created` is only a run no engine has touched yet.
        started = status == "running" or os.path.exists(events) or os.path.exists(lock)
        return "interrupted" if started else "created"
    return status if status in STATUSES else "interrupted"


def list_runs(runs_dir: Path) -> list[dict[str, Any]]:
    """Every run directory with its summary and honest status, newest first; a run whose
    summary.json is unusable carries the line that says so under "problem"."""
    if not runs_dir.is_dir():
        return []
    runs = []
    with os.scandir(runs_dir) as entries:  # one directory read, and string paths: 10,000 runs list in a second
        for entry in entries:
            if entry.is_dir() and os.path.exists(os.path.join(entry.path, CONFIG)):
                d = Path(entry.path)
                s, problem = read_summary_checked(d)
                if problem:
                    s["problem"] = problem  # for the listing to say (gdw runs, the runs screen)
                s["status"] = run_status(d, s)
                s["run_id"] = entry.name
                s["path"] = entry.path
                runs.append(s)
    runs.sort(key=lambda s: s.get("created") or 0, reverse=True)
    return runs


def find_run(runs_dir: Path, ref: str) -> Path:
    """A run id (or unique prefix/suffix) in the runs directory, or a path to a run directory."""
    p = Path(ref).expanduser()
    if p.is_dir() and (p / CONFIG).exists():
        return p
    if (runs_dir / ref).is_dir() and (runs_dir / ref / CONFIG).exists():
        return runs_dir / ref
    if runs_dir.is_dir() and ref:
        runs = [d for d in runs_dir.iterdir() if d.is_dir() and (d / CONFIG).exists()]
        # A prefix or suffix match wins over a match in the middle of a name.
        for matches in (
            [d for d in runs if d.name.startswith(ref) or d.name.endswith(ref)],
            [d for d in runs if ref in d.name],
        ):
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                names = ", ".join(sorted(m.name for m in matches)[:5])
                more = f" and {len(matches) - 5} more" if len(matches) > 5 else ""
                raise ConfigError(f"run '{ref}' is ambiguous in {runs_dir}: {names}{more}")
    raise ConfigError(f"no run '{ref}' in {runs_dir} (see `gdw runs`; a run id or a run directory path)")


def stop_run(run_dir: Path, hard: bool = False) -> bool:
    """Ask a running engine to stop (SIGTERM: checkpoint and exit; hard: SIGKILL). False if not running."""
    if not engine_alive(run_dir):
        return False
    pid = lock_pid(run_dir)
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGKILL if hard else signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


ARCHIVE = ".archive"  # under the runs directory; list_runs skips it (it holds no config.toml)


def _refuse_if_running(run_dir: Path, doing: str) -> None:
    if engine_alive(run_dir):
        raise ConfigError(f"run {run_dir.name} is running: stop it first, then {doing} it")


def archive_run(run_dir: Path) -> Path:
    """Move a run that is not running to <runs dir>/.archive/ (out of the lists, nothing lost)."""
    _refuse_if_running(run_dir, "archive")
    archive = run_dir.parent / ARCHIVE
    archive.mkdir(exist_ok=True)
    target = archive / run_dir.name
    n = 2
    while target.exists():
        target = archive / f"{run_dir.name}-{n}"
        n += 1
    os.replace(run_dir, target)  # a rename on the same file system: all or nothing
    return target


def delete_run(run_dir: Path) -> None:
    """Remove a run that is not running, with everything in it."""
    _refuse_if_running(run_dir, "delete")
    import shutil

    shutil.rmtree(run_dir)
