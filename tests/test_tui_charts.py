"""The line charts' cursor, x axes, smoothing, log scale and NO_COLOR line styles; the compare
screen's alignment, names and errors; `e` exporting the view (issue 9 §3–§4)."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import pytest

from engine.events import read_events
from fixtures.tui_support import (
    FAILED, FINISHED_10, FINISHED_100, FINISHED_MWNET, INTERRUPTED, screen_text, wait_caught_up,
    wait_settled, wait_until,
)
from gdw_tui.app import GdwApp
from gdw_tui.compare import CompareScreen
from gdw_tui.formatting import format_duration
from gdw_tui.help_screen import help_text
from gdw_tui.series import BoundedSeries
from gdw_tui.chart_render import Curve, XInfo, ema, render_chart
from gdw_tui.widgets.line_chart import LineChart
from gdw_tui.textual_compat import notifications


def steps_of(runs_dir: Path, run_id: str) -> list[dict]:
    return [e for e in read_events(runs_dir / run_id / "events.jsonl") if e["type"] == "step"]


def text_of(lines) -> list[str]:
    return ["".join(s.text for s in segs) for segs in lines]


# --- plain rendering -----------------------------------------------------------------------------


def test_no_color_tells_curves_apart_by_line_style() -> None:
    """NO_COLOR: one grey for every curve, so the second and third are dashed and dotted, as the legend says."""
    flat = [(float(x), 1.0) for x in range(100)]
    curves = [Curve("solid", flat, "#888888"), Curve("dashed", [(x, 2.0) for x, _ in flat], "#888888"),
              Curve("dotted", [(x, 3.0) for x, _ in flat], "#888888")]
    colour = text_of(render_chart(curves, 60, 14))
    mono = text_of(render_chart(curves, 60, 14, monochrome=True))
    assert "── solid" in mono[0] and "╌╌ dashed" in mono[0] and "┈┈ dotted" in mono[0]
    assert "╌╌" not in colour[0]

    def dots_per_row(lines: list[str]) -> list[int]:
        return [sum(1 for ch in line if "\u2800" < ch <= "\u28ff") for line in lines[1:-2]]

    # Each flat curve fills one row: solid in every column, dashed in about 2/3, dotted in about 1/2.
    solid, dashed, dotted = sorted((n for n in dots_per_row(mono) if n), reverse=True)
    assert max(dots_per_row(colour)) == solid
    assert dashed < solid * 0.8 and dotted < solid * 0.6 and dotted < dashed


def test_legend_wraps_so_every_curve_is_named() -> None:
    names = ["digits-unif60/gdw/s1", "digits-unif60/gdw-nozm/s1", "digits-unif60/gdw/s2", "cifar100-unif40/gdw/s1"]
    curves = [Curve(n, [(0, i), (1, i + 1)], "#58a6ff") for i, n in enumerate(names)]
    lines = text_of(render_chart(curves, 56, 16))
    legend = " ".join(lines[:2])
    assert all(n in legend for n in names), lines[:3]
    assert "┤" not in legend  # the plot starts below the legend rows


def test_ema_is_tensorboards_debiased_average() -> None:
    assert ema([2.0, 2.0, 2.0], 0.9) == pytest.approx([2.0, 2.0, 2.0])
    # last = 0.5·last + 0.5·v, divided by 1 − 0.5ⁿ
    assert ema([0.0, 10.0, 4.0], 0.5) == pytest.approx([0.0, 5.0 / 0.75, (2.5 + 2.0) / 0.875])


def test_x_info_converts_between_axes() -> None:
    steps = XInfo("iteration", iters_per_epoch=50, epochs=6, t0=100.0)
    assert steps.epoch(49) == 1.0 and steps.iteration(49) == 49
    assert steps.convert("progress", 149, math.nan, 0.0) == pytest.approx(50.0)
    assert steps.convert("time", 149, 130.0, 100.0) == 30.0
    epochs = XInfo("epoch", iters_per_epoch=50, epochs=6)
    assert epochs.iteration(2) == 99 and epochs.epoch(2) == 2


def test_series_keeps_each_points_wall_time_through_merging() -> None:
    s = BoundedSeries(4)
    for i in range(9):
        s.append(float(i), float(10 * i), 1000.0 + i)
    assert len(s.times()) == len(s.points())
    for (x, _), t in zip(s.points(), s.times()):
        assert t == pytest.approx(1000.0 + x)  # times are merged like x
    long = BoundedSeries(64)
    for i in range(10_000):
        long.append(float(i), 1.0, float(i))
    assert len(long.ts) == len(long.xs) < 64 and len(long.times()) == len(long.points())  # bounded, in step
    unknown = BoundedSeries(8)
    unknown.append(0.0, 1.0)  # an event without a time, or a malformed one: unknown, not an error
    unknown.append(1.0, 2.0, "soon")  # type: ignore[arg-type]
    assert all(math.isnan(t) for t in unknown.times()) and unknown.points() == [(0.0, 1.0), (1.0, 2.0)]


# --- the cursor and the chart keys in the app -----------------------------------------------------


async def test_cursor_reads_out_exact_values(fixture_runs: Path) -> None:
    steps = steps_of(fixture_runs, FINISHED_10)
    app = GdwApp(fixture_runs, open_run=fixture_runs / FINISHED_10)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_caught_up(pilot)
        chart = app.screen.query_one("#loss-chart", LineChart)
        assert chart.cursor_x is None and chart.readout() == ""
        await pilot.press("1")
        assert app.focused is chart
        await pilot.press("left")  # the first key shows the cursor on the newest point
        last = steps[-1]
        expected = f"it {last['global_iter']} · epoch 6 │ train {last['loss']:g} meta {last['meta_loss']:g}"
        assert expected in chart.readout()
        assert expected[:-8] in screen_text(app)  # the pane may clip the last digits
        await pilot.press("left", "left")
        third = steps[-3]
        per_epoch = (last["global_iter"] + 1) / 6  # iterations per epoch of the 6-epoch recorded run
        assert f"it {third['global_iter']} · epoch {(third['global_iter'] + 1) / per_epoch:.4g} │ train {third['loss']:g} " \
               f"meta {third['meta_loss']:g}" in chart.readout()
        await pilot.press("home")
        assert f"train {steps[0]['loss']:g}" in chart.readout()
        # a click moves the cursor to the point under it
        frame = chart._frame
        column = frame.column_of(steps[20]["global_iter"])
        offset = chart.content_region.offset - chart.region.offset
        await pilot.click(LineChart, offset=(offset.x + frame.gutter + column, offset.y + frame.plot_top + 2))
        assert chart.cursor_x == steps[20]["global_iter"] or abs(chart.cursor_x - steps[20]["global_iter"]) <= 5
        x = int(chart.cursor_x)
        step = next(s for s in steps if s["global_iter"] == x)
        assert f"it {x} · " in chart.readout() and f"train {step['loss']:g}" in chart.readout()
        # the cursor goes with the focus
        await pilot.press("tab")
        assert app.focused is not chart and chart.cursor_x is None


async def test_x_axis_smoothing_and_log_scale(fixture_runs: Path) -> None:
    events = read_events(fixture_runs / FINISHED_10 / "events.jsonl")
    t0 = events[0]["t"]
    steps = [e for e in events if e["type"] == "step"]
    app = GdwApp(fixture_runs, open_run=fixture_runs / FINISHED_10)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_caught_up(pilot)
        chart = app.screen.query_one("#loss-chart", LineChart)
        await pilot.press("1", "x")
        assert chart.x_mode == "epoch"
        drawn = chart._shown[0].curve.points
        assert drawn[-1][0] == pytest.approx(6.0) and drawn[0][0] == pytest.approx((steps[0]["global_iter"] + 1) / ((steps[-1]["global_iter"] + 1) / 6))
        assert "x epoch" in screen_text(app)
        await pilot.press("x")
        assert chart.x_mode == "time"
        await pilot.press("end")
        assert chart.cursor_x == pytest.approx(steps[-1]["t"] - t0)
        assert chart.readout().startswith(f"▏{format_duration(steps[-1]['t'] - t0)} · it {steps[-1]['global_iter']}")
        assert "wall time" in screen_text(app)
        await pilot.press("x")
        assert chart.x_mode == "iteration"

        await pilot.press("S")
        assert chart.smoothing == 0.6
        raw = [s["loss"] for s in steps]
        assert [p[1] for p in chart._shown[0].curve.points] == pytest.approx(ema(raw, 0.6))
        await pilot.press("end")
        assert f"train {raw[-1]:g} ema {ema(raw, 0.6)[-1]:.4g}" in chart.readout()
        assert "EMA 0.6" in screen_text(app)
        await pilot.press("S", "S", "S")
        assert chart.smoothing == 0.0

        await pilot.press("L")
        assert chart.log_y
        assert [p[1] for p in chart._shown[0].curve.points] == pytest.approx([math.log10(v) for v in raw])
        assert "log y" in screen_text(app)
        await pilot.press("L")
        assert not chart.log_y and "log y" not in screen_text(app)


async def test_no_color_dashboard_legends_name_line_styles(fixture_runs: Path, monkeypatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = GdwApp(fixture_runs, open_run=fixture_runs / FINISHED_10)
    assert app.no_color
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_caught_up(pilot)
        text = screen_text(app)
        assert "── train  ╌╌ meta" in text
        assert "── test  ╌╌ meta  ┈┈ train*" in text


def test_chart_keys_are_in_the_help() -> None:
    text = help_text()
    shown = {"left": "←", "right": "→", "shift+left": "Shift+←", "shift+right": "Shift+→", "home": "Home", "end": "End"}
    for binding in LineChart.BINDINGS:
        assert f"`{shown.get(binding.key, binding.key)}`" in text, binding.key
    assert "`e`" in text


# --- compare ---------------------------------------------------------------------------------------


async def test_compare_names_every_run_and_aligns_lengths(runs: Path) -> None:
    # A run that failed before its first event (its summary says what it was), and one without even a summary.
    early = runs / "20251124-151500-digits-unif60-gdw-nozm-s1"
    early.mkdir()
    shutil.copy(runs / FAILED / "summary.json", early / "summary.json")
    failure = [e for e in read_events(runs / FAILED / "events.jsonl") if e["type"] == "failure"]
    (early / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in failure))
    bare = runs / "20251124-161500-digits-unif60-gdw-s4"
    bare.mkdir()
    shutil.copy(early / "events.jsonl", bare / "events.jsonl")
    dirs = [runs / r for r in (FINISHED_10, FAILED, INTERRUPTED, FINISHED_100)] + [early, bare]
    app = GdwApp(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.push_screen(CompareScreen(dirs))
        screen = app.screen
        await wait_until(pilot, lambda: screen.loaded, what="the comparison")
        await pilot.pause()
        text = screen_text(app)
        acc, loss = screen.query_one("#compare-acc", LineChart), screen.query_one("#compare-loss", LineChart)
        for chart in (acc, loss):  # the legend rows, above the plot
            legend = " ".join(chart.render_line(y).text for y in range(chart._frame.plot_top if chart._frame else 8))
            for curve in chart.curves:
                assert curve.label in legend, (curve.label, legend)
                assert curve.label in text
        assert "None" not in text
        names = ["digits-unif60/gdw/s1", "digits-unif60/gdw-nozm/s1 @111500", "digits-unif60/gdw/s2",
                 "cifar100-unif40/gdw/s1", "digits-unif60/gdw-nozm/s1 @151500", "?/?/s?"]
        assert [c.label for c in acc.curves] == names
        # different lengths share the epoch axis: the 3-epoch CIFAR run ends at 3, the 6-epoch digits at 6
        ends = {s.source.label: max(s.xs) for s in loss._shown if s.xs}
        assert ends["cifar100-unif40/gdw/s1"] == pytest.approx(3.0) and ends["digits-unif60/gdw/s1"] == pytest.approx(6.0)
        assert ends["digits-unif60/gdw-nozm/s1 @111500"] < 3.0  # failed in its third epoch
        loss.focus()
        await pilot.press("x")
        assert loss.x_mode == "progress"
        ends = {s.source.label: max(s.xs) for s in loss._shown if s.xs}
        assert ends["cifar100-unif40/gdw/s1"] == pytest.approx(100.0) and ends["digits-unif60/gdw/s1"] == pytest.approx(100.0)
        assert "% of training" in screen_text(app)


@pytest.mark.background_errors
async def test_compare_reports_a_loading_error_and_stays_usable(fixture_runs: Path, monkeypatch) -> None:
    import gdw_tui.compare as compare

    def broken(run_dir: Path):
        raise OSError(f"cannot read {run_dir.name}: disk on fire")

    monkeypatch.setattr(compare, "load_model", broken)
    app = GdwApp(fixture_runs)
    async with app.run_test(size=(120, 36)) as pilot:
        below = app.screen
        await app.push_screen(CompareScreen([fixture_runs / FINISHED_10, fixture_runs / FINISHED_MWNET]))
        screen = app.screen
        await wait_until(pilot, lambda: bool(getattr(screen, "error", "")), timeout=5, what="the error")
        await pilot.pause()
        assert "disk on fire" in screen.error
        assert any("disk on fire" in str(n.message) for n in notifications(app))
        text = screen_text(app)
        assert "loading…" not in text and "cannot load the runs: OSError" in text
        await pilot.press("escape")
        assert app.screen is below


# --- export ----------------------------------------------------------------------------------------


async def test_export_writes_svg_and_csv_of_the_dashboard(runs: Path) -> None:
    steps = steps_of(runs, FINISHED_10)
    app = GdwApp(runs, open_run=runs / FINISHED_10)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_caught_up(pilot)
        await pilot.press("e")
        await pilot.pause()
        exports = runs / FINISHED_10 / "exports"
        svgs, csvs = sorted(exports.glob("dashboard-*.svg")), sorted(exports.glob("dashboard-*[0-9].csv"))
        assert len(svgs) == 1 and len(csvs) == 1 and svgs[0].stem == csvs[0].stem
        # ω of the snapshot shown (the newest), beside the curves
        weights = [e for e in read_events(runs / FINISHED_10 / "events.jsonl") if e["type"] == "weights"][-1]
        with (exports / f"{svgs[0].stem}-omega.csv").open() as f:
            omega = list(csv.DictReader(f))
        assert len(omega) == 100 and list(omega[0]) == ["epoch", "iteration", "label", "class", "omega"]
        assert {(r["epoch"], r["iteration"]) for r in omega} == {(str(weights["epoch"] + 1), str(weights["iter"] + 1))}
        assert [float(r["omega"]) for r in omega] == pytest.approx([v for row in weights["omega"] for v in row], abs=1e-6)
        svg = svgs[0].read_text()
        assert svg.lstrip().startswith("<svg") and "FINISHED" in svg
        with csvs[0].open() as f:
            rows = list(csv.DictReader(f))
        train = [r for r in rows if r["chart"] == "loss-chart" and r["curve"] == "train"]
        assert [(float(r["x"]), float(r["y"])) for r in train] == [(s["global_iter"], s["loss"]) for s in steps]
        assert {r["chart"] for r in rows} >= {"loss-chart", "acc-chart", "target-chart", "vnet-chart"}
        log = "\n".join(line.text for line in app.screen.query_one("#log").lines)
        assert "exported" in log and svgs[0].name in log.replace("\n", "")
        # the chart's view is what is exported: on the epoch axis, x is in epochs
        app.screen.query_one("#loss-chart", LineChart).focus()
        await pilot.press("x", "e")
        await pilot.pause()
        newest = max(exports.glob("dashboard-*[0-9].csv"), key=lambda p: p.stat().st_mtime_ns)
        with newest.open() as f:
            train = [r for r in csv.DictReader(f) if r["chart"] == "loss-chart" and r["curve"] == "train"]
        assert train[-1]["x_axis"] == "epoch" and float(train[-1]["x"]) == pytest.approx(6.0)


async def test_export_from_the_runs_screen_goes_to_the_runs_dir(runs: Path) -> None:
    app = GdwApp(runs)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("r")
        await wait_until(pilot, lambda: getattr(app.screen, "loaded", False), what="the run list")
        await pilot.press("e")
        await pilot.pause()
        assert len(list((runs / "exports").glob("runs-*.svg"))) == 1
        assert any("exports" in str(n.message) for n in notifications(app))


# --- how it looks ----------------------------------------------------------------------------------


def test_snapshot_no_color_curves_with_cursor(snap_compare, fixture_runs: Path, monkeypatch) -> None:
    """NO_COLOR, the curves tab at 80×24 with the loss chart's cursor on its newest point."""
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(fixture_runs.parent)  # a relative runs directory: no temporary path on screen
    runs_dir = Path(fixture_runs.name)

    async def cursor(pilot) -> None:
        await wait_caught_up(pilot)
        await pilot.press("1", "left")
        await wait_settled(pilot)

    assert snap_compare(GdwApp(runs_dir, open_run=runs_dir / FINISHED_10), terminal_size=(80, 24), run_before=cursor)


