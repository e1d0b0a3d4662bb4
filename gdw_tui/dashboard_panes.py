"""The dashboard's panes: one widget per pane, each painting itself from the followed run.

Every pane names the model facets it shows (`FACETS`); the dashboard calls `update(run)` on the
panes whose facets changed. `run` is the RunFollower: its model, status and the ω snapshot shown.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll

from engine.method_table import method_info
from engine.runs import LOG as ENGINE_LOG, read_summary

from .run_follower import RunFollower
from .run_model import ACCURACY, CLASSES, INFO, LOG, LOSS, WEIGHTS, flat_matrix
from .widgets.class_bars import ClassBars
from .widgets.heatmap import Heatmap
from .widgets.histogram import HistGroup, Histograms
from .chart_render import Curve, XInfo
from .widgets.line_chart import LineChart
from .widgets.palette import curve_color
from .widgets.pane import Pane
from .widgets.run_log import RunLog

CLEAN, CORRUPTED = curve_color(2), curve_color(4)
ERROR_STYLE = "bold #ff7b72"
ITER_AXES, EPOCH_AXES = ("iteration", "epoch", "time"), ("epoch", "iteration", "time")  # `x` on a chart cycles


def _int_tick(v: float) -> str:
    return f"{v:.0f}"


def _has(method: str, feature: str) -> bool:
    return getattr(method_info(method), feature, True)


class RunPane(Pane):
    FACETS: frozenset[str] = frozenset()

    def __init__(self, *, title: str, group: str, id: str) -> None:
        super().__init__(title=title, group=group, id=id)
        self.can_focus = True  # so 1–6 can pick a pane without a control of its own (a chart), and m maximise it

    def update(self, run: RunFollower) -> None:
        raise NotImplementedError

    def set_title(self, title: str) -> None:
        if self.border_title != title:  # a title change repaints the whole pane
            self.border_title = title


class LossPane(RunPane):
    FACETS = frozenset({LOSS})

    def __init__(self) -> None:
        super().__init__(title="Loss", group="curves", id="pane-loss")

    def compose(self) -> ComposeResult:
        yield LineChart(x_modes=ITER_AXES, smoothable=True, log_y_allowed=True, x_format=_int_tick, id="loss-chart")

    def update(self, run: RunFollower) -> None:
        m = run.model
        curves = [Curve("train", m.loss, curve_color(0))]
        if len(m.meta_loss):
            curves.append(Curve("meta", m.meta_loss, curve_color(1)))
        self.query_one(LineChart).set_curves(curves, x_info=XInfo.of_run(m, "iteration"))


class AccuracyPane(RunPane):
    FACETS = frozenset({ACCURACY})

    def __init__(self) -> None:
        super().__init__(title="Accuracy %", group="curves", id="pane-acc")
        self.border_subtitle = "*train: against true labels"

    def compose(self) -> ComposeResult:
        yield LineChart(x_modes=EPOCH_AXES, empty_text="accuracy after the first epoch", x_format=_int_tick, id="acc-chart")

    def update(self, run: RunFollower) -> None:
        m = run.model
        curves = [Curve("test", m.test_acc, curve_color(0))]
        if len(m.net2_acc):  # Co-teaching: the run's accuracy is network 1's; network 2's beside it
            curves = [Curve("test net 1", m.test_acc, curve_color(0)), Curve("test net 2", m.net2_acc, curve_color(3))]
        if len(m.meta_acc):
            curves.append(Curve("meta", m.meta_acc, curve_color(1)))
        curves.append(Curve("train*", m.train_acc, curve_color(2)))
        last = m.test_acc.last()
        self.set_title(f"Accuracy % · test {last[1]:.2f}" if last else "Accuracy %")
        self.query_one(LineChart).set_curves(curves, x_info=XInfo.of_run(m, "epoch"))


class OmegaPane(RunPane):
    """ω (label × class), or with `h` the increase ratio, at the snapshot shown."""

    FACETS = frozenset({WEIGHTS, INFO})

    def __init__(self) -> None:
        super().__init__(title="ω heatmap", group="omega", id="pane-omega")
        self.border_subtitle = "h ratio · [ ] scrub · +/- zoom"
        self.show_ratio = False

    def compose(self) -> ComposeResult:
        yield Heatmap(id="heatmap")

    def update(self, run: RunFollower) -> None:
        m = run.model
        heatmap = self.query_one(Heatmap)
        if self.show_ratio:
            rsnap = run.ratio_snapshot()
            if not _has(m.method, "has_increase_ratio"):
                empty = f"{m.method} has no class-level weights: no increase ratio (gdw only)"
            else:
                empty = "the increase ratio arrives at the end of the first epoch"
            heatmap.set_matrix(rsnap.increase_ratio if rsnap else None, m.num_classes, m.classes, 0.0, 1.0,
                               row_name="ω", col_name="class", empty_text=empty)
            # Which snapshot (and whether it is live) first: at 120 columns the end of a title is cut.
            self.set_title(" · ".join(filter(None, ["Increase ratio", run.scrub_text(), f"epoch {rsnap.epoch + 1}" if rsnap else ""])))
            return
        if _has_phases(m.method):
            self._show_c_hat(m, heatmap)
            return
        snap = run.snapshot()
        empty = "waiting for the first weights snapshot"
        if not _has(m.method, "has_target_weights"):
            empty = f"{m.method} trains on plain cross-entropy: every weight is 1"
        heatmap.set_matrix(snap.omega if snap else None, m.num_classes, m.classes, row_name="label", col_name="ω", empty_text=empty)
        self.set_title(" · ".join(filter(None, ["ω" if snap else "ω heatmap", run.scrub_text(),
                                                f"epoch {snap.epoch + 1} it {snap.iter + 1}" if snap else ""])))


    def _show_c_hat(self, m, heatmap: Heatmap) -> None:
        """GLC: its estimate Ĉ[i][j] ≈ p(observed j | true i), once phase 1 ended (the true matrix is beside it)."""
        c = m.num_classes
        heatmap.set_matrix(flat_matrix(m.c_hat, c), c, m.classes, 0.0, 1.0, row_name="true", col_name="observed",
                           empty_text=f"Ĉ is estimated on the clean set after epoch {m.glc_phase1_epochs()} (phase 1)")
        error = c_hat_error(m)
        self.set_title("Ĉ, GLC's estimate" + (f" · mean |Ĉ−T| {error:.4f}" if error is not None else ""))


def _has_phases(method: str) -> bool:
    return getattr(method_info(method), "phases", 1) > 1


def c_hat_error(m) -> float | None:
    """Mean |Ĉ − T| over the C×C entries, T the matrix the run's noise was drawn from (identity without noise)."""
    c = m.num_classes
    if not m.c_hat or not c:
        return None
    truth = (m.noise or {}).get("matrix") or [[float(i == j) for j in range(c)] for i in range(c)]
    return sum(abs(m.c_hat[i][j] - truth[i][j]) for i in range(c) for j in range(c)) / c**2


