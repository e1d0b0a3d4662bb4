"""The dashboard's two header lines: which run, its status, progress, speed, elapsed time and ETA."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widget import Widget

from engine.method_table import method_info

from ..formatting import badge, format_acc, format_clock, format_duration, format_speed, format_usage
from ..resources import Usage
from ..run_model import INFO, PROGRESS, RunModel


def header_text(model: RunModel, status: str, now: float | None, width: int, reading: bool = False,
                usage: Usage | None = None) -> Text:
    """`now` is given only while the run is live, so a finished run's header never changes.
    `usage`: the engine process's resources, while it runs."""
    symbol, color = badge(status)
    line1 = Text(no_wrap=True, overflow="ellipsis")
    line1.append(f" {symbol} {status.upper()} ", style=f"bold {color}")
    parts = [model.preset or "?"]
    if model.dataset and not (model.preset or "").startswith(model.dataset):  # `digits-unif60` says it already
        parts.append(model.dataset)
    parts.append(model.method or "?")
    if getattr(method_info(model.method), "phases", 1) > 1 and model.epochs:  # GLC: which phase, and where it ends
        phase1 = model.glc_phase1_epochs()
        phase = 1 if min(model.epoch, model.epochs - 1) < phase1 else 2
        parts.append(f"phase {phase}/2 ({'Ĉ after epoch ' + str(phase1) if phase == 1 else 'corrected loss'})")
    if model.seed is not None:
        parts.append(f"seed {model.seed}")
    if model.device:
        parts.append(model.device)
    line1.append(" " + " · ".join(parts), style="bold")
    if usage is not None and format_usage(usage):
        line1.append(f"   {format_usage(usage)}", style="#79c0ff")
    if model.run_id:
        line1.append(f"   {model.run_id}", style="dim")

    line2 = Text(no_wrap=True, overflow="ellipsis")
    epoch_shown = min(model.epoch + 1, model.epochs) if model.epochs else model.epoch + 1
    line2.append(f" epoch {epoch_shown}/{model.epochs or '?'} ")
    bar_w = 16 if width >= 100 else 8
    filled = round(model.progress_fraction() * bar_w)
    line2.append("█" * filled, style=color)
    line2.append("░" * (bar_w - filled), style="dim")
    bits = []
    if reading:  # the epoch and speed are old until the reader reaches the end of the file
        line2.append(" catching up…", style="italic #e3b341")
    if model.iters_per_epoch and model.iter >= 0:
        bits.append(f"it {model.iter + 1}/{model.iters_per_epoch}")
    if model.it_s is not None and not model.ended and not reading:
        bits.append(format_speed(model.it_s))
    bits.append(f"elapsed {format_duration(model.elapsed(now))}")
    eta = model.eta() if status == "running" and not reading else None
    if eta is not None:
        bits.append(f"ETA {format_duration(eta)}" + (f" ({format_clock(now + eta)})" if now is not None else ""))
    if model.best_acc is not None:
        bits.append(f"best {format_acc(model.best_acc)}")
    if model.final_acc is not None:
        bits.append(f"final {format_acc(model.final_acc)}")
    line2.append(" " + " · ".join(bits))
    text = Text("\n").join([line1, line2])
    text.no_wrap, text.overflow = True, "ellipsis"
    return text


class RunHeader(Widget):
    """Fixed at two lines, so an update repaints these lines only (a Static would re-layout the screen)."""

    DEFAULT_CSS = """
    RunHeader { height: 2; background: $panel; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.text = Text()

    FACETS = frozenset({INFO, PROGRESS})

    def update(self, run) -> None:
        """Paint from a RunFollower (gdw_tui/run_follower.py): the clock ticks only while the run is live."""
        live = run.status in ("running", "stopping")
        self.show(run.model, run.status, time.time() if live else None, not run.caught_up, run.usage if live else None)

    def show(self, model: RunModel, status: str, now: float | None, reading: bool = False, usage: Usage | None = None) -> None:
        text = header_text(model, status, now, self.size.width or 80, reading, usage)
        if text.plain != self.text.plain or text.spans != self.text.spans:
            self.text = text
            self.refresh()

    def render(self) -> Text:
        return self.text
