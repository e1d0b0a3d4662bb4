"""Sweeps on the local executor, end to end through the real CLI on digits (CPU, seconds per run):
the grid runs and reports, a failed run does not stop it, killing the scheduler leaves the runs
going and `gdw resume SWEEP` (even twice at once) adopts them, and `gdw stop SWEEP` stops cleanly.
"""

from __future__ import annotations

import csv
import io
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.runs import read_summary, run_status
from engine.sweep.store import find_sweep, list_sweeps, scheduler_alive
from engine.sweep.task import claim
from lifecycle_helpers import ROOT, child_env, events, gdw, gdw_popen, sweep_id, wait_for



def run_starts(run_dir: Path) -> list[dict]:
    return [e for e in events(run_dir) if e["type"] == "run_start"]


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """2 presets × 2 methods × 2 seeds, 2 epochs, two workers: the sweep ends and every run finished."""
    runs = tmp_path_factory.mktemp("runs")
    r = gdw("sweep", "digits-clean", "digits-imb", "--methods", "erm,gdw", "--seeds", "1,10", "--set", "train.epochs=2",
            "--device", "cpu", "--workers", "2", "--runs-dir", str(runs), timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    return runs, find_sweep(runs, sweep_id(r.stdout)), r.stdout


def test_local_sweep_runs_the_whole_grid_once(grid):
    runs, sweep, stdout = grid
    assert len(sweep.runs) == 8
    seen = set()
    for entry in sweep.runs:
        run_dir = runs / entry["run_id"]
        s = read_summary(run_dir)
        assert (s["status"], s["sweep"], s["setting"], s["method"], s["seed"]) == (
            "finished", sweep.id, entry["preset"], entry["method"], entry["seed"])
        assert len(run_starts(run_dir)) == 1  # started exactly once
        assert run_starts(run_dir)[0]["config"]["train"]["epochs"] == 2
        seen.add((entry["preset"], entry["method"], entry["seed"]))
    assert seen == {(p, m, s) for p in ("digits-clean", "digits-imb") for m in ("erm", "gdw") for s in (1, 10)}
    assert stdout.count(" started ") == 8 and stdout.count(" finished ") == 8
    # Two workers: the scheduler starts two runs before any ends.
    moves = [line.split()[1] for line in stdout.splitlines() if line.split()[1:2] in (["started"], ["finished"])]
    assert moves[:2] == ["started", "started"], stdout

    listed = gdw("sweeps", "--runs-dir", str(runs))
    row = [line.split() for line in listed.stdout.splitlines() if line.startswith(sweep.id)]
    assert row and row[0][1:9] == ["digits-clean", "8", "8", "0", "0", "0", "local", "-"], listed.stdout
    shown = gdw("show", sweep.id, "--runs-dir", str(runs))
    assert shown.returncode == 0
    for entry in sweep.runs:
        assert any(line.startswith(entry["run_id"]) and " finished " in line for line in shown.stdout.splitlines())


def test_report_numbers_match_the_summaries(grid):
    runs, sweep, _ = grid
    r = gdw("report", sweep.id, "--format", "csv", "--runs-dir", str(runs))
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert list(rows[0]) == ["setting", "method", "n", "planned", "mean", "std", "seeds", "missing"]
    assert len(rows) == 4
    for row in rows:
        # The row says what it ran with: the sweep's --set train.epochs=2 is not the preset's 40 epochs.
        accs = [read_summary(runs / e["run_id"])["final_acc"] for e in sweep.runs
                if f"{e['preset']} train.epochs=2" == row["setting"] and e["method"] == row["method"]]
        assert int(row["n"]) == len(accs) == 2 and row["seeds"] == "1 10"
        assert float(row["mean"]) == pytest.approx(sum(accs) / 2, abs=1e-4)
        assert float(row["std"]) == pytest.approx(abs(accs[0] - accs[1]) / 2 ** 0.5, abs=1e-4)
    md = gdw("report", sweep.id, "--runs-dir", str(runs)).stdout
    for preset in ("digits-clean", "digits-imb"):
        by = {m: {e["seed"]: read_summary(runs / e["run_id"])["final_acc"] for e in sweep.runs
                  if e["preset"] == preset and e["method"] == m} for m in ("erm", "gdw")}
        diffs = [by["gdw"][s] - by["erm"][s] for s in (1, 10)]
        half = 12.706 * statistics.stdev(diffs) / 2 ** 0.5  # t_{0.975, 1}
        mean = statistics.fmean(diffs)
        line = next(line for line in md.splitlines() if line.startswith(f"| {preset} train.epochs=2 |"))
        got = re.search(r"([-+][\d.]+) \[([-+][\d.]+), ([-+][\d.]+)\] vs erm \(n=2\)", line)
        assert got, line
        # The table's t is 12.706 (3 decimals): the bounds agree to the printed hundredths, ± one.
        assert [float(x) for x in got.groups()] == pytest.approx([mean, mean - half, mean + half], abs=0.015)
        best = max(("erm", "gdw"), key=lambda m: statistics.fmean(by[m].values()))
        assert f"**{statistics.fmean(by[best].values()):.2f} ± {statistics.stdev(by[best].values()):.2f}**" in line


def test_sweeps_of_different_epochs_are_reported_apart(grid):
    """A 1-epoch sweep of a preset the 2-epoch grid also ran: two rows, each of its own runs' numbers,
    each n=2 (the old report kept one run per seed: the later sweep's numbers, for both)."""
    runs, sweep, _ = grid
    r = gdw("sweep", "digits-clean", "--methods", "erm,gdw", "--seeds", "1,10", "--set", "train.epochs=1",
            "--device", "cpu", "--workers", "2", "--runs-dir", str(runs), timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    short = find_sweep(runs, sweep_id(r.stdout))
    rep = gdw("report", sweep.id, short.id, "--format", "csv", "--runs-dir", str(runs))
    assert rep.returncode == 0 and rep.stderr == "", rep.stderr
    rows = {(x["setting"], x["method"]): x for x in csv.DictReader(io.StringIO(rep.stdout))}
    assert set(rows) == {(f"{p} train.epochs={e}", m) for p, e in (("digits-clean", 2), ("digits-imb", 2), ("digits-clean", 1))
                         for m in ("erm", "gdw")}
    for sw, epochs in ((sweep, 2), (short, 1)):
        for m in ("erm", "gdw"):
            accs = [read_summary(runs / e["run_id"])["final_acc"] for e in sw.runs if e["preset"] == "digits-clean" and e["method"] == m]
            row = rows[(f"digits-clean train.epochs={epochs}", m)]
            assert (row["n"], row["planned"], row["seeds"]) == ("2", "2", "1 10")
            assert float(row["mean"]) == pytest.approx(statistics.fmean(accs), abs=1e-4)
    # The same 1-epoch erm seed 1, run again by hand: the report says the seed ran twice and which run counts.
    again = gdw("run", "digits-clean", "--headless", "--method", "erm", "--seed", "1", "--epochs", "1", "--device", "cpu",
                "--runs-dir", str(runs), timeout=600)
    assert again.returncode == 0, again.stderr
    lone = max((d for d in runs.iterdir() if d.name.endswith("-erm-s1") and "sweep" not in read_summary(d)), key=lambda d: d.name)
    first = next(e["run_id"] for e in short.runs if e["method"] == "erm" and e["seed"] == 1)
    rep = gdw("report", short.id, lone.name, "--format", "csv", "--runs-dir", str(runs))
    assert f"digits-clean train.epochs=1 · erm: seed 1 ran 2 times ({first}, {lone.name}); only {lone.name} is counted" in rep.stderr


def test_a_failed_run_does_not_stop_the_sweep_and_resume_retries_it(tmp_path):
    # lr 100 with an unclipped class-level step: GDW diverges in its first epoch; ERM finishes.
    r = gdw("sweep", "digits-clean", "--methods", "gdw,erm", "--seeds", "1", "--set", "train.lr=100",
            "--set", "train.clip=1e6", "--set", "train.epochs=2", "--device", "cpu", "--workers", "1",
            "--runs-dir", str(tmp_path), timeout=600)
    assert r.returncode == 1, r.stdout + r.stderr
    sweep = find_sweep(tmp_path, sweep_id(r.stdout))
    gdw_run, erm_run = (tmp_path / e["run_id"] for e in sweep.runs)
    assert read_summary(gdw_run)["status"] == "failed" and "diverged" in read_summary(gdw_run)["message"]
    assert read_summary(erm_run)["status"] == "finished"  # started after the failure: the sweep went on
    assert f"1 of 2 run(s) did not finish:\n  {gdw_run.name} failed (diverged" in r.stdout
    erm_ended = read_summary(erm_run)["ended"]

    again = gdw("resume", sweep.id, "--runs-dir", str(tmp_path), timeout=600)
    assert again.returncode == 1 and sweep_id(again.stdout) == sweep.id
    assert "1 finished, 1 to resume" in again.stdout
    # No checkpoint (it diverged in epoch 1): the attempt is kept aside and the run starts over.
    assert len(run_starts(gdw_run / "attempts" / "1")) == 1 and len(run_starts(gdw_run)) == 1
    assert read_summary(gdw_run)["status"] == "failed" and read_summary(gdw_run)["attempts"] == 1
    assert read_summary(erm_run)["ended"] == erm_ended and len(run_starts(erm_run)) == 1  # finished: skipped


def test_killed_scheduler_leaves_runs_going_and_two_resumes_adopt_them(tmp_path):
    proc = gdw_popen("sweep", "digits-unif60", "--methods", "erm", "--seeds", "1,10", "--set", "train.epochs=40",
                     "--device", "cpu", "--workers", "1", "--runs-dir", str(tmp_path))
    try:
        sweep = wait_for(lambda: (list_sweeps(tmp_path) or [None])[0], proc=proc, what="the sweep directory")
        first, second = (tmp_path / e["run_id"] for e in sweep.runs)
        wait_for(lambda: any(e["type"] == "epoch" for e in events(first)), proc=proc, what="the first run to train")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    killed_at = time.time()
    assert run_status(first) == "running"  # the engine outlived its scheduler
    assert run_status(second) == "created" and not scheduler_alive(sweep)

    # Two resumes at once: one scheduler takes the sweep, the other sees it and leaves.
    resumes = [gdw_popen("resume", sweep.id, "--detach", "--runs-dir", str(tmp_path)) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in resumes]
    assert [p.returncode for p in resumes] == [0, 0], outs
    wait_for(lambda: all(read_summary(d)["status"] == "finished" for d in (first, second)), timeout=600,
             what="both runs to finish")
    wait_for(lambda: not scheduler_alive(sweep), what="the scheduler to end")
    for run_dir in (first, second):
        assert len(run_starts(run_dir)) == 1 and not (run_dir / "attempts").exists()
        assert "error" not in (run_dir / "engine.log").read_text()
    assert run_starts(first)[0]["t"] < killed_at < run_starts(second)[0]["t"]
    log = (sweep.dir / "scheduler.log").read_text()
    assert log.count(f"adopted {first.name}") == 1 and log.count(f"started {second.name}") == 1
    assert log.count("another scheduler is running it") == 1


def test_a_claimed_run_is_never_started_by_a_second_task(tmp_path):
    from engine.config import load_preset
    from engine.runs import create_run

    run_dir = create_run(tmp_path, load_preset("digits-clean", {"train.epochs": 1, "train.device": "cpu"}))
    fd = claim(run_dir)
    try:
        r = subprocess.run([sys.executable, "-m", "engine.sweep.task", "--run-dir", str(run_dir)], capture_output=True,
                           text=True, env=child_env(), cwd=ROOT, timeout=120)
    finally:
        os.close(fd)
    assert r.returncode == 3 and "claimed by another task" in r.stdout
    assert not (run_dir / "events.jsonl").exists() and read_summary(run_dir)["status"] == "created"


def test_stop_sweep_then_resume(tmp_path):
    r = gdw("sweep", "digits-unif60", "--methods", "erm", "--seeds", "1,10", "--set", "train.epochs=30", "--device", "cpu",
            "--workers", "1", "--detach", "--runs-dir", str(tmp_path), timeout=120)
    assert r.returncode == 0, r.stderr
    sweep = find_sweep(tmp_path, sweep_id(r.stdout))
    first, second = (tmp_path / e["run_id"] for e in sweep.runs)
    wait_for(lambda: any(e["type"] == "epoch" for e in events(first)), what="the first run to train")
    stopped = gdw("stop", sweep.id, "--runs-dir", str(tmp_path))
    assert stopped.returncode == 0, stopped.stderr
    wait_for(lambda: not scheduler_alive(sweep), what="the scheduler to end")
    assert run_status(first) == "stopped" and run_status(second) == "created"
    assert "stopped" in gdw("sweeps", "--runs-dir", str(tmp_path)).stdout

    done = gdw("resume", sweep.id, "--detach", "--wait", "--runs-dir", str(tmp_path), timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [read_summary(d)["status"] for d in (first, second)] == ["finished", "finished"]
    starts = run_starts(first)
    assert [e["start_epoch"] for e in starts][0] == 0 and len(starts) == 2 and starts[1]["start_epoch"] > 0  # resumed