async def test_compare_draws_a_mean_and_a_band_for_runs_sharing_a_setting(tmp_path: Path) -> None:
    import statistics

    from fixtures.make_fixtures import write_run
    from gdw_tui.compare import load_model

    runs = tmp_path / "runs"
    dirs = [write_run(runs, f"20251201-12000{i}-digits-unif60-{m}-s{s}", preset="digits-unif60", method=m, seed=s, epochs=4,
                      iters_per_epoch=10, t0=1.7e9 + 100 * i)
            for i, (m, s) in enumerate([("gdw", 1), ("gdw", 10), ("gdw", 100), ("erm", 1), ("erm", 10)])]
    app = GdwApp(runs)
    async with app.run_test(size=(160, 40)) as pilot:
        await app.push_screen(CompareScreen(dirs))
        screen = app.screen
        await wait_until(pilot, lambda: screen.loaded, what="the comparison")
        await pilot.pause()
        acc = screen.query_one("#compare-acc", LineChart)
        assert [c.label for c in acc.curves] == ["gdw mean of 3", "±1 sd", "", "erm mean of 2", "±1 sd", ""]
        gdw = [dict(load_model(d).test_acc.points()) for d in dirs[:3]]
        mean, high, low = (dict(c.points) for c in acc.curves[:3])
        for epoch in (1.0, 4.0):
            accs = [g[epoch] for g in gdw]
            assert mean[epoch] == pytest.approx(statistics.fmean(accs))
            assert high[epoch] - mean[epoch] == pytest.approx(statistics.stdev(accs)) == pytest.approx(mean[epoch] - low[epoch])
        legend = " ".join(acc.render_line(y).text for y in range(acc._frame.plot_top))
        assert "gdw mean of 3" in legend and legend.count("±1 sd") == 2
        assert "mean ± 1 sd of runs sharing a setting" in screen_text(app)
        assert screen.query_one("#compare-table").row_count == 5  # every run is still listed


async def test_compare_bands_of_one_preset_and_method_are_named_by_their_changes(tmp_path: Path) -> None:
    from fixtures.make_fixtures import write_run

    runs = tmp_path / "runs"
    dirs = [write_run(runs, f"20251201-12000{i}-digits-unif60-gdw-s{s}", preset="digits-unif60", seed=s, noise_rate=rate,
                      epochs=3, iters_per_epoch=10)
            for i, (rate, s) in enumerate([(0.6, 1), (0.6, 10), (0.4, 1), (0.4, 10)])]
    app = GdwApp(runs)
    async with app.run_test(size=(160, 40)) as pilot:
        await app.push_screen(CompareScreen(dirs))
        screen = app.screen
        await wait_until(pilot, lambda: screen.loaded, what="the comparison")
        labels = [c.label for c in screen.query_one("#compare-acc", LineChart).curves if "mean" in c.label]
        assert labels[0] != labels[1] and any("noise_rate=0.4" in label for label in labels), labels
