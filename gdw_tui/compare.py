"""Compare screen: the accuracy and loss curves of two or more runs overlaid, with a summary table.

Runs of different lengths share an epoch axis by default (`x` on a chart switches to % of
training, so a 3-epoch and a 200-epoch run span the same width, or to iterations or wall time).
Runs that share a setting (the same config but for the seed) are drawn on the accuracy chart as
their mean with a ±1 standard deviation band, one per setting; the table still lists every run.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from engine.runs import EVENTS, read_summary, run_status

from .widgets.data_table import DataTable
from .widgets.footer import Footer
from .formatting import badge, format_acc, format_duration
from .run_model import RunModel
from .tailer import RunTail
from .chart_render import Curve, XInfo, line_style
from .widgets.line_chart import LineChart
from .widgets.palette import curve_color
from .widgets.pane import Pane

COMPARE_AXES = ("epoch", "progress", "iteration", "time")


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
            break
    if not model.started:  # it failed before its first event: its summary still says what it was
        summary = read_summary(run_dir)
        model.preset = str(summary.get("preset") or "")
        model.method = str(summary.get("method") or "")
        model.seed = summary["seed"] if isinstance(summary.get("seed"), int) else None
        model.epochs = summary["epochs"] if isinstance(summary.get("epochs"), int) else 0
    return model


def run_names(models: list[RunModel]) -> list[str]:
    """Short curve labels: the fields of preset/method/seed that differ between the runs (all
    three when none does), and the run's start time when two runs would still share a name."""
    fields = [lambda m: m.preset or "?", lambda m: m.method or "?", lambda m: f"s{m.seed}" if m.seed is not None else "s?"]
    varying = [f for f in fields if len({f(m) for m in models}) > 1] or fields
    names = ["/".join(f(m) for f in varying) for m in models]
    shared = {name for name in names if names.count(name) > 1}
    # run ids start with the creation time, YYYYmmdd-HHMMSS-…
    return [f"{name} @{m.run_id.split('-')[1] if m.run_id.count('-') else m.run_id}" if name in shared else name
            for name, m in zip(names, models)]


def setting_key(model: RunModel) -> str:
    """Runs with the same key differ only by their seed."""
    cfg = {section: dict(fields) for section, fields in (model.config or {}).items() if isinstance(fields, dict)}
    cfg.get("train", {}).pop("seed", None)
    return json.dumps([model.preset, model.method, cfg], sort_keys=True, default=str)


def mean_and_band(series: list[list[tuple[float, float]]]) -> tuple[list, list, list]:
    """At each x some run reached: the mean over the runs there, and mean ∓ 1 sample standard deviation
    (the band is the mean where one run alone reached that x)."""
    at: dict[float, list[float]] = {}
    for points in series:
        for x, y in points:
            if math.isfinite(y):
                at.setdefault(x, []).append(y)
    mean, low, high = [], [], []
    for x in sorted(at):
        ys = at[x]
        m = statistics.fmean(ys)
        sd = statistics.stdev(ys) if len(ys) > 1 else 0.0
        mean.append((x, m))
        low.append((x, m - sd))
        high.append((x, m + sd))
    return mean, low, high


def dimmed(color: str, factor: float = 0.55) -> str:
    """A darker shade of a #rrggbb colour, for a band around a curve of that colour."""
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return "#{:02x}{:02x}{:02x}".format(*(round(v * factor) for v in (r, g, b)))


def _changes(model: RunModel) -> str:
    """What a run set differently from its preset (`noise_rate=0.4`): it tells settings of one preset apart."""
    from engine.changes import changes_from_preset
    from engine.config import ConfigError, load_preset

    try:
        return changes_from_preset(model.config, load_preset(model.preset))
    except (ConfigError, KeyError, TypeError):
        return ""


