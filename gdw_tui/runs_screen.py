"""The runs screen: every run in the runs directory with its honest status and its changes from the
preset; filter, open, stop, resume, compare, archive, delete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Input, Static
from textual.worker import Worker, WorkerState

from engine.changes import run_changes
from engine.config import ConfigError
from engine.rundir import can_stop, resume_refusal
from engine.runs import archive_run, delete_run, list_runs, run_status

from .widgets.data_table import DataTable
from .widgets.footer import Footer
from .formatting import badge, format_acc, format_started
from .messages import ResumeRequested, StopRunRequested

REFRESH_S = 2.0
# What matters most comes first: the whole run id (what every command takes) at 120 columns.
COLUMNS = ("", "status", "run", "preset", "method", "seed", "epoch", "final", "best", "changes", "sweep", "started", "note")
CHANGES_WIDTH = 32  # longer changes end in … (the filter still searches all of them)


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def run_row(run: dict[str, Any], marked: bool) -> tuple:
    status = run.get("status", "?")
    symbol, color = badge(status)
    epochs = run.get("epochs")
    epoch = f"{run.get('epoch', 0)}/{epochs}" if epochs else str(run.get("epoch", ""))
    note = run.get("message") or ""
    refusal = resume_refusal(Path(run["path"]), status)
    if status == "interrupted":
        note = "engine gone · " + ("R resumes from the last checkpoint" if refusal is None else f"it {refusal}")
    elif status == "stopped" and not note:
        note = "R resumes" if refusal is None else f"it {refusal}"
    return (
        Text("✔" if marked else " ", style="bold"),
        Text(f"{symbol} {status}", style=color),
        Text(run.get("run_id", ""), style="dim"),
        run.get("preset", ""),
        run.get("method", ""),
        Text(str(run.get("seed", "")), justify="right"),
        Text(epoch, justify="right"),
        Text(format_acc(run.get("final_acc")), justify="right"),
        Text(format_acc(run.get("best_acc")), justify="right"),
        Text(shorten(run.get("changes", ""), CHANGES_WIDTH), style="#d2a8ff"),
        Text(str(run.get("sweep") or ""), style="dim"),
        format_started(run.get("started") or run.get("created")),
        Text(note, style="#ff7b72" if status == "failed" else ""),
    )


class RunsTable(DataTable):
    """The run list; Enter opens the highlighted run."""

    BINDINGS = [Binding("enter", "select_cursor", "open")]


def matches(run: dict[str, Any], pattern: str) -> bool:
    """The filter: every word appears in the run's id, preset, method, status, changes or sweep."""
    text = " ".join(str(run.get(k) or "") for k in ("run_id", "preset", "method", "status", "changes", "sweep")).lower()
    return all(word in text for word in pattern.lower().split())


