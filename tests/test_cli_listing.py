"""What `gdw show` and `gdw runs` tell a new user: a run's overrides, a sweep's executor in words and
status marks that read without colour, where `gdw runs` looked, and its filters. Run directories
are made by engine.runs / engine.sweep.store and their summaries set by hand (no training)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.config import load_preset
from engine.runs import create_run, read_summary, write_summary
from engine.sweep.spec import SweepSpec, expand
from engine.sweep.store import create_sweep
from gdw_cli.main import app


def cli(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def fields(stdout: str) -> dict[str, str]:
    """`gdw show`'s two columns."""
    return dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in stdout.splitlines() if "  " in line.strip())


def finish(run_dir: Path, acc: float | None, status: str = "finished") -> None:
    s = read_summary(run_dir)
    s.update(status=status, final_acc=acc, best_acc=acc, epoch=3)
    write_summary(run_dir, s)


@pytest.fixture
def runs(tmp_path) -> Path:
    root = tmp_path / "runs"
    finish(create_run(root, load_preset("digits-unif60", {"data.noise_rate": 0.4, "train.epochs": 300})), 91.5)
    create_run(root, load_preset("digits-clean"))
    spec = SweepSpec(presets=["digits-clean"], methods=["erm", "gdw"], seeds=[1], name="tiny", options={"workers": 2})
    sweep = create_sweep(root, spec, expand(spec))
    finish(root / sweep.runs[0]["run_id"], 95.0)
    s = read_summary(root / sweep.runs[1]["run_id"])
    s.update(status="running")  # no engine holds its lock: `interrupted` to gdw
    write_summary(root / sweep.runs[1]["run_id"], s)
    return root



def test_show_run_says_what_it_changed(runs: Path) -> None:
    name = next(d.name for d in runs.iterdir() if "unif60" in d.name)
    shown = cli("show", name, "--runs-dir", str(runs))
    assert shown.exit_code == 0, shown.output
    assert fields(shown.stdout)["changes"] == "noise_rate=0.4 epochs=300"
    plain = next(d.name for d in runs.iterdir() if "digits-clean" in d.name and not read_summary(d).get("sweep"))
    assert fields(cli("show", plain, "--runs-dir", str(runs)).stdout)["changes"] == "none (the preset as it is)"


