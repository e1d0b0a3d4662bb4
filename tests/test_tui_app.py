"""Pilot-driven tests of the real app on fixture runs (recorded from the engine, or synthesised): what a user sees and can do."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import DataTable, Input, RichLog, Static

from engine.events import encode, make_event, read_events
from fixtures.tui_support import (
    FAILED, FINISHED_10, FINISHED_100, FINISHED_MWNET, INTERRUPTED, STOPPED,
    screen_text, wait_caught_up, wait_until,
)
from gdw_tui.app import GdwApp
from gdw_tui.compare import CompareScreen
from gdw_tui.dashboard import DashboardScreen
from gdw_tui.formatting import format_duration
from gdw_tui.help_screen import HelpScreen, help_text
from gdw_tui.presets_screen import PresetList, PresetsScreen
from gdw_tui.quit_screen import QuitScreen
from gdw_tui.runs_screen import RunsScreen
from gdw_tui.widgets.class_bars import ClassBars
from gdw_tui.widgets.heatmap import Heatmap, format_value
from gdw_tui.widgets.line_chart import LineChart


def plain_text(renderable, width: int = 200) -> str:
    """What a Rich renderable says, at a width nothing wraps."""
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def events_of(runs_dir: Path, run_id: str) -> list[dict]:
    return read_events(runs_dir / run_id / "events.jsonl")


# --- dashboard on a finished run -----------------------------------------------------------------


async def test_finished_run_fills_every_pane(fixture_runs: Path) -> None:
    events = events_of(fixture_runs, FINISHED_10)
    end = events[-1]
    last_epoch = [e for e in events if e["type"] == "epoch"][-1]
    last_weights = [e for e in events if e["type"] == "weights"][-1]
    app = GdwApp(fixture_runs, open_run=fixture_runs / FINISHED_10)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_caught_up(pilot)
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        text = screen_text(app)
        assert "FINISHED" in text and f"final {end['final_acc']:.2f}" in text and f"best {end['best_acc']:.2f}" in text
        assert "epoch 6/6" in text
        assert f"test {last_epoch['test_acc']:.2f}" in text
        loss_chart = screen.query_one("#loss-chart", LineChart)
        assert loss_chart.curves[0].points[-1][1] == pytest.approx([e for e in events if e["type"] == "step"][-1]["loss"])
        heatmap = screen.query_one(Heatmap)
        assert heatmap.size_c == 10
        assert heatmap.value_at(3, 5) == pytest.approx(last_weights["omega"][3][5], abs=1e-6)
        bars = screen.query_one(ClassBars)
        assert bars.values == last_epoch["per_class_acc"]
        log_text = "\n".join(line.text for line in screen.query_one(RichLog).lines)
        assert "finished: final accuracy" in log_text and "measured label corruption: " in log_text  # the engine's own line


async def test_heatmap_cursor_reads_out_exact_values(fixture_runs: Path) -> None:
    last = [e for e in events_of(fixture_runs, FINISHED_10) if e["type"] == "weights"][-1]
    app = GdwApp(fixture_runs, open_run=fixture_runs / FINISHED_10)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_caught_up(pilot)
        await pilot.press("2", "right", "right", "down")
        heatmap = app.screen.query_one(Heatmap)
        assert heatmap.cursor == (1, 2)
        assert heatmap.readout() == f"label 1 · ω 2 = {format_value(last['omega'][1][2])}"
        assert f"label 1 · ω 2 = {format_value(last['omega'][1][2])}" in screen_text(app)
        # the mouse: a click on a cell moves the cursor there
        offset = heatmap.content_region.offset - heatmap.region.offset
        lw = heatmap._label_width() + 1
        await pilot.click(Heatmap, offset=(offset.x + lw + 4 * heatmap._cell_width() + 1, offset.y + 1 + 7 * heatmap._cell_height()))
        assert heatmap.cursor == (7, 4)
        assert heatmap.readout() == f"label 7 · ω 4 = {format_value(last['omega'][7][4])}"


async def test_ratio_toggle_and_scrubbing(fixture_runs: Path) -> None:
    weights = [e for e in events_of(fixture_runs, FINISHED_10) if e["type"] == "weights"]
    app = GdwApp(fixture_runs, open_run=fixture_runs / FINISHED_10)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_caught_up(pilot)
        heatmap = app.screen.query_one(Heatmap)
        await pilot.press("h")
        assert heatmap.value_at(2, 2) == pytest.approx(weights[-1]["increase_ratio"][2][2], abs=1e-6)
        assert (heatmap.lo, heatmap.hi) == (0.0, 1.0)
        assert f"Increase ratio · snapshot {len(weights)}/{len(weights)} · epoch 6" in screen_text(app)
        await pilot.press("h", "left_square_bracket", "left_square_bracket")
        assert f"snapshot {len(weights) - 2}/{len(weights)}" in screen_text(app)
        assert heatmap.value_at(0, 1) == pytest.approx(weights[-3]["omega"][0][1], abs=1e-6)
        await pilot.press("right_square_bracket", "right_square_bracket")
        assert f"snapshot {len(weights)}/{len(weights)}" in screen_text(app) and "live" not in screen_text(app)  # finished: not live


async def test_hundred_classes_zoom_and_scroll(fixture_runs: Path) -> None:
    last = [e for e in events_of(fixture_runs, FINISHED_100) if e["type"] == "weights"][-1]
    app = GdwApp(fixture_runs, open_run=fixture_runs / FINISHED_100)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_caught_up(pilot)
        heatmap = app.screen.query_one(Heatmap)
        assert not heatmap.cell_mode and heatmap.block == 2
        assert "zoom 1:2 (fit)" in screen_text(app)
        await pilot.press("plus")
        assert heatmap.block == 1 and "zoom 1:1" in screen_text(app)
        await pilot.press("end")
        assert heatmap.cursor == (99, 99)
        assert heatmap.readout() == f"label 99 (worm) · ω 99 (worm) = {format_value(last['omega'][99][99])}"
        assert "label 99 (worm)" in screen_text(app)  # the view scrolled to the cursor
        await pilot.press("0", "minus")
        assert heatmap.block == 3
        assert heatmap.readout().startswith("label 99–99 · ω 99–99: mean")


async def test_failed_run_shows_its_error_and_traceback(fixture_runs: Path) -> None:
    app = GdwApp(fixture_runs, open_run=fixture_runs / FAILED)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_caught_up(pilot)
        screen = app.screen
        assert screen.run.status == "failed"
        assert screen.run.model.log[-1].message == "error at epoch 3, iteration 25: RuntimeError: mat1 and mat2 shapes cannot be multiplied (100x64 and 32x10)"
        log_text = "\n".join(line.text for line in screen.query_one(RichLog).lines)
        assert "error at epoch 3, iteration 25: RuntimeError" in log_text
        assert "Traceback (most recent call last)" in log_text and 'trainer.py", line 188' in log_text
        text = screen_text(app)
        assert "FAILED" in text and "RuntimeError" in text  # narrow: the log tab opens by itself


async def test_interrupted_and_stopped_runs(fixture_runs: Path) -> None:
    app = GdwApp(fixture_runs, open_run=fixture_runs / INTERRUPTED)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_caught_up(pilot)
        assert app.screen.run.status == "interrupted"
        assert "INTERRUPTED" in screen_text(app)
        assert app.screen.run.model.epochs_done == 3  # the torn last line was not read as an event
    app = GdwApp(fixture_runs, open_run=fixture_runs / STOPPED)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_caught_up(pilot)
        assert app.screen.run.status == "stopped"
        assert "■ STOPPED" in screen_text(app)
        heatmap = app.screen.query_one(Heatmap)
        assert heatmap.value_at(4, 7) == 1.0 and heatmap.lo == heatmap.hi == 1.0  # erm: every weight is 1
        await pilot.press("4")
        assert "erm has no weighting network V" in screen_text(app)


async def test_narrow_terminal_uses_tabs(fixture_runs: Path) -> None:
    app = GdwApp(fixture_runs, open_run=fixture_runs / FINISHED_10)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_caught_up(pilot)
        screen = app.screen
        assert screen.has_class("-narrow")
        visible = lambda: {p.id for p in screen.query("Pane") if p.display}  # noqa: E731
        assert visible() == {"pane-loss", "pane-acc"}
        for key, pane in (("2", "pane-omega"), ("3", "pane-target"), ("4", "pane-vnet"), ("5", "pane-classes"), ("6", "pane-log")):
            await pilot.press(key)
            assert visible() == {pane}
        await pilot.resize_terminal(160, 50)
        await pilot.pause()
        assert not screen.has_class("-narrow") and len(visible()) == 7


# --- following a run that is being written -------------------------------------------------------


async def test_follows_a_growing_file_and_a_rewrite(runs: Path) -> None:
    """The dashboard on a run whose events arrive while it is open (written here, no engine)."""
    source = events_of(runs, FINISHED_10)
    run_dir = runs / FINISHED_10
    events_path = run_dir / "events.jsonl"
    events_path.write_text("")
    app = GdwApp(runs, open_run=run_dir)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_caught_up(pilot)
        screen = app.screen
        assert screen.run.model.events_read == 0
        first_epoch = next(i for i, e in enumerate(source) if e["type"] == "epoch")
        with open(events_path, "a") as f:
            for e in source[: first_epoch + 1]:
                f.write(encode(e))
            f.write(encode(source[first_epoch + 1])[:30])  # half a line
        await wait_until(pilot, lambda: screen.run.model.epochs_done == 1, what="epoch 1")
        assert screen.run.model.events_read == first_epoch + 1
        await wait_until(pilot, lambda: "epoch 1/6" in screen_text(app), what="the header")
        # the engine's file replaced by a different run: the dashboard starts over
        events_path.write_text("".join(encode(e) for e in source[:5]))
        await wait_until(pilot, lambda: screen.run.model.events_read == 5 and screen.run.model.epochs_done == 0, what="restart")


async def test_escape_from_a_directly_opened_run_goes_to_the_presets(fixture_runs: Path) -> None:
    app = GdwApp(fixture_runs, open_run=fixture_runs / FINISHED_10)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_caught_up(pilot)
        await pilot.press("r")
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, PresetsScreen) and isinstance(app.focused, PresetList)


# --- runs screen, compare ------------------------------------------------------------------------


async def test_runs_screen_lists_every_status(fixture_runs: Path) -> None:
    app = GdwApp(fixture_runs)
    async with app.run_test(size=(200, 30)) as pilot:  # wide enough for the note column
        await pilot.press("r")
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        await wait_until(pilot, lambda: screen.loaded, what="the run list")
        table = screen.query_one(DataTable)
        assert table.row_count == 6
        statuses = {str(table.get_row(str(fixture_runs / rid))[1]) for rid in (FINISHED_10, FAILED, INTERRUPTED, STOPPED)}
        assert statuses == {"✓ finished", "✗ failed", "⏸ interrupted", "■ stopped"}
        text = screen_text(app)
        assert "RuntimeError: mat1 and mat2" in text and "engine gone · R resumes" in text
        # newest first; Enter opens the highlighted run
        assert screen.selected_path() == str(fixture_runs / FINISHED_MWNET)  # recorded last
        await pilot.press("enter")
        assert isinstance(app.screen, DashboardScreen) and app.screen.run_dir == fixture_runs / FINISHED_MWNET
        await pilot.press("escape")
        assert app.screen is screen


async def test_compare_two_runs(fixture_runs: Path) -> None:
    app = GdwApp(fixture_runs)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        screen = app.screen
        await wait_until(pilot, lambda: screen.loaded, what="the run list")
        keys = [str(k.value) for k in screen.query_one(DataTable).rows]
        for run_id in (FINISHED_10, FINISHED_MWNET):
            screen.query_one(DataTable).move_cursor(row=keys.index(str(fixture_runs / run_id)))
            await pilot.press("space")
        await pilot.press("c")
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        await wait_until(pilot, lambda: compare.loaded, what="the comparison")
        acc = compare.query_one("#compare-acc", LineChart)
        assert sorted(c.label for c in acc.curves) == ["gdw", "mwnet"]
        assert all(len(c.points) == 6 for c in acc.curves)
        assert "mwnet" in screen_text(app)


# --- presets screen and the form ------------------------------------------------------------------


async def test_presets_focus_filter_and_details(fixture_runs: Path) -> None:
    app = GdwApp(fixture_runs)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, PresetsScreen)
        assert isinstance(app.focused, PresetList)
        assert screen.selected == "digits-unif60"
        await wait_until(pilot, lambda: bool(screen.finished_runs), what="finished runs")
        # The details pane is clipped at 80×24: read its whole text. One finished gdw run of the
        # preset (the mwnet one is another method): its seconds per epoch × the form's 40 epochs.
        finished = json.loads((fixture_runs / FINISHED_10 / "summary.json").read_text())
        expected = f"~{format_duration(finished['wall_s'] / finished['epochs'] * 40)} for 40 epochs (from 1 finished run with this method, model, data and batch on cpu)"
        assert expected in plain_text(screen.query_one("#details", Static).content)
        await pilot.press(*"cifar100-u")
        options = [screen.query_one(PresetList).get_option_at_index(i).id for i in range(screen.query_one(PresetList).option_count)]
        assert options == ["cifar100-unif40", "cifar100-unif60"]
        assert screen.selected == "cifar100-unif40"
        await pilot.press("down")
        assert screen.selected == "cifar100-unif60"
        await pilot.press("escape")
        assert screen.query_one(PresetList).option_count > 2 and isinstance(app.focused, PresetList)


async def test_form_shows_config_errors_while_typing(fixture_runs: Path) -> None:
    app = GdwApp(fixture_runs)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        epochs = screen.query_one("#epochs", Input)
        epochs.focus()
        epochs.value = ""
        await pilot.press(*"1x")
        error = str(screen.query_one("#form-error").render())
        assert "train.epochs must be an integer (got '1x')" in error
        assert epochs.has_class("-invalid") and screen.query_one("#launch").disabled
        await pilot.press("backspace")
        assert not epochs.has_class("-invalid") and not screen.query_one("#launch").disabled
        more = screen.query_one("#more", Input)
        more.focus()
        await pilot.press(*"data.noise=flip3")
        assert "data.noise must be one of none, unif, flip, flip2 (got 'flip3')" in str(screen.query_one("#form-error").render())
        launched = []
        app.launch = lambda cfg: launched.append(cfg)  # Enter must not launch an invalid form
        await pilot.press("enter")
        assert launched == []


async def test_launch_uses_the_form_values(fixture_runs: Path) -> None:
    app = GdwApp(fixture_runs)
    launched = []
    app.launch = lambda cfg: launched.append(cfg)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        screen.query_one("#epochs", Input).value = "3"
        screen.query_one("#seed", Input).value = "10"
        screen.query_one("#more", Input).value = "train.lr=0.05 data.noise_rate=0.4"
        await pilot.pause()
        screen.query_one(PresetList).focus()
        await pilot.press("enter")
        assert len(launched) == 1
        cfg = launched[0]
        assert cfg["preset"] == "digits-unif60" and cfg["train"]["epochs"] == 3 and cfg["train"]["seed"] == 10
        assert cfg["train"]["lr"] == 0.05 and cfg["data"]["noise_rate"] == 0.4


# --- quitting and help ---------------------------------------------------------------------------


async def test_q_quits_at_once_when_nothing_was_launched(fixture_runs: Path) -> None:
    app = GdwApp(fixture_runs, open_run=fixture_runs / FINISHED_10)
    async with app.run_test() as pilot:
        await wait_caught_up(pilot)
        assert app.return_code is None  # still running
        await pilot.press("q")
        await pilot.pause()
        assert app.return_code == 0 and not isinstance(app.screen, QuitScreen)  # exited, nothing asked


async def test_q_asks_about_runs_started_here(fixture_runs: Path, tmp_path: Path) -> None:
    app = GdwApp(fixture_runs)
    engine = subprocess.Popen(["sleep", "60"])  # stands in for an engine this UI launched
    app.launched[tmp_path] = engine
    try:
        async with app.run_test() as pilot:
            await pilot.press("q")
            assert isinstance(app.screen, QuitScreen)
            assert tmp_path.name in screen_text(app)
            await pilot.press("escape")
            assert not isinstance(app.screen, QuitScreen) and engine.poll() is None
            await pilot.press("q")
            await pilot.press("s")  # stop them and quit
            await pilot.pause()
        assert engine.wait(timeout=5) is not None
    finally:
        if engine.poll() is None:
            engine.kill()


async def test_q_default_leaves_runs_running(fixture_runs: Path, tmp_path: Path) -> None:
    app = GdwApp(fixture_runs)
    engine = subprocess.Popen(["sleep", "60"])
    app.launched[tmp_path] = engine
    try:
        async with app.run_test() as pilot:
            await pilot.press("q")
            await pilot.press("enter")  # the focused default: leave running
            await pilot.pause()
        assert engine.poll() is None
    finally:
        engine.kill()
        engine.wait()


async def test_help_lists_every_key(fixture_runs: Path) -> None:
    from gdw_tui.app import GdwApp as AppClass

    text = help_text()
    shown = {"left_square_bracket": "[", "right_square_bracket": "]", "question_mark": "?", "space": "Space",
             "escape": "Escape", "enter": "Enter", "slash": "/", "ctrl+r": "Ctrl+R", "plus": "+", "minus": "-",
             "pageup": "PgUp", "pagedown": "PgDn", "home": "Home", "end": "End", "up": "↑", "down": "↓", "left": "←", "right": "→"}
    from gdw_tui.confirm import ConfirmScreen
    from gdw_tui.runs_screen import RunsTable

    from gdw_tui.sweeps_screen import SweepsScreen

    for cls in (AppClass, DashboardScreen, RunsScreen, RunsTable, PresetsScreen, Heatmap, QuitScreen, ConfirmScreen, SweepsScreen):
        for binding in cls.BINDINGS:
            for key in binding.key.split(","):
                if key in ("ctrl+l", "equals_sign", "escape,q,question_mark"):
                    continue
                assert f"`{shown.get(key, key)}`" in text, f"{cls.__name__}: key {key!r} missing from help.md"
    app = GdwApp(fixture_runs)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.pause()
        assert "gdw-tui keys" in screen_text(app)
        await pilot.press("escape")
        assert isinstance(app.screen, PresetsScreen)


def test_summary_of_fixture_runs_is_what_the_engine_writes(fixture_runs: Path) -> None:
    summary = json.loads((fixture_runs / FINISHED_10 / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["final_acc"] == events_of(fixture_runs, FINISHED_10)[-1]["final_acc"]
    extra = make_event("log", level="info", message="schema still builds")
    assert extra["v"] == 1


# --- garbage collection off the key path -----------------------------------------------------------


async def test_full_collections_are_off_while_the_app_runs_and_restored_after(fixture_runs: Path) -> None:
    import gc

    before = gc.get_threshold()
    app = GdwApp(fixture_runs, open_run=fixture_runs / FINISHED_10)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_caught_up(pilot)
        await pilot.pause()
        assert gc.get_threshold()[:2] == before[:2] and gc.get_threshold()[2] >= 1 << 30
        assert gc.get_freeze_count() > 0  # the start-up objects are out of the collector's way
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


async def test_the_once_a_minute_collection_runs_without_crashing_the_app(fixture_runs: Path, monkeypatch) -> None:
    """The periodic full collection is a timer: it must fire (here every 50 ms) and leave the app running.

    Handing gc.collect itself to set_interval crashed every session 60 s after start; this test
    crosses the timer many times in well under a second.
    """
    import gc

    import gdw_tui.app as app_module

    monkeypatch.setattr(app_module, "FULL_GC_EVERY_S", 0.05)
    counts: list[int] = []
    app = GdwApp(fixture_runs, open_run=fixture_runs / FINISHED_10)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_caught_up(pilot)
        gc.callbacks.append(lambda phase, info: counts.append(info["generation"]) if phase == "stop" else None)
        try:
            await pilot.pause(0.5)
        finally:
            gc.callbacks.pop()
        assert app.is_running and app.return_code is None
    assert counts.count(2) >= 3, f"the full collection should have run every 50 ms, saw {counts.count(2)}"
    assert not app.return_code
