"""`gdw report`: mean ± std (ddof=1), n, the reference figure, bold best, and GDW − best baseline
with a paired 95% Student-t interval, checked against numbers computed here from summary.json."""

from __future__ import annotations

import csv
import io
import re
import statistics

import pytest
from typer.testing import CliRunner

from engine.config import load_preset
from engine.runs import create_run, read_summary, write_summary
from engine.sweep.report import t_quantile
from engine.sweep.spec import SweepSpec, expand, parse_grid_axis
from engine.sweep.store import create_sweep
from gdw_cli.main import app

runner = CliRunner()
# Student t tables (three decimals, as printed; scipy.stats.t.ppf agrees), every df a report can
# meet with up to 31 seeds, both parities (the odd and even series are separate code), and beyond.
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
         11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
         20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048,
         29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}  # two-sided 95%
T_995 = {1: 63.657, 2: 9.925, 5: 4.032, 6: 3.707, 9: 3.250, 10: 3.169, 29: 2.756}  # two-sided 99%
T_95 = {1: 6.314, 2: 2.920, 5: 2.015, 6: 1.943, 9: 1.833, 10: 1.812, 29: 1.699}  # two-sided 90%
SEEDS = [1, 10, 100, 1000, 10000]


def finish(run_dir, acc):
    s = read_summary(run_dir)
    s.update(status="finished", final_acc=acc)
    write_summary(run_dir, s)


@pytest.fixture
def table(tmp_path):
    """A sweep on the Table 8 preset (it carries the paper's figures) × 3 methods × 5 seeds,
    two grid values; accuracies set by hand, one gdw seed and two erm seeds never finished."""
    spec = SweepSpec(presets=["cifar10-mix-unif40-imb10"], methods=["erm", "mwnet", "gdw"], seeds=[1, 10, 100, 1000, 10000],
                     grid=dict([parse_grid_axis("train.outer_lr=100,1000")]), name="t8")
    sweep = create_sweep(tmp_path, spec, expand(spec))
    accs = {}
    for i, e in enumerate(sweep.runs):
        if (e["method"], e["seed"]) in (("gdw", 10000), ("erm", 1), ("erm", 10)):
            continue  # still pending
        acc = {"erm": 60.0, "mwnet": 70.0, "gdw": 75.0}[e["method"]] + (i * 7919 % 13) / 10 + (e["grid"]["train.outer_lr"] / 1000)
        accs[e["run_id"]] = acc
        finish(tmp_path / e["run_id"], acc)
    return tmp_path, sweep, accs


def test_t_quantiles_match_the_table():
    for level, table in ((0.95, T_975), (0.99, T_995), (0.90, T_95)):
        for df, t in table.items():
            assert t_quantile(level, df) == pytest.approx(t, abs=5e-4), (level, df)