class TargetPane(RunPane):
    """The mean target weight of clean and corrupted samples over time, and their histograms."""

    FACETS = frozenset({WEIGHTS, INFO})

    def __init__(self) -> None:
        super().__init__(title="Target weight: clean vs corrupted", group="target", id="pane-target")

    def compose(self) -> ComposeResult:
        yield LineChart(x_modes=ITER_AXES, x_format=_int_tick, id="target-chart")
        yield Histograms(id="target-hist")
        yield Heatmap(id="true-matrix")  # GLC: the true corruption matrix, beside Ĉ

    def update(self, run: RunFollower) -> None:
        m = run.model
        glc = _has_phases(m.method)
        self.query_one(LineChart).display = self.query_one(Histograms).display = not glc
        self.query_one("#true-matrix", Heatmap).display = glc
        if glc:
            self._show_true_matrix(m)
            return
        self.set_title("Target weight: clean vs corrupted")
        chart = self.query_one(LineChart)
        chart.empty_text = "no target weights yet" if _has(m.method, "has_target_weights") else f"{m.method}: every weight is 1"
        chart.set_curves([
            Curve("clean", m.clean_weight, CLEAN),
            Curve("corrupted", m.corrupted_weight, CORRUPTED),
        ], x_info=XInfo.of_run(m, "iteration"))
        snap = run.snapshot()
        tw = snap.target_weight if snap else None
        hist = self.query_one(Histograms)
        if tw and tw.get("bins"):
            hist.set_histograms(tw["bins"], [
                HistGroup("clean", tw.get("clean_hist") or [], CLEAN, tw.get("clean_mean")),
                HistGroup("corrupted", tw.get("corrupted_hist") or [], CORRUPTED, tw.get("corrupted_mean")),
            ])
        else:
            hist.set_histograms([], [])


    def _show_true_matrix(self, m) -> None:
        c = m.num_classes
        truth = (m.noise or {}).get("matrix")
        if truth is None and c:
            truth = [[float(i == j) for j in range(c)] for i in range(c)]  # labels left uncorrupted
        self.query_one("#true-matrix", Heatmap).set_matrix(flat_matrix(truth, c), c, m.classes, 0.0, 1.0,
                                                          row_name="true", col_name="observed")
        self.set_title("True corruption matrix T (the run's noise)")


