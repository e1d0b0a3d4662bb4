"""Sweeps that neither stick nor lie, through the real CLI and real engines on digits: a killed run
is failed (killed) and said everywhere, a deleted run does not take the others down, a resume the
engine refuses says why and can start the run over, a dead scheduler is said, and a sweep can be
stopped on a disk it cannot write.
"""

from __future__ import annotations

import csv
import io
import os
import signal

from engine.rundir import checkpoint_path
from engine.runs import lock_pid, read_summary, run_status
from engine.sweep.store import find_sweep, list_sweeps, scheduler_alive
from lifecycle_helpers import events, gdw, gdw_popen, sweep_id, wait_for


def checkpointed(run_dir) -> bool:
    """An epoch ended and its checkpoint is written."""
    return checkpoint_path(run_dir).exists() and any(e["type"] == "epoch" for e in events(run_dir))


def test_a_killed_engine_is_failed_killed_and_said_by_wait_and_report(tmp_path):
    proc = gdw_popen("sweep", "digits-unif60", "--methods", "erm", "--seeds", "1,10", "--set", "train.epochs=4",
                     "--device", "cpu", "--workers", "1", "--wait", "--runs-dir", str(tmp_path))
    sweep = wait_for(lambda: (list_sweeps(tmp_path) or [None])[0], proc=proc, what="the sweep directory")
    first, second = (tmp_path / e["run_id"] for e in sweep.runs)
    wait_for(lambda: checkpointed(first), proc=proc, what="the first run to checkpoint an epoch")
    os.kill(lock_pid(first), signal.SIGKILL)  # what the out-of-memory killer does
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 1, out + err
    # The scheduler says it when it happens, and the sweep goes on with the next run.
    assert f"failed {first.name} (killed (SIGKILL; out of memory?) before it ended)" in out, out
    assert read_summary(second)["status"] == "finished"
    s = read_summary(first)
    assert (s["status"], run_status(first)) == ("failed", "failed") and "SIGKILL" in s["message"]
    # --wait ends non-zero, naming the run and why.
    assert f"1 of 2 run(s) did not finish:\n  {first.name} failed (killed (SIGKILL; out of memory?) before it ended)" in out
    listed = gdw("sweeps", "--runs-dir", str(tmp_path)).stdout
    row = next(line.split() for line in listed.splitlines() if line.startswith(sweep.id))
    assert row[2:7] == ["2", "1", "0", "1", "0"], listed  # runs done running failed pending
    # The report says one seed of two, and which one is missing and why.
    rep = gdw("report", sweep.id, "--format", "csv", "--runs-dir", str(tmp_path))
    (row,) = list(csv.DictReader(io.StringIO(rep.stdout)))
    assert (row["n"], row["planned"], row["seeds"], row["missing"]) == ("1", "2", "10", "1")
    assert ("note: digits-unif60 train.epochs=4 · erm: 1 of 2 seeds finished; missing seed(s) 1 (failed: killed "
            "(SIGKILL; out of memory?) before it ended)") in rep.stderr
    md = gdw("report", sweep.id, "--runs-dir", str(tmp_path)).stdout
    assert "(n=1 of 2)" in md

    # A killed run resumes from its last checkpoint: the sweep completes.
    again = gdw("resume", sweep.id, "--wait", "--runs-dir", str(tmp_path), timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert read_summary(first)["status"] == "finished"
    starts = [e for e in events(first) if e["type"] == "run_start"]
    assert len(starts) == 2 and starts[1]["start_epoch"] >= 1


def test_a_dead_scheduler_is_said_and_resume_finishes_the_sweep(tmp_path):
    r = gdw("sweep", "digits-unif60", "--methods", "erm", "--seeds", "1,10", "--set", "train.epochs=2", "--device", "cpu",
            "--workers", "1", "--detach", "--runs-dir", str(tmp_path), timeout=120)
    assert r.returncode == 0, r.stderr
    sweep = find_sweep(tmp_path, sweep_id(r.stdout))
    assert "died" not in gdw("sweeps", "--runs-dir", str(tmp_path)).stdout  # just started: alive or starting
    first, second = (tmp_path / e["run_id"] for e in sweep.runs)
    wait_for(lambda: run_status(first) == "running", what="the first run to start")
    os.kill(int((sweep.dir / "scheduler.lock").read_text()), signal.SIGKILL)
    wait_for(lambda: not scheduler_alive(sweep), what="the scheduler to be gone")
    hint = f"scheduler died — resume with `gdw resume {sweep.id}`"
    listed = gdw("sweeps", "--runs-dir", str(tmp_path)).stdout
    row = next(line.split() for line in listed.splitlines() if line.startswith(sweep.id))
    assert row[-1] == "died" and f"{sweep.id}: {hint}" in listed, listed
    shown = gdw("show", sweep.id, "--runs-dir", str(tmp_path)).stdout
    assert f"scheduler  {hint}" in shown, shown
    done = gdw("resume", sweep.id, "--wait", "--runs-dir", str(tmp_path), timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [read_summary(d)["status"] for d in (first, second)] == ["finished", "finished"]
    listed = gdw("sweeps", "--runs-dir", str(tmp_path)).stdout
    assert next(line.split() for line in listed.splitlines() if line.startswith(sweep.id))[-1] == "-"
