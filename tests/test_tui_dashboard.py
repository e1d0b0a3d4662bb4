"""The run dashboard: what its header, panes, footer and keys show for runs in every state.

Pure parts (the run model, formatters, heatmap maths) are tested directly; the screen through the
real app (`run_test` + Pilot) on synthesised runs (tests/fixtures/make_fixtures.py).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import pytest
from textual.widgets import RichLog

from engine.events import make_event, read_events
from engine.runs import EVENTS, LOG as ENGINE_LOG, acquire_lock, create_run, read_summary, write_summary
from fixtures.make_fixtures import run_config, synth_events
from fixtures.tui_support import FAILED, FINISHED_10, FINISHED_100, STOPPED, screen_text, use_utc, wait_caught_up, wait_until
from gdw_tui.app import GdwApp
from gdw_tui.config_screen import ConfigScreen
from gdw_tui.dashboard import DashboardScreen
from gdw_tui.dashboard_panes import ClassesPane
from gdw_tui.formatting import format_bytes, format_speed, format_usage, plural
from gdw_tui.heatmap_math import (
    LEVELS, ZOOMS, abbreviate, cell_mode_cell_at, downsample, finite_range, fit_block, halfblock_cell_at, level, levels,
    move_cursor, scroll_to_cursor,
)
from gdw_tui.resources import CLK_TCK, EngineMeter, GpuMeter, Usage
from gdw_tui.run_model import MAX_SNAPSHOTS, RunModel
from gdw_tui.widgets.heatmap import Heatmap
from gdw_tui.widgets.run_header import header_text
from gdw_tui.textual_compat import notifications


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
    cfg = run_config("noisy-labels", "cifar10", "mwnet", 120, 0.4, 7)
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
        assert "noisy-labels · cifar10 · mwnet · seed 7" in header[0]
        assert "epoch 1/120" in header[1]
        assert "?" not in "\n".join(header) and "catching up" not in "\n".join(header)
        assert "FileNotFoundError" in log_text(app.screen)


# --- 4. wide layout: 1–6 focus a pane, m maximises it; the class list scrolls, with a hint ------


async def test_number_keys_focus_panes_on_the_wide_layout_and_m_maximises(fixture_runs: Path) -> None:
    app = GdwApp(fixture_runs, open_run=fixture_runs / FINISHED_100)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_caught_up(pilot)
        screen = app.screen
        for key, pane_id in (("1", "pane-loss"), ("3", "pane-target"), ("4", "pane-vnet"), ("2", "pane-omega"), ("6", "pane-log")):
            await pilot.press(key)
            focused = app.focused
            assert focused is not None and pane_id in {focused.id, *(w.id for w in focused.ancestors)}, key
        await pilot.press("4", "m")
        assert screen.maximized is not None and screen.maximized.id == "pane-vnet"
        await pilot.press("m")
        assert screen.maximized is None
        await pilot.press("5", "m")
        assert screen.maximized is not None and screen.maximized.id == "pane-classes"
        await pilot.press("escape")
        assert screen.maximized is None and isinstance(app.screen, DashboardScreen)


async def test_hundred_class_bars_scroll_with_a_hint(fixture_runs: Path) -> None:
    app = GdwApp(fixture_runs, open_run=fixture_runs / FINISHED_100)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_caught_up(pilot)
        scroll = app.screen.query_one("#class-scroll")
        await wait_until(pilot, lambda: "classes 1–" in screen_text(app), what="the class hint")
        rows = scroll.scrollable_content_region.height
        assert f"classes 1–{rows} of 100 · ↑↓ scroll" in screen_text(app)
        await pilot.press("5", "down", "down", "down")
        await wait_until(pilot, lambda: scroll.scroll_y == 3, what="the scroll")
        await wait_until(pilot, lambda: f"classes 4–{rows + 3} of 100" in screen_text(app), what="the hint to follow")


# --- 5. the log re-wraps at the new width and stays at the bottom ---------------------------------


async def test_log_rewraps_on_resize_and_keeps_the_newest_line_in_view(runs: Path) -> None:
    app = GdwApp(runs, open_run=runs / FINISHED_10)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_caught_up(pilot)
        log = app.screen.query_one("#log", RichLog)
        for k in range(60):
            log.write(f"line {k:02d} " + "lorem ipsum dolor sit amet " * 4)
        await pilot.pause()
        assert log.is_vertical_scroll_end
        wide = log.scrollable_content_region.width
        await pilot.resize_terminal(80, 24)  # narrow: the log becomes a tab of its own, narrower
        await pilot.press("6")
        await pilot.pause(0.2)
        width = log.scrollable_content_region.width
        assert width < wide
        assert max(strip.cell_length for strip in log.lines) <= width  # re-wrapped, no line wider than the pane
        assert log.is_vertical_scroll_end
        assert "line 59" in screen_text(app) and "amet" in screen_text(app).split("line 59")[1]
        await pilot.resize_terminal(160, 50)
        await pilot.press("6", "m")  # the log maximised: wider again
        await pilot.pause(0.2)
        assert log.scrollable_content_region.width > wide
        assert max(strip.cell_length for strip in log.lines) <= log.scrollable_content_region.width
        assert log.is_vertical_scroll_end and "line 59" in screen_text(app)


# --- 7. the footer offers the keys that apply --------------------------------------------------


def footer_keys(app) -> set[str]:
    """The actions the footer shows as usable."""
    return {b.action.split("(")[0] for _, b, enabled, _ in app.screen.active_bindings.values() if b.show and enabled}


async def test_footer_of_a_finished_run_offers_no_stop_or_resume(fixture_runs: Path) -> None:
    app = GdwApp(fixture_runs, open_run=fixture_runs / FINISHED_10)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_caught_up(pilot)
        keys = footer_keys(app)
        assert "stop" not in keys and "resume" not in keys
        assert {"maximize", "focus_pane", "toggle_ratio", "scrub", "show_config"} <= keys
        footer = screen_text(app).splitlines()[-1]
        assert "stop" not in footer and "resume" not in footer and "maximize" in footer and "pane" in footer
        assert "↑↓←→ cursor" in footer  # the heatmap has focus: its arrows apply
        await pilot.press("1")
        await pilot.pause(0.3)
        assert "cursor" not in screen_text(app).splitlines()[-1]  # a chart pane: no arrows


async def test_footer_offers_resume_only_for_a_resumable_run(runs: Path) -> None:
    run_dir = runs / STOPPED
    (run_dir / "checkpoints" / "last.pt").unlink(missing_ok=True)  # stopped before its first checkpoint
    app = GdwApp(runs, open_run=run_dir)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_caught_up(pilot)
        assert app.screen.run.status == "stopped"
        assert "resume" not in footer_keys(app)  # no checkpoint: nothing to resume from
        (run_dir / "checkpoints").mkdir(exist_ok=True)
        (run_dir / "checkpoints" / "last.pt").write_bytes(b"")
        await wait_until(pilot, lambda: "resume" in footer_keys(app), what="the footer to offer R")
        assert "stop" not in footer_keys(app)


async def test_narrow_footer_has_no_maximize(fixture_runs: Path) -> None:
    app = GdwApp(fixture_runs, open_run=fixture_runs / FINISHED_10)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_caught_up(pilot)
        assert "maximize" not in footer_keys(app) and "focus_pane" not in footer_keys(app)  # the tab bar shows 1–6
        await pilot.press("3")
        assert app.screen.active_group == "target"  # the keys still switch tabs


async def test_the_omega_title_says_which_snapshot_at_120_columns(fixture_runs: Path) -> None:
    """At the narrowest wide layout the end of the ω pane's title is cut: the snapshot (and `live`)
    come first, so a scrubbed, not-live view says so."""
    n = sum(e["type"] == "weights" for e in read_events(fixture_runs / FINISHED_10 / EVENTS))
    app = GdwApp(fixture_runs, open_run=fixture_runs / FINISHED_10)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_caught_up(pilot)
        await pilot.press("left_square_bracket")
        assert f"ω · snapshot {n - 1}/{n} · epoch" in screen_text(app)


async def test_snapshot_count_runs_down_when_scrubbing_and_never_says_live_when_finished(fixture_runs: Path) -> None:
    n = sum(e["type"] == "weights" for e in read_events(fixture_runs / FINISHED_10 / EVENTS))
    app = GdwApp(fixture_runs, open_run=fixture_runs / FINISHED_10)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_caught_up(pilot)
        assert f"snapshot {n}/{n}" in screen_text(app) and "live" not in screen_text(app)
        await pilot.press("left_square_bracket")
        assert f"snapshot {n - 1}/{n}" in screen_text(app)
        await pilot.press(*["left_square_bracket"] * (n + 3))
        assert f"snapshot 1/{n}" in screen_text(app)
        await pilot.press("left_square_bracket")  # the oldest already: nothing older
        assert f"snapshot 1/{n}" in screen_text(app)
        await pilot.press(*["right_square_bracket"] * (n + 3))
        assert f"snapshot {n}/{n}" in screen_text(app) and app.screen.run.snapshot_index is None


# --- 6. heatmap labels stay distinct; 9. the heatmap's maths is pure and drawing moves nothing --------


class TestHeatmapMath:
    def test_labels_that_fit_are_kept(self) -> None:
        assert abbreviate(["cat", "dog"], 3) == ["cat", "dog"]

    def test_shared_prefix_and_suffix_are_dropped(self) -> None:
        assert abbreviate([f"class_{i:02d}" for i in range(12)], 3) == [f"{i:02d}" for i in range(12)]
        assert abbreviate(["img_cat.png", "img_dog.png", "img_cow.png"], 3) == ["cat", "dog", "cow"]

    def test_cut_when_the_cuts_stay_distinct(self) -> None:
        cifar10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        assert abbreviate(cifar10, 3) == ["air", "aut", "bir", "cat", "dee", "dog", "fro", "hor", "shi", "tru"]

    def test_indices_when_nothing_shorter_is_distinct(self) -> None:
        assert abbreviate(["apple_pie", "apple_tart", "apricot"], 3) == ["0", "1", "2"]
        labels = ["maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"]
        short = abbreviate(labels, 2)
        assert len(set(short)) == len(short) and all(len(s) <= 2 for s in short)

    def test_levels_and_range(self) -> None:
        assert levels([0.0, 0.5, 1.0, math.nan], 0.0, 1.0) == [0, 128, LEVELS - 1, -1]
        assert [level(v, 0.0, 1.0) for v in (0.0, 0.5, 1.0, math.nan)] == [0, 128, LEVELS - 1, -1]
        assert levels([3.0], 1.0, 1.0) == [LEVELS // 2]
        assert finite_range([math.nan, 2.0, -1.0, math.inf]) == (-1.0, 2.0)

    def test_tiles(self) -> None:
        n, means = downsample([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], 3, 2)
        assert n == 2 and means == [3.0, 4.5, 7.5, 9.0]

    def test_fit_block(self) -> None:
        assert fit_block(100, 100, 50) == 1
        assert fit_block(100, 99, 50) == 2
        assert fit_block(100, 60, 20) == 3  # 34 columns, 17 rows
        assert fit_block(100, 2, 1) == ZOOMS[-1]

    def test_scroll_follows_the_cursor_only_as_far_as_needed(self) -> None:
        # 100×100 tiles in 40 columns × 10 terminal rows (20 tile rows)
        assert scroll_to_cursor((0, 0), 100, 40, 10, (5, 5)) == (0, 0)
        assert scroll_to_cursor((0, 0), 100, 40, 10, (20, 40)) == (2, 1)
        assert scroll_to_cursor((0, 0), 100, 40, 10, (99, 99)) == (80, 60)
        assert scroll_to_cursor((80, 60), 100, 40, 10, (3, 61)) == (2, 60)

    def test_move_cursor_snaps_to_tiles_and_stays_inside(self) -> None:
        assert move_cursor((7, 7), 100, 5, 1, 0) == (10, 5)
        assert move_cursor((0, 0), 100, 1, -1, -1) == (0, 0)
        assert move_cursor((98, 98), 100, 3, 1, 1) == (99, 99)


async def test_heatmap_header_tells_long_class_names_apart(tmp_path: Path) -> None:
    use_utc()
    labels = [f"class_{i}" for i in range(10)]
    cfg = run_config("synthetic", "synthetic", "gdw", 2, 0.4, 1)
    run_dir = create_run(tmp_path / "runs", cfg)
    events = list(synth_events(run_id=run_dir.name, preset="synthetic", classes=labels, epochs=2, iters_per_epoch=10))
    (run_dir / EVENTS).write_text("".join(json.dumps(e) + "\n" for e in events))
    app = GdwApp(tmp_path / "runs", open_run=run_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_caught_up(pilot)
        await pilot.press("2")
        heatmap = app.screen.query_one(Heatmap)
        assert heatmap.cell_mode
        header = screen_text(app).splitlines()[heatmap.content_region.y]
        assert header.strip("│ ").split() == [str(i) for i in range(10)] and "clas" not in header


async def test_heatmap_view_scrolls_when_the_cursor_moves_not_when_drawn(fixture_runs: Path) -> None:
    app = GdwApp(fixture_runs, open_run=fixture_runs / FINISHED_100)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_caught_up(pilot)
        heatmap = app.screen.query_one(Heatmap)
        await pilot.press("plus")
        assert heatmap.block == 1 and heatmap._view == (0, 0)
        heatmap.action_jump(-1)  # no frame drawn in between
        rows, cols = 2 * heatmap._rows_avail(), heatmap._cols_avail()
        assert heatmap._view == (100 - rows, 100 - cols)
        view = heatmap._view
        heatmap._cache = None
        for y in range(heatmap.size.height):
            heatmap.render_line(y)
        assert heatmap._view == view  # drawing changes nothing


# --- 9. a reader that fails is reported, and the app stays usable -----------------------------------


@pytest.mark.background_errors
async def test_a_failing_reader_is_reported_and_the_app_stays_usable(fixture_runs: Path, monkeypatch) -> None:
    from gdw_tui import run_follower

    def broken_read(self):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(run_follower.RunTail, "read", broken_read)
    app = GdwApp(fixture_runs, open_run=fixture_runs / FINISHED_10)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = app.screen
        await wait_until(pilot, lambda: bool(screen.run.read_error), what="the worker error")
        messages = [n.message for n in notifications(app)]
        assert any("stopped reading events.jsonl: OSError" in m and "Input/output error" in m for m in messages)
        assert "stopped reading events.jsonl: OSError" in log_text(screen)
        assert "catching up" not in screen_text(app).splitlines()[1]
        await pilot.press("6", "m")
        assert screen.maximized is not None and screen.maximized.id == "pane-log"
        await pilot.press("escape", "escape")
        assert not isinstance(app.screen, DashboardScreen)  # keys still work: back to the presets


# --- 8. the engine's resources, the end of a followed run, the config -------------------------------


def test_process_meter_reads_cpu_and_memory_from_proc(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    (proc / "4242").mkdir(parents=True)

    def write_stat(utime: int, stime: int) -> None:
        fields = ["S", "1", "1", "1", "0", "-1", "0", "0", "0", "0", "0", str(utime), str(stime), "0", "0"]
        (proc / "4242" / "stat").write_text(f"4242 (python -m engine) {' '.join(fields)}\n")

    (proc / "4242" / "status").write_text("Name:\tpython\nVmPeak:\t 9999 kB\nVmRSS:\t  1258291 kB\n")
    clock = iter([100.0, 102.0])
    meter = EngineMeter(4242, "cpu", proc=str(proc), clock=lambda: next(clock))
    write_stat(1000, 200)
    first = meter.sample()
    assert first.cpu_percent is None and first.rss_bytes == 1258291 * 1024  # CPU needs two samples
    write_stat(1000 + 3 * CLK_TCK // 2, 200 + CLK_TCK // 2)  # 2 s of CPU in 2 s of wall time
    second = meter.sample()
    assert second.cpu_percent == pytest.approx(100.0)
    assert second.gpu_percent is None and meter.gpu is None  # a CPU run has no GPU figures
    assert format_usage(second) == "CPU 100% · RSS 1.2 GB"


def test_usage_line_with_a_gpu_and_without_anything() -> None:
    usage = Usage(cpu_percent=97.4, rss_bytes=3 << 30, gpu_percent=85.0, gpu_used_bytes=int(10.2 * (1 << 30)), gpu_total_bytes=80 << 30)
    assert format_usage(usage) == "CPU 97% · RSS 3.0 GB · GPU 85% · 10.2/80.0 GB"
    assert format_usage(Usage()) == ""
    assert format_bytes(512 << 20) == "512 MB"


def test_gpu_meter_without_a_driver_is_absent_not_an_error() -> None:
    meter = GpuMeter("cuda:0")
    if meter.handle is not None:
        pytest.skip("this machine has an NVIDIA driver")
    assert meter.sample() is None
    assert EngineMeter(os.getpid(), "cuda").sample().gpu_percent is None


async def test_a_followed_run_that_finishes_rings_and_notifies_once(runs: Path, monkeypatch) -> None:
    run_dir = runs / FINISHED_10
    events = read_events(run_dir / EVENTS)
    end = events[-1]
    assert end["type"] == "run_end"
    (run_dir / EVENTS).write_text("".join(json.dumps(e) + "\n" for e in events[:-1]))
    write_summary(run_dir, {**read_summary(run_dir), "status": "running"})
    lock_fd = acquire_lock(run_dir)  # this test plays the engine: its pid is in engine.lock
    app = GdwApp(runs, open_run=run_dir)
    bells = []
    monkeypatch.setattr(app, "bell", lambda: bells.append(1))
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_caught_up(pilot)
            screen = app.screen
            assert screen.run.status == "running"
            # the engine's own resources, read from /proc for the pid in engine.lock
            # CPU % needs two samples of the process's times, so it comes a second after RSS.
            await wait_until(pilot, lambda: "RSS " in screen_text(app).splitlines()[0], what="the engine's memory")
            await wait_until(pilot, lambda: "CPU " in screen_text(app).splitlines()[0], what="the engine's CPU %")
            assert not bells and not notifications(app)
            assert "· live" in screen_text(app)  # the ω heatmap follows the newest snapshot
            with open(run_dir / EVENTS, "a") as f:
                f.write(json.dumps(end) + "\n")
            write_summary(run_dir, {**read_summary(run_dir), "status": "finished"})
            os.close(lock_fd)
            lock_fd = -1
            await wait_until(pilot, lambda: screen.run.status == "finished", what="the end")
            await pilot.pause(0.2)
            assert bells == [1]
            (note,) = notifications(app)
            assert note.message == f"{FINISHED_10} finished: final {end['final_acc']:.2f}%, best {end['best_acc']:.2f}%"
            assert "RSS " not in screen_text(app).splitlines()[0]  # not live: no resources
            await wait_until(pilot, lambda: "· live" not in screen_text(app), what="the heatmap's title to drop `live`")
    finally:
        if lock_fd >= 0:
            os.close(lock_fd)


async def test_opening_a_finished_or_failed_run_is_silent(fixture_runs: Path, monkeypatch) -> None:
    for run_id in (FINISHED_10, FAILED):
        app = GdwApp(fixture_runs, open_run=fixture_runs / run_id)
        bells = []
        monkeypatch.setattr(app, "bell", lambda: bells.append(1))
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_caught_up(pilot)
            await pilot.pause(1.2)  # a status tick
            assert not bells and not notifications(app)


async def test_c_shows_the_resolved_config_and_escape_closes_it(fixture_runs: Path) -> None:
    app = GdwApp(fixture_runs, open_run=fixture_runs / FINISHED_100)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_caught_up(pilot)
        await pilot.press("c")
        assert isinstance(app.screen, ConfigScreen)
        text = screen_text(app)
        assert "config.toml" in text and "[data]" in text and 'dataset = "cifar100"' in text
        scroll = app.screen.query_one("#config-scroll")
        assert scroll.max_scroll_y > 0  # longer than the screen: it scrolls
        await pilot.press("end")
        assert scroll.scroll_y == scroll.max_scroll_y
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)


def test_one_epoch_is_singular_in_the_engine_console_too() -> None:
    from engine.console import plain_line

    start = make_event("run_start", run_id="r", method="gdw", device="cpu", epochs=1, iters_per_epoch=1,
                       counts={"train": 1, "meta": 1, "test": 1}, noise={"kind": "unif", "rate": 0.6, "measured_rate": 0.5})
    assert plain_line(start).endswith("1 epoch × 1 it")
    assert plain_line({**start, "epochs": 3}).endswith("3 epochs × 1 it")


class TestHeatmapHitTesting:
    def test_cell_mode(self) -> None:
        # 10 classes, labels 3 wide (+1 space), cells 4×2, one header row
        assert cell_mode_cell_at(4, 1, 4, 4, 2, 10) == (0, 0)
        assert cell_mode_cell_at(4 + 4 * 7 + 3, 1 + 2 * 5 + 1, 4, 4, 2, 10) == (5, 7)
        assert cell_mode_cell_at(3, 5, 4, 4, 2, 10) is None  # on the labels
        assert cell_mode_cell_at(4 + 4 * 10, 1, 4, 4, 2, 10) is None  # right of the matrix

    def test_half_blocks_pick_the_upper_then_the_lower_row(self) -> None:
        # 100 classes at zoom 1:2 (50×50 tiles), view from tile (10, 4), 3-column labels
        hit = halfblock_cell_at(3 + 6, 1 + 2, 3, 25, (10, 4), 50, 2, 100, (0, 0))
        assert hit == ((10 + 4) * 2, (4 + 6) * 2)
        assert halfblock_cell_at(3 + 6, 1 + 2, 3, 25, (10, 4), 50, 2, 100, hit) == ((10 + 5) * 2, (4 + 6) * 2)
        assert halfblock_cell_at(3 + 6, 1 + 25, 3, 25, (10, 4), 50, 2, 100, (0, 0)) is None  # below the rows
        assert halfblock_cell_at(3 + 46, 1, 3, 25, (10, 4), 50, 2, 100, (0, 0)) is None  # past the last tile


async def test_a_class_range_update_after_the_dashboard_closed_is_harmless(fixture_runs: Path) -> None:
    """The class-range hint is updated after a refresh, which can come once the screen is gone
    (the soak caught `NoMatches` from it when leaving a dashboard mid-layout)."""
    app = GdwApp(fixture_runs, open_run=fixture_runs / FINISHED_10)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_caught_up(pilot)
        dashboard = app.screen
        classes = dashboard.query_one(ClassesPane)
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is not dashboard and not dashboard.is_attached, what="the dashboard to close")
        classes.show_range()  # must not raise
        assert app.is_running


def test_a_run_resumed_here_is_starting_until_its_engine_locks_it(runs: Path) -> None:
    """After R the engine imports torch for seconds before it locks the run: the header says
    STARTING then, not the old STOPPED."""
    import subprocess
    import sys

    from gdw_tui.run_follower import RunFollower

    engine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        follower = RunFollower(runs / STOPPED, engine=lambda: engine)
        assert follower.current_status() == "starting"
    finally:
        engine.kill()
        engine.wait()
    assert follower.current_status() == "stopped"  # the engine is gone without locking the run
    assert RunFollower(runs / STOPPED).current_status() == "stopped"


def test_the_header_says_catching_up_instead_of_an_old_speed() -> None:
    model = RunModel()
    model.apply_all(list(synth_events(run_id="r", preset="p", epochs=4, iters_per_epoch=10, stop_after_epochs=2, end="stopped"))[:-3])
    model.it_s = 12.5
    live = header_text(model, "running", time.time(), 160).plain
    assert "12.5 it/s" in live and "catching up" not in live
    reading = header_text(model, "running", time.time(), 160, reading=True).plain
    assert "catching up…" in reading and "it/s" not in reading and "ETA" not in reading


async def test_a_maximised_chart_has_its_whole_footer_and_1_to_6_still_work(fixture_runs: Path) -> None:
    app = GdwApp(fixture_runs, open_run=fixture_runs / FINISHED_10)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_caught_up(pilot)
        await pilot.press("1", "m")
        await pilot.pause(0.2)
        footer = screen_text(app).splitlines()[-1]
        assert app.screen.maximized is not None and "x axis" in footer and "? help" in footer  # was cut: `… r ru`
        await pilot.press("2")  # a pane key, unsaid while maximised, still goes to its pane
        await pilot.pause(0.2)
        assert app.screen.maximized is None and app.focused is app.screen.query_one(Heatmap)
        assert "123456 pane" in screen_text(app).splitlines()[-1]
