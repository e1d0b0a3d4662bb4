"""The run dashboard: what its header, panes, footer and keys show for runs in every state.

Pure parts (the run model, formatters, heatmap maths) are tested directly; the screen through the
real app (`run_test` + Pilot) on synthesised runs (tests/fixtures/make_fixtures.py).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from textual.widgets import RichLog

from engine.events import make_event, read_events
from engine.runs import EVENTS, LOG as ENGINE_LOG, create_run, read_summary, write_summary
from fixtures.make_fixtures import run_config, synth_events
from fixtures.tui_support import FINISHED_10, FINISHED_100, STOPPED, make_runs, screen_text, use_utc, wait_caught_up, wait_until
from gdw_tui.app import GdwApp
from gdw_tui.dashboard import DashboardScreen
from gdw_tui.formatting import format_speed, plural
from gdw_tui.run_model import MAX_SNAPSHOTS, RunModel
from gdw_tui.widgets.run_header import header_text


@pytest.fixture(scope="module")
def fixture_runs(tmp_path_factory) -> Path:
    use_utc()
    return make_runs(tmp_path_factory.mktemp("dash"))


@pytest.fixture
def runs(tmp_path: Path, fixture_runs: Path) -> Path:
    """A private copy, for tests that change run directories."""
    return Path(shutil.copytree(fixture_runs, tmp_path / "runs"))


def log_text(screen) -> str:
    return "\n".join(line.text for line in screen.query_one("#log", RichLog).lines)


# --- 1. V(ℓ): the first curve is the first snapshot's, however long the run --------------------


def test_first_vnet_curve_survives_snapshot_thinning() -> None:
    model = RunModel()
    events = list(synth_events(run_id="long", preset="p", method="gdw", epochs=130, iters_per_epoch=4, step_every=4, weights_per_epoch=4))
    weights = [e for e in events if e["type"] == "weights"]
    assert len(weights) > 2 * MAX_SNAPSHOTS  # thinned at least twice
    model.apply_all(events)
    assert len(model.snapshots) <= MAX_SNAPSHOTS
    assert model.first_vnet == weights[0]["vnet"]
    assert model.snapshots[0].global_iter == weights[0]["global_iter"]  # thinning keeps the first too
    assert model.snapshots[-1].global_iter == weights[-1]["global_iter"]


def test_resume_from_the_start_forgets_the_first_vnet_curve() -> None:
    model = RunModel()
    model.apply_all(list(synth_events(run_id="s", preset="p", epochs=4, iters_per_epoch=10, stop_after_epochs=2, end="stopped")))
    first = model.first_vnet
    model.apply(make_event("resume", from_epoch=1, from_iter=0, checkpoint="checkpoints/last.pt"))
    assert model.first_vnet is first  # epoch 1 is kept: its first curve still is the first
    model.apply(make_event("resume", from_epoch=0, from_iter=0, checkpoint="checkpoints/last.pt"))
    assert model.first_vnet is None and not model.snapshots


async def test_vnet_pane_shows_the_first_snapshot_of_a_long_run(tmp_path: Path) -> None:
    use_utc()
    cfg = run_config("digits-unif60", "digits", "gdw", 130, 0.6, 1)
    run_dir = create_run(tmp_path / "runs", cfg)
    events = list(synth_events(run_id=run_dir.name, preset="digits-unif60", epochs=130, iters_per_epoch=4, step_every=4, weights_per_epoch=4))
    (run_dir / EVENTS).write_text("".join(json.dumps(e) + "\n" for e in events))
    write_summary(run_dir, {**read_summary(run_dir), "status": "finished"})
    first = [e for e in events if e["type"] == "weights"][0]["vnet"]
    app = GdwApp(tmp_path / "runs", open_run=run_dir)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_caught_up(pilot)
        chart = app.screen.query_one("#vnet-chart")
        await wait_until(pilot, lambda: [c.label for c in chart.curves] == ["first", "epoch 130"], what="the V curves")
        assert chart.curves[0].points == list(zip(first["loss"], first["weight"]))


# --- 2. speed, ETA and plurals ------------------------------------------------------------------


def test_speed_reads_seconds_per_iteration_below_one() -> None:
    assert format_speed(25.04) == "25.0 it/s"
    assert format_speed(1 / 15.2) == "15.2 s/it"
    assert format_speed(0.0) == "– it/s"
    assert plural(1, "iteration") == "1 iteration" and plural(2, "epoch") == "2 epochs" and plural(0, "epoch") == "0 epochs"


def test_header_of_a_slow_live_run_shows_seconds_per_iteration_and_the_eta_clock() -> None:
    use_utc()
    model = RunModel()
    model.apply(make_event("run_start", run_id="slow", preset="cifar100-unif40", method="gdw", seed=3, device="cuda",
                           epochs=2, iters_per_epoch=100, classes=["a", "b"]))
    model.apply({"type": "step", "t": 1000.0, "epoch": 0, "iter": 9, "global_iter": 9, "loss": 2.0, "it_s": 0.05})
    now = 1000.0
    text = header_text(model, "running", now, 160).plain
    assert "20.0 s/it" in text and "0.0 it/s" not in text
    eta = 190 * 20.0  # iterations left × seconds per iteration
    assert f"ETA 1:03:20 ({time.strftime('%H:%M', time.localtime(now + eta))})" in text


def test_resume_log_line_counts_in_good_grammar() -> None:
    model = RunModel()
    model.apply(make_event("run_start", run_id="g", epochs=4, iters_per_epoch=10, classes=["a", "b"]))
    model.apply(make_event("resume", from_epoch=1, from_iter=1, checkpoint="checkpoints/last.pt"))
    assert model.log[-1].message == "resuming from checkpoints/last.pt after 1 epoch and 1 iteration"


# --- 3. a run that failed before run_start: the header comes from config.toml -------------------


@pytest.mark.parametrize("with_failure_event", [True, False], ids=["failure-event", "no-events"])
async def test_run_failed_at_setup_shows_its_config_in_the_header(tmp_path: Path, with_failure_event: bool) -> None:
    use_utc()
    cfg = run_config("cifar10-unif40", "cifar10", "mwnet", 120, 0.4, 7)
    run_dir = create_run(tmp_path / "runs", cfg)
    if with_failure_event:
        event = make_event("failure", kind="error", message="FileNotFoundError: ./data/cifar-10-batches-py", traceback=None, epoch=None, iter=None)
        (run_dir / EVENTS).write_text(json.dumps(event) + "\n")
    (run_dir / ENGINE_LOG).write_text("FileNotFoundError: ./data/cifar-10-batches-py\n")
    write_summary(run_dir, {**read_summary(run_dir), "status": "failed", "message": "FileNotFoundError: ./data/cifar-10-batches-py"})
    app = GdwApp(tmp_path / "runs", open_run=run_dir)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_caught_up(pilot)
        await pilot.pause(0.3)
        header = screen_text(app).splitlines()[:2]
        assert "FAILED" in header[0]
        assert "cifar10-unif40 · cifar10 · mwnet · seed 7" in header[0]
        assert "epoch 1/120" in header[1]
        assert "?" not in "\n".join(header) and "reading events" not in "\n".join(header)
        assert "FileNotFoundError" in log_text(app.screen)
