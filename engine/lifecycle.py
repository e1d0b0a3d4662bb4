"""A run's life around the training loop: start, resume, stop, failure and the summary it ends with.

`train_run(run_dir)` runs (or, with resume=True, continues) the run whose config.toml is in
run_dir. Bad input (an unusable config, device, dataset, checkpoint, or a run that must not be
started or resumed) is a ConfigError raised before anything is marked running. From then on
every ending is recorded by the engine itself, in events.jsonl and summary.json: finished,
stopped (a signal asked for a clean stop: checkpoint and exit), or failed, classified as a
divergence, out of memory, a full disk or any other error, with its traceback.
"""

from __future__ import annotations

import errno
import importlib.metadata
import os
import platform
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

from . import __version__
from .allocator import keep_freed_memory
from .config import ConfigError
from .console import one_line, stopped_at
from .device import device_name, resolve_device
from .events import SCHEMA_VERSION, EventWriter
from .heartbeat import Heartbeat
from .rundir import CHECKPOINT, EVENTS, checkpoint_path, resume_refusal
from .runs import acquire_lock, load_run_config, read_summary, write_summary
from .signals import STOP
from .trainer import Diverged, Run, StopRequested


def train_run(run_dir: Path, resume: bool = False, on_event: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Run (or resume) the run in run_dir. Returns the final summary; a failure is re-raised after it is recorded."""
    installed_here = STOP.install()  # `python -m engine` installs it earlier, before importing torch
    try:
        return _train_run(Path(run_dir), resume, on_event)
    finally:
        if installed_here:
            STOP.uninstall()


def _train_run(run_dir: Path, resume: bool, on_event: Callable[[dict], None] | None) -> dict[str, Any]:
    keep_freed_memory()
    cfg = load_run_config(run_dir)
    lock_fd = acquire_lock(run_dir)  # from here on no other engine runs this run
    heartbeat = Heartbeat(run_dir).start()  # the lock is invisible from other hosts (Slurm); this is not
    try:
        if resume:
            # The same rule as `gdw resume` and the UI's R. We hold the lock, so a summary that
            # still says running is an engine that died: interrupted.
            status = read_summary(run_dir).get("status", "created")
            refusal = resume_refusal(run_dir, "interrupted" if status == "running" else status)
            if refusal:
                raise ConfigError(f"run {run_dir.name} {refusal}")
        device = resolve_device(cfg["train"]["device"])
        if not resume and (run_dir / EVENTS).exists() and (run_dir / EVENTS).stat().st_size > 0:
            raise ConfigError(f"run {run_dir.name} has already started; use `gdw resume {run_dir.name}`")
        live = None
        if cfg["train"]["log"] != "none":  # the backend's library is imported only when asked for
            from .export.live import start_live_log

            live = start_live_log(run_dir, cfg, resume)
            on_event = live.chain(on_event)
        try:
            try:
                run = Run(run_dir, cfg, device, on_event, resume=resume)
            except ConfigError:
                raise
            except BaseException as e:  # building the data or the model failed: reported like any failure
                _report_setup_failure(run_dir, e, on_event)
                raise
            return _execute(run, resume)
        finally:
            if live is not None:
                live.close()  # the last records, the final summary and files
    finally:
        heartbeat.stop()
        os.close(lock_fd)


def _execute(run: Run, resume: bool) -> dict[str, Any]:
    run.segment_start = time.time()
    try:
        if resume:
            run.emit("resume", from_epoch=run.epoch, from_iter=run.iter, checkpoint=CHECKPOINT)
        _emit_run_start(run, resumed=resume)
        run.update_summary(status="running", started=read_summary(run.run_dir).get("started") or time.time(), message="")
        try:
            run.train()
        except StopRequested:
            run.checkpoint()
            run.emit("stopped", epoch=run.epoch, iter=run.iter, reason=STOP.reason)
            run.update_summary(status="stopped", ended=time.time(), message=f"stopped ({STOP.reason}) at {stopped_at(run.epoch, run.iter)}")
            return read_summary(run.run_dir)
        final = run.final_acc()
        run.emit("run_end", final_acc=round(final, 4), best_acc=round(run.best_acc, 4), best_epoch=run.best_epoch,
                 wall_s=round(run.wall(), 3))
        run.update_summary(status="finished", final_acc=round(final, 4), ended=time.time(), message="")
        return read_summary(run.run_dir)
    except BaseException as e:
        _report_failure(run, e)
        raise
    finally:
        run.close()


def _emit_run_start(run: Run, resumed: bool) -> None:
    """The first event of a run and of every resumed segment: everything a reader needs to know about it."""
    d, cfg = run.data, run.cfg
    run.emit(
        "run_start",
        run_id=run.run_dir.name, preset=cfg.get("preset", ""), title=cfg.get("title", ""),
        config={k: cfg[k] for k in ("data", "model", "train")},
        method=cfg["train"]["method"], seed=cfg["train"]["seed"],
        device=str(run.device), device_name=device_name(run.device),
        classes=list(d.classes), num_classes=run.C, epochs=run.epochs, iters_per_epoch=run.iters_per_epoch,
        counts={
            "train": d.train.size, "meta": d.meta.size, "test": d.test.size,
            "train_per_class": list(d.train_per_class), "meta_per_class": list(d.meta_per_class),
        },
        noise={
            "kind": cfg["data"]["noise"], "rate": cfg["data"]["noise_rate"],
            "imbalance": cfg["data"]["imbalance"], "measured_rate": d.measured_noise_rate,
            "matrix": d.noise_matrix,
        },
        versions={
            "engine": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "torchvision": _torchvision_version(), "schema": SCHEMA_VERSION,
        },
        pid=os.getpid(), resumed=resumed, start_epoch=run.epoch,
    )
    if cfg["train"]["bf16"] and not run.bf16:
        run.emit("log", level="warning", message=f"train.bf16 applies to CUDA only; ignored on {run.device}")
    if d.measured_noise_rate > 0:
        run.emit("log", level="info", message=f"measured label corruption: {100 * d.measured_noise_rate:.2f}% of {d.train.size} training labels")


def _torchvision_version() -> str:
    """From the package metadata: importing torchvision for its version string cost ~2 s of every start."""
    try:
        return importlib.metadata.version("torchvision")
    except importlib.metadata.PackageNotFoundError:
        return "unavailable"


def _report_setup_failure(run_dir: Path, e: BaseException, on_event: Callable[[dict], None] | None) -> None:
    """Building the data or the model failed: there is no Run yet, so the failure is written here."""
    if isinstance(e, KeyboardInterrupt):
        message, tb = "interrupted during setup, before training started", None
    else:
        message = one_line(e)
        tb = traceback.format_exc()
    try:
        writer = EventWriter(run_dir / EVENTS)
        try:
            event = writer.emit("failure", kind="error", message=message, traceback=tb, epoch=None, iter=None)
        finally:
            writer.close()
        if on_event is not None:
            on_event(event)
        summary = read_summary(run_dir)
        summary.update(status="failed", message=message, ended=time.time())
        write_summary(run_dir, summary)
    except OSError:
        pass  # a full disk: the exception still propagates


def _report_failure(run: Run, e: BaseException) -> None:
    """Classify the failure, say what to do about it, and record it in the events and the summary."""
    epoch = run.epoch if run.epoch < run.epochs else None
    if isinstance(e, Diverged):
        kind, message, tb, it = "diverged", str(e), None, e.it
        epoch = e.epoch
    elif isinstance(e, torch.cuda.OutOfMemoryError):
        memory = ""
        if run.device.type == "cuda":
            memory = f" ({torch.cuda.get_device_properties(run.device).total_memory / 2**30:.1f} GiB total)"
        kind, it = "oom", run.iter
        message = (f"CUDA out of memory with train.batch_size={run.batch_size} on {run.device}{memory}; "
                   f"lower train.batch_size")
        tb = traceback.format_exc()
    elif isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        # A full disk or a read-only runs directory: say so plainly; checkpoints are written
        # atomically, so the last good one is still there to resume from.
        kind, it = "error", run.iter
        where = f" writing {e.filename}" if e.filename else ""
        then = (f"`gdw resume {run.run_dir.name}` (the last good checkpoint is kept)"
                if checkpoint_path(run.run_dir).exists() else "start the run again")
        message = f"cannot write the run's files ({e.strerror}{where}); free space or make {run.run_dir} writable, then {then}"
        tb = traceback.format_exc()
    elif isinstance(e, KeyboardInterrupt):
        kind, it, message, tb = "error", run.iter, "interrupted by a second signal before a clean stop", None
    else:
        kind, it = "error", run.iter
        message = one_line(e)
        tb = traceback.format_exc()
    # On a full disk either write may fail; each is tried, and the exception still propagates.
    try:
        run.emit("failure", kind=kind, message=message, traceback=tb, epoch=epoch, iter=it)
    except OSError:
        pass
    try:
        run.update_summary(status="failed", ended=time.time(), message=message)
    except OSError:
        pass