class VNetPane(RunPane):
    """MW-Net's weighting function V(ℓ): the first snapshot's curve and the one shown."""

    FACETS = frozenset({WEIGHTS, INFO, ACCURACY})  # ACCURACY: Co-teaching's epoch curves

    def __init__(self) -> None:
        super().__init__(title="V(ℓ) weighting function", group="vnet", id="pane-vnet")

    def compose(self) -> ComposeResult:
        yield LineChart(x_label="loss ℓ", id="vnet-chart")

    def update(self, run: RunFollower) -> None:
        m = run.model
        chart = self.query_one(LineChart)
        if _has(m.method, "selects_samples") is True:
            self._show_selection(m, chart)
            return
        if not _has(m.method, "has_weighting_network"):
            chart.empty_text = f"{m.method} has no weighting network V"
        else:
            chart.empty_text = "V(ℓ) arrives with the first weights snapshot"
        curves = []
        snap, first = run.snapshot(), m.first_vnet
        if snap and snap.vnet:
            now = Curve(f"epoch {snap.epoch + 1}", list(zip(snap.vnet["loss"], snap.vnet["weight"])), curve_color(0))
            if first is not None and first is not snap.vnet:
                curves.append(Curve("first", list(zip(first["loss"], first["weight"])), "#6e7681"))
            curves.append(now)
        chart.set_curves(curves, y_range=(0.0, 1.0))

    def _show_selection(self, m, chart: LineChart) -> None:
        """Co-teaching has no V: its own diagnostic instead, per epoch — the fraction of each network's kept
        samples whose label is right, and the fraction of each batch dropped (R(e))."""
        chart.x_label = "epoch"
        chart.empty_text = "label precision arrives after the first epoch"
        self.set_title(_selection_title(m))
        chart.set_curves([
            Curve("precision net 1", m.precision1, CLEAN),
            Curve("precision net 2", m.precision2, curve_color(3)),
            Curve("forget rate", m.forget_rate, CORRUPTED),
        ], y_range=(0.0, 100.0))


