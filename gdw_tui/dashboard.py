"""The run dashboard: follows one run's events.jsonl live (or replays a finished run) in panes.

A thread worker reads the file in bounded batches and posts them; the screen folds them into a
RunModel on the UI thread (one batch in flight, so a slow paint slows the reader instead of
piling up memory) and repaints the panes whose data changed at bounded rates (FAST_HZ for the
header and log, SLOW_HZ for charts, heatmap and bars). The heavy panes (heatmap, weights, bars)
are painted a frame after the charts, so no single frame is long enough to delay a key.
"""

from __future__ import annotations

import threading
import time
from functools import partial
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, VerticalScroll
from textual.screen import Screen
from textual.widgets import RichLog, Tab, Tabs
from textual.worker import Worker, WorkerState, get_current_worker

from engine.config import ConfigError
from engine.method_table import method_info
from engine.rundir import can_stop, resume_refusal
from engine.runs import EVENTS, LOG as ENGINE_LOG, engine_alive, load_run_config, lock_pid, read_summary, run_status

from .widgets.footer import Footer
from .formatting import format_acc
from .messages import EventsRead, ResourcesRead, ResumeRequested, StopRequested
from .resources import EngineMeter, Usage
from .run_model import ACCURACY, CLASSES, INFO, LOG, LOSS, PROGRESS, WEIGHTS, RunModel, Snapshot
from .tailer import RunTail
from .widgets.class_bars import ClassBars
from .widgets.heatmap import Heatmap
from .widgets.histogram import HistGroup, Histograms
from .widgets.line_chart import Curve, LineChart, XInfo
from .widgets.palette import curve_color
from .widgets.pane import Pane
from .widgets.run_header import RunHeader
from .widgets.run_log import RunLog

# Repaint rates: the header and log follow closely; charts, heatmap and bars redraw at most
# twice a second (they cost more, and a training curve needs no more).
FAST_HZ = 10
SLOW_HZ = 2
FAST_FACETS = frozenset({INFO, PROGRESS, LOG})
HEAVY_FACETS = frozenset({WEIGHTS, CLASSES})  # painted in a frame of their own,
HEAVY_AFTER_S = 0.1  # this long after the charts
LIVE_POLL_S = 0.1
RESOURCES_S = 1.0  # the engine's CPU, memory and GPU are read this often (in a worker thread)
IDLE_POLL_S = 1.0
WIDE_MIN = (120, 32)  # below this the panes become tabs

GROUPS = (  # tab id, tab label
    ("curves", "1 Curves"),
    ("omega", "2 ω"),
    ("target", "3 Target"),
    ("vnet", "4 V(ℓ)"),
    ("classes", "5 Classes"),
    ("log", "6 Log"),
)
CLEAN, CORRUPTED = curve_color(2), curve_color(4)
PANE_KEYS = Binding.Group("pane", compact=True)  # the footer shows `123456 pane` once
SCRUB_KEYS = Binding.Group("scrub", compact=True)  # `[] scrub`: older, newer
LIVE_STATUSES = ("running", "starting", "stopping")


def _stored_config(run_dir: Path) -> dict:
    """The run's config.toml, resolved ({} when it is missing or unreadable: the events still tell)."""
    try:
        return load_run_config(run_dir)
    except ConfigError:
        return {}
ITER_AXES, EPOCH_AXES = ("iteration", "epoch", "time"), ("epoch", "iteration", "time")  # `x` on a chart cycles


def _int_tick(v: float) -> str:
    return f"{v:.0f}"


