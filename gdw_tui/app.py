"""gdw-tui: the Textual app (start on the presets, launch detached engines, follow runs).

Never imports torch: everything it knows about a run comes from engine.events, engine.runs,
engine.config and engine.launch, which are torch-free. Screens other than the first are imported
when first shown, so `gdw-tui` paints its first frame quickly.
"""

from __future__ import annotations

import gc
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from textual.app import App
from textual.binding import Binding

from engine.config import ConfigError
from engine.launch import launch_detached, preflight
from engine.runs import create_run, engine_alive, runs_dir_from, stop_run

from .markup import plain_to_markup
from .messages import LaunchRequested, ResumeRequested, StopRunRequested, SweepRequested
from .presets_screen import PresetsScreen

# Benchmarks: write the time of the first frame to this file and exit (scripts/ui_bench.py).
FIRST_FRAME_ENV = "GDW_TUI_FIRST_FRAME_FILE"
FULL_GC_EVERY_S = 60.0
REAP_S = 2.0  # how often the exits of engines and schedulers this UI started are collected


class QuietCollector:
    """Keeps Python's full garbage collections from stalling keys while the app runs.

    A full collection walks every live object: with Textual's caches and a followed run that is
    50–120 ms on a small server, long enough to delay a key past 100 ms when it lands inside a
    frame (measured with scripts/ui_bench.py). After the first frame, garbage is collected once
    and the surviving start-up objects (modules, widgets) are frozen out of later collections;
    automatic full collections are turned off (the young generations still run, and most garbage
    is freed by reference counting anyway); one full collection runs between frames once a
    minute for the cycles that remain. `stop` puts the collector back as it was.
    """

    def __init__(self) -> None:
        self._saved: tuple[int, int, int] | None = None

    def start(self, app: App) -> None:
        if self._saved is not None:
            return
        gc.collect()  # so that no garbage is frozen with the live objects
        gc.freeze()
        self._saved = gc.get_threshold()
        gc.set_threshold(self._saved[0], self._saved[1], 1 << 30)
        # A method of ours, not gc.collect itself: Textual inspects a timer callback's signature,
        # which a builtin does not have (that crashed every session after one minute).
        app.set_interval(FULL_GC_EVERY_S, self.collect_now)

    @staticmethod
    def collect_now() -> None:
        gc.collect()

    def stop(self) -> None:
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            gc.unfreeze()
            self._saved = None


