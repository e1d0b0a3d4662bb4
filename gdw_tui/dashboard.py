"""The run dashboard: one run followed live (or replayed when finished), shown in panes.

The RunFollower (run_follower.py) reads the events and keeps the model and the run's status;
each pane (dashboard_panes.py) paints itself from it; the RepaintScheduler (repaint.py) decides
when. This screen lays the panes out (a grid when wide, tabs when narrow), runs the reader
workers, and owns the keys.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.screen import Screen
from textual.widgets import Tab, Tabs
from textual.worker import Worker, WorkerState, get_current_worker

from engine.runs import EVENTS, read_summary

from .dashboard_panes import LogPane, OmegaPane, RunPane, dashboard_panes
from .formatting import format_acc
from .messages import EventsRead, ResourcesRead, ResumeRequested, StopRunRequested
from .repaint import RepaintScheduler
from .run_follower import ALL_FACETS, RunFollower
from .run_model import INFO, PROGRESS, WEIGHTS
from .widgets.footer import Footer
from .widgets.heatmap import Heatmap
from .widgets.pane import Pane
from .widgets.run_header import RunHeader

WIDE_MIN = (120, 32)  # below this the panes become tabs

GROUPS = (  # tab id, tab label
    ("curves", "1 Curves"),
    ("omega", "2 ω"),
    ("target", "3 Target"),
    ("vnet", "4 V(ℓ)"),
    ("classes", "5 Classes"),
    ("log", "6 Log"),
)
PANE_KEYS = Binding.Group("pane", compact=True)  # the footer shows `123456 pane` once
SCRUB_KEYS = Binding.Group("scrub", compact=True)  # `[] scrub`: older, newer


def _no_engine() -> subprocess.Popen | None:
    return None


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

    def __init__(self, run_dir: Path, engine: Callable[[], subprocess.Popen | None] = _no_engine, **kwargs) -> None:
        """`engine`: the engine process this UI launched for the run, if any."""
        super().__init__(**kwargs)
        self.run = RunFollower(run_dir, engine)
        self.run_dir = self.run.run_dir
        self.active_group = "curves"
        self._opened_on_error = False
        self._bindings_key: tuple = ()
        self.repaints = RepaintScheduler(self, lambda: self.run.model, self._repaint)

    # --- layout --------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield RunHeader(id="header")
        yield Tabs(*[Tab(label, id=f"tab-{g}") for g, label in GROUPS], id="tabs")
        with Container(id="panes"):
            yield from dashboard_panes()
        yield Footer()

    def on_mount(self) -> None:
        self.run.update_status()
        self._apply_layout()
        self._repaint(set(ALL_FACETS))
        # Wide: the heatmap takes the arrow keys. Narrow: the tab bar does (← → switch tabs).
        self.query_one("#tabs" if self.has_class("-narrow") else "#heatmap").focus()
        # Reading starts after the first paint: parsing a long file in the worker thread would
        # otherwise compete with it for the interpreter.
        self.call_after_refresh(self.follow_events)
        self.set_interval(1.0, self._tick)
        self.measure_engine()

    def on_resize(self) -> None:
        self._apply_layout()

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

    def _open_on_error(self) -> None:
        """A failed run opens on its error: the log tab, when narrow and still on the curves."""
        if self._opened_on_error:
            return  # once: the user may go back to the curves
        self._opened_on_error = True
        if self.has_class("-narrow") and self.active_group == "curves":
            self.action_show_group("log")

    # --- following the run (workers, then the UI thread) ------------------------------------------

    @work(thread=True, exclusive=True, group="follow", exit_on_error=False)
    def follow_events(self) -> None:
        worker = get_current_worker()
        self.run.read_events(lambda: worker.is_cancelled, self.post_message)

    @work(thread=True, exclusive=True, group="resources", exit_on_error=False)
    def measure_engine(self) -> None:
        worker = get_current_worker()
        self.run.measure_engine(lambda: worker.is_cancelled, self.post_message)

    def on_events_read(self, message: EventsRead) -> None:
        try:
            if message.restarted:
                self.query_one(LogPane).restart()
            self.run.apply(message)
            if message.error:
                self.query_one(LogPane).run_log.write(f"cannot read events: {message.error}")
        finally:
            self.run.applied()
        if message.at_end and not self.run.caught_up:
            self.run.caught_up = True
            self.run.update_status()
            self._explain_if_dead()
            self.repaints.now()
        else:
            self.repaints.schedule()

    def on_resources_read(self, message: ResourcesRead) -> None:
        self.run.usage = message.usage
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
        self.run.reading_failed(error)
        message = f"stopped reading {EVENTS}: {self.run.read_error} (reopen the run to try again)"
        self.notify(message, title="cannot follow the run", severity="error")
        self.query_one(LogPane).error(message)
        self._repaint({INFO, PROGRESS})

    # --- status --------------------------------------------------------------------------------

    def _tick(self) -> None:
        previous = self.run.update_status()
        if previous is not None:
            self._explain_if_dead()
            if previous in ("running", "starting", "stopping"):
                self._announce_end()
            self._repaint({PROGRESS, WEIGHTS})  # the heatmap's title says `live` only while the run is
        elif self.run.live:
            self._repaint({PROGRESS})
        self._update_bindings()

    def _announce_end(self) -> None:
        """A followed run just finished, failed, diverged or lost its engine: a notification and the bell."""
        m, name = self.run.model, self.run_dir.name
        if self.run.status == "finished":
            text, severity = f"{name} finished: final {format_acc(m.final_acc)}%, best {format_acc(m.best_acc)}%", "information"
        elif self.run.status == "failed":
            kind = (m.failure or {}).get("kind", "error")
            message = (m.failure or {}).get("message") or read_summary(self.run_dir).get("message") or "see the log"
            text, severity = f"{name} {'diverged' if kind == 'diverged' else 'failed'}: {message}", "error"
        elif self.run.status == "interrupted":
            text, severity = f"{name}: the engine is gone without a final event (R resumes from the last checkpoint)", "warning"
        else:
            return  # stopped: the user asked for it
        self.notify(text, title=f"run {self.run.status}", severity=severity, timeout=10)
        self.app.bell()

    def _explain_if_dead(self) -> None:
        if self.query_one(LogPane).explain_death(self.run) and self.run.status == "failed":
            self._open_on_error()

    # --- painting ------------------------------------------------------------------------------

    def _repaint(self, facets: set[str]) -> None:
        if facets & RunHeader.FACETS:
            self.query_one(RunHeader).update(self.run)
        for pane in self.query(RunPane):
            if facets & pane.FACETS:
                pane.update(self.run)
        if self.run.model.failure:
            self._open_on_error()
        if PROGRESS in facets:  # the run's state: stop or resume may have become (un)available
            self._update_bindings()

    # --- actions -------------------------------------------------------------------------------

    def action_toggle_ratio(self) -> None:
        omega = self.query_one(OmegaPane)
        omega.show_ratio = not omega.show_ratio
        omega.update(self.run)  # the other panes do not change

    def action_scrub(self, step: int) -> None:
        if self.run.scrub(step):
            self._repaint({WEIGHTS})

    def action_maximize(self) -> None:
        if self.maximized is not None:
            self.minimize()
            return
        pane = next((w for w in (self.focused, *(self.focused.ancestors if self.focused else ())) if isinstance(w, Pane)), None)
        if pane is not None:
            self.maximize(pane, container=False)

    def csv_tables(self) -> dict:
        """`e`: beside the charts' curves, the ω matrix (or with `h` the increase ratio) shown."""
        omega = self.query_one(OmegaPane)
        snap = self.run.ratio_snapshot() if omega.show_ratio else self.run.snapshot()
        heatmap = self.query_one(Heatmap)
        if snap is None or not heatmap.size_c:
            return {}
        c, labels = heatmap.size_c, heatmap.row_labels
        if omega.show_ratio:  # [i][j]: the fraction of class j's samples whose ω_i went up
            name, header = "increase_ratio", ("epoch", "omega_i", "class", "increase_ratio")
            where: tuple = (snap.epoch + 1,)
        else:  # [a][j]: the mean ω_j over samples with observed label a
            name, header = "omega", ("epoch", "iteration", "label", "class", "omega")
            where = (snap.epoch + 1, snap.iter + 1)
        rows = [(*where, labels[a], labels[j], "" if heatmap.value_at(a, j) != heatmap.value_at(a, j) else heatmap.value_at(a, j))
                for a in range(c) for j in range(c)]
        return {name: (header, rows)}

    # --- which keys apply (the footer shows only these) -------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.run.stoppable()
        if action == "resume":
            return self.run.resume_refusal() is None
        if action == "maximize":
            return not self.has_class("-narrow")  # narrow: every pane already fills the screen
        if action == "focus_pane":  # maximised: 1–6 still work (the hidden show_group), unsaid
            return not self.has_class("-narrow") and self.maximized is None
        if action in ("toggle_ratio", "scrub") and self.maximized is not None:
            # A maximised chart's own keys need the footer's room: these apply to the weight panes only.
            return self.maximized.id in ("pane-omega", "pane-target", "pane-vnet")
        if action == "explain":
            return not self.check_action(str(parameters[0]), ())
        return True

    def action_explain(self, action: str) -> None:
        if action == "resume":
            self.notify(f"run {self.run_dir.name} {self.run.resume_refusal()}", severity="warning")
        else:
            self.notify(f"run is {self.run.status}: nothing to stop", severity="warning")

    def _footer_key(self) -> tuple:
        return (*(bool(self.check_action(action, ())) for action in ("stop", "resume", "maximize")), self.maximized)

    def watch_maximized(self) -> None:
        self._update_bindings()

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
        if not self.run.can_stop():
            self.notify(f"run is {self.run.status}: nothing to stop", severity="warning")
            return
        from .confirm import ConfirmScreen

        def stop(confirmed: bool | None) -> None:
            if confirmed:
                self.run.stopping()
                self.post_message(StopRunRequested(self.run_dir))
                self._tick()

        self.app.push_screen(ConfirmScreen(f"Stop {self.run_dir.name}?\nThe engine checkpoints and exits; resume it later with R.", "Stop run"), stop)

    def action_resume(self) -> None:
        refusal = self.run.resume_refusal()
        if refusal:
            self.notify(f"run {self.run_dir.name} {refusal}", severity="warning")
            return
        self.post_message(ResumeRequested(self.run_dir))
        self.run.resuming()
        self._tick()
