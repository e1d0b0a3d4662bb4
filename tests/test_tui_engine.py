"""The UI with the real engine: launch the embedded digits preset from the form, follow it, quit
while it runs (it keeps running and finishes), reopen it, stop and resume a run; and a recorded
real run renders as the engine wrote it."""

from __future__ import annotations

import importlib.util
import json
import shutil
import time
from pathlib import Path

import pytest
from textual.widgets import Input, RichLog

from engine.config import available_presets, load_preset
from engine.events import read_events
from engine.runs import EVENTS, engine_alive, read_summary
from fixtures.tui_support import screen_text, use_utc, wait_caught_up, wait_until
from gdw_tui.app import GdwApp
from gdw_tui.confirm import ConfirmScreen
from gdw_tui.dashboard import DashboardScreen
from gdw_tui.presets_screen import PresetList
from gdw_tui.quit_screen import QuitScreen
from gdw_tui.widgets.heatmap import Heatmap
from gdw_tui.widgets.line_chart import LineChart

RECORDED = Path(__file__).parent / "fixtures" / "recorded"
HAS_ENGINE = importlib.util.find_spec("engine.trainer") is not None and importlib.util.find_spec("torch") is not None
needs_engine = pytest.mark.skipif(not HAS_ENGINE, reason="the engine (engine.trainer, torch) is not installed")

DIGITS_TOML = """title = "digits, 60% uniform noise (test copy)"
[data]
dataset = "digits"
noise = "unif"
noise_rate = 0.6
[train]
method = "gdw"
epochs = 2
"""


@pytest.fixture
def presets_dir(tmp_path: Path) -> str | None:
    """The embedded preset, or a stand-in with the same settings where presets/ lacks it."""
    if "digits-unif60" in available_presets():
        return None
    d = tmp_path / "presets"
    d.mkdir()
    (d / "digits-unif60.toml").write_text(DIGITS_TOML)
    return str(d)


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


@needs_engine
async def test_launch_follow_quit_while_running_then_reopen(tmp_path: Path, presets_dir: str | None, monkeypatch) -> None:
    runs = tmp_path / "runs"
    release = tmp_path / "release"
    # The engine waits just after its first epoch event (engine/hold.py) until `release` exists: it
    # is provably still running when q is pressed, however fast the machine.
    monkeypatch.setenv("GDW_TEST_HOLD", f"epoch:{release}")
    try:
        await launch_follow_quit_then_reopen(runs, presets_dir, release)
    finally:
        release.touch()  # never leave an engine waiting