class ClassesPane(RunPane):
    """Per-class test accuracy bars; `classes 1–10 of 100 · ↑↓ scroll` when they do not all fit."""

    FACETS = frozenset({CLASSES})

    def __init__(self) -> None:
        super().__init__(title="Per-class test accuracy", group="classes", id="pane-classes")
        self._class_count = 0

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="class-scroll"):
            yield ClassBars(id="class-bars")

    def on_mount(self) -> None:
        self.watch(self.query_one("#class-scroll"), "scroll_y", self.show_range, init=False)

    def on_resize(self) -> None:
        self.call_after_refresh(self.show_range)

    def update(self, run: RunFollower) -> None:
        m = run.model
        self.query_one(ClassBars).set_values(m.classes, m.per_class_acc)
        self._class_count = len(m.per_class_acc)
        if m.epochs_done:
            self.set_title(f"Per-class test accuracy · epoch {m.epochs_done}")
        self.call_after_refresh(self.show_range)  # once the bars' new height is laid out

    def show_range(self) -> None:
        # Called after a refresh, which can come after the screen was closed (found by the soak:
        # leaving the dashboard while the bars were being laid out raised NoMatches).
        found = self.query("#class-scroll")
        if not found:
            return
        scroll = found.first(VerticalScroll)
        n, rows = self._class_count, scroll.scrollable_content_region.height
        hint = ""
        if rows and n > rows:
            first = round(scroll.scroll_y) + 1
            hint = f"classes {first}–{min(n, first + rows - 1)} of {n} · ↑↓ scroll"
        if self.border_subtitle != hint:
            self.border_subtitle = hint


class LogPane(RunPane):
    """The run's log lines, its traceback, and why a run died (its summary and engine.log)."""

    FACETS = frozenset({LOG})
    STYLES = {"warning": "#e3b341", "error": ERROR_STYLE}

    def __init__(self) -> None:
        super().__init__(title="Log", group="log", id="pane-log")
        self._written = 0  # of the model's log_total
        self._traceback_shown = False
        self._engine_log_shown = False

    def compose(self) -> ComposeResult:
        yield RunLog(id="log", max_lines=2000, wrap=True, markup=False, highlight=False)

    @property
    def run_log(self) -> RunLog:
        return self.query_one(RunLog)

    def update(self, run: RunFollower) -> None:
        m = run.model
        new = m.log_total - self._written
        for line in list(m.log)[len(m.log) - min(new, len(m.log)):] if new > 0 else []:
            stamp = time.strftime("%H:%M:%S", time.localtime(line.t)) if line.t else "--:--:--"
            self.run_log.write(Text.assemble((stamp + " ", "dim"), (f"{line.level:7} ", self.STYLES.get(line.level, "")), line.message))
        self._written = m.log_total
        if m.failure and not self._traceback_shown:
            self._traceback_shown = True
            if m.failure.get("traceback"):
                self.run_log.write(Text(str(m.failure["traceback"]).rstrip(), style="#ff7b72"))

    def restart(self) -> None:
        """The events file started over: so does the log."""
        self._written = 0
        self._traceback_shown = False
        self.run_log.clear()

    def error(self, message: str) -> None:
        self.run_log.write(Text(message, style=ERROR_STYLE))

    def explain_death(self, run: RunFollower) -> bool:
        """A run that failed or vanished without a failure event: its summary and engine.log say why
        (once). True when it said something."""
        if self._engine_log_shown or run.status not in ("failed", "interrupted") or run.model.failure:
            return False
        self._engine_log_shown = True
        message = read_summary(run.run_dir).get("message")
        if message:
            self.error(f"{run.status}: {message}")
        try:
            lines = (run.run_dir / ENGINE_LOG).read_text(errors="replace").splitlines()[-40:]
        except OSError:
            lines = []
        if lines:
            self.run_log.write(Text(f"— last lines of {ENGINE_LOG} —", style="dim"))
            for line in lines:
                self.run_log.write(line)
        return True


def _selection_title(m) -> str:
    last = m.precision1.last()
    return "Label precision % · forget rate %" + (f" · net 1 {last[1]:.1f}" if last else "")


def dashboard_panes() -> list[RunPane]:
    """The panes, in the layout's order (the grid in app.tcss places them)."""
    return [LossPane(), AccuracyPane(), OmegaPane(), TargetPane(), VNetPane(), ClassesPane(), LogPane()]