class DashboardScreen(Screen):
    BINDINGS = [
        Binding("h", "toggle_ratio", "ω/ratio"),
        Binding("left_square_bracket", "scrub(-1)", "older", group=SCRUB_KEYS),
        Binding("right_square_bracket", "scrub(1)", "newer", group=SCRUB_KEYS),
        Binding("l", "show_group('log')", "log", show=False),
        # Wide: 1–6 focus a pane (shown in the footer); narrow: they switch tabs (the tab bar shows them).
        *[Binding(str(i + 1), f"focus_pane('{g}')", label, group=PANE_KEYS) for i, (g, label) in enumerate(GROUPS)],
        *[Binding(str(i + 1), f"show_group('{g}')", label, show=False) for i, (g, label) in enumerate(GROUPS)],
        Binding("m", "maximize", "maximize"),
        Binding("c", "show_config", "config"),
        Binding("s", "stop", "stop"),
        Binding("R", "resume", "resume"),
        # Where s or R does not apply the footer hides it; pressed anyway, it says why.
        Binding("s", "explain('stop')", show=False),
        Binding("R", "explain('resume')", show=False),
        Binding("escape", "back", "back"),
    ]

    def __init__(self, run_dir: Path, **kwargs) -> None:
        super().__init__(**kwargs)
        self.run_dir = Path(run_dir)
        self.stored_config = _stored_config(self.run_dir)
        self.model = self._new_model()
        self.snapshot_index: int | None = None  # None: follow the newest snapshot
        self.show_ratio = False
        self.active_group = "curves"
        self.status = "created"
        self.caught_up = False  # the reader reached the end of the file at least once
        self.read_error = ""
        self._applied = threading.Event()
        self._pending = {"fast": False, "slow": False}
        self._last_paint = {"fast": 0.0, "slow": 0.0}
        self._log_written = 0
        self._traceback_shown = False
        self._engine_log_shown = False
        self._stop_requested = False
        self._bindings_key: tuple = ()
        self.usage: Usage | None = None  # the engine process's resources, while it runs

    # --- layout --------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield RunHeader(id="header")
        yield Tabs(*[Tab(label, id=f"tab-{g}") for g, label in GROUPS], id="tabs")
        with Container(id="panes"):
            yield Pane(LineChart(x_modes=ITER_AXES, smoothable=True, log_y_allowed=True, id="loss-chart"), title="Loss", group="curves", id="pane-loss")
            yield Pane(LineChart(x_modes=EPOCH_AXES, empty_text="accuracy after the first epoch", id="acc-chart"),
                       title="Accuracy %", group="curves", id="pane-acc")
            yield Pane(Heatmap(id="heatmap"), title="ω heatmap", group="omega", id="pane-omega")
            yield Pane(LineChart(x_modes=ITER_AXES, id="target-chart"), Histograms(id="target-hist"),
                       title="Target weight: clean vs corrupted", group="target", id="pane-target")
            yield Pane(LineChart(x_label="loss ℓ", id="vnet-chart"), title="V(ℓ) weighting function", group="vnet", id="pane-vnet")
            yield Pane(VerticalScroll(ClassBars(id="class-bars"), id="class-scroll"),
                       title="Per-class test accuracy", group="classes", id="pane-classes")
            yield Pane(RunLog(id="log", max_lines=2000, wrap=True, markup=False, highlight=False),
                       title="Log", group="log", id="pane-log")
        yield Footer()

    def on_mount(self) -> None:
        for pane in self.query(Pane):
            pane.can_focus = True  # so 1–6 can pick a pane without a control of its own (a chart), and m maximise it
        for chart_id in ("#loss-chart", "#acc-chart", "#target-chart"):
            self.query_one(chart_id, LineChart).x_format = _int_tick
        self.query_one("#pane-omega").border_subtitle = "h ratio · [ ] scrub · +/- zoom"
        self.query_one("#pane-acc").border_subtitle = "*train: against true labels"
        self.status = self._current_status()
        self._apply_layout()
        self._repaint({INFO, PROGRESS, LOSS, ACCURACY, WEIGHTS, CLASSES, LOG})
        # Wide: the heatmap takes the arrow keys. Narrow: the tab bar does (← → switch tabs).
        self.query_one("#tabs" if self.has_class("-narrow") else "#heatmap").focus()
        # Reading starts after the first paint: parsing a long file in the worker thread would
        # otherwise compete with it for the interpreter.
        self.watch(self.query_one("#class-scroll"), "scroll_y", self._show_class_range, init=False)
        self.call_after_refresh(self.follow_events)
        self.set_interval(1.0, self._tick)
        self.measure_engine()

    def on_resize(self) -> None:
        self._apply_layout()
        self.call_after_refresh(self._show_class_range)

    def _apply_layout(self) -> None:
        width, height = self.size
        narrow = width < WIDE_MIN[0] or height < WIDE_MIN[1]
        self.set_class(narrow, "-narrow")
        self.query_one("#tabs").display = narrow
        for pane in self.query(Pane):
            pane.display = not narrow or pane.group == self.active_group
        self._update_bindings()

    @on(Tabs.TabActivated, "#tabs")
    def _tab_activated(self, event: Tabs.TabActivated) -> None:
        if event.tab is not None and event.tab.id:
            self._show_group(event.tab.id.removeprefix("tab-"))

    def _show_group(self, group: str) -> None:
        self.active_group = group
        self._apply_layout()

    def action_focus_pane(self, group: str) -> None:
        self.action_show_group(group)

    def action_show_group(self, group: str) -> None:
        if self.has_class("-narrow"):
            self.query_one("#tabs", Tabs).active = f"tab-{group}"
            self._show_group(group)
        pane = self.query_one(f"#pane-{ {'curves': 'loss'}.get(group, group)}", Pane)
        if self.maximized is not None and self.maximized is not pane:
            self.minimize()
        # The pane's own control (heatmap, log, class list) when it has one, else the pane: so
        # on the wide layout `m` then maximises the pane the number picked.
        focusable = [w for w in pane.query("*") if w.can_focus]
        (focusable[0] if focusable else pane).focus()

    # --- reading events ------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="follow", exit_on_error=False)
    def follow_events(self) -> None:
        worker = get_current_worker()
        tail = RunTail(str(self.run_dir / EVENTS))
        reported_end = False
        while not worker.is_cancelled:
            batch = tail.read()
            news = bool(batch.events or batch.restarted or batch.error) or (batch.at_end and not reported_end)
            if news:
                reported_end = batch.at_end
                self._applied.clear()
                self.post_message(EventsRead(batch.events, batch.restarted, batch.at_end, batch.error))
                while not self._applied.wait(0.2):  # one batch in flight
                    if worker.is_cancelled:
                        return
            if batch.error:
                return
            if batch.at_end:
                finished = bool(self.model.ended) and not engine_alive(self.run_dir)
                time.sleep(IDLE_POLL_S if finished else LIVE_POLL_S)

    def on_events_read(self, message: EventsRead) -> None:
        try:
            if message.restarted:
                self._reset_model()
            pinned = self.model.snapshot_at(self.snapshot_index) if self.snapshot_index is not None else None
            self.model.apply_all(message.events)
            if pinned is not None:  # thinning may have moved (or dropped) the snapshot shown
                self.snapshot_index = next((i for i, s in enumerate(self.model.snapshots) if s is pinned), self.snapshot_index)
            if message.error:
                self.read_error = message.error
                self.query_one("#log", RichLog).write(f"cannot read events: {message.error}")
        finally:
            self._applied.set()
        if message.at_end and not self.caught_up:
            self.caught_up = True
            self.status = self._current_status()
            self._explain_if_dead()
            self._repaint_now()  # the first complete picture without waiting for the timer
        else:
            self._schedule_repaint()

    def _new_model(self) -> RunModel:
        model = RunModel(run_id=self.run_dir.name)
        model.apply_config(self.stored_config)  # the header has something to show before run_start
        return model

    @work(thread=True, exclusive=True, group="resources", exit_on_error=False)
    def measure_engine(self) -> None:
        """Once a second while the run is live: the engine's CPU %, RSS and (CUDA) GPU use."""
        worker = get_current_worker()
        meter: EngineMeter | None = None
        while not worker.is_cancelled:
            usage = None
            if self.status in LIVE_STATUSES:
                pid = lock_pid(self.run_dir)
                if pid is not None and (meter is None or meter.pid != pid):
                    meter = EngineMeter(pid, self.model.device)
                usage = meter.sample() if meter is not None and pid is not None else None
            if usage != self.usage:
                self.post_message(ResourcesRead(usage))
            time.sleep(RESOURCES_S)

    def on_resources_read(self, message: ResourcesRead) -> None:
        self.usage = message.usage
        self._repaint({PROGRESS})

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A reader that raised: say so (notification and log) instead of silently stopping to follow."""
        if event.state != WorkerState.ERROR:
            return
        if event.worker.group == "resources":  # the header goes without CPU/memory figures
            self.app.report_background_error("reading the engine's resources", event.worker.error)
            self.notify(f"engine resources unavailable: {event.worker.error}", severity="warning")
            return
        if event.worker.group != "follow":
            return
        error = event.worker.error
        self.app.report_background_error(f"following {self.run_dir / EVENTS}", error)
        self.read_error = f"{type(error).__name__}: {error}"
        message = f"stopped reading {EVENTS}: {self.read_error} (reopen the run to try again)"
        self.notify(message, title="cannot follow the run", severity="error")
        self.query_one("#log", RichLog).write(Text(message, style="bold #ff7b72"))
        self._applied.set()
        self.caught_up = True  # nothing more will come: the header stops saying `reading events…`
        self._repaint({INFO, PROGRESS})

    def _reset_model(self) -> None:
        self.model = self._new_model()
        self.snapshot_index = None
        self._log_written = 0
        self._traceback_shown = False
        self.query_one("#log", RichLog).clear()
        self.model.dirty |= {INFO, PROGRESS, LOSS, ACCURACY, WEIGHTS, CLASSES, LOG}

    # --- status --------------------------------------------------------------------------------

    def _current_status(self) -> str:
        if self.model.ended:
            return self.model.ended
        status = run_status(self.run_dir)
        if status == "running" and self._stop_requested:
            return "stopping"
        process = self.app.launched.get(self.run_dir) if hasattr(self.app, "launched") else None
        if status == "created" and process is not None:
            return "starting" if process.poll() is None else "failed"
        return status

    def _tick(self) -> None:
        status = self._current_status()
        changed = status != self.status
        previous, self.status = self.status, status
        if changed:
            self._explain_if_dead()
            if previous in LIVE_STATUSES:
                self._announce_end()
        if changed:
            self._repaint({PROGRESS, WEIGHTS})  # the heatmap's title says `live` only while the run is
        elif status in LIVE_STATUSES:
            self._repaint({PROGRESS})
        self._update_bindings()

    def _announce_end(self) -> None:
        """A followed run just finished, failed, diverged or lost its engine: a notification and the bell."""
        m, name = self.model, self.run_dir.name
        if self.status == "finished":
            text, severity = f"{name} finished: final {format_acc(m.final_acc)}%, best {format_acc(m.best_acc)}%", "information"
        elif self.status == "failed":
            kind = (m.failure or {}).get("kind", "error")
            message = (m.failure or {}).get("message") or read_summary(self.run_dir).get("message") or "see the log"
            text, severity = f"{name} {'diverged' if kind == 'diverged' else 'failed'}: {message}", "error"
        elif self.status == "interrupted":
            text, severity = f"{name}: the engine is gone without a final event (R resumes from the last checkpoint)", "warning"
        else:
            return  # stopped: the user asked for it
        self.notify(text, title=f"run {self.status}", severity=severity, timeout=10)
        self.app.bell()

    def _explain_if_dead(self) -> None:
        """A run that failed or vanished without a failure event: its summary and engine.log say why."""
        if self._engine_log_shown or self.status not in ("failed", "interrupted") or self.model.failure:
            return
        self._engine_log_shown = True
        log = self.query_one("#log", RichLog)
        message = read_summary(self.run_dir).get("message")
        if message:
            log.write(Text(f"{self.status}: {message}", style="bold #ff7b72"))
        try:
            lines = (self.run_dir / ENGINE_LOG).read_text(errors="replace").splitlines()[-40:]
        except OSError:
            lines = []
        if lines:
            log.write(Text(f"— last lines of {ENGINE_LOG} —", style="dim"))
            for line in lines:
                log.write(line)
        if self.has_class("-narrow") and self.active_group == "curves" and self.status == "failed":
            self.action_show_group("log")

    # --- painting ------------------------------------------------------------------------------

    def _schedule_repaint(self) -> None:
        dirty = self.model.dirty
        if dirty & FAST_FACETS:
            self._schedule("fast", FAST_HZ)
        if dirty - FAST_FACETS:
            self._schedule("slow", SLOW_HZ)

    def _schedule(self, kind: str, hz: float) -> None:
        if self._pending[kind]:
            return
        self._pending[kind] = True
        delay = self._last_paint[kind] + 1.0 / hz - time.monotonic()
        paint = partial(self._paint_kind, kind)
        if delay > 0:
            self.set_timer(delay, paint)
        else:
            self.call_later(paint)  # (a zero-delay Timer divides by zero in Textual 8)

    def _paint_kind(self, kind: str) -> None:
        self._pending[kind] = False
        self._last_paint[kind] = time.monotonic()
        facets = self.model.take_dirty(FAST_FACETS if kind == "fast" else None, exclude=FAST_FACETS if kind == "slow" else None)
        light, heavy = facets - HEAVY_FACETS, facets & HEAVY_FACETS
        if light and heavy:
            self._repaint(light)
            self.set_timer(HEAVY_AFTER_S, partial(self._repaint, heavy))  # its own frame: keys get in between
        else:
            self._repaint(facets)

    def _repaint_now(self) -> None:
        for kind in self._last_paint:
            self._last_paint[kind] = time.monotonic()
        self._repaint(self.model.take_dirty())

    def _repaint(self, facets: set[str]) -> None:
        if facets & {INFO, PROGRESS}:
            live = self.status in ("running", "stopping")
            self.query_one(RunHeader).show(self.model, self.status, time.time() if live else None, not self.caught_up,
                                           self.usage if live else None)
        if LOSS in facets:
            self._paint_loss()
        if ACCURACY in facets:
            self._paint_accuracy()
        if WEIGHTS in facets or INFO in facets:
            self._paint_weights()
        if CLASSES in facets:
            self._paint_classes()
        if LOG in facets:
            self._paint_log()
        if PROGRESS in facets:  # the run's state: stop or resume may have become (un)available
            self._update_bindings()

    def _set_title(self, pane_id: str, title: str) -> None:
        pane = self.query_one(pane_id, Pane)
        if pane.border_title != title:  # a title change repaints the whole pane
            pane.border_title = title

    def _paint_loss(self) -> None:
        m = self.model
        curves = [Curve("train", m.loss, curve_color(0))]
        if len(m.meta_loss):
            curves.append(Curve("meta", m.meta_loss, curve_color(1)))
        self.query_one("#loss-chart", LineChart).set_curves(curves, x_info=XInfo.of_run(m, "iteration"))

    def _paint_accuracy(self) -> None:
        m = self.model
        curves = [Curve("test", m.test_acc, curve_color(0))]
        if len(m.meta_acc):
            curves.append(Curve("meta", m.meta_acc, curve_color(1)))
        curves.append(Curve("train*", m.train_acc, curve_color(2)))
        last = m.test_acc.last()
        self._set_title("#pane-acc", f"Accuracy % · test {last[1]:.2f}" if last else "Accuracy %")
        self.query_one("#acc-chart", LineChart).set_curves(curves, x_info=XInfo.of_run(m, "epoch"))

    def _paint_classes(self) -> None:
        m = self.model
        self.query_one(ClassBars).set_values(m.classes, m.per_class_acc)
        if m.epochs_done:
            self._set_title("#pane-classes", f"Per-class test accuracy · epoch {m.epochs_done}")
        self.call_after_refresh(self._show_class_range)  # once the bars' new height is laid out

    def _show_class_range(self) -> None:
        """`classes 1–10 of 100 · ↑↓ scroll` under the bars when they do not all fit."""
        # Called after a refresh, which can come after the screen was closed (found by the soak:
        # leaving the dashboard while the bars were being laid out raised NoMatches).
        found = self.query("#class-scroll")
        if not found:
            return
        scroll = found.first(VerticalScroll)
        n, rows = len(self.model.per_class_acc), scroll.scrollable_content_region.height
        hint = ""
        if rows and n > rows:
            first = round(scroll.scroll_y) + 1
            hint = f"classes {first}–{min(n, first + rows - 1)} of {n} · ↑↓ scroll"
        pane = self.query_one("#pane-classes", Pane)
        if pane.border_subtitle != hint:
            pane.border_subtitle = hint

    def _paint_weights(self) -> None:
        m = self.model
        snap = m.snapshot_at(self.snapshot_index)
        self._paint_heatmap(snap)
        self._paint_target(snap)
        self._paint_vnet(snap)

    def _scrub_text(self) -> str:
        """`snapshot k/n`: the newest is n/n, each `[` counts down; `live` while it follows a live run."""
        n = len(self.model.snapshots)
        if not n:
            return ""
        if self.snapshot_index is None:
            return f"snapshot {n}/{n}" + (" · live" if self.status in LIVE_STATUSES else "")
        return f"snapshot {min(self.snapshot_index, n - 1) + 1}/{n}"

    def _paint_heatmap(self, snap: Snapshot | None) -> None:
        m = self.model
        heatmap = self.query_one(Heatmap)
        c = m.num_classes
        if self.show_ratio:
            rsnap = m.ratio_at(self.snapshot_index)
            if not getattr(method_info(m.method), "has_increase_ratio", True):
                empty = f"{m.method} has no class-level weights: no increase ratio (gdw only)"
            else:
                empty = "the increase ratio arrives at the end of the first epoch"
            heatmap.set_matrix(rsnap.increase_ratio if rsnap else None, c, m.classes, 0.0, 1.0,
                               row_name="ω", col_name="class", empty_text=empty)
            where = f" · epoch {rsnap.epoch + 1}" if rsnap else ""
            self._set_title("#pane-omega", f"Increase ratio{where} · {self._scrub_text()}")
            return
        empty = "waiting for the first weights snapshot"
        if not getattr(method_info(m.method), "has_target_weights", True):
            empty = f"{m.method} trains on plain cross-entropy: every weight is 1"
        heatmap.set_matrix(snap.omega if snap else None, c, m.classes, row_name="label", col_name="ω", empty_text=empty)
        where = f" · epoch {snap.epoch + 1} it {snap.iter + 1}" if snap else ""
        self._set_title("#pane-omega", f"ω heatmap{where} · {self._scrub_text()}")

    def _paint_target(self, snap: Snapshot | None) -> None:
        m = self.model
        chart = self.query_one("#target-chart", LineChart)
        has_weights = getattr(method_info(m.method), "has_target_weights", True)
        chart.empty_text = "no target weights yet" if has_weights else f"{m.method}: every weight is 1"
        chart.set_curves([
            Curve("clean", m.clean_weight, CLEAN),
            Curve("corrupted", m.corrupted_weight, CORRUPTED),
        ], x_info=XInfo.of_run(m, "iteration"))
        tw = snap.target_weight if snap else None
        hist = self.query_one(Histograms)
        if tw and tw.get("bins"):
            hist.set_histograms(tw["bins"], [
                HistGroup("clean", tw.get("clean_hist") or [], CLEAN, tw.get("clean_mean")),
                HistGroup("corrupted", tw.get("corrupted_hist") or [], CORRUPTED, tw.get("corrupted_mean")),
            ])
        else:
            hist.set_histograms([], [])

    def _paint_vnet(self, snap: Snapshot | None) -> None:
        m = self.model
        chart = self.query_one("#vnet-chart", LineChart)
        if not getattr(method_info(m.method), "has_weighting_network", True):
            chart.empty_text = f"{m.method} has no weighting network V"
        else:
            chart.empty_text = "V(ℓ) arrives with the first weights snapshot"
        curves = []
        first = m.first_vnet
        if snap and snap.vnet:
            now = Curve(f"epoch {snap.epoch + 1}", list(zip(snap.vnet["loss"], snap.vnet["weight"])), curve_color(0))
            if first is not None and first is not snap.vnet:
                curves.append(Curve("first", list(zip(first["loss"], first["weight"])), "#6e7681"))
            curves.append(now)
        chart.set_curves(curves, y_range=(0.0, 1.0))

    def _paint_log(self) -> None:
        m = self.model
        log = self.query_one("#log", RichLog)
        new = m.log_total - self._log_written
        styles = {"warning": "#e3b341", "error": "bold #ff7b72"}
        for line in list(m.log)[len(m.log) - min(new, len(m.log)):] if new > 0 else []:
            stamp = time.strftime("%H:%M:%S", time.localtime(line.t)) if line.t else "--:--:--"
            log.write(Text.assemble((stamp + " ", "dim"), (f"{line.level:7} ", styles.get(line.level, "")), line.message))
        self._log_written = m.log_total
        if m.failure and not self._traceback_shown:
            self._traceback_shown = True
            if m.failure.get("traceback"):
                log.write(Text(str(m.failure["traceback"]).rstrip(), style="#ff7b72"))
            if self.has_class("-narrow") and self.active_group == "curves":
                self.action_show_group("log")  # a failed run opens on its error

    # --- actions -------------------------------------------------------------------------------

    def action_toggle_ratio(self) -> None:
        self.show_ratio = not self.show_ratio
        self._paint_heatmap(self.model.snapshot_at(self.snapshot_index))  # the other panes do not change

    def action_scrub(self, step: int) -> None:
        n = len(self.model.snapshots)
        if not n:
            return
        index = n - 1 if self.snapshot_index is None else self.snapshot_index
        index += step
        self.snapshot_index = None if index >= n - 1 else max(0, index)
        self._paint_weights()

    def action_maximize(self) -> None:
        if self.maximized is not None:
            self.minimize()
            return
        pane = next((w for w in (self.focused, *(self.focused.ancestors if self.focused else ())) if isinstance(w, Pane)), None)
        if pane is not None:
            self.maximize(pane, container=False)

    # --- which keys apply (the footer shows only these) -------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.status in ("running", "starting")
        if action == "resume":
            return self._resume_refusal() is None
        if action in ("maximize", "focus_pane"):
            return not self.has_class("-narrow")  # narrow: every pane already fills the screen
        if action == "explain":
            return not self.check_action(str(parameters[0]), ())
        return True

    def action_explain(self, action: str) -> None:
        if action == "resume":
            self.notify(f"run {self.run_dir.name} {self._resume_refusal()}", severity="warning")
        else:
            self.notify(f"run is {self.status}: nothing to stop", severity="warning")

    def _footer_key(self) -> tuple[bool, ...]:
        return tuple(bool(self.check_action(action, ())) for action in ("stop", "resume", "maximize"))

    def _update_bindings(self) -> None:
        """Refresh the footer when what it offers changed: only then, since Textual rebuilds the
        whole footer (a few hundred ms on a slow machine)."""
        key = self._footer_key()
        if key != self._bindings_key:
            first = not self._bindings_key  # on mount: the footer is composed after this anyway
            self._bindings_key = key
            if not first:
                self.refresh_bindings()

    def action_show_config(self) -> None:
        from .config_screen import ConfigScreen

        self.app.push_screen(ConfigScreen(self.run_dir))

    def action_back(self) -> None:
        if self.maximized is not None:
            self.minimize()
        else:
            self.app.go_back()

    def action_stop(self) -> None:
        if not can_stop("running" if self.status == "starting" else self.status):
            self.notify(f"run is {self.status}: nothing to stop", severity="warning")
            return
        from .confirm import ConfirmScreen

        def stop(confirmed: bool | None) -> None:
            if confirmed:
                self._stop_requested = True
                self.post_message(StopRequested(self.run_dir))
                self._tick()

        self.app.push_screen(ConfirmScreen(f"Stop {self.run_dir.name}?\nThe engine checkpoints and exits; resume it later with R.", "Stop run"), stop)

    def _resume_refusal(self) -> str | None:
        # The dashboard's own "starting" and "stopping" are running to the rule (engine.rundir).
        return resume_refusal(self.run_dir, "running" if self.status in ("starting", "stopping") else self.status)

    def action_resume(self) -> None:
        refusal = self._resume_refusal()
        if refusal:
            self.notify(f"run {self.run_dir.name} {refusal}", severity="warning")
            return
        self.post_message(ResumeRequested(self.run_dir))
        self.model.ended = ""
        self._stop_requested = False
        self._tick()
