"""Compare screen: the accuracy and loss curves of two or more runs overlaid, with a summary table."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from engine.runs import EVENTS, run_status

from .formatting import badge, format_acc, format_duration
from .run_model import RunModel
from .tailer import RunTail
from .widgets.line_chart import Curve, LineChart
from .widgets.palette import curve_color
from .widgets.pane import Pane


def load_model(run_dir: Path) -> RunModel:
    """All events of a run folded into a model, read in bounded batches."""
    model = RunModel(run_id=run_dir.name)
    tail = RunTail(str(run_dir / EVENTS))
    while True:
        batch = tail.read()
        if batch.restarted:
            model = RunModel(run_id=run_dir.name)
        model.apply_all(batch.events)
        if batch.at_end or batch.error:
            return model


def run_names(models: list[RunModel]) -> list[str]:
    """Short curve labels: what differs between the runs (method, seed, preset), else the run id."""
    fields = [("method", lambda m: m.method), ("seed", lambda m: f"s{m.seed}"), ("preset", lambda m: m.preset)]
    varying = [(n, f) for n, f in fields if len({f(m) for m in models}) > 1]
    names = [" ".join(f(m) for _, f in varying) for m in models]
    if len(set(names)) < len(names) or not all(names):
        return [m.run_id for m in models]
    return names


class CompareScreen(Screen):
    BINDINGS = [Binding("escape", "app.pop_screen", "back")]

    def __init__(self, run_dirs: list[Path], **kwargs) -> None:
        super().__init__(**kwargs)
        self.run_dirs = run_dirs
        self.models: list[RunModel] = []
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Static(f" Compare · {len(self.run_dirs)} runs", id="compare-title")
        with Container(id="compare-panes"):
            yield Pane(LineChart(x_label="epoch", empty_text="loading…", id="compare-acc"), title="Test accuracy %", group="", id="compare-acc-pane")
            yield Pane(LineChart(x_label="iteration", empty_text="loading…", id="compare-loss"), title="Training loss", group="", id="compare-loss-pane")
        table = DataTable(id="compare-table", cursor_type="row")
        table.add_columns("", "run", "status", "method", "seed", "epochs", "final", "best", "elapsed")
        yield table
        yield Footer()

    def on_mount(self) -> None:
        for chart in self.query(LineChart):
            chart.x_format = lambda v: f"{v:.0f}"
        self.load_runs()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def load_runs(self) -> None:
        models = [load_model(d) for d in self.run_dirs]
        statuses = [m.ended or run_status(d) for m, d in zip(models, self.run_dirs)]
        self.app.call_from_thread(self._show, models, statuses)

    def _show(self, models: list[RunModel], statuses: list[str]) -> None:
        self.models = models
        names = run_names(models)
        colors = [curve_color(i) for i in range(len(models))]
        self.query_one("#compare-acc", LineChart).set_curves(
            [Curve(n, m.test_acc.points(), c) for n, m, c in zip(names, models, colors)])
        self.query_one("#compare-loss", LineChart).set_curves(
            [Curve(n, m.loss.points(), c) for n, m, c in zip(names, models, colors)])
        table = self.query_one(DataTable)
        for name, model, color, status in zip(names, models, colors, statuses):
            symbol, status_color = badge(status)
            table.add_row(
                Text("──", style=color), name, Text(f"{symbol} {status}", style=status_color), model.method,
                str(model.seed), f"{model.epochs_done}/{model.epochs}", format_acc(model.final_acc),
                format_acc(model.best_acc), format_duration(model.elapsed()),
            )
        self.loaded = True
