"""Unit tests of the UI's plain-Python parts: tailer, run model, bounded series, heatmap maths, form, estimates."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import pytest

from engine.config import ConfigError, coerce, load_preset, parse_set
from engine.events import SCHEMA_VERSION, encode, make_event
from fixtures.make_fixtures import synth_events
from gdw_tui.formatting import format_duration
from gdw_tui.launch_form import validate
from gdw_tui.run_model import MAX_SNAPSHOTS, RunModel, flat_matrix, thin_snapshots
from gdw_tui.series import BoundedSeries
from gdw_tui.tailer import RunTail
from gdw_tui.widgets.heatmap import downsample, finite_range, format_value
from gdw_tui.chart_render import Curve, nice_step, render_chart
from gdw_tui.widgets.palette import level, levels
from gdw_tui.widgets.palette import LEVELS, MISSING_RGB, VIRIDIS, level, level_rgb, value_color


def line(type_: str, **fields) -> str:
    return encode(make_event(type_, **fields))


# --- the tailer ----------------------------------------------------------------------------------


class TestRunTail:
    def test_missing_file_then_created(self, tmp_path: Path) -> None:
        tail = RunTail(str(tmp_path / "events.jsonl"))
        batch = tail.read()
        assert batch.events == [] and batch.at_end and not batch.restarted
        (tmp_path / "events.jsonl").write_text(line("log", level="info", message="hi"))
        assert [e["message"] for e in tail.read().events] == ["hi"]

    def test_partial_line_is_kept_until_its_newline(self, tmp_path: Path) -> None:
        path = tmp_path / "events.jsonl"
        full = line("step", epoch=0, iter=1, loss=2.0)
        path.write_text(full[:25])
        tail = RunTail(str(path))
        assert tail.read().events == []
        with open(path, "a") as f:
            f.write(full[25:])
        events = tail.read().events
        assert len(events) == 1 and events[0]["loss"] == 2.0
        assert tail.skipped == 0

    def test_growth_between_reads(self, tmp_path: Path) -> None:
        path = tmp_path / "events.jsonl"
        tail = RunTail(str(path))
        seen = []
        for i in range(5):
            with open(path, "a") as f:
                f.write(line("step", epoch=0, iter=i, loss=1.0 / (i + 1)))
            seen += [e["iter"] for e in tail.read().events]
        assert seen == [0, 1, 2, 3, 4]

    def test_truncation_restarts(self, tmp_path: Path) -> None:
        path = tmp_path / "events.jsonl"
        path.write_text(line("log", level="info", message="a") * 3)
        tail = RunTail(str(path))
        assert len(tail.read().events) == 3
        path.write_text(line("log", level="info", message="b"))
        batch = tail.read()
        assert batch.restarted and [e["message"] for e in batch.events] == ["b"]

    def test_rewrite_in_place_that_grew_past_the_offset_restarts(self, tmp_path: Path) -> None:
        # EventTail alone misses this: same inode, size larger than the old offset.
        path = tmp_path / "events.jsonl"
        path.write_text(line("run_start", run_id="first"))
        tail = RunTail(str(path))
        assert tail.read().events[0]["run_id"] == "first"
        with open(path, "r+") as f:
            f.seek(0)
            f.write(line("run_start", run_id="second") + line("log", level="info", message="x") * 3)
        batch = tail.read()
        assert batch.restarted
        assert batch.events[0]["run_id"] == "second"

    def test_replaced_file_restarts(self, tmp_path: Path) -> None:
        path = tmp_path / "events.jsonl"
        path.write_text(line("log", level="info", message="old") * 2)
        tail = RunTail(str(path))
        tail.read()
        tmp = tmp_path / "new"
        tmp.write_text(line("log", level="info", message="new") * 4)
        os.replace(tmp, path)
        batch = tail.read()
        assert batch.restarted and len(batch.events) == 4

    def test_bad_lines_are_skipped_and_counted(self, tmp_path: Path) -> None:
        path = tmp_path / "events.jsonl"
        path.write_text("not json\n" + line("log", level="info", message="ok") + '{"no_type": 1}\n')
        tail = RunTail(str(path))
        assert [e["message"] for e in tail.read().events] == ["ok"]
        assert tail.skipped == 2

    def test_newer_schema_stops_with_a_message(self, tmp_path: Path) -> None:
        path = tmp_path / "events.jsonl"
        event = make_event("log", level="info", message="future")
        event["v"] = SCHEMA_VERSION + 1
        path.write_text(json.dumps(event) + "\n")
        batch = RunTail(str(path)).read()
        assert "upgrade gdw-tui" in batch.error

    def test_large_file_is_read_in_bounded_batches(self, tmp_path: Path) -> None:
        path = tmp_path / "events.jsonl"
        path.write_text("".join(line("step", epoch=0, iter=i, loss=1.0, pad="x" * 200) for i in range(2000)))
        tail = RunTail(str(path), batch_bytes=64 * 1024)
        counts = []
        while True:
            batch = tail.read()
            counts.append(len(batch.events))
            if batch.at_end:
                break
        assert sum(counts) == 2000 and len(counts) > 5 and max(counts) < 400


# --- the run model -------------------------------------------------------------------------------


class TestRunModel:
    def test_fold_a_finished_run(self) -> None:
        events = list(synth_events(run_id="r", preset="digits-unif60", epochs=3, iters_per_epoch=20, step_every=2))
        model = RunModel()
        model.apply_all(events)
        end = events[-1]
        assert model.ended == "finished"
        assert model.final_acc == end["final_acc"] and model.best_acc == end["best_acc"]
        assert model.elapsed() == end["wall_s"]
        assert model.epochs_done == 3 and model.num_classes == 10
        assert [p[0] for p in model.test_acc.points()] == [1.0, 2.0, 3.0]
        epoch_events = [e for e in events if e["type"] == "epoch"]
        assert model.test_acc.points()[-1][1] == epoch_events[-1]["test_acc"]
        assert model.per_class_acc == epoch_events[-1]["per_class_acc"]
        assert len(model.snapshots) == sum(e["type"] == "weights" for e in events)
        assert model.ratio_at(None) is not None and model.ratio_at(None).epoch_end
        assert model.eta() is None  # finished

    def test_null_rows_become_nan(self) -> None:
        flat = flat_matrix([[1.0, None], None], 2)
        assert flat[0] == 1.0 and math.isnan(flat[1]) and math.isnan(flat[2]) and math.isnan(flat[3])

    def test_failure_and_stop(self) -> None:
        model = RunModel()
        model.apply_all(list(synth_events(run_id="f", preset="p", epochs=4, stop_after_epochs=1, end="failure")))
        assert model.ended == "failed" and "RuntimeError" in model.failure["message"]
        assert model.log[-1].level == "error"
        model = RunModel()
        model.apply_all(list(synth_events(run_id="s", preset="p", epochs=4, stop_after_epochs=1, end="stopped")))
        assert model.ended == "stopped"

    def test_resume_drops_redone_work_and_clears_the_end(self) -> None:
        model = RunModel()
        model.apply_all(list(synth_events(run_id="s", preset="p", epochs=4, iters_per_epoch=10, step_every=1, stop_after_epochs=2, end="stopped")))
        assert model.global_iter == 24
        model.apply(make_event("resume", from_epoch=2, from_iter=3, checkpoint="checkpoints/last.pt"))
        assert max(x for x, _ in model.loss.points()) == 22  # iterations 23, 24 are redone
        assert max(x for x, _ in model.test_acc.points()) == 2.0 and model.epochs_done == 2
        assert all(s.global_iter < 23 for s in model.snapshots)
        model.apply(make_event("run_start", run_id="s", epochs=4, iters_per_epoch=10, resumed=True, start_epoch=2, classes=[str(i) for i in range(10)]))
        assert model.ended == "" and len(model.segments) == 2

    def test_memory_stays_bounded_for_long_runs(self) -> None:
        model = RunModel()
        model.apply(make_event("run_start", run_id="x", epochs=80, iters_per_epoch=490, classes=[str(i) for i in range(100)]))
        for gi in range(39200):
            model.apply({"type": "step", "epoch": gi // 490, "iter": gi % 490, "global_iter": gi, "loss": 1.0, "meta_loss": 0.5})
        assert len(model.loss.xs) <= model.loss.max_points
        omega = [[1.0] * 100 for _ in range(100)]
        for k in range(MAX_SNAPSHOTS + 50):
            model.apply({"type": "weights", "epoch": k // 4, "iter": 0, "global_iter": k, "omega": omega, "epoch_end": k % 4 == 3})
        assert len(model.snapshots) <= MAX_SNAPSHOTS
        assert model.snapshots[-1].global_iter == MAX_SNAPSHOTS + 49  # the newest is always kept

    def test_thinning_keeps_epoch_ends(self) -> None:
        model = RunModel()
        model.apply_all(list(synth_events(run_id="t", preset="p", epochs=2, iters_per_epoch=40, weights_per_epoch=4)))
        snapshots = model.snapshots
        ends = [s.global_iter for s in snapshots if s.epoch_end]
        mid = [s.global_iter for s in snapshots if not s.epoch_end]
        assert len(ends) == 2 and len(mid) == 6
        kept = thin_snapshots(snapshots)
        assert [s.global_iter for s in kept if s.epoch_end] == ends  # every epoch end stays
        # The first snapshot is the baseline and stays; of the other mid-epoch ones every second goes.
        assert [s.global_iter for s in kept if not s.epoch_end] == [mid[0]] + mid[2::2]
        assert kept[0] is snapshots[0] and kept[-1] is snapshots[-1]

    def test_unknown_event_types_are_ignored(self) -> None:
        model = RunModel()
        model.apply({"type": "from_the_future", "v": 1, "t": 1.0})
        assert model.events_read == 1


class TestBoundedSeries:
    def test_keeps_shape_and_bound(self) -> None:
        s = BoundedSeries(64)
        for i in range(10000):
            s.append(i, float(i))
        assert len(s.xs) < 64
        pts = s.points()
        assert pts[0][0] < 300 and pts[-1][0] > 9700  # each point is the mean of at most 512 inputs
        assert all(abs(x - y) < 1e-9 for x, y in pts)  # means of a straight line stay on it

    def test_last_point_is_always_visible(self) -> None:
        s = BoundedSeries(4)
        for i in range(7):
            s.append(i, i)
        assert s.last() == s.points()[-1]


# --- heatmap and chart maths ---------------------------------------------------------------------


class TestHeatmapMaths:
    def test_value_to_colour(self) -> None:
        assert level(0.0, 0.0, 1.0) == 0 and level(1.0, 0.0, 1.0) == LEVELS - 1
        assert level(-5, 0, 1) == 0 and level(5, 0, 1) == LEVELS - 1  # clipped to the scale
        assert level(math.nan, 0, 1) == -1 and level_rgb(-1) == MISSING_RGB
        assert level_rgb(0) == VIRIDIS[0] and level_rgb(LEVELS - 1) == VIRIDIS[-1]
        assert value_color(0.5, 0.0, 1.0).triplet == level_rgb(level(0.5, 0.0, 1.0))
        # monotonic in lightness, so NO_COLOR's monochrome rendering keeps the order
        lum = [0.299 * r + 0.587 * g + 0.114 * b for r, g, b in (level_rgb(k) for k in range(0, LEVELS, 16))]
        assert lum == sorted(lum)

    def test_downsampling_means_ignore_missing(self) -> None:
        values = [float(i) for i in range(16)]  # 4×4
        n, means = downsample(values, 4, 2)
        assert n == 2 and means == [2.5, 4.5, 10.5, 12.5]
        values[0] = values[1] = values[4] = values[5] = math.nan
        n, means = downsample(values, 4, 2)
        assert math.isnan(means[0]) and means[1] == 4.5

    def test_downsampling_uneven_blocks(self) -> None:
        n, means = downsample([1.0] * 100, 10, 3)
        assert n == 4 and means == [1.0] * 16

    def test_downsampling_fast_path_matches_the_entrywise_means(self) -> None:
        import random

        rng = random.Random(0)
        for size, block in [(100, 2), (100, 3), (7, 3), (10, 10), (5, 20)]:
            values = [rng.uniform(-1, 1) for _ in range(size * size)]
            n, means = downsample(values, size, block)
            for t in range(n):
                for c in range(n):
                    tile = [values[r * size + j] for r in range(t * block, min(size, (t + 1) * block))
                            for j in range(c * block, min(size, (c + 1) * block))]
                    assert means[t * n + c] == pytest.approx(sum(tile) / len(tile), abs=1e-12)

    def test_levels_match_level(self) -> None:
        values = [math.nan, -5.0, 0.0, 0.3, 0.5, 1.0, 7.0]
        assert levels(values, 0.0, 1.0) == [level(v, 0.0, 1.0) for v in values]
        assert levels(values, 1.0, 1.0) == [level(v, 1.0, 1.0) for v in values]

    def test_range_and_format(self) -> None:
        assert finite_range([math.nan, 2.0, -1.0]) == (-1.0, 2.0)
        assert finite_range([math.nan]) is None
        assert format_value(0.41234) == "0.4123" and format_value(math.nan) == "–"

    def test_chart_ticks_and_render(self) -> None:
        assert nice_step(2.3, 4) in (0.5, 1.0)
        lines = render_chart([Curve("loss", [(0, 2.0), (10, 1.0), (20, 0.5)], "#58a6ff")], 40, 10, x_label="iteration")
        text = ["".join(s.text for s in segs) for segs in lines]
        assert "loss" in text[0] and "iteration" in text[-1]
        assert any(ch in "".join(text) for ch in "⠁⠂⠄⡀⠈⠐⠠⢀")
        empty = render_chart([], 40, 6, empty_text="nothing")
        assert any("nothing" in "".join(s.text for s in segs) for segs in empty)


# --- launch form and estimates -------------------------------------------------------------------


class TestLaunchForm:
    def test_valid(self) -> None:
        result = validate("digits-unif60", {"method": "mwnet", "seed": "7", "epochs": "2", "device": "cpu"}, "data.noise_rate=0.4", None)
        assert result.ok, result.errors
        assert result.cfg["train"]["method"] == "mwnet" and result.cfg["train"]["seed"] == 7
        assert result.cfg["data"]["noise_rate"] == 0.4

    @pytest.mark.parametrize(
        ("field", "values", "more", "engine_call"),
        [
            ("epochs", {"epochs": "ten"}, "", lambda: coerce("train.epochs", "ten")),
            ("epochs", {"epochs": "0"}, "", lambda: coerce("train.epochs", "0")),
            ("device", {"device": "gpu"}, "", lambda: coerce("train.device", "gpu")),
            ("method", {"method": "gdwx"}, "", lambda: coerce("train.method", "gdwx")),
            ("more", {}, "train.lr", lambda: parse_set("train.lr")),
            ("more", {}, "trian.lr=1", lambda: parse_set("trian.lr=1")),
            ("more", {}, "data.noise_rate=2", lambda: coerce("data.noise_rate", "2")),
            ("preset", {}, "data.noise=none", lambda: load_preset("digits-unif60", {"data.noise": "none"})),
        ],
    )
    def test_messages_are_engine_config_messages(self, field, values, more, engine_call) -> None:
        with pytest.raises(ConfigError) as expected:
            engine_call()
        result = validate("digits-unif60", values, more, None)
        assert not result.ok
        assert result.errors[field] == str(expected.value)
        assert result.first_error() == str(expected.value)

    def test_cuda_on_a_machine_without_one(self, monkeypatch) -> None:
        import engine.launch

        monkeypatch.setattr(engine.launch, "cuda_device_count", lambda: 0)
        result = validate("digits-unif60", {"device": "cuda:1"}, "", None)
        with pytest.raises(ConfigError) as expected:
            engine.launch.check_device_available("cuda:1")
        assert result.errors == {"device": str(expected.value)} and not result.ok

    def test_durations(self) -> None:
        assert format_duration(5) == "0:05" and format_duration(3725) == "1:02:05" and format_duration(None) == "–"


def test_gdw_tui_is_gdw_tui_command(tmp_path: Path, monkeypatch, capsys) -> None:
    """`gdw-tui ARGS` runs `gdw tui ARGS`: the same options and the same one-line errors."""
    from gdw_cli.main import tui_main

    monkeypatch.setattr(sys, "argv", ["gdw-tui", "--runs-dir", str(tmp_path), "no-such-run"])
    with pytest.raises(SystemExit) as exit_info:
        tui_main()
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith(f"error: no run 'no-such-run' in {tmp_path}")


def test_docs_key_tables_match_the_help_screen() -> None:
    from gdw_tui.help_screen import help_text

    docs = (Path(__file__).parent.parent / "docs" / "ui.md").read_text()
    rows = [line for line in help_text().splitlines() if line.startswith("| `")]
    assert rows and all(row in docs for row in rows), [row for row in rows if row not in docs]


def test_the_chart_renderer_is_pure() -> None:
    """gdw_tui.chart_render draws without Textual (the widget is gdw_tui.widgets.line_chart)."""
    import subprocess
    import sys

    code = "import sys, gdw_tui.chart_render; print(sorted(m for m in sys.modules if m.split('.')[0] == 'textual'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_failure_lines_say_where_once_and_one_based() -> None:
    from engine.events import make_event
    from gdw_tui.run_model import RunModel

    model = RunModel()
    model.apply(make_event("failure", kind="diverged", message="diverged at epoch 1, iteration 4: non-finite loss or weight",
                           traceback=None, epoch=0, iter=3))
    assert model.log[-1].message == "diverged at epoch 1, iteration 4: non-finite loss or weight"
    model.apply(make_event("failure", kind="error", message="RuntimeError: boom", traceback=None, epoch=2, iter=23))
    assert model.log[-1].message == "error at epoch 3, iteration 24: RuntimeError: boom"


def test_a_stopped_line_says_where_one_based() -> None:
    from engine.console import plain_line

    line = plain_line({"type": "stopped", "epoch": 716, "iter": 5, "reason": "SIGTERM"})
    assert line == "stopped (SIGTERM) at epoch 717, after iteration 5; resume with `gdw resume`"
    assert "the start of epoch 3" in plain_line({"type": "stopped", "epoch": 2, "iter": 0, "reason": "SIGTERM"})


def test_ticks_of_a_diverged_loss_stay_short() -> None:
    from gdw_tui.chart_render import format_tick

    assert format_tick(35e9, 5e9) == "35G"  # was `35000000k`
    assert format_tick(12500, 500) == "12.5k" and format_tick(12000, 2000) == "12k"
    assert format_tick(2.5e16, 1e16) == "2.5e+16"
    assert all(len(format_tick(v * 10 ** k, 10 ** k)) <= 7 for k in range(4, 20) for v in (1, 3.5, 9.9))
