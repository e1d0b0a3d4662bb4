"""Sweeps that neither stick nor lie, through the real CLI and real engines on digits: a killed run
is failed (killed) and said everywhere, a deleted run does not take the others down, a resume the
engine refuses says why and can start the run over, a dead scheduler is said, and a sweep can be
stopped on a disk it cannot write.
"""

from __future__ import annotations

import csv
import io
import os
import pty
import resource
import signal
import subprocess

from engine.rundir import checkpoint_path
from engine.runs import delete_run, load_run_config, lock_pid, read_summary, run_status
from engine.sweep.store import find_sweep, list_sweeps, scheduler_alive
from lifecycle_helpers import ROOT, child_env, events, gdw, gdw_command, gdw_popen, sweep_id, wait_for


def checkpointed(run_dir) -> bool:
    """An epoch ended and its checkpoint is written."""
    return checkpoint_path(run_dir).exists() and any(e["type"] == "epoch" for e in events(run_dir))


def test_a_killed_engine_is_failed_killed_and_said_by_wait_and_report(tmp_path):
    proc = gdw_popen("sweep", "digits-unif60", "--methods", "erm", "--seeds", "1,10", "--set", "train.epochs=30",
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
    assert ("note: digits-unif60 train.epochs=30 · erm: 1 of 2 seeds finished; missing seed(s) 1 (failed: killed "
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


def test_a_deleted_run_of_a_stopped_sweep_is_said_and_the_others_run(tmp_path):
    r = gdw("sweep", "digits-clean", "--methods", "erm", "--seeds", "1,10,100", "--set", "train.epochs=1", "--device", "cpu",
            "--workers", "1", "--detach", "--runs-dir", str(tmp_path), timeout=120)
    assert r.returncode == 0, r.stderr
    sweep = find_sweep(tmp_path, sweep_id(r.stdout))
    assert gdw("stop", sweep.id, "--runs-dir", str(tmp_path)).returncode == 0
    wait_for(lambda: not scheduler_alive(sweep), what="the scheduler to end")
    dirs = [tmp_path / e["run_id"] for e in sweep.runs]
    gone = dirs[-1]
    assert run_status(gone) == "created"  # one worker, stopped at once: the last run never started
    delete_run(gone)  # what `d` on the runs screen does
    r = gdw("resume", sweep.id, "--detach", "--runs-dir", str(tmp_path), timeout=120)
    assert r.returncode == 0 and f"1 missing (deleted): {gone.name}" in r.stdout, r.stdout + r.stderr
    wait_for(lambda: all(read_summary(d)["status"] == "finished" for d in dirs[:-1]), timeout=600, what="the other runs to finish")
    wait_for(lambda: not scheduler_alive(sweep), what="the scheduler to end")
    log = (sweep.dir / "scheduler.log").read_text()
    assert f"missing {gone.name} (its directory is gone; not started)" in log and "Traceback" not in log, log
    # --wait says the sweep is short of a run, by name.
    again = gdw("resume", sweep.id, "--wait", "--runs-dir", str(tmp_path), timeout=300)
    assert again.returncode == 1 and f"1 of 3 run(s) did not finish:\n  {gone.name} missing" in again.stdout, again.stdout
    assert "3 runs · 2 done · 0 running · 0 failed · 0 pending · 1 missing (deleted)" in again.stdout, again.stdout
    # `gdw sweeps` counts it as missing, not as failed (a column only where a sweep has one).
    listed = gdw("sweeps", "--runs-dir", str(tmp_path)).stdout.splitlines()
    row = next(line.split() for line in listed if line.startswith(sweep.id))
    assert listed[0].split()[-8:] == ["runs", "done", "running", "failed", "pending", "missing", "executor", "scheduler"]
    assert row[-8:-2] == ["3", "2", "0", "0", "0", "1"], listed


def two_run_sweep_with_a_checkpoint(tmp_path):
    """A detached 2-run, 1-worker ERM sweep of 40 epochs (~0.2 s each), once its first run has checkpointed an epoch."""
    r = gdw("sweep", "digits-unif60", "--methods", "erm", "--seeds", "1,10", "--set", "train.epochs=40", "--device", "cpu",
            "--workers", "1", "--detach", "--runs-dir", str(tmp_path), timeout=120)
    assert r.returncode == 0, r.stderr
    sweep = find_sweep(tmp_path, sweep_id(r.stdout))
    first, second = (tmp_path / e["run_id"] for e in sweep.runs)
    wait_for(lambda: checkpointed(first), timeout=300, what="the first run to checkpoint an epoch")
    return sweep, first, second


def test_a_corrupt_checkpoint_in_a_sweep_is_said_and_the_run_can_start_over(tmp_path):
    # 40 epochs of ~0.2 s: the stop comes well before the first run ends.
    sweep, first, second = two_run_sweep_with_a_checkpoint(tmp_path)
    assert gdw("stop", sweep.id, "--runs-dir", str(tmp_path)).returncode == 0
    wait_for(lambda: not scheduler_alive(sweep), what="the scheduler to end")
    assert run_status(first) == "stopped"
    checkpoint_path(first).write_bytes(b"not a checkpoint")  # a half-copied file, a bad disk block
    hint = f"`gdw resume {sweep.id} --restart {first.name}` starts it over, keeping this attempt"

    r = gdw("resume", sweep.id, "--wait", "--runs-dir", str(tmp_path), timeout=600)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"failed {first.name} (cannot resume: checkpoint " in r.stdout and "is corrupt" in r.stdout and hint in r.stdout, r.stdout
    assert f"  {first.name} failed (cannot resume: checkpoint " in r.stdout  # and --wait names it at the end
    s = read_summary(first)
    assert s["status"] == "failed" and "is corrupt" in s["message"] and hint in s["message"]
    assert read_summary(second)["status"] == "finished"

    r = gdw("resume", sweep.id, "--restart", first.name, "--wait", "--runs-dir", str(tmp_path), timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{first.name}: starts over" in r.stdout
    assert read_summary(first)["status"] == "finished" and read_summary(first)["attempts"] == 1
    kept = first / "attempts" / "1"
    assert (kept / "checkpoints" / "last.pt").read_bytes() == b"not a checkpoint"  # the old attempt, kept
    assert read_summary(kept)["status"] == "failed" and (kept / "events.jsonl").exists()
    starts = [e for e in events(first) if e["type"] == "run_start"]
    assert len(starts) == 1 and starts[0]["start_epoch"] == 0
    # A name that is not a run of the sweep: one line, nothing touched.
    bad = gdw("resume", sweep.id, "--restart", "nosuchrun", "--runs-dir", str(tmp_path))
    assert bad.returncode == 2 and bad.stderr.strip() == (
        f"error: --restart nosuchrun is not a run of sweep {sweep.id} (its runs: `gdw show {sweep.id}`)")


def no_file_writes() -> None:
    """In the child: every write of a byte to a file fails (EFBIG), as on a full disk."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def test_stop_sweep_works_when_sweep_json_cannot_be_written(tmp_path):
    sweep, first, second = two_run_sweep_with_a_checkpoint(tmp_path)
    stop = gdw("stop", sweep.id, "--runs-dir", str(tmp_path), preexec_fn=no_file_writes)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert "Traceback" not in stop.stderr and stop.stderr.startswith(
        f"warning: cannot mark {sweep.id}/sweep.json stopped (File too large); its scheduler was told by signal"), stop.stderr
    wait_for(lambda: not scheduler_alive(sweep), what="the scheduler to end")
    assert run_status(first) == "stopped" and run_status(second) == "created"  # stopped, and nothing else started
    assert not find_sweep(tmp_path, sweep.id).stopped  # it could not be written
    assert "stop requested by signal: no more runs start" in (sweep.dir / "scheduler.log").read_text()


def test_sweep_checks_the_dataset_before_creating_anything_and_takes_download(tmp_path):
    runs = tmp_path / "runs"
    r = gdw("sweep", "cifar10-unif40", "cifar10-imb10", "--methods", "erm,gdw", "--seeds", "1,10", "--data-dir",
            str(tmp_path / "empty"), "--detach", "--runs-dir", str(runs))
    assert r.returncode == 2 and r.stdout == "" and not runs.exists(), r.stdout + r.stderr
    assert r.stderr.strip() == (f"error: cifar10 files not found: expected data_batch_1, data_batch_2, data_batch_3, "
                                f"data_batch_4, data_batch_5, test_batch, batches.meta in {tmp_path}/empty/cifar-10-batches-py; "
                                "pass --download (in the UI's form: download) to fetch them, or point data.data_dir at them")
    # --download and --data-dir reach every run, as with `gdw run` (digits: nothing to fetch).
    r = gdw("sweep", "digits-clean", "--methods", "erm", "--seeds", "1", "--set", "train.epochs=1", "--device", "cpu",
            "--download", "--data-dir", str(tmp_path / "d"), "--wait", "--runs-dir", str(runs), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    (run_dir,) = find_sweep(runs, sweep_id(r.stdout)).run_dirs()
    cfg = load_run_config(run_dir)
    assert (cfg["data"]["download"], cfg["data"]["data_dir"]) == (True, str(tmp_path / "d"))


def test_ctrl_c_while_a_big_sweep_is_created_leaves_nothing_behind(tmp_path):
    runs = tmp_path / "runs"
    seeds = ",".join(str(s) for s in range(1, 501))
    proc = gdw_popen("sweep", "digits-clean", "digits-imb", "--methods", "erm,gdw", "--seeds", seeds, "--yes",
                     "--device", "cpu", "--detach", "--runs-dir", str(runs))
    made = lambda: [d for d in runs.iterdir() if d.name != "sweeps"] if runs.is_dir() else []  # noqa: E731
    wait_for(lambda: len(made()) >= 50, proc=proc, what="50 runs of the 2,000 to be created")
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted: no sweep was created" in err, out + err
    assert made() == [] and list((runs / "sweeps").iterdir()) == []


def test_a_big_sweep_needs_yes_or_a_confirmation_and_workers_the_machine_cannot_hold_are_refused(tmp_path):
    from engine.sweep.local import max_workers

    runs = tmp_path / "runs"
    seeds = ",".join(str(s) for s in range(1, 252))  # 2 presets × 2 methods × 251 seeds = 1,004 runs
    big = ["sweep", "digits-clean", "digits-imb", "--methods", "erm,gdw", "--seeds", seeds, "--detach", "--runs-dir", str(runs)]
    r = gdw(*big)  # a script: no terminal to ask on
    assert (r.returncode, r.stdout, r.stderr) == (2, "", "error: this sweep has 1,004 runs (more than 500): add --yes to create them\n")
    assert not runs.exists()
    # On a terminal it asks; "n" creates nothing.
    leader, follower = pty.openpty()
    proc = subprocess.Popen(gdw_command() + big, stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env(), cwd=ROOT)
    os.close(follower)
    os.write(leader, b"n\n")
    out, err = proc.communicate(timeout=120)
    os.close(leader)
    assert proc.returncode == 1 and "create 1,004 runs? [y/N]" in err and "nothing created" in err, out + err
    assert not runs.exists()
    r = gdw("sweep", "digits-clean", "--workers", "100000", "--runs-dir", str(runs))
    assert r.returncode == 2 and r.stderr.startswith(f"error: --workers 100000: this machine holds at most {max_workers()} parallel runs (")
    assert len(r.stderr.splitlines()) == 1 and not runs.exists()