class GdwApp(App):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: also right for subclasses elsewhere
    TITLE = "gdw-tui"
    ENABLE_COMMAND_PALETTE = False

    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("r", "show_runs", "runs"),
        Binding("w", "show_sweeps", "sweeps"),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("e", "export", "export", show=False),
    ]

    def __init__(
        self, runs_dir: Path, presets_dir: str | None = None, open_run: Path | None = None,
        launched: subprocess.Popen | None = None,
    ) -> None:
        """`launched`: the engine `gdw run`/`gdw resume` started for `open_run` (quitting asks about it)."""
        super().__init__()
        self.runs_dir = Path(runs_dir)
        self.presets_dir = presets_dir
        self.open_run_dir = Path(open_run) if open_run else None
        self.launched: dict[Path, subprocess.Popen] = {}  # engines started by this UI
        self.schedulers: list[subprocess.Popen] = []  # detached sweep schedulers started by this UI
        if launched is not None and self.open_run_dir is not None:
            self.launched[self.open_run_dir] = launched
        self.collector = QuietCollector()
        # Exceptions of background workers: each screen shows its own and stays usable; leaving
        # the app then prints them and exits non-zero (run_tui), so a failure never passes unseen.
        self.background_errors: list[tuple[str, BaseException | None]] = []
        self.warned: set[str] = set()  # lines warn_once said
        if "TEXTUAL_ANIMATIONS" not in os.environ:
            self.animation_level = "none"  # over SSH an animation is only extra bytes and lag

    def on_mount(self) -> None:
        # Opening a run directly shows its dashboard alone (a faster first frame); Escape then
        # brings up the presets (see go_back).
        if self.open_run_dir is not None:
            self.open_run(self.open_run_dir)
        else:
            self.push_screen(PresetsScreen(self.runs_dir, self.presets_dir))
        if os.environ.get(FIRST_FRAME_ENV):
            self.call_after_refresh(self._report_first_frame)
        self.call_after_refresh(self.collector.start, self)
        self.set_interval(REAP_S, self.reap_children)

    def reap_children(self) -> None:
        """Collect the exit of every engine and scheduler this UI started (poll() reaps it), so none
        stays <defunct> until the UI exits. Only our own Popens: their exit codes stay theirs."""
        for process in self.launched.values():
            process.poll()
        self.schedulers = [p for p in self.schedulers if p.poll() is None]

    def on_unmount(self) -> None:
        self.collector.stop()

    def notify(self, message: str, *, title: str = "", severity: str = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Every notification is plain text (engine errors, run names, typed values): brackets are
        shown as typed instead of read as markup, and `commands` in backticks are shown in bold."""
        super().notify(plain_to_markup(message), title=title, severity=severity, timeout=timeout, markup=True)

    def _report_first_frame(self) -> None:
        Path(os.environ[FIRST_FRAME_ENV]).write_text(f"{time.time():.6f}\n")
        self.exit()

    def report_background_error(self, what: str, error: BaseException | None) -> None:
        """A worker raised: remembered for the exit code and the message printed on leaving."""
        self.background_errors.append((what, error))

    def warn_once(self, message: str, title: str) -> None:
        """A problem every refresh finds again (a file with wrong types in the runs directory) is
        said once, not every two seconds."""
        if message not in self.warned:
            self.warned.add(message)
            self.notify(message, title=title, severity="warning", timeout=10)

    # --- runs ----------------------------------------------------------------------------------

    def on_launch_requested(self, message: LaunchRequested) -> None:
        self.launch(message.cfg)

    def on_sweep_requested(self, message: SweepRequested) -> None:
        self.start_sweep(message.checked)

    def on_stop_run_requested(self, message: StopRunRequested) -> None:
        self.stop_run(message.run_dir)

    def on_resume_requested(self, message: ResumeRequested) -> None:
        if self.resume_run(message.run_dir) and message.open_dashboard:
            self.open_run(message.run_dir)

    def launch(self, cfg: dict[str, Any]) -> Path | None:
        """Create a run directory for cfg, start its engine detached, and open its dashboard.

        The pre-flight checks (device, data) come first, as in `gdw run`: a run the engine could
        only refuse leaves no run directory behind.
        """
        try:
            preflight(cfg)
            run_dir = create_run(self.runs_dir, cfg, presets_dir=self.presets_dir)
            self.launched[run_dir] = launch_detached(run_dir)
        except (ConfigError, OSError) as e:
            self.notify(str(e), title="cannot launch", severity="error")
            return None
        self.open_run(run_dir)
        return run_dir

    def start_sweep(self, checked: Any) -> str | None:
        """Create the sweep the form checked and start its scheduler detached (as `gdw sweep --detach`),
        then show it on the sweeps screen."""
        from engine.sweep.start import start_sweep

        from .sweeps_screen import SweepsScreen

        try:
            sweep, scheduler = start_sweep(self.runs_dir, checked)
            if scheduler is not None:
                self.schedulers.append(scheduler)
        except (ConfigError, OSError) as e:
            self.notify(str(e), title="cannot start the sweep", severity="error")
            return None
        self.notify(f"sweep {sweep.id}: {len(sweep.runs)} runs, scheduler detached (closing the UI leaves it running)")
        self.push_screen(SweepsScreen(self.runs_dir, sweep_id=sweep.id))
        return sweep.id

    def open_run(self, run_dir: Path) -> None:
        from .dashboard import DashboardScreen

        self.push_screen(DashboardScreen(run_dir, engine=lambda: self.launched.get(run_dir)))

    def resume_run(self, run_dir: Path) -> bool:
        try:
            self.launched[run_dir] = launch_detached(run_dir, resume=True)
        except OSError as e:
            self.notify(f"cannot resume {run_dir.name}: {e}", severity="error")
            return False
        self.notify(f"resuming {run_dir.name}")
        return True

    def stop_run(self, run_dir: Path) -> bool:
        """SIGTERM through the run's lock; an engine of ours that has not locked yet is terminated directly."""
        if stop_run(run_dir):
            self.notify(f"stopping {run_dir.name}: the engine checkpoints and exits")
            return True
        process = self.launched.get(run_dir)
        if process is not None and process.poll() is None:
            process.terminate()
            return True
        self.notify(f"{run_dir.name} is not running", severity="warning")
        return False

    def running_launched(self) -> list[Path]:
        """Runs started from this UI whose engine is still alive."""
        return [d for d, p in self.launched.items() if p.poll() is None or engine_alive(d)]

    # --- actions -------------------------------------------------------------------------------

    async def action_quit(self) -> None:
        running = self.running_launched()
        if not running:
            self.exit()
            return
        from .quit_screen import STOP, QuitScreen

        def answered(choice: str | None) -> None:
            if choice is None:
                return
            if choice == STOP:
                for run_dir in running:
                    self.stop_run(run_dir)
            self.exit()

        if not isinstance(self.screen, QuitScreen):
            self.push_screen(QuitScreen(running), answered)

    def go_back(self) -> None:
        """Back to the screen below, or to the presets when nothing of ours is below."""
        from textual.screen import ModalScreen

        below = self.screen_stack[-2] if len(self.screen_stack) > 1 else None
        if below is not None and below.id != "_default" and not isinstance(below, ModalScreen):
            self.pop_screen()
        else:
            self.switch_screen(PresetsScreen(self.runs_dir, self.presets_dir))

    def action_show_runs(self) -> None:
        from .runs_screen import RunsScreen

        for depth, screen in enumerate(reversed(self.screen_stack)):
            if isinstance(screen, RunsScreen):
                for _ in range(depth):
                    self.pop_screen()
                return
        self.push_screen(RunsScreen(self.runs_dir, self.presets_dir))

    def action_export(self) -> None:
        """`e`: the screen as SVG and its charts' curves as CSV, under exports/ of the run (or the runs dir)."""
        from textual.widgets import RichLog

        from .export import export_view

        try:
            paths = export_view(self.screen, self.runs_dir)
        except OSError as e:
            self.notify(f"cannot export: {e}", severity="error")
            return
        shown = ", ".join(str(p) for p in paths)
        self.notify(shown, title="exported")
        for log in self.screen.query("#log").results(RichLog):  # the dashboard's log pane
            log.write(f"exported {shown}")
        self._export_figures()

    def _export_figures(self) -> None:
        """The dashboard's run or the selected sweep: its paper figures too (`gdw plot`, in a child process)."""
        from textual.widgets import RichLog

        from .figures import figures_target, write_figures

        target = figures_target(self.screen, self.runs_dir)
        if target is None:
            return
        screen = self.screen

        async def figures() -> None:
            ok, message = await write_figures(target[0], target[1], self.runs_dir)
            self.notify(message, title="figures" if ok else "figures not written", severity="information" if ok else "error")
            for log in screen.query("#log").results(RichLog) if screen.is_attached else []:  # still open
                log.write(f"figures: {message}")

        self.notify(f"drawing the figures of {Path(target[0]).name} into {target[1]}…", title="figures")
        self.run_worker(figures(), group="figures", exit_on_error=False)

    def action_show_sweeps(self) -> None:
        from .sweeps_screen import SweepsScreen

        if not isinstance(self.screen, SweepsScreen):
            self.push_screen(SweepsScreen(self.runs_dir))

    def action_help(self) -> None:
        from .help_screen import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())


