"""Training in the CLI's own process (`gdw run --headless`, `gdw resume --headless`): Rich progress
bars on a terminal, plain lines for a file or a pipe, and `final_acc=` at the end."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from rich.console import Console

from engine.config import ConfigError
from engine.console import plain_line, step_line
from engine.runs import EVENTS, read_summary

from .errors import err, fail

console = Console()
PLAIN_STEP_EVERY_S = 30.0


def train_here(run_dir: Path, resume: bool) -> int:
    """Train in this process with Rich progress on a terminal, plain lines otherwise."""
    from engine.lifecycle import train_run

    progress = RichProgress() if sys.stdout.isatty() else None
    plain = {"last_step_line": time.time(), "iters": None}

    def show(event: dict) -> None:
        if progress is not None:
            progress.update(event)
        if event["type"] == "run_start":
            plain["iters"] = event["iters_per_epoch"]
        if progress is None and event["type"] == "step" and time.time() - plain["last_step_line"] >= PLAIN_STEP_EVERY_S:
            plain["last_step_line"] = time.time()  # a batch log gets a sign of life within long epochs
            console.print(step_line(event, plain["iters"]), markup=False, highlight=False, soft_wrap=True)
        line = plain_line(event)
        if line and (progress is None or event["type"] in ("run_start", "epoch", "log", "failure", "stopped", "run_end")):
            (progress.console if progress else console).print(line, markup=False, highlight=False, soft_wrap=True)

    try:
        if progress is not None:
            progress.start()
        summary = train_run(run_dir, resume=resume, on_event=show)
    except ConfigError as e:
        if progress is not None:
            progress.stop()
        if not resume and not (run_dir / EVENTS).exists():
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing was run: leave no half-made run behind
        fail(str(e))
    except BaseException as e:
        if progress is not None:
            progress.stop()
        s = read_summary(run_dir)
        # The engine's own message; the exception's when even the summary could not be written (full disk).
        message = s.get("message") if s.get("status") == "failed" else f"{type(e).__name__}: {e}"
        err.print(f"run {run_dir.name} failed: {message} (details: gdw show {run_dir.name})",
                  markup=False, highlight=False, soft_wrap=True)
        return 1
    if progress is not None:
        progress.stop()
    console.print(f"run directory: {run_dir}", markup=False, highlight=False, soft_wrap=True)
    if summary.get("status") == "finished":
        print(f"final_acc={summary['final_acc']:.2f}", flush=True)
    return 0


class RichProgress:
    """Epoch and iteration bars with the latest loss and accuracy, for a terminal."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TimeRemainingColumn(), TextColumn("{task.fields[info]}"), console=console, transient=False,
        )
        self.console = self.bar.console
        self.epoch_task = self.bar.add_task("epoch", total=None, info="")
        self.iter_task = self.bar.add_task("iter ", total=None, info="")

    def start(self) -> None:
        self.bar.start()

    def stop(self) -> None:
        self.bar.stop()

    def update(self, event: dict) -> None:
        kind = event["type"]
        if kind == "run_start":
            self.bar.update(self.epoch_task, total=event["epochs"], completed=event["start_epoch"])
            self.bar.update(self.iter_task, total=event["iters_per_epoch"], completed=0)
        elif kind == "step":
            meta = "" if event.get("meta_loss") is None else f" meta {event['meta_loss']:.3f}"
            self.bar.update(self.iter_task, completed=event["iter"] + 1,
                            info=f"loss {event['loss']:.3f}{meta} · acc* {event['train_acc']:.1f} · {event['it_s']:.1f} it/s")
        elif kind == "epoch":
            self.bar.update(self.epoch_task, completed=event["epoch"] + 1,
                            info=f"test {event['test_acc']:.2f} · best {event['best_acc']:.2f}")
            self.bar.update(self.iter_task, completed=0)

