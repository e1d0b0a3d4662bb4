"""The sweeps screen (`w`): each sweep, its grid filling in, the runs of a grid cell, the slots' load.

Torch-free, like the whole UI: a sweep is read from its directory (engine.sweep.store) and its
runs' summaries. Enter on a sweep shows its grid; Enter on a grid cell opens the cell's
running (else first) run; Enter on a run opens its dashboard. `s` stops the sweep, `R` resumes
it (a detached scheduler), `p` shows its report table.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from engine.config import ConfigError, METHODS
from engine.runs import read_summary
from engine.sweep.store import Sweep, counts, list_sweeps, run_states, scheduler_state

from .widgets.data_table import DataTable
from .widgets.footer import Footer
from .formatting import badge, format_acc

REFRESH_S = 2.0
SWEEP_COLUMNS = ("sweep", "name", "runs", "done", "run", "fail", "pend", "executor")
RUN_COLUMNS = ("seed", "status", "epoch", "final", "run")


def slot_usage() -> str:
    """GPU utilisation and memory from NVML where a driver and nvidia-ml-py are present; CPU load otherwise."""
    try:
        import pynvml  # nvidia-ml-py, optional

        pynvml.nvmlInit()
        try:
            parts = []
            for i in range(pynvml.nvmlDeviceGetCount()):
                h = pynvml.nvmlDeviceGetHandleByIndex(i)
                util = pynvml.nvmlDeviceGetUtilizationRates(h).gpu
                mem = pynvml.nvmlDeviceGetMemoryInfo(h)
                parts.append(f"GPU{i} {util}% {mem.used / 2**30:.1f}/{mem.total / 2**30:.0f} GiB")
            return " · ".join(parts)
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no module, no driver, no GPU: the CPU is what the runs share
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:
        return "CPU load unknown"
    return f"CPU load {load:.1f} on {os.cpu_count() or 1} cores"


def cell_text(entries: list[dict[str, Any]], states: dict[str, str], accs: list[float]) -> Text:
    """One mark per seed coloured by status, then the mean ± std of the finished seeds."""
    text = Text()
    for e in entries:
        symbol, colour = badge(states.get(e["run_id"], "created"))
        text.append(symbol, style=colour)
    if accs:
        mean = sum(accs) / len(accs)
        text.append(f" {mean:.2f}")
        if len(accs) > 1:
            std = (sum((a - mean) ** 2 for a in accs) / (len(accs) - 1)) ** 0.5
            text.append(f"±{std:.2f}")
    return text


class SweepsScreen(Screen):
    BINDINGS = [
        Binding("s", "stop_sweep", "stop sweep"),
        Binding("R", "resume_sweep", "resume sweep"),
        Binding("p", "report", "report"),
        Binding("escape", "back", "back"),
    ]

    def __init__(self, runs_dir: Path, sweep_id: str | None = None, **kwargs: Any) -> None:
        """sweep_id: the sweep shown first (default: the newest)."""
        super().__init__(**kwargs)
        self.runs_dir = runs_dir
        self.sweeps: list[Sweep] = []
        self.sweep_id: str | None = sweep_id
        self.states: dict[str, str] = {}
        self.cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.settings: list[str] = []
        self.methods: list[str] = []
        self.summaries: dict[str, dict[str, Any]] = {}
        self.loaded = False
        # What each table shows now: a refresh that reads the same rebuilds nothing (no flicker, no
        # frame with cleared columns, the cursor stays put).
        self._shown: dict[str, Any] = {}
        self._last_error = ""

    def _unchanged(self, table_id: str, rows: list[tuple[Any, ...]]) -> bool:
        signature = [tuple(c.markup if isinstance(c, Text) else str(c) for c in row) for row in rows]
        if self._shown.get(table_id) == signature:
            return True
        self._shown[table_id] = signature
        return False

    def compose(self) -> ComposeResult:
        yield Static(f" Sweeps · {self.runs_dir}", id="sweeps-title")
        sweeps = DataTable(id="sweeps-table", cursor_type="row")
        sweeps.add_columns(*SWEEP_COLUMNS)
        yield sweeps
        yield Static("", id="sweeps-empty")
        yield DataTable(id="grid-table", cursor_type="cell")
        runs = DataTable(id="cell-runs", cursor_type="row")
        runs.add_columns(*RUN_COLUMNS)
        yield runs
        yield Static("", id="slots")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_sweeps()
        self.set_interval(REFRESH_S, self.refresh_sweeps)
        self.query_one("#sweeps-table", DataTable).focus()

    # --- data ---------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="sweeps", exit_on_error=False)
    def refresh_sweeps(self) -> None:
        """Everything read from disk off the UI thread: each sweep's states, the shown sweep's summaries."""
        unreadable: list[str] = []
        rows = [(sweep, run_states(sweep)) for sweep in list_sweeps(self.runs_dir, unreadable)]
        shown = next((s for s, _ in rows if s.id == self.sweep_id), rows[0][0] if rows else None)
        summaries = {e["run_id"]: read_summary(shown.runs_dir / e["run_id"]) for e in shown.runs} if shown else {}
        self.app.call_from_thread(self._show, rows, summaries, slot_usage())
        for line in unreadable:
            self.app.call_from_thread(self.app.warn_once, f"{line} (sweep left out)", "sweeps")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A refresh, stop or resume that raised is said (once per message) and counted for the exit
        code; the screen stays usable. (A refresh once failed silently on every tick, so the grid
        never filled in.)"""
        if event.state != WorkerState.ERROR:
            return
        what = f"reading the sweeps in {self.runs_dir}" if event.worker.group == "sweeps" else f"{event.worker.name.strip('_')} the sweep"
        message = f"{what}: {type(event.worker.error).__name__}: {event.worker.error}"
        self.app.report_background_error(what, event.worker.error)
        if message != self._last_error:
            self._last_error = message
            self.notify(message, title="sweeps", severity="error")

    def _show(self, rows: list[tuple[Sweep, dict[str, str]]], summaries: dict[str, dict[str, Any]], slots: str) -> None:
        self.loaded = True
        self.sweeps = [s for s, _ in rows]
        self.summaries = summaries
        table = self.query_one("#sweeps-table", DataTable)
        keep = self.sweep_id
        table_rows = []
        for sweep, states in rows:
            c = counts(states)
            scheduler = scheduler_state(sweep, states)
            executor = sweep.executor + {"stopped": " (stopped)", "died": " · scheduler died — R resumes"}.get(scheduler, "")
            failed = f"{c['failed']} + {c['missing']} deleted" if c["missing"] else str(c["failed"])
            table_rows.append((sweep.id, sweep.name, str(len(sweep.runs)), str(c["done"]), str(c["running"]), failed,
                               str(c["pending"]), Text(executor, style="red") if scheduler == "died" else executor))
        ids = [s.id for s in self.sweeps]
        if not self._unchanged("sweeps", table_rows):
            table.clear()
            for row in table_rows:
                table.add_row(*row, key=row[0])
        empty = self.query_one("#sweeps-empty", Static)
        empty.display = not ids
        empty.update(f"No sweeps in {self.runs_dir} yet. Start one with `gdw sweep PRESET... --methods ... --seeds ...`.")
        if keep not in ids:
            keep = ids[0] if ids else None
        if keep is not None and table.cursor_row != ids.index(keep):
            table.move_cursor(row=ids.index(keep), animate=False)
        self.query_one("#slots", Static).update(f" slots: {slots}")
        self._show_grid(keep, {s.id: states for s, states in rows}.get(keep, {}))

    def _show_grid(self, sweep_id: str | None, states: dict[str, str]) -> None:
        self.sweep_id, self.states = sweep_id, states
        grid = self.query_one("#grid-table", DataTable)
        sweep = self.sweep()
        if sweep is None:
            grid.clear(columns=True)
            self.query_one("#cell-runs", DataTable).clear()
            self._shown.clear()
            return
        cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for e in sweep.runs:
            cells.setdefault((e["setting"], e["method"]), []).append(e)
        settings = list(dict.fromkeys(e["setting"] for e in sweep.runs))
        methods = [m for m in METHODS if any(k[1] == m for k in cells)]
        grid_rows = []
        for setting in settings:
            row: list[Any] = [setting]
            for m in methods:
                entries = cells.get((setting, m), [])
                accs = [self.summaries[e["run_id"]]["final_acc"] for e in entries
                        if states.get(e["run_id"]) == "finished" and self.summaries.get(e["run_id"], {}).get("final_acc") is not None]
                row.append(cell_text(entries, states, accs))
            grid_rows.append(tuple(row))
        new_columns = methods != self.methods or len(grid.columns) != len(methods) + 1
        self.cells, self.settings, self.methods = cells, settings, methods
        if not self._unchanged("grid", [(sweep.id, "setting", *methods), *grid_rows]):
            cursor = grid.cursor_coordinate
            if new_columns:
                grid.clear(columns=True)
                grid.add_columns("setting", *methods)
            else:
                grid.clear()
            for row in grid_rows:
                grid.add_row(*row, key=row[0])
            if cursor.row < grid.row_count and cursor.column < len(grid.columns):
                grid.cursor_coordinate = cursor
        self._show_cell_runs()

    def _show_cell_runs(self) -> None:
        table = self.query_one("#cell-runs", DataTable)
        rows, keys = [], []
        for e in self.cell_entries():
            s = self.summaries.get(e["run_id"], {})
            status = self.states.get(e["run_id"], "created")
            symbol, colour = badge(status)
            rows.append((str(e["seed"]), Text(f"{symbol} {status}", style=colour), f"{s.get('epoch', 0)}/{s.get('epochs', '?')}",
                         format_acc(s.get("final_acc")), Text(e["run_id"], style="dim")))
            keys.append(e["run_id"])
        if self._unchanged("cell-runs", rows):
            return
        table.clear()
        for row, key in zip(rows, keys):
            table.add_row(*row, key=key)

    def sweep(self) -> Sweep | None:
        return next((s for s in self.sweeps if s.id == self.sweep_id), None)

    def cell_entries(self) -> list[dict[str, Any]]:
        grid = self.query_one("#grid-table", DataTable)
        if not self.settings or grid.cursor_row >= len(self.settings):
            return []
        col = grid.cursor_column
        method = self.methods[col - 1] if 1 <= col <= len(self.methods) else (self.methods[0] if self.methods else None)
        return self.cells.get((self.settings[grid.cursor_row], method), [])

    # --- moving around -------------------------------------------------------------------------

    @on(DataTable.RowHighlighted, "#sweeps-table")
    def _sweep_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value != self.sweep_id and self.loaded:
            self.sweep_id = event.row_key.value
            self.refresh_sweeps()

    @on(DataTable.RowSelected, "#sweeps-table")
    def _sweep_selected(self) -> None:
        self.query_one("#grid-table", DataTable).focus()

    @on(DataTable.CellHighlighted, "#grid-table")
    def _cell_highlighted(self) -> None:
        self._show_cell_runs()

    @on(DataTable.CellSelected, "#grid-table")
    def _cell_selected(self) -> None:
        entries = self.cell_entries()
        if entries:
            running = [e for e in entries if self.states.get(e["run_id"]) == "running"]
            self.app.open_run(self.sweep().runs_dir / (running or entries)[0]["run_id"])

    @on(DataTable.RowSelected, "#cell-runs")
    def _run_selected(self, event: DataTable.RowSelected) -> None:
        self.app.open_run(self.sweep().runs_dir / event.row_key.value)

    # --- actions -------------------------------------------------------------------------------

    def csv_tables(self) -> dict:
        """`e`: the grid of the sweep shown, as on screen (marks, mean ± std of the finished seeds)."""
        grid = self.query_one("#grid-table", DataTable)
        if self.sweep_id is None or not grid.row_count:
            return {}
        header = [str(c.label) for c in grid.ordered_columns]
        rows = [[str(cell) for cell in grid.get_row_at(i)] for i in range(grid.row_count)]
        return {f"grid-{self.sweep_id}": (header, rows)}

    def action_stop_sweep(self) -> None:
        sweep = self.sweep()
        if sweep is None:
            return
        from .confirm import ConfirmScreen

        def stop(confirmed: bool | None) -> None:
            if confirmed:
                self._stop(sweep)

        self.app.push_screen(ConfirmScreen(f"Stop sweep {sweep.id}?\nNo run starts any more; running ones checkpoint and exit. R resumes.",
                                           "Stop sweep"), stop)

    @work(thread=True, exit_on_error=False)
    def _stop(self, sweep: Sweep) -> None:
        from engine.sweep.executor import make_executor
        from engine.sweep.task import busy

        try:
            sweep.set_stopped(True)
            make_executor(sweep.executor, sweep.options).cancel(sweep, [d for d in sweep.run_dirs() if busy(d)])
        except (ConfigError, OSError) as e:
            self.app.call_from_thread(self.notify, str(e), title="cannot stop", severity="error")
            return
        self.app.call_from_thread(self.notify, f"sweep {sweep.id} stopping")
        self.refresh_sweeps()

    def action_resume_sweep(self) -> None:
        sweep = self.sweep()
        if sweep is not None:
            self._resume(sweep)

    @work(thread=True, exit_on_error=False)
    def _resume(self, sweep: Sweep) -> None:
        from engine.sweep.executor import make_executor, preflight
        from engine.sweep.task import busy

        try:
            preflight(sweep.executor, sweep.options)
            sweep.set_stopped(False)
            todo = [d for d in sweep.run_dirs() if read_summary(d).get("status") != "finished" or busy(d)]
            executor = make_executor(sweep.executor, {**sweep.options, "detach": True})
            executor.submit(sweep, todo)
            scheduler = getattr(executor, "scheduler_proc", None)
            if scheduler is not None:
                self.app.schedulers.append(scheduler)  # reaped by the app when it exits
        except (ConfigError, OSError) as e:
            self.app.call_from_thread(self.notify, str(e), title="cannot resume", severity="error")
            return
        self.app.call_from_thread(self.notify, f"sweep {sweep.id}: {len(todo)} run(s) to resume, adopt or start")
        self.refresh_sweeps()

    def action_report(self) -> None:
        sweep = self.sweep()
        if sweep is not None:
            self.app.push_screen(ReportScreen(sweep))

    def action_back(self) -> None:
        self.app.go_back()


class ReportScreen(Screen):
    """`gdw report SWEEP` as a Rich table; Escape goes back."""

    BINDINGS = [Binding("escape", "app.pop_screen", "back")]

    def __init__(self, sweep: Sweep, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sweep = sweep

    def compose(self) -> ComposeResult:
        from engine.sweep.report import collect, rich_table

        self.report = collect(self.sweep.run_dirs())
        yield Static(f" Report · {self.sweep.id}", id="sweeps-title")
        with VerticalScroll():
            yield Static(rich_table(self.report), id="report-table")
        yield Footer()

    def csv_tables(self) -> dict:
        """`e`: the report as `gdw report --format csv` writes it."""
        import csv
        import io

        from engine.sweep.report import to_csv

        header, *rows = list(csv.reader(io.StringIO(to_csv(self.report))))
        return {"report": (header, rows)}