class RunsScreen(Screen):
    BINDINGS = [
        Binding("space", "mark", "mark ↓"),  # it marks and moves to the next run: the footer says so
        Binding("c", "compare", "compare marked"),
        Binding("s", "stop", "stop"),
        Binding("R", "resume", "resume"),
        Binding("slash", "focus_filter", "filter"),
        Binding("a", "archive", "archive"),
        Binding("d", "delete", "delete"),
        Binding("ctrl+r", "refresh", "refresh", show=False),
        Binding("escape", "back", "back"),
    ]

    def __init__(self, runs_dir: Path, presets_dir: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.runs_dir = runs_dir
        self.presets_dir = presets_dir
        self.all_runs: list[dict[str, Any]] = []
        self.runs: list[dict[str, Any]] = []  # the ones the filter lets through, as listed
        self.marked: set[str] = set()
        self.loaded = False
        self._shown: list[tuple] = []
        self._changes: dict[str, str] = {}  # run path -> its changes (a run's config never changes)
        self._list_error = ""

    def compose(self) -> ComposeResult:
        yield Static(Text(f" Runs · {self.runs_dir}"), id="runs-title")
        yield Input(placeholder="/ filter by id, preset, method, status or change", id="runs-filter", compact=True)
        table = RunsTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        table.add_columns(*COLUMNS)
        yield table
        yield Static("", id="runs-empty")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_runs()
        self.set_interval(REFRESH_S, self.refresh_runs)
        self.query_one(DataTable).focus()

    def on_screen_resume(self) -> None:
        self.refresh_runs()

    @work(thread=True, exclusive=True, group="runs-list", exit_on_error=False)
    def refresh_runs(self) -> None:
        runs = list_runs(self.runs_dir)
        for run in runs:
            if run["path"] not in self._changes:
                self._changes[run["path"]] = run_changes(Path(run["path"]), self.presets_dir, None, run)
            run["changes"] = self._changes[run["path"]]
        self.app.call_from_thread(self._set_runs, runs)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A listing that fails (an unreadable runs directory) is said once; the screen stays usable."""
        if event.worker.group != "runs-list":
            return
        if event.state == WorkerState.ERROR:
            message = f"cannot list the runs in {self.runs_dir}: {event.worker.error}"
            if message != self._list_error:
                self.app.report_background_error(f"listing the runs in {self.runs_dir}", event.worker.error)
                self._list_error = message
                self.notify(message, title="runs", severity="error")
        elif event.state == WorkerState.SUCCESS:
            self._list_error = ""

    def action_refresh(self) -> None:
        self.refresh_runs()

    def _set_runs(self, runs: list[dict[str, Any]]) -> None:
        self.all_runs = runs
        for run in runs:
            if run.get("problem"):  # a summary.json with wrong types: the run is listed without those fields
                self.app.warn_once(run["problem"], "runs")
        self._show_runs()

    @on(Input.Changed, "#runs-filter")
    def _filter_changed(self) -> None:
        self._show_runs()

    @on(Input.Submitted, "#runs-filter")
    def _filter_submitted(self) -> None:
        self.query_one(DataTable).focus()

    def action_focus_filter(self) -> None:
        self.query_one("#runs-filter", Input).focus()

    def _show_runs(self) -> None:
        pattern = self.query_one("#runs-filter", Input).value
        runs = [r for r in self.all_runs if matches(r, pattern)]
        self.runs = runs
        self.loaded = True
        rows = [run_row(r, r["path"] in self.marked) for r in runs]
        keys = [r["path"] for r in runs]
        signature = [(k, tuple(str(c) for c in row)) for k, row in zip(keys, rows)]
        self._show_empty(pattern, bool(runs))
        if signature == self._shown:
            return
        self._shown = signature
        table = self.query_one(DataTable)
        current = self.selected_path()
        table.clear()
        for key, row in zip(keys, rows):
            table.add_row(*row, key=key)
        if current in keys:
            table.move_cursor(row=keys.index(current), animate=False)

    def _show_empty(self, pattern: str, any_shown: bool) -> None:
        empty = self.query_one("#runs-empty", Static)
        empty.display = not any_shown
        if self.all_runs:
            empty.update(Text(f"No run matches '{pattern}' (Escape clears the filter)."))
        else:
            empty.update(Text(f"No runs in {self.runs_dir} yet. Escape goes back to the presets: pick one and press Enter."))

    def selected_path(self) -> str | None:
        table = self.query_one(DataTable)
        if not self.runs or table.cursor_row < 0 or table.cursor_row >= table.row_count:
            return None
        row_key, _ = table.coordinate_to_cell_key((table.cursor_row, 0))
        return row_key.value

    def selected_run(self) -> dict[str, Any] | None:
        path = self.selected_path()
        return next((r for r in self.runs if r["path"] == path), None)

    @on(DataTable.RowSelected, "#runs-table")
    def _row_selected(self) -> None:
        self.action_open()

    def action_open(self) -> None:
        run = self.selected_run()
        if run:
            self.app.open_run(Path(run["path"]))

    def action_mark(self) -> None:
        path = self.selected_path()
        if path is None:
            return
        self.marked ^= {path}
        table = self.query_one(DataTable)
        table.update_cell(path, table.ordered_columns[0].key, Text("✔" if path in self.marked else " ", style="bold"))
        self._shown = []  # the mark column changed
        if table.cursor_row < table.row_count - 1:
            table.move_cursor(row=table.cursor_row + 1)

    def action_compare(self) -> None:
        marked = [Path(r["path"]) for r in self.runs if r["path"] in self.marked]
        if len(marked) < 2:
            self.notify("mark two or more runs with space, then press c", severity="warning")
            return
        from .compare import CompareScreen

        self.app.push_screen(CompareScreen(marked))

    def action_stop(self) -> None:
        run = self.selected_run()
        if not run:
            return
        if not can_stop(run["status"]):
            self.notify(f"{run['run_id']} is {run['status']}: nothing to stop", severity="warning")
            return
        from .confirm import ConfirmScreen

        def stop(confirmed: bool | None) -> None:
            if confirmed:
                self.post_message(StopRunRequested(Path(run["path"])))
                self.refresh_runs()

        self.app.push_screen(ConfirmScreen(f"Stop {run['run_id']}?\nThe engine checkpoints and exits; R resumes it.", "Stop run"), stop)

    def action_resume(self) -> None:
        run = self.selected_run()
        if not run:
            return
        refusal = resume_refusal(Path(run["path"]), run["status"])
        if refusal:
            self.notify(f"run {run['run_id']} {refusal}", severity="warning")
            return
        self.post_message(ResumeRequested(Path(run["path"]), open_dashboard=True))

    def action_archive(self) -> None:
        self._remove("archive", "Archive", f"It moves to {self.runs_dir / '.archive'}/ and leaves this list.", archive_run)

    def action_delete(self) -> None:
        self._remove("delete", "Delete", "Its events, checkpoints and summary are removed for good.", delete_run)

    def _remove(self, verb: str, label: str, consequence: str, remove) -> None:
        """Archive or delete the highlighted run after a confirmation; never a running one."""
        run = self.selected_run()
        if not run:
            return
        run_dir = Path(run["path"])
        reason = self._running_reason(run_dir)
        if reason:
            self.notify(f"cannot {verb} {run_dir.name}: {reason}", severity="warning")
            return
        from .confirm import ConfirmScreen

        def answered(confirmed: bool | None) -> None:
            if not confirmed:
                return
            reason = self._running_reason(run_dir)  # it may have been resumed meanwhile
            try:
                if reason:
                    raise ConfigError(reason)
                remove(run_dir)
            except (ConfigError, OSError) as e:
                self.notify(f"cannot {verb} {run_dir.name}: {e}", severity="error")
                return
            self.marked.discard(str(run_dir))
            self._changes.pop(str(run_dir), None)
            self.notify(f"{verb}d {run_dir.name}")
            self.refresh_runs()

        self.app.push_screen(ConfirmScreen(f"{label} {run_dir.name}?\n{consequence}", f"{label} run"), answered)

    def _running_reason(self, run_dir: Path) -> str:
        """Why the run must not be touched now, or ''."""
        if run_status(run_dir) == "running":
            return "it is running (stop it first with s)"
        process = getattr(self.app, "launched", {}).get(run_dir)
        if process is not None and process.poll() is None:
            return "its engine, started here, is still starting (stop it first with s)"
        return ""

    def action_back(self) -> None:
        filt = self.query_one("#runs-filter", Input)
        if filt.value or self.focused is filt:
            filt.value = ""  # Escape clears the filter first, as on the presets screen
            self.query_one(DataTable).focus()
            return
        self.app.go_back()