def check_serve_available() -> None:
    """--serve needs the optional textual-serve package; say which extra installs it instead of a traceback."""
    from engine.extras import require

    require("serve", "--serve")


def run_tui(
    runs_dir: Path | str | None,
    presets_dir: str | None = None,
    open_run: Path | None = None,
    serve: bool = False,
    port: int = 8000,
    launched: subprocess.Popen | None = None,
    host: str | None = None,
    token: str | None = None,
) -> None:
    """Run the app in this terminal, or (serve=True) serve it to a browser, behind a token (gdw_tui.serve)."""
    runs_path = runs_dir_from(runs_dir)
    if serve:
        check_serve_available()
        from .serve import TokenServer, choose_token, risk_note

        # The server starts one app per browser tab, through the same command as `gdw tui`.
        command = [sys.executable, "-m", "gdw_cli", "tui", "--runs-dir", str(runs_path.resolve())]
        if presets_dir:
            command += ["--presets-dir", str(Path(presets_dir).resolve())]
        if open_run:
            command.append(str(Path(open_run).resolve()))
        server = TokenServer(shlex.join(command), host=host or "127.0.0.1", port=port, token=choose_token(token))
        note = risk_note(server.host, port) if host else None
        if note:
            print(note, file=sys.stderr, flush=True)
        print(f"gdw-tui: serving on {server.url()} (Ctrl+C stops the server; runs keep going)", flush=True)
        server.serve()
        return
    app = GdwApp(runs_path, presets_dir, open_run, launched)
    app.run()
    # Textual prints the traceback of an exception in a timer, worker or handler after leaving the
    # alternate screen and sets return_code to 1; pass it on, so that a crash never exits 0.
    if app.return_code:
        raise SystemExit(app.return_code)
    if app.background_errors:
        print_background_errors(app.background_errors)
        raise SystemExit(1)


def print_background_errors(errors: list[tuple[str, BaseException | None]]) -> None:
    """What the screens showed while the app ran, with tracebacks, on the terminal the app leaves."""
    import traceback

    print(f"gdw-tui: {len(errors)} background task(s) failed while the UI ran:", file=sys.stderr)
    for what, error in errors:
        print(f"- {what}", file=sys.stderr)
        if error is not None:
            traceback.print_exception(error, file=sys.stderr)
