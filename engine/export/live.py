"""Live logging (`--log tensorboard|mlflow|wandb`, preset field train.log): a training run's records,
streamed to the backend while it trains.

The engine hands each event to `LiveLog`, which only queues it: a background thread converts the
events with the same RecordStream as `gdw export` and writes them with the same sinks, so the
training loop pays for a queue put per event. The backend is opened before training starts (a
missing extra or an unreachable server is bad input, exit 2, before the run is marked running);
if it fails later, training goes on, the failure is said once on stderr, and `gdw export` can send
the rest later (it adds only what is missing).
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from ..config import ConfigError
from .records import RecordStream, run_info

FLUSH_EVERY_S = 1.0  # the writer thread batches what arrived in this long (one MLflow request, not ten)
CLOSE_TIMEOUT_S = 120.0
_END = object()


def check_live_log(cfg: dict[str, Any], probe_server: bool = True) -> None:
    """The torch-free pre-flight of train.log (CLI, sweeps and the UI's launch form): the backend's
    extra is installed and (probe_server) an MLflow server answers. Imports no backend library.
    The launch form checks as the user types, without the network; the engine probes at start."""
    backend = cfg["train"]["log"]
    if backend == "none":
        return
    from ..extras import require_installed

    require_installed(backend, f"train.log = {backend} (--log {backend})")
    if backend == "mlflow" and probe_server:
        from urllib.parse import urlparse

        from .to_mlflow import check_tracking_uri, tracking_uri

        uri = tracking_uri(cfg["train"]["log_to"] or None)
        if urlparse(uri).scheme in ("http", "https"):
            check_tracking_uri(uri)


def destination(run_dir: Path, backend: str, log_to: str, sweep: str | None) -> Path:
    """Where TensorBoard's or W&B's files go: train.log_to, or beside the runs (RUNS_DIR/tensorboard, RUNS_DIR/wandb)."""
    root = Path(log_to).expanduser() if log_to else run_dir.parent / backend
    if backend == "tensorboard":
        return root / sweep / run_dir.name if sweep else root / run_dir.name
    return root


def open_sink(run_dir: Path, cfg: dict[str, Any], resume: bool) -> Any:
    """The backend's sink for this run, started (ConfigError when it cannot be)."""
    import os

    from ..extras import require

    backend, log_to = cfg["train"]["log"], cfg["train"]["log_to"]
    require(backend, f"train.log = {backend}")
    info = run_info(run_dir)
    if backend == "tensorboard":
        from .to_tensorboard import TensorBoardSink

        sink: Any = TensorBoardSink(destination(run_dir, backend, log_to, info.sweep))
    elif backend == "mlflow":
        from .to_mlflow import MlflowSink, check_tracking_uri, client_for, experiment_id, sweep_parent

        uri = check_tracking_uri(log_to or None)
        client = client_for(uri)
        exp_id = experiment_id(client, os.environ.get("MLFLOW_EXPERIMENT_NAME") or "gdw")
        parent = sweep_parent(client, exp_id, info.sweep, None) if info.sweep else None
        sink = MlflowSink(client, exp_id, parent, live=True)
    else:
        from .to_wandb import WandbSink

        sink = WandbSink(destination(run_dir, backend, log_to, info.sweep), os.environ.get("WANDB_PROJECT") or "gdw",
                         info.sweep, online=os.environ.get("WANDB_MODE") == "online", resume=resume)
    try:
        sink.start(info)
    except ConfigError:
        raise
    except Exception as e:  # the backend refused (a server error, a full disk): bad input for this run's start
        raise ConfigError(f"train.log = {backend}: cannot start logging: {type(e).__name__}: {e}") from None
    return sink


class LiveLog:
    """Queue in the training thread, conversion and writing in a thread of its own."""

    def __init__(self, run_dir: Path, sink: Any, backend: str):
        self.run_dir, self.sink, self.backend = run_dir, sink, backend
        self.stream = RecordStream()
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.failure: str | None = None
        self.thread = threading.Thread(target=self._loop, name="gdw-live-log", daemon=True)
        self.thread.start()

    def __call__(self, event: dict[str, Any]) -> None:
        self.queue.put(event)

    def chain(self, on_event: Callable[[dict], None] | None) -> Callable[[dict], None]:
        def both(event: dict) -> None:
            self.queue.put(event)
            if on_event is not None:
                on_event(event)

        return both

    def _loop(self) -> None:
        while True:
            batch = [self.queue.get()]
            deadline = time.monotonic() + FLUSH_EVERY_S
            while batch[-1] is not _END and batch[-1].get("type") not in ("epoch", "run_end", "stopped", "failure"):
                try:
                    batch.append(self.queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            ended = batch[-1] is _END
            events = batch[:-1] if ended else batch
            self._write(events)
            if ended:
                return

    def _write(self, events: list[dict[str, Any]]) -> None:
        if self.failure is not None or not events:
            return
        try:
            self.sink.write([r for e in events for r in self.stream.feed(e)])
            self.sink.flush()
        except Exception as e:
            self._fail(e)

    def _fail(self, e: BaseException) -> None:
        self.failure = f"{type(e).__name__}: {e}".splitlines()[0]
        print(f"warning: live logging to {self.backend} stopped ({self.failure}); training goes on, "
              f"`gdw export {self.run_dir.name} --to {self.backend}` sends the rest later", file=sys.stderr, flush=True)

    def close(self) -> None:
        """Write what is queued, then the run's final summary and files; waits for the writer thread."""
        self.queue.put(_END)
        self.thread.join(CLOSE_TIMEOUT_S)
        if self.failure is None:
            try:
                self.sink.finish(run_info(self.run_dir))
            except Exception as e:
                self._fail(e)
        try:
            self.sink.close()
        except Exception:
            pass


def start_live_log(run_dir: Path, cfg: dict[str, Any], resume: bool) -> LiveLog | None:
    backend = cfg["train"]["log"]
    if backend == "none":
        return None
    return LiveLog(run_dir, open_sink(run_dir, cfg, resume), backend)
