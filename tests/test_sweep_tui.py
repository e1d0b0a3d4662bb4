"""The sweeps screen (`w`): pilot tests on a sweep whose runs' summaries are set by hand, and
snapshots at 80×24 and 160×50. Nothing on screen depends on the clock or the machine's load."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Iterator

import pytest
from textual.widgets import DataTable

from engine.runs import read_summary, write_summary
from engine.sweep.spec import SweepSpec, expand
from engine.sweep.store import create_sweep, find_sweep, take_scheduler_lock
from fixtures.tui_support import screen_text, wait_settled, wait_until
from gdw_tui.app import GdwApp
from gdw_tui.dashboard import DashboardScreen
from gdw_tui import sweeps_screen
from gdw_tui.sweeps_screen import ReportScreen, SweepsScreen
from gdw_tui.textual_compat import notifications

SWEEP_ID = "20251201-120000-digits"
# (preset, method, seed) -> final accuracy; absent: still pending; None: failed.
RESULTS = {("digits-clean", "erm", 1): 95.5, ("digits-clean", "erm", 10): 94.5, ("digits-clean", "gdw", 1): 96.25,
           ("digits-clean", "gdw", 10): 96.75, ("digits-imb", "erm", 1): 57.0, ("digits-imb", "gdw", 1): None}


@pytest.fixture
def runs(tmp_path, monkeypatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)  # a relative runs directory: no temporary path on screen
    real = time.strftime
    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20251201-120000" if fmt == "%Y%m%d-%H%M%S" else real(fmt, *a))
    spec = SweepSpec(presets=["digits-clean", "digits-imb"], methods=["erm", "gdw"], seeds=[1, 10], name="digits")
    sweep = create_sweep(Path("runs"), spec, expand(spec))
    monkeypatch.setattr(time, "strftime", real)
    for e in sweep.runs:
        key = (e["preset"], e["method"], e["seed"])
        if key in RESULTS:
            s = read_summary(Path("runs") / e["run_id"])
            acc = RESULTS[key]
            s.update(status="failed" if acc is None else "finished", final_acc=acc, epoch=40 if acc else 3,
                     message="diverged at epoch 4, iteration 2: non-finite loss or weight" if acc is None else "")
            write_summary(Path("runs") / e["run_id"], s)
    monkeypatch.setattr(sweeps_screen, "slot_usage", lambda: "CPU load 0.5 on 2 cores")
    # A sweep in progress: its scheduler (this process, here) holds the lock while runs wait.
    SCHEDULER_LOCKS[SWEEP_ID] = take_scheduler_lock(sweep)
    yield Path("runs")
    release_scheduler(SWEEP_ID)


SCHEDULER_LOCKS: dict[str, int] = {}


def release_scheduler(sweep_id: str) -> None:
    fd = SCHEDULER_LOCKS.pop(sweep_id, None)
    if fd is not None:
        os.close(fd)


async def open_sweeps(pilot) -> None:
    await pilot.press("w")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, SweepsScreen) and pilot.app.screen.loaded, what="the sweeps")
    # The sweeps table's header is laid out a frame after its rows arrive; on a loaded machine the
    # snapshot could catch a frame in between (CI once did, at 160×50).
    await wait_settled(pilot)


async def test_grid_marks_means_and_cell_runs(runs):
    app = GdwApp(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_sweeps(pilot)
        text = screen_text(app)
        assert SWEEP_ID in text and "slots: CPU load 0.5 on 2 cores" in text
        sweeps = app.screen.query_one("#sweeps-table", DataTable)
        assert [str(c) for c in sweeps.get_row(SWEEP_ID)][2:7] == ["8", "5", "0", "1", "2"]
        grid = app.screen.query_one("#grid-table", DataTable)
        row = [str(c) for c in grid.get_row("digits-clean")]
        assert row == ["digits-clean", "✓✓ 95.00±0.71", "✓✓ 96.50±0.35"]
        imb = [str(c) for c in grid.get_row("digits-imb")]
        assert imb == ["digits-imb", "✓… 57.00", "✗…"]
        # The cell under the cursor lists its runs; moving to gdw on digits-imb shows the failed one.
        grid.focus()
        await pilot.press("down", "right", "right")
        await pilot.pause()
        cell = app.screen.query_one("#cell-runs", DataTable)
        assert [str(cell.get_row_at(i)[1]) for i in range(cell.row_count)] == ["✗ failed", "… created"]
        await pilot.press("tab", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, DashboardScreen), what="the run's dashboard")
        assert app.screen.run_dir.name.endswith("digits-imb-gdw-s1")


async def test_a_deleted_run_is_counted_as_deleted_not_as_failed(runs):
    runs_of = {(e["preset"], e["method"], e["seed"]): e["run_id"] for e in find_sweep(runs, SWEEP_ID).runs}
    gone = runs_of["digits-imb", "gdw", 10]
    shutil.rmtree(runs / gone)  # a pending run deleted by hand
    app = GdwApp(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_sweeps(pilot)
        sweeps = app.screen.query_one("#sweeps-table", DataTable)
        assert [str(c) for c in sweeps.get_row(SWEEP_ID)][2:7] == ["8", "5", "0", "1 + 1 deleted", "1"]


async def test_report_stop_and_resume_keys(runs, monkeypatch):
    import engine.sweep.local

    started = []  # the detached scheduler R starts, recorded instead of started (it would train)
    monkeypatch.setattr(engine.sweep.local, "start_detached_scheduler", lambda sweep: started.append(sweep.id))
    app = GdwApp(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_sweeps(pilot)
        await pilot.press("p")
        await wait_until(pilot, lambda: isinstance(app.screen, ReportScreen), what="the report")
        text = screen_text(app)
        assert "95.00 ± 0.71" in text and "96.50 ± 0.35" in text and "+1.50" in text  # gdw − erm on digits-clean
        await pilot.press("escape")
        await pilot.press("s")
        await pilot.pause()
        await pilot.press("y")
        await wait_until(pilot, lambda: find_sweep(runs, SWEEP_ID).stopped, what="the sweep to be marked stopped")
        await wait_until(pilot, lambda: "(stopped)" in screen_text(app), what="the list to show the sweep stopped")
        await pilot.press("R")
        await wait_until(pilot, lambda: started == [SWEEP_ID], what="the sweep's scheduler to start")
        assert not find_sweep(runs, SWEEP_ID).stopped


async def test_a_dead_scheduler_is_said_with_the_key_that_resumes(runs):
    release_scheduler(SWEEP_ID)  # the scheduler is gone (killed) while two runs still wait
    app = GdwApp(runs)
    async with app.run_test(size=(160, 40)) as pilot:
        await open_sweeps(pilot)
        row = [str(c) for c in app.screen.query_one("#sweeps-table", DataTable).get_row(SWEEP_ID)]
        assert row[7] == "local · scheduler died — R resumes", row


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
def test_sweeps_screen_snapshot(snap_compare, runs, size):
    assert snap_compare(GdwApp(runs), terminal_size=size, run_before=open_sweeps)


async def test_a_refresh_that_reads_the_same_rebuilds_nothing_and_a_change_shows(runs, monkeypatch):
    """Every 2 s the screen re-reads the sweep: unchanged tables are left alone (no flicker, no frame
    with cleared columns, the grid's cursor stays); a run that finishes in between shows."""
    app = GdwApp(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_sweeps(pilot)
        grid = app.screen.query_one("#grid-table", DataTable)
        grid.focus()
        await pilot.press("down", "right")
        await pilot.pause()
        cleared = []
        with monkeypatch.context() as m:
            m.setattr(DataTable, "clear", lambda self, columns=False: cleared.append(self.id))
            app.screen.refresh_sweeps()
            await wait_until(pilot, lambda: not any(w.is_running for w in app.screen.workers), what="the refresh to finish")
            await pilot.pause()
        assert cleared == [] and grid.cursor_coordinate == (1, 1)
        imb = next(e for e in find_sweep(runs, SWEEP_ID).runs if (e["preset"], e["method"], e["seed"]) == ("digits-imb", "erm", 10))
        s = read_summary(runs / imb["run_id"])
        s.update(status="finished", final_acc=59.0, epoch=40)
        write_summary(runs / imb["run_id"], s)
        app.screen.refresh_sweeps()
        await wait_until(pilot, lambda: str(grid.get_row("digits-imb")[1]) == "✓✓ 58.00±1.41", what="the finished run in the grid")
        assert grid.cursor_coordinate == (1, 1)


@pytest.mark.background_errors
async def test_a_refresh_that_raises_is_said_once_and_counted_for_the_exit_code(runs, monkeypatch):
    app = GdwApp(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_sweeps(pilot)

        def unreadable(sweep):
            raise PermissionError(13, "Permission denied", str(sweep.dir))

        monkeypatch.setattr(sweeps_screen, "run_states", unreadable)
        app.screen.refresh_sweeps()
        await wait_until(pilot, lambda: app.background_errors, what="the error to be counted")
        app.screen.refresh_sweeps()
        await wait_until(pilot, lambda: len(app.background_errors) == 2, what="the second error")
        shown = [n.message for n in notifications(app)]
        assert len([m for m in shown if "Permission denied" in m]) == 1
        assert app.background_errors[0][0] == "reading the sweeps in runs"
        assert str(app.screen.query_one("#grid-table", DataTable).get_row("digits-clean")[1]) == "✓✓ 95.00±0.71"


async def test_the_grid_fills_in_live_while_a_real_sweep_runs(tmp_path):
    """A real detached sweep (two 2-epoch digits runs, real engines) followed on the sweeps screen:
    marks go from pending to finished and the means appear, with the runs' own final accuracies."""
    import subprocess

    from lifecycle_helpers import ROOT, child_env, gdw_command, sweep_id

    # The runs wait after their first epoch until `release` exists (they take a second each: the
    # screen would otherwise open on a finished sweep).
    release = tmp_path / "release"
    r = subprocess.run(gdw_command() + ["sweep", "digits-clean", "--methods", "erm,gdw", "--seeds", "1", "--set", "train.epochs=2",
                                        "--device", "cpu", "--workers", "2", "--detach", "--runs-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=120, cwd=ROOT, env=child_env(GDW_TEST_HOLD=f"epoch:{release}"))
    assert r.returncode == 0, r.stderr
    sweep = find_sweep(tmp_path, sweep_id(r.stdout))
    app = GdwApp(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_sweeps(pilot)
        grid = app.screen.query_one("#grid-table", DataTable)
        first = [str(c) for c in grid.get_row("digits-clean")]
        assert not any("✓" in c for c in first[1:]), first  # seen before any run finished
        release.touch()
        await wait_until(pilot, lambda: all(str(c).startswith("✓ ") for c in grid.get_row("digits-clean")[1:]),
                         timeout=240, what="both runs finished in the grid")
        accs = {e["method"]: read_summary(tmp_path / e["run_id"])["final_acc"] for e in sweep.runs}
        assert [str(c) for c in grid.get_row("digits-clean")] == ["digits-clean", f"✓ {accs['erm']:.2f}", f"✓ {accs['gdw']:.2f}"]
        assert [str(c) for c in app.screen.query_one("#sweeps-table", DataTable).get_row(sweep.id)][2:7] == ["2", "2", "0", "0", "0"]


async def test_e_exports_the_grid_and_the_report_as_csv(runs):
    import csv

    app = GdwApp(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_sweeps(pilot)
        await pilot.press("e")
        await pilot.pause()
        (grid,) = (runs / "exports").glob(f"sweeps-*-grid-{SWEEP_ID}.csv")
        rows = list(csv.reader(grid.open()))
        assert rows[0] == ["setting", "erm", "gdw"] and rows[1] == ["digits-clean", "✓✓ 95.00±0.71", "✓✓ 96.50±0.35"]
        await pilot.press("p")
        await wait_until(pilot, lambda: isinstance(app.screen, ReportScreen), what="the report")
        await pilot.press("e")
        await pilot.pause()
        (report,) = (runs / "exports").glob("report-*-report.csv")
        rows = list(csv.DictReader(report.open()))
        clean_gdw = next(r for r in rows if r["setting"] == "digits-clean" and r["method"] == "gdw")
        assert float(clean_gdw["mean"]) == pytest.approx(96.5) and clean_gdw["seeds"] == "1 10"