async def launch_follow_quit_then_reopen(runs: Path, presets_dir: str | None, release: Path) -> None:
    app = GdwApp(runs, presets_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        form = app.screen
        form.query_one("#epochs", Input).value = "3"
        form.query_one("#device", Input).value = "cpu"
        form.query_one("#more", Input).value = "train.weights_events_per_epoch=2"
        await pilot.pause()
        form.query_one(PresetList).focus()
        await pilot.press("enter")
        dash = app.screen
        assert isinstance(dash, DashboardScreen)
        run_dir = dash.run_dir
        await wait_until(pilot, lambda: dash.run.model.epochs_done >= 1 and bool(dash.run.model.snapshots), timeout=120, what="the first epoch")
        assert Path(f"{release}.held").exists() and dash.run.model.epochs_done == 1  # the engine waits there
        # The charts, and a moment later (a frame of their own) the heavy panes, are painted.
        await wait_until(pilot, lambda: bool(dash.query_one("#acc-chart", LineChart).curves[0].points)
                         and dash.query_one(Heatmap).size_c > 0, timeout=5, what="painted panes")
        # The status is read again every second: the first epoch can now come sooner than that.
        await wait_until(pilot, lambda: dash.run.status == "running", timeout=5, what="the status read as running")
        assert dash.query_one("#loss-chart", LineChart).curves[0].points
        assert dash.query_one(Heatmap).size_c == 10
        assert "RUNNING" in screen_text(app) and "digits-unif60 · gdw" in screen_text(app)
        await pilot.press("q")
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("l")  # leave it running
        await pilot.pause()
    process = app.launched[run_dir]
    assert engine_alive(run_dir), "quitting the UI must leave the engine running"
    release.touch()
    wait_for(lambda: read_summary(run_dir).get("status") == "finished", 180, "the engine to finish")
    process.wait(timeout=30)
    end = read_events(run_dir / EVENTS)[-1]
    assert end["type"] == "run_end"

    again = GdwApp(runs, presets_dir, open_run=run_dir)
    async with again.run_test(size=(120, 40)) as pilot:
        await wait_caught_up(pilot)
        dash = again.screen
        assert dash.run.status == "finished" and dash.run.model.final_acc == end["final_acc"]
        assert f"final {end['final_acc']:.2f}" in screen_text(again)


@needs_engine
async def test_stop_and_resume_from_the_dashboard(tmp_path: Path, presets_dir: str | None, monkeypatch) -> None:
    # Each engine segment waits after its first epoch event (engine/hold.py) until its release file
    # exists, so both stops provably reach a running engine.
    releases = [tmp_path / "release-1", tmp_path / "release-2"]
    try:
        await stop_and_resume(tmp_path / "runs", presets_dir, releases, monkeypatch)
    finally:
        for release in releases:
            release.touch()  # never leave an engine waiting


async def stop_and_resume(runs: Path, presets_dir: str | None, releases: list[Path], monkeypatch) -> None:
    cfg = load_preset("digits-unif60", {"train.epochs": 4, "train.device": "cpu"}, presets_dir)
    app = GdwApp(runs, presets_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        monkeypatch.setenv("GDW_TEST_HOLD", f"epoch:{releases[0]}")
        run_dir = app.launch(cfg)
        dash = app.screen
        assert isinstance(dash, DashboardScreen) and run_dir is not None
        await wait_until(pilot, lambda: Path(f"{releases[0]}.held").exists() and dash.run.model.epochs_done == 1,
                         timeout=120, what="the first epoch")
        await wait_until(pilot, lambda: dash.run.status == "running", timeout=10, what="a running status")
        await pilot.press("s")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        releases[0].touch()  # the stop was asked while it waited; it stops at its next iteration
        await wait_until(pilot, lambda: dash.run.model.ended == "stopped", timeout=60, what="the stop")
        await wait_until(pilot, lambda: "STOPPED" in screen_text(app), timeout=5, what="the header")
        app.launched[run_dir].wait(timeout=30)
        assert read_summary(run_dir)["status"] == "stopped" and not engine_alive(run_dir)

        monkeypatch.setenv("GDW_TEST_HOLD", f"epoch:{releases[1]}")
        await pilot.press("R")  # resume from the last checkpoint
        await wait_until(pilot, lambda: Path(f"{releases[1]}.held").exists(), timeout=120, what="the resumed run's epoch")
        await wait_until(pilot, lambda: dash.run.status == "running" and not dash.run.model.ended, timeout=30, what="the resumed run")
        await wait_until(pilot, lambda: any("resum" in line.message for line in dash.run.model.log), timeout=30, what="the resume in the log")
        await pilot.press("s", "y")
        releases[1].touch()
        await wait_until(pilot, lambda: dash.run.model.ended == "stopped", timeout=60, what="the second stop")
        app.launched[run_dir].wait(timeout=30)
    assert read_summary(run_dir)["status"] == "stopped"


async def test_a_recorded_real_run_renders(tmp_path: Path) -> None:
    """Events exactly as the engine wrote them (3 epochs of digits-unif60 with gdw)."""
    use_utc()
    source = RECORDED / "20261125-152907-digits-unif60-gdw-s1"
    runs = tmp_path / "runs"
    run_dir = Path(shutil.copytree(source, runs / source.name))
    summary = json.loads((run_dir / "summary.json").read_text())
    events = read_events(run_dir / EVENTS)
    app = GdwApp(runs, open_run=run_dir)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_caught_up(pilot)
        dash = app.screen
        assert dash.run.status == "finished"
        assert dash.run.model.final_acc == pytest.approx(summary["final_acc"], abs=0.01)
        assert dash.run.model.epochs_done == summary["epochs"]
        last_weights = [e for e in events if e["type"] == "weights"][-1]
        heatmap = dash.query_one(Heatmap)
        assert heatmap.value_at(0, 0) == pytest.approx(last_weights["omega"][0][0], rel=1e-5)
        await pilot.press("h")
        assert heatmap.value_at(1, 1) == pytest.approx(last_weights["increase_ratio"][1][1], rel=1e-5)
        log_text = "\n".join(line.text for line in dash.query_one(RichLog).lines)
        assert "measured label corruption" in log_text
        text = screen_text(app)
        assert "FINISHED" in text and "V(ℓ) weighting function" in text