def test_a_run_keeps_its_changes_in_its_summary_and_listings_need_not_read_its_config(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    run_dir = create_run(root, load_preset("digits-unif60", {"data.noise_rate": 0.4, "train.epochs": 300}))
    assert read_summary(run_dir)["changes"] == "noise_rate=0.4 epochs=300"
    spec = SweepSpec(presets=["digits-clean"], methods=["erm"], seeds=[1], sets={"train.epochs": 2}, name="s")
    assert read_summary(create_sweep(root, spec, expand(spec)).run_dirs()[0])["changes"] == "epochs=2"
    (run_dir / "config.toml").write_text("not [ toml")  # the listing reads the summary, never this
    rows = cli("runs", "--runs-dir", str(root)).stdout.splitlines()
    assert any(row.startswith(run_dir.name + " ") and row.endswith(" noise_rate=0.4 epochs=300") for row in rows), rows
    assert fields(cli("show", run_dir.name, "--runs-dir", str(root)).stdout)["changes"] == "noise_rate=0.4 epochs=300"


def test_a_run_made_before_stored_changes_gets_them_from_its_config(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    run_dir = create_run(root, load_preset("digits-unif60", {"train.epochs": 300}))
    s = read_summary(run_dir)
    del s["changes"]
    write_summary(run_dir, s)
    rows = cli("runs", "--runs-dir", str(root)).stdout.splitlines()
    assert any(row.startswith(run_dir.name + " ") and row.endswith(" epochs=300") for row in rows), rows
    assert fields(cli("show", run_dir.name, "--runs-dir", str(root)).stdout)["changes"] == "epochs=300"


def test_runs_has_a_changes_column_and_filters(runs: Path) -> None:
    listed = cli("runs", "--runs-dir", str(runs))
    assert listed.exit_code == 0
    header, *rows = listed.stdout.splitlines()
    assert header.split()[-1] == "changes" and len(rows) == 4
    assert any(row.endswith("noise_rate=0.4 epochs=300") and "digits-unif60" in row for row in rows)

    only = cli("runs", "--runs-dir", str(runs), "--sweep", "tiny").stdout.splitlines()[1:]
    assert len(only) == 2 and all("digits-clean" in row for row in only)
    finished = cli("runs", "--runs-dir", str(runs), "--status", "finished").stdout.splitlines()[1:]
    assert len(finished) == 2 and all(" finished " in row for row in finished)
    assert len(cli("runs", "--runs-dir", str(runs), "--preset", "digits-clean").stdout.splitlines()[1:]) == 3

    none = cli("runs", "--runs-dir", str(runs), "--preset", "cifar10-clean")
    assert none.exit_code == 0 and none.stdout.strip() == f"no runs in {runs.resolve()} match --preset cifar10-clean"
    bad = cli("runs", "--runs-dir", str(runs), "--status", "done")
    assert bad.exit_code == 2 and "unknown status 'done'; valid statuses: created, running" in bad.stderr
    nosweep = cli("runs", "--runs-dir", str(runs), "--sweep", "nope")
    assert nosweep.exit_code == 2 and "no sweep 'nope'" in nosweep.stderr


def test_runs_says_where_it_looked(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    r = cli("runs", "--runs-dir", str(empty))
    assert r.exit_code == 0 and r.stdout.strip() == f"no runs in {empty.resolve()}"
    r = cli("runs", "--runs-dir", str(tmp_path / "typo"))
    assert r.exit_code == 2 and f"no runs directory at {(tmp_path / 'typo').resolve()}" in r.stderr
    assert not (tmp_path / "typo").exists()


def test_show_sweep_names_the_executor_and_marks_statuses_without_colour(runs: Path) -> None:
    shown = cli("show", "tiny", "--runs-dir", str(runs))
    assert shown.exit_code == 0, shown.output
    assert fields(shown.stdout)["executor"] == "local (workers=2)" and "{" not in shown.stdout
    grid_row = next(line for line in shown.stdout.splitlines() if line.startswith("│ digits-clean"))
    assert "✓ 95.00" in grid_row and "⏸" in grid_row  # finished and interrupted differ by their mark


def test_grid_runs_are_named_by_their_grid_values(tmp_path: Path) -> None:
    spec = SweepSpec(presets=["digits-clean"], methods=["gdw"], seeds=[1], grid={"train.outer_lr": [10.0, 100.0]}, name="g")
    sweep = create_sweep(tmp_path / "runs", spec, expand(spec))
    assert sorted(e["run_id"].split("-gdw-s1-")[1] for e in sweep.runs) == ["outer_lr10", "outer_lr100"]


def test_sweep_dry_run_lists_the_runs_checks_the_data_and_creates_nothing(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    r = cli("sweep", "digits-clean", "--methods", "erm,gdw", "--seeds", "1,10", "--grid", "train.outer_lr=10,100",
            "--device", "cpu", "--dry-run", "--runs-dir", str(root))
    assert r.exit_code == 0, r.output
    first, header, *rows = r.stdout.splitlines()
    assert first.startswith("dry run of sweep digits-clean: 8 runs (1 preset(s) × 2 method(s) × 2 seed(s) × 2 train.outer_lr)")
    assert header.split() == ["setting", "method", "seed", "epochs", "device"] and len(rows) == 8
    assert {tuple(row.split()[:4]) for row in rows} == {
        ("digits-clean", f"train.outer_lr={lr}", m, str(s)) for lr in (10, 100) for m in ("erm", "gdw") for s in (1, 10)}
    assert not root.exists() or not any(root.iterdir())
    missing = cli("sweep", "cifar10-clean", "--seeds", "1", "--dry-run", "--data-dir", str(tmp_path / "nodata"),
                  "--runs-dir", str(root))
    assert missing.exit_code == 2 and "cifar" in missing.stderr.lower() and not (root / "sweeps").exists()
