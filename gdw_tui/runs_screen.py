"""The runs screen: every run in the runs directory with its honest status; open, stop, resume, compare."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from engine.rundir import can_stop, resume_refusal
from engine.runs import list_runs

from .formatting import badge, format_acc, format_started

REFRESH_S = 2.0
# What matters most comes first, so an 80-column terminal shows it without scrolling sideways.
COLUMNS = ("", "status", "preset", "method", "seed", "epoch", "final", "best", "started", "run", "note")


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
        run.get("preset", ""),
        run.get("method", ""),
        Text(str(run.get("seed", "")), justify="right"),
        Text(epoch, justify="right"),
        Text(format_acc(run.get("final_acc")), justify="right"),
        Text(format_acc(run.get("best_acc")), justify="right"),
        format_started(run.get("started") or run.get("created")),
        Text(run.get("run_id", ""), style="dim"),
        Text(note, style="#ff7b72" if status == "failed" else ""),
    )


class RunsTable(DataTable):
    """The run list; Enter opens the highlighted run."""

    BINDINGS = [Binding("enter", "select_cursor", "open")]


class RunsScreen(Screen):
    BINDINGS = [
        Binding("space", "mark", "mark"),
        Binding("c", "compare", "compare marked"),
        Binding("s", "stop", "stop"),
        Binding("R", "resume", "resume"),
        Binding("ctrl+r", "refresh", "refresh", show=False),
        Binding("escape", "back", "back"),
    ]

    def __init__(self, runs_dir: Path, **kwargs) -> None:
        super().__init__(**kwargs)
        self.runs_dir = runs_dir
        self.runs: list[dict[str, Any]] = []
        self.marked: set[str] = set()
        self.loaded = False
        self._shown: list[tuple] = []

    def compose(self) -> ComposeResult:
        yield Static(f" Runs · {self.runs_dir}", id="runs-title")
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
        self.app.call_from_thread(self._show_runs, runs)

    def action_refresh(self) -> None:
        self.refresh_runs()

    def _show_runs(self, runs: list[dict[str, Any]]) -> None:
        self.runs = runs
        self.loaded = True
        rows = [run_row(r, r["path"] in self.marked) for r in runs]
        keys = [r["path"] for r in runs]
        signature = [(k, tuple(str(c) for c in row)) for k, row in zip(keys, rows)]
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
        empty = self.query_one("#runs-empty", Static)
        empty.display = not runs
        empty.update(f"No runs in {self.runs_dir} yet. Escape goes back to the presets: pick one and press Enter.")

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
                self.app.stop_run(Path(run["path"]))
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
        self.app.resume_run(Path(run["path"]))
        self.app.open_run(Path(run["path"]))

    def action_back(self) -> None:
        self.app.go_back()
