"""`gdw plot`: the numbers drawn (each line the seeds' mean, each band the sample std, each heatmap
the runs' matrix), the sidecar CSVs, the files' formats, sizes and fonts, and bad input.

The figures are checked through the drawn artists themselves (found by their gid), against numbers
computed here from the runs' events.jsonl, independently of engine.figures' reader.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.sweep.spec import SweepSpec, expand
from engine.sweep.store import create_sweep
from fixtures.make_fixtures import write_run, write_sweep
from gdw_cli.main import app

pytest.importorskip("matplotlib")  # the `plot` extra; .[test] installs it, so CI always runs these

runner = CliRunner()
METHODS = ["erm", "mwnet", "gdw", "gdw-nozm"]
SEEDS = [1, 10, 100]
PENDING = ("digits-imb", "mwnet", 100)  # one run of the sweep never finished


@pytest.fixture(scope="module")
def sweep_runs(tmp_path_factory):
    """A sweep of 2 settings × 4 methods × 3 seeds whose runs hold synthesised events (5 epochs, every
    number differing by seed), one run left unfinished."""
    runs = tmp_path_factory.mktemp("plot") / "runs"
    sweep = write_sweep(runs, "figs", ["digits-unif60", "digits-imb"], METHODS, SEEDS, pending=PENDING,
                        epochs=5, iters_per_epoch=20)
    return runs, sweep


def events_of(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()]


def finished_runs(sweep, runs: Path, preset: str, method: str) -> list[Path]:
    return [runs / e["run_id"] for e in sweep.runs if e["preset"] == preset and e["method"] == method
            and (e["preset"], e["method"], e["seed"]) != PENDING]


def drawn(runs: Path, refs: list[str], kind: str, width: str = "double", epochs=None):
    from engine.figures.data import select
    from engine.figures.kinds import Options
    from engine.figures.output import draw

    return draw(select(runs, refs), [kind], Options(width=width, epochs=epochs))


def artists(fig, prefix: str) -> dict[str, object]:
    """gid -> artist, for every artist of the figure whose gid starts with prefix."""
    return {a.get_gid(): a for a in fig.findobj(lambda a: (a.get_gid() or "").startswith(prefix))}


def band_edges(band) -> tuple[list[float], list[float]]:
    """(lower, upper) y of a fill_between band, one value per x (its outline is lower then upper reversed)."""
    verts = band.get_paths()[0].vertices
    xs = sorted({float(x) for x in verts[:, 0]})
    lo = [min(float(y) for x, y in verts if x == xv) for xv in xs]
    hi = [max(float(y) for x, y in verts if x == xv) for xv in xs]
    return lo, hi


# --- the numbers drawn --------------------------------------------------------------------------------


def test_each_curve_is_the_seeds_mean_and_its_band_the_sample_std(sweep_runs):
    runs, sweep = sweep_runs
    (d,) = drawn(runs, [sweep.id], "curves")
    lines, bands = artists(d.figure, "curve|"), artists(d.figure, "band|")
    assert len(lines) == 2 * 2 * 4  # settings × (accuracy, loss) × methods
    for preset in ("digits-unif60", "digits-imb"):
        for method in METHODS:
            per_run = [{e["epoch"]: e for e in events_of(r) if e["type"] == "epoch"} for r in finished_runs(sweep, runs, preset, method)]
            for metric in ("test_acc", "train_loss"):
                line = lines[f"curve|{preset}|{metric}|{method}"]
                assert list(line.get_xdata()) == [1, 2, 3, 4, 5]  # 1-based epochs
                want = [statistics.fmean(r[ep][metric] for r in per_run) for ep in range(5)]
                std = [statistics.stdev(r[ep][metric] for r in per_run) for ep in range(5)]
                assert list(line.get_ydata()) == pytest.approx(want, abs=1e-12)
                lo, hi = band_edges(bands[f"band|{preset}|{metric}|{method}"])
                assert lo == pytest.approx([m - s for m, s in zip(want, std)], abs=1e-9)
                assert hi == pytest.approx([m + s for m, s in zip(want, std)], abs=1e-9)
    # one colour per method, the same in every panel
    colours = {}
    for gid, line in lines.items():
        colours.setdefault(gid.split("|")[3], set()).add(line.get_color())
    assert all(len(c) == 1 for c in colours.values()) and len({next(iter(c)) for c in colours.values()}) == 4


def test_the_sidecar_csv_holds_exactly_the_numbers_drawn(sweep_runs, tmp_path):
    runs, sweep = sweep_runs
    r = runner.invoke(app, ["plot", sweep.id, "--kind", "curves", "--format", "svg", "--out", str(tmp_path), "--runs-dir", str(runs)])
    assert r.exit_code == 0, r.stderr
    assert r.stderr.strip() == "digits-imb · mwnet: 2 of 3 seeds finished; missing seed(s) 100 (created)"  # as gdw report says
    rows = list(csv.DictReader((tmp_path / f"{sweep.id}_curves.csv").open()))
    (d,) = drawn(runs, [sweep.id], "curves")
    lines = artists(d.figure, "curve|")
    assert len(rows) == sum(len(line.get_xdata()) for line in lines.values())
    for row in rows:
        line = lines[f"curve|{row['setting']}|{row['metric']}|{row['label']}"]
        i = list(line.get_xdata()).index(int(row["epoch"]))
        assert float(row["mean"]) == line.get_ydata()[i]  # full precision, not rounded
    pending = [row for row in rows if row["setting"] == "digits-imb" and row["method"] == "mwnet"]
    assert {row["n"] for row in pending} == {"2"}  # the unfinished seed is left out, and n says so


def test_single_runs_are_one_line_each_in_their_methods_colour(sweep_runs):
    runs, sweep = sweep_runs
    refs = [str(p) for p in finished_runs(sweep, runs, "digits-unif60", "gdw")[:2]]
    (d,) = drawn(runs, refs, "curves")
    lines = artists(d.figure, "curve|digits-unif60|test_acc|")
    assert len(lines) == 2 and not artists(d.figure, "band|")  # no band for a single run
    (a, b) = lines.values()
    assert a.get_color() == b.get_color() and a.get_linestyle() != b.get_linestyle()
    for ref, line in zip(refs, lines.values()):
        accs = [e["test_acc"] for e in events_of(Path(ref)) if e["type"] == "epoch"]
        assert list(line.get_ydata()) == accs


def test_omega_is_the_mean_matrix_at_the_chosen_epochs_on_one_scale(sweep_runs):
    runs, sweep = sweep_runs
    figs = drawn(runs, [sweep.id], "omega", epochs=[1, 5])
    assert sorted(d.name for d in figs) == ["omega_digits-imb_gdw", "omega_digits-imb_gdw-nozm",
                                            "omega_digits-unif60_gdw", "omega_digits-unif60_gdw-nozm"]
    d = next(d for d in figs if d.name == "omega_digits-unif60_gdw")
    images = artists(d.figure, "omega|")
    assert sorted(images) == ["omega|gdw|1", "omega|gdw|5"]
    ends = [{e["epoch"]: e["omega"] for e in events_of(r) if e["type"] == "weights" and e["epoch_end"]}
            for r in finished_runs(sweep, runs, "digits-unif60", "gdw")]
    for epoch in (1, 5):
        shown = images[f"omega|gdw|{epoch}"].get_array()
        for i in range(10):
            for j in range(10):
                assert shown[i][j] == pytest.approx(statistics.fmean(m[epoch - 1][i][j] for m in ends), abs=1e-12)
    assert len({im.get_clim() for im in images.values()}) == 1  # one colour scale
    assert len([ax for ax in d.figure.axes if ax.get_label() == "<colorbar>"]) == 1
    assert [t.get_text() for t in d.figure.axes[0].get_yticklabels()] == [str(i) for i in range(10)]  # class names


def test_table6_writes_the_mean_increase_ratio_in_the_cells(sweep_runs):
    runs, sweep = sweep_runs
    d = next(d for d in drawn(runs, [sweep.id], "table6") if d.name == "table6_digits-imb_gdw")
    (image,) = artists(d.figure, "table6|").values()
    ends = [{e["epoch"]: e["increase_ratio"] for e in events_of(r) if e["type"] == "weights" and e["epoch_end"]}
            for r in finished_runs(sweep, runs, "digits-imb", "gdw")]
    want = [[statistics.fmean(m[4][i][j] for m in ends) for j in range(10)] for i in range(10)]
    shown = image.get_array().tolist()
    for i in range(10):
        assert shown[i] == pytest.approx(want[i], abs=1e-12)
    texts = [t.get_text() for t in d.figure.axes[0].texts]
    assert texts == [f"{want[i][j]:.3f}" for i in range(10) for j in range(10)]  # double width: 3 decimals
    assert d.figure.axes[0].get_title() == "epoch 5"
    d = next(d for d in drawn(runs, [sweep.id], "table6", width="single") if d.name == "table6_digits-imb_gdw")
    texts = [t.get_text() for t in d.figure.axes[0].texts]  # narrow cells: two decimals, no leading zero
    assert texts == [f"{want[i][j]:.2f}".lstrip("0") for i in range(10) for j in range(10)]
    assert {t.get_fontsize() for t in d.figure.axes[0].texts} <= {7.0, 8.0}


def test_weights_are_each_epochs_count_weighted_mean_over_seeds(sweep_runs):
    runs, sweep = sweep_runs
    (d,) = drawn(runs, [sweep.id], "weights")
    lines = artists(d.figure, "curve|")
    assert not [g for g in lines if g.endswith("|erm")]  # ERM weighs nothing
    for kind in ("clean", "corrupted"):
        per_run = []
        for r in finished_runs(sweep, runs, "digits-unif60", "gdw"):
            tws = [e for e in events_of(r) if e["type"] == "weights"]
            per_run.append([sum(e["target_weight"][f"{kind}_mean"] * e["target_weight"][f"{kind}_count"] for e in tws if e["epoch"] == ep)
                            / sum(e["target_weight"][f"{kind}_count"] for e in tws if e["epoch"] == ep) for ep in range(5)])
        line = lines[f"curve|digits-unif60|{kind}|gdw"]
        assert list(line.get_ydata()) == pytest.approx([statistics.fmean(v) for v in zip(*per_run)], abs=1e-12)
        lo, hi = band_edges(artists(d.figure, f"band|digits-unif60|{kind}|gdw")[f"band|digits-unif60|{kind}|gdw"])
        assert hi == pytest.approx([statistics.fmean(v) + statistics.stdev(v) for v in zip(*per_run)], abs=1e-9)


def test_sweeps_of_different_configs_are_never_averaged_together(tmp_path):
    """Two sweeps of one preset at different learning rates: two panels, labelled as `gdw report` labels its rows."""
    runs = tmp_path / "runs"
    a = write_sweep(runs, "lr1", ["digits-unif60"], ["gdw"], [1, 2], sets={"train.lr": 0.1}, epochs=3, iters_per_epoch=10)
    b = write_sweep(runs, "lr2", ["digits-unif60"], ["gdw"], [1, 2], sets={"train.lr": 0.05}, epochs=3, iters_per_epoch=10)
    (d,) = drawn(runs, [a.id, b.id], "curves")
    lines = artists(d.figure, "curve|")
    assert sorted(lines) == sorted(f"curve|{s}|{m}|gdw" for s in ("digits-unif60 train.lr=0.1", "digits-unif60 train.lr=0.05")
                                   for m in ("test_acc", "train_loss"))


def test_nozm_draws_gdw_and_gdw_nozm_only(sweep_runs):
    runs, sweep = sweep_runs
    (d,) = drawn(runs, [sweep.id], "nozm")
    assert {gid.split("|")[3] for gid in artists(d.figure, "curve|")} == {"gdw", "gdw-nozm"}


def test_a_resumed_run_counts_each_epoch_once(tmp_path):
    """What the earlier segment wrote past the checkpoint was redone: it is dropped, not averaged in,
    even where the resumed segment has not got as far yet."""
    from engine.events import encode, make_event

    run_dir = write_run(tmp_path, "20251124-101500-digits-unif60-gdw-s1", preset="digits-unif60", epochs=4, iters_per_epoch=20)
    events = events_of(run_dir)
    redo = [dict(e, test_acc=11.0) if e["type"] == "epoch" else
            dict(e, target_weight=dict(e["target_weight"], clean_mean=0.125)) for e in events
            if e["type"] in ("epoch", "weights") and e["epoch"] == 2]  # the resumed run is still in epoch 4
    text = (run_dir / "events.jsonl").read_text()
    text += encode(make_event("resume", from_epoch=2, from_iter=0, checkpoint="checkpoints/last.pt"))
    text += "".join(encode(e) for e in redo)
    (run_dir / "events.jsonl").write_text(text)
    (d,) = drawn(tmp_path, [str(run_dir)], "curves")
    (line,) = artists(d.figure, "curve|digits-unif60|test_acc|").values()
    first = [e["test_acc"] for e in events if e["type"] == "epoch"][:2]
    assert list(line.get_ydata()) == first + [11.0]
    (d,) = drawn(tmp_path, [str(run_dir)], "weights")
    (line,) = artists(d.figure, "curve|digits-unif60|clean|").values()
    assert list(line.get_xdata()) == [1, 2, 3] and line.get_ydata()[2] == 0.125


def test_the_default_set_is_every_kind_the_runs_have_data_for(sweep_runs, tmp_path):
    from engine.figures.data import select
    from engine.figures.kinds import applicable

    runs, sweep = sweep_runs
    assert applicable(select(runs, [sweep.id])) == ["curves", "nozm", "omega", "table6", "weights"]
    erm = finished_runs(sweep, runs, "digits-imb", "erm")[0]
    assert applicable(select(runs, [str(erm)])) == ["curves"]
    gdw = finished_runs(sweep, runs, "digits-imb", "gdw")[0]
    r = runner.invoke(app, ["plot", str(gdw), "--format", "svg", "--out", str(tmp_path), "--runs-dir", str(runs)])
    assert r.exit_code == 0, r.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    stem = gdw.name
    assert names == sorted(f"{stem}_{k}.{ext}" for k in ("curves", "omega", "table6", "weights")
                           for ext in ("csv", "svg"))  # no temporary file left
    assert r.stdout.splitlines()[0] == f"wrote {tmp_path / (stem + '_curves.svg')}"


# --- formats, sizes, fonts -----------------------------------------------------------------------------


@pytest.mark.parametrize("width,inches", [("single", 3.25), ("double", 6.75)])
def test_png_and_pdf_are_exactly_the_column_width(sweep_runs, tmp_path, width, inches):
    from PIL import Image

    runs, sweep = sweep_runs
    for fmt in ("png", "pdf"):
        r = runner.invoke(app, ["plot", sweep.id, "--kind", "curves", "--format", fmt, "--width", width,
                                "--out", str(tmp_path), "--runs-dir", str(runs)])
        assert r.exit_code == 0, r.stderr
    for png in tmp_path.glob("*.png"):
        with Image.open(png) as im:
            assert im.format == "PNG" and im.size[0] == round(inches * 300)
            assert im.info["dpi"] == pytest.approx((300, 300), abs=0.01)
    for pdf in tmp_path.glob("*.pdf"):
        data = pdf.read_bytes()
        assert data.startswith(b"%PDF-")
        box = re.search(rb"/MediaBox \[ *0 0 ([\d.]+) ([\d.]+) *\]", data)
        assert float(box.group(1)) == pytest.approx(inches * 72, abs=0.01)
        assert 1000 < len(data) < 500_000


def test_pdf_fonts_are_embedded_truetype_never_type3(sweep_runs, tmp_path):
    runs, sweep = sweep_runs
    gdw = finished_runs(sweep, runs, "digits-imb", "gdw")[0]  # omega's labels are mathtext (ω_j): fonts too
    r = runner.invoke(app, ["plot", str(gdw), "--kind", "omega", "--kind", "curves", "--format", "pdf",
                            "--out", str(tmp_path), "--runs-dir", str(runs)])
    assert r.exit_code == 0, r.stderr
    pdfs = sorted(tmp_path.glob("*.pdf"))
    for pdf in pdfs:
        data = pdf.read_bytes()
        assert b"/FontFile2" in data and b"/Type3" not in data  # TrueType programs embedded
    if shutil.which("pdffonts") is None:
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail("pdffonts (poppler-utils) is missing: .ci/run installs it")
        pytest.skip("pdffonts (poppler-utils) not installed")
    for pdf in pdfs:
        out = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True, timeout=60).stdout
        fonts = out.splitlines()[2:]
        assert fonts, out
        for line in fonts:
            assert "TrueType" in line and "Type 3" not in line, out
            assert re.search(r"\byes\s+(yes|no)\s+(yes|no)\s+\d+\s+\d+$", line), out  # emb = yes


def test_svg_keeps_text_as_text(sweep_runs, tmp_path):
    runs, sweep = sweep_runs
    r = runner.invoke(app, ["plot", sweep.id, "--kind", "curves", "--format", "svg", "--out", str(tmp_path), "--runs-dir", str(runs)])
    assert r.exit_code == 0, r.stderr
    svg = (tmp_path / f"{sweep.id}_curves.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    for label in ("test accuracy (%)", "training loss (nats)", "epoch", "gdw-nozm"):
        assert label in texts
    assert 'font-size="8px"' in svg or "font: 8px" in svg or "font-size: 8px" in svg  # 8-pt text


def test_the_same_runs_give_the_same_files(sweep_runs, tmp_path):
    runs, sweep = sweep_runs
    gdw = finished_runs(sweep, runs, "digits-imb", "gdw")[0]
    for out in ("a", "b"):
        r = runner.invoke(app, ["plot", str(gdw), "--kind", "curves", "--format", "pdf", "--out", str(tmp_path / out), "--runs-dir", str(runs)])
        assert r.exit_code == 0, r.stderr
    assert (tmp_path / "a" / f"{gdw.name}_curves.pdf").read_bytes() == (tmp_path / "b" / f"{gdw.name}_curves.pdf").read_bytes()


# --- bad input ---------------------------------------------------------------------------------------


def one_line_exit_2(args: list[str], runs: Path, out: Path) -> str:
    r = runner.invoke(app, ["plot", *args, "--out", str(out), "--runs-dir", str(runs)])
    assert r.exit_code == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr
    assert not out.exists()  # nothing written, not even the directory
    return lines[0]


def test_bad_input_is_one_line_and_writes_nothing(sweep_runs, tmp_path):
    runs, sweep = sweep_runs
    out = tmp_path / "figs"
    erm = str(finished_runs(sweep, runs, "digits-unif60", "erm")[0])
    assert one_line_exit_2([sweep.id, "--kind", "heat"], runs, out) == \
        "error: --kind must be one of curves, nozm, omega, table6, weights, corruption (got 'heat')"
    assert one_line_exit_2([erm, "--kind", "omega"], runs, out) == \
        "error: --kind omega needs a run with class-level weights ω (gdw, gdw-nozm); these are erm"
    assert one_line_exit_2([erm, "--kind", "nozm"], runs, out) == \
        "error: --kind nozm needs runs of both gdw and gdw-nozm (these have: erm)"
    assert one_line_exit_2([sweep.id, "--format", "jpg"], runs, out) == "error: --format must be one of pdf, png, svg (got 'jpg')"
    assert one_line_exit_2([sweep.id, "--width", "wide"], runs, out) == "error: --width must be one of single, double (got 'wide')"
    assert "--epochs takes 1-based epoch numbers" in one_line_exit_2([sweep.id, "--kind", "omega", "--epochs", "0,3"], runs, out)
    assert one_line_exit_2([sweep.id, "--kind", "omega", "--epochs", "1,9"], runs, out).endswith(
        "--epochs 9: gdw on digits-unif60 (3 runs) recorded epochs 1–5")
    assert one_line_exit_2(["nosuch"], runs, out).startswith("error: no sweep or run 'nosuch'")


def test_a_sweep_with_no_finished_run_is_refused(tmp_path):
    spec = SweepSpec(presets=["digits-unif60"], methods=["gdw"], seeds=[1, 2], name="fresh")
    sweep = create_sweep(tmp_path / "runs", spec, expand(spec))
    line = one_line_exit_2([sweep.id], tmp_path / "runs", tmp_path / "figs")
    assert line == "error: sweep fresh has no finished run yet (2 pending); figures average finished runs only"


def test_an_unwritable_out_is_refused_before_drawing(sweep_runs, tmp_path):
    runs, sweep = sweep_runs
    blocker = tmp_path / "file"
    blocker.write_text("not a directory\n")
    line = one_line_exit_2([sweep.id], runs, blocker / "figs")
    assert line == f"error: --out {blocker / 'figs'}: {blocker} is a file, not a directory"
    assert blocker.read_text() == "not a directory\n"


def test_a_missing_plot_extra_names_it(sweep_runs, tmp_path, monkeypatch):
    runs, sweep = sweep_runs
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    assert one_line_exit_2([sweep.id], runs, tmp_path / "figs") == \
        "error: gdw plot needs the 'plot' extra (matplotlib is not installed): pip install -e '.[plot]'"


def test_method_colours_are_distinct_and_colour_blind_safe():
    from engine.figures.style import OKABE_ITO, method_colours
    from engine.method_table import METHODS as KNOWN

    colours = method_colours()
    assert set(colours) == set(KNOWN)
    assert len(set(colours.values())) == len(colours)
    assert set(colours.values()) <= set(OKABE_ITO.values())
    assert math.isclose(len(OKABE_ITO), 8)


# --- GLC's Ĉ beside the true matrix -------------------------------------------------------------------


@pytest.fixture(scope="module")
def glc_run(tmp_path_factory) -> Path:
    """A real digits GLC run (4 epochs: Ĉ is estimated at the end of epoch 2)."""
    runs = tmp_path_factory.mktemp("glc") / "runs"
    r = runner.invoke(app, ["run", "--headless", "digits-unif60", "--method", "glc", "--epochs", "4", "--runs-dir", str(runs)])
    assert r.exit_code == 0, r.output
    (run_dir,) = [d for d in runs.iterdir() if d.is_dir()]
    return run_dir


def test_corruption_shows_glcs_estimate_beside_the_true_matrix(glc_run, tmp_path):
    events = events_of(glc_run)
    true = next(e for e in events if e["type"] == "run_start")["noise"]["matrix"]
    (c_hat_epoch,) = [e for e in events if e["type"] == "epoch" and e.get("c_hat") is not None]
    c_hat = c_hat_epoch["c_hat"]
    (d,) = drawn(glc_run.parent, [str(glc_run)], "corruption")
    images = artists(d.figure, "corruption|")
    for which, want in (("estimated", c_hat), ("true", true)):
        shown = images[f"corruption|glc seed 1|{which}"].get_array().tolist()
        for i in range(10):
            assert shown[i] == pytest.approx(want[i], abs=1e-12)
    mae = statistics.fmean(abs(c_hat[i][j] - true[i][j]) for i in range(10) for j in range(10))
    assert d.figure.get_suptitle().endswith(f" = {mae:.3f}")
    assert d.figure.axes[0].get_title() == rf"$\hat{{C}}$, epoch {c_hat_epoch['epoch'] + 1}"
    r = runner.invoke(app, ["plot", str(glc_run), "--kind", "corruption", "--format", "svg", "--out", str(tmp_path),
                            "--runs-dir", str(glc_run.parent)])
    assert r.exit_code == 0, r.stderr
    rows = list(csv.DictReader((tmp_path / f"{glc_run.name}_corruption.csv").open()))
    assert [float(r["value"]) for r in rows if r["matrix"] == "mean_abs_error"] == [mae]
    assert len([r for r in rows if r["matrix"] == "estimated"]) == 100


def test_corruption_needs_a_glc_run(sweep_runs, tmp_path):
    runs, sweep = sweep_runs
    assert one_line_exit_2([sweep.id, "--kind", "corruption"], runs, tmp_path / "figs") == \
        "error: --kind corruption needs a glc run that has estimated Ĉ (the end of its phase 1); these are erm, gdw, gdw-nozm, mwnet"