def test_report_against_independent_numbers(table):
    runs, sweep, accs = table
    r = runner.invoke(app, ["report", sweep.id, "--format", "csv", "--runs-dir", str(runs)])
    assert r.exit_code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert list(rows[0]) == ["setting", "method", "n", "planned", "mean", "std", "seeds", "missing", "train.outer_lr"]
    assert len(rows) == 6
    md = runner.invoke(app, ["report", sweep.id, "--format", "md", "--runs-dir", str(runs)]).stdout
    for olr in (100.0, 1000.0):
        setting = f"cifar10-mix-unif40-imb10 train.outer_lr={int(olr)}"
        by = {m: {e["seed"]: accs[e["run_id"]] for e in sweep.runs
                  if e["method"] == m and e["grid"]["train.outer_lr"] == olr and e["run_id"] in accs}
              for m in ("erm", "mwnet", "gdw")}
        for m in ("erm", "mwnet", "gdw"):
            row = next(x for x in rows if x["setting"] == setting and x["method"] == m)
            vals = list(by[m].values())
            assert int(row["n"]) == len(vals) and row["seeds"] == " ".join(str(s) for s in sorted(by[m]))
            assert int(row["planned"]) == 5 and row["missing"] == " ".join(str(s) for s in SEEDS if s not in by[m])
            assert float(row["mean"]) == pytest.approx(statistics.fmean(vals), abs=1e-4)
            assert float(row["std"]) == pytest.approx(statistics.stdev(vals), abs=1e-4)
            assert row["train.outer_lr"] == str(olr)
        line = next(x for x in md.splitlines() if x.startswith(f"| {setting} |"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        # erm: 3 of 5 seeds; gdw: 4 of 5 -> n shown; the paper's figures beside mwnet and gdw; gdw best, bold.
        assert cells[1] == f"{statistics.fmean(by['erm'].values()):.2f} ± {statistics.stdev(by['erm'].values()):.2f} (n=3 of 5)"
        assert cells[2] == f"{statistics.fmean(by['mwnet'].values()):.2f} ± {statistics.stdev(by['mwnet'].values()):.2f} [paper 71.54]"
        assert cells[3] == f"**{statistics.fmean(by['gdw'].values()):.2f} ± {statistics.stdev(by['gdw'].values()):.2f} (n=4 of 5) [paper 76.30]**"
        # GDW − best baseline (mwnet), paired on the 4 seeds both finished.
        seeds = sorted(set(by["gdw"]) & set(by["mwnet"]))
        diffs = [by["gdw"][s] - by["mwnet"][s] for s in seeds]
        mean, half = statistics.fmean(diffs), T_975[3] * statistics.stdev(diffs) / len(diffs) ** 0.5
        got = re.fullmatch(r"([-+][\d.]+) \[([-+][\d.]+), ([-+][\d.]+)\] vs mwnet \(n=4\)", cells[4])
        assert got, cells[4]
        assert [float(x) for x in got.groups()] == pytest.approx([mean, mean - half, mean + half], abs=0.006)
    # Which seeds each short cell lacks, and why, on stderr (the table itself stays clean for a file).
    assert "note: cifar10-mix-unif40-imb10 train.outer_lr=100 · erm: 3 of 5 seeds finished; missing seed(s) 1 (created), 10 (created)" in r.stderr
    assert "note: cifar10-mix-unif40-imb10 train.outer_lr=1000 · gdw: 4 of 5 seeds finished; missing seed(s) 10000 (created)" in r.stderr


def test_report_formats_out_file_and_runs(table, tmp_path):
    runs, sweep, accs = table
    out = tmp_path / "t.tex"
    r = runner.invoke(app, ["report", sweep.id, "--out", str(out), "--runs-dir", str(runs)])
    assert r.exit_code == 0 and r.stdout.strip() == f"wrote {out}"
    tex = out.read_text()
    assert tex.startswith(r"\begin{tabular}{lcccc}") and r"\textbf{" in tex and r"$\pm$" in tex
    # Runs given one by one (here: two seeds of gdw) make a report too.
    ids = [e["run_id"] for e in sweep.runs if e["method"] == "gdw" and e["grid"]["train.outer_lr"] == 100.0][:2]
    r = runner.invoke(app, ["report", *ids, "--format", "csv", "--runs-dir", str(runs)])
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [(x["method"], x["n"]) for x in rows] == [("gdw", "2")]
    assert float(rows[0]["mean"]) == pytest.approx(statistics.fmean(accs[i] for i in ids), abs=1e-4)
    # A run outside any sweep: its preset is its setting.
    lone = create_run(runs, load_preset("digits-clean"))
    finish(lone, 90.0)
    r = runner.invoke(app, ["report", lone.name, "--format", "csv", "--runs-dir", str(runs)])
    assert r.stdout.splitlines()[1] == "digits-clean,gdw,1,1,90.0000,,1,"


def test_runs_of_different_configs_are_never_one_cell(tmp_path):
    """A 40-epoch and a 1500-epoch GDW run of one preset are two rows that say their epochs; the
    40-epoch MW-Net run is compared with the 40-epoch GDW run only; a seed run twice is said."""
    preset = "cifar10-mix-unif40-imb10"
    made = {}
    for method, epochs, acc in (("gdw", 40, 80.0), ("gdw", 1500, 88.0), ("mwnet", 40, 85.0), ("mwnet", 40, 84.0)):
        run_dir = create_run(tmp_path, load_preset(preset, {"train.method": method, "train.epochs": epochs, "train.seed": 1}))
        finish(run_dir, acc)
        made.setdefault((method, epochs), []).append(run_dir.name)
    r = runner.invoke(app, ["report", *[i for ids in made.values() for i in ids], "--format", "md", "--runs-dir", str(tmp_path)])
    assert r.exit_code == 0, r.stderr
    lines = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")[1:]]
             for line in r.stdout.splitlines()[2:]}
    assert set(lines) == {f"{preset} train.epochs=40", f"{preset} train.epochs=1500"}, r.stdout
    # header: setting | mwnet | gdw | diff (METHODS order)
    assert lines[f"{preset} train.epochs=40"] == ["**84.00 [paper 71.54]**", "80.00 [paper 76.30]", "-4.00 vs mwnet (n=1)"]
    assert lines[f"{preset} train.epochs=1500"] == ["", "**88.00 [paper 76.30]**", ""]
    first, second = made[("mwnet", 40)]
    assert f"seed 1 ran 2 times ({first}, {second}); only {second} is counted" in r.stderr


def test_a_report_without_gdw_has_no_empty_difference_column(tmp_path):
    spec = SweepSpec(presets=["digits-clean"], methods=["erm", "mwnet"], seeds=[1, 10], name="baselines")
    sweep = create_sweep(tmp_path, spec, expand(spec))
    for i, e in enumerate(sweep.runs):
        finish(tmp_path / e["run_id"], 90.0 + i)
    r = runner.invoke(app, ["report", sweep.id, "--format", "md", "--runs-dir", str(tmp_path)])
    assert r.exit_code == 0, r.stderr
    header = r.stdout.splitlines()[0]
    assert header == "| setting | erm | mwnet |"  # was `… | GDW − best baseline (95% CI) |`, empty in every row


def test_best_baseline_is_chosen_from_every_baseline_and_never_an_ablation(tmp_path):
    """Roles come from engine.method_table: GLC and Co-teaching are baselines too (here GLC is the
    best), and the gdw-nozm ablation, though higher still, is never "the best baseline"."""
    spec = SweepSpec(presets=["digits-unif60"], methods=["erm", "mwnet", "glc", "coteach", "insw", "gdw", "gdw-nozm"],
                     seeds=[1, 10, 100], name="roles")
    sweep = create_sweep(tmp_path, spec, expand(spec))
    base = {"erm": 60.0, "mwnet": 70.0, "glc": 80.0, "coteach": 75.0, "insw": 72.0, "gdw": 85.0, "gdw-nozm": 90.0}
    for e in sweep.runs:
        finish(tmp_path / e["run_id"], base[e["method"]] + e["seed"] / 1000)
    r = runner.invoke(app, ["report", sweep.id, "--format", "md", "--runs-dir", str(tmp_path)])
    assert r.exit_code == 0, r.stderr
    header, _, row = r.stdout.splitlines()[:3]
    assert [c.strip() for c in header.strip("|").split("|")][1:-1] == ["erm", "mwnet", "glc", "coteach", "insw", "gdw", "gdw-nozm"]
    assert row.rstrip(" |").endswith("+5.00 [+5.00, +5.00] vs glc (n=3)")