def accuracy_curves(names: list[str], models: list[RunModel], colors: list[str]) -> tuple[list[Curve], bool]:
    """One curve per run; or, where runs share a setting, their mean and a ±1 sd band (True then)."""
    groups: dict[str, list[int]] = {}
    for i, m in enumerate(models):
        groups.setdefault(setting_key(m), []).append(i)
    if all(len(members) == 1 for members in groups.values()):
        return [Curve(n, m.test_acc, c, x_info=XInfo.of_run(m, "epoch")) for n, m, c in zip(names, models, colors)], False
    # A setting is named by what differs between the settings shown (preset, method), as the runs are.
    reps = [models[members[0]] for members in groups.values()]
    fields = [lambda m: m.preset or "?", lambda m: m.method or "?"]
    varying = [f for f in fields if len({f(m) for m in reps}) > 1] or fields
    labels = ["/".join(f(m) for f in varying) for m in reps]
    labels = [f"{label} {_changes(m)}".rstrip() if labels.count(label) > 1 else label for label, m in zip(labels, reps)]
    curves = []
    for members, label in zip(groups.values(), labels):
        first, color = models[members[0]], colors[members[0]]
        info = XInfo.of_run(first, "epoch")
        if len(members) == 1:
            curves.append(Curve(names[members[0]], first.test_acc, color, x_info=info))
            continue
        mean, low, high = mean_and_band([models[i].test_acc.points() for i in members])
        curves.append(Curve(f"{label} mean of {len(members)}", mean, color, x_info=info))
        curves.append(Curve("±1 sd", high, dimmed(color), x_info=info))
        curves.append(Curve("", low, dimmed(color), x_info=info, legend=False))
    return curves, True


class CompareScreen(Screen):
    BINDINGS = [Binding("escape", "app.pop_screen", "back")]

    def __init__(self, run_dirs: list[Path], **kwargs) -> None:
        super().__init__(**kwargs)
        self.run_dirs = run_dirs
        self.models: list[RunModel] = []
        self.loaded = False
        self.error = ""  # why the runs could not be loaded

    def compose(self) -> ComposeResult:
        yield Static(f" Compare · {len(self.run_dirs)} runs", id="compare-title")
        with Container(id="compare-panes"):
            yield Pane(LineChart(x_modes=COMPARE_AXES, empty_text="loading…", id="compare-acc"),
                       title="Test accuracy %", group="", id="compare-acc-pane")
            yield Pane(LineChart(x_modes=COMPARE_AXES, empty_text="loading…", smoothable=True, log_y_allowed=True,
                                 id="compare-loss"), title="Training loss", group="", id="compare-loss-pane")
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

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        """A run that cannot be read says so in place of the charts; the app stays usable."""
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        self.app.report_background_error("loading the runs to compare", error)
        self.error = f"{type(error).__name__}: {error}" if error is not None else "unknown error"
        self.notify(self.error, title="cannot compare these runs", severity="error")
        for chart in self.query(LineChart):
            chart.empty_text = f"cannot load the runs: {self.error}"
            chart.set_curves([])
        self.query_one("#compare-title", Static).update(f" Compare · {len(self.run_dirs)} runs · cannot load: {self.error}")

    def _show(self, models: list[RunModel], statuses: list[str]) -> None:
        self.models = models
        names = run_names(models)
        colors = [curve_color(i) for i in range(len(models))]
        acc = self.query_one("#compare-acc", LineChart)
        acc.empty_text = "no run has finished an epoch"
        curves, banded = accuracy_curves(names, models, colors)
        acc.set_curves(curves)
        if banded:
            self.query_one("#compare-acc-pane", Pane).border_title = "Test accuracy % · mean ± 1 sd of runs sharing a setting"
        loss = self.query_one("#compare-loss", LineChart)
        loss.empty_text = "no training steps recorded"
        loss.set_curves([Curve(n, m.loss, c, x_info=XInfo.of_run(m, "iteration")) for n, m, c in zip(names, models, colors)])
        table = self.query_one(DataTable)
        for i, (name, model, color, status) in enumerate(zip(names, models, colors, statuses)):
            symbol, status_color = badge(status)
            table.add_row(
                Text(line_style(i)[0] if self.app.no_color else "──", style=color), name,  # the legend's line
                Text(f"{symbol} {status}", style=status_color), model.method or "–",
                str(model.seed) if model.seed is not None else "–",
                f"{model.epochs_done}/{model.epochs}" if model.epochs else "–", format_acc(model.final_acc),
                format_acc(model.best_acc), format_duration(model.elapsed()),
            )
        self.loaded = True
