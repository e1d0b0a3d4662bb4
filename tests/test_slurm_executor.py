"""`gdw sweep --executor slurm` against a real Slurm (scripts/slurm-local.sh starts a single-node one).

Submit a digits sweep and see it finish; requeue a running task and check that the resumed run
ends exactly where an uninterrupted one does; an engine killed as an out-of-memory kill would is
failed with the reason; stop and resume a sweep; refuse what Slurm refuses.
Without Slurm these tests skip, except in CI (CI set), where a missing Slurm is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.runs import create_run, load_run_config, read_summary
from engine.sweep.slurm import JOBS_FILE, SLURM_DIR
from engine.sweep.store import find_sweep
from engine.sweep.task import claim_info
from lifecycle_helpers import ROOT, child_env, epoch_records, events, gdw, sweep_id
from lifecycle_helpers import wait_for as _wait_for

SMALL = ["--device", "cpu", "--set", "train.step_events_per_s=10000"]


def _slurm_problem() -> str | None:
    if shutil.which("sbatch") is None:
        return "no sbatch on PATH"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        return f"sinfo failed: {e}"
    if out.returncode != 0:
        return f"sinfo failed: {(out.stderr or out.stdout).strip()}"
    if not {"idle", "mix", "alloc"} & set(out.stdout.split()):
        return f"no usable Slurm node (sinfo says: {' '.join(out.stdout.split()) or 'nothing'})"
    return None


@pytest.fixture(scope="module")
def slurm():
    problem = _slurm_problem()
    if problem:
        message = f"these tests need a running Slurm ({problem}); start one with `scripts/slurm-local.sh` as root"
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(message)  # in CI a missing Slurm is a broken setup, not a reason to skip
        pytest.skip(message)


def wait_for(predicate, timeout: float, what: str):
    """lifecycle_helpers.wait_for, polling every 0.25 s: each poll here may ask slurmctld."""

    def slow():
        value = predicate()
        if not value:
            time.sleep(0.25)
        return value

    return _wait_for(slow, timeout=timeout, what=what)


def _sweep(runs: Path, *args: str, timeout: float = 240):
    """`gdw sweep ARGS --executor slurm` on the small CPU settings; the sweep it submitted."""
    proc = gdw("sweep", *args, *SMALL, "--executor", "slurm", "--runs-dir", str(runs), timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return find_sweep(runs, sweep_id(proc.stdout))


def _one_task(runs: Path, method: str, epochs: int):
    """A one-run sweep on Slurm: the sweep, its run directory and its array task's job id."""
    sweep = _sweep(runs, "digits-clean", "--methods", method, "--seeds", "1", "--set", f"train.epochs={epochs}",
                   "--slurm-time", "10")
    (run_dir,) = sweep.run_dirs()
    (job,) = _jobs(sweep.dir).values()
    return sweep, run_dir, job


def _jobs(sweep_dir: Path) -> dict[str, str]:
    return json.loads((sweep_dir / JOBS_FILE).read_text())


def _squeue_state(job: str) -> str:
    out = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-o", "%i %T"], capture_output=True, text=True, timeout=30).stdout
    return dict(line.split() for line in out.splitlines()).get(job, "")


def _scontrol(*args: str) -> None:
    subprocess.run(["scontrol", *args], check=True, capture_output=True, text=True, timeout=30)


@pytest.mark.usefixtures("slurm")
def test_a_digits_sweep_runs_as_an_array_and_finishes(tmp_path):
    runs = tmp_path / "runs"
    sweep = _sweep(runs, "digits-clean", "--methods", "erm,gdw", "--seeds", "1", "--set", "train.epochs=2",
                   "--slurm-partition", "debug", "--slurm-time", "10", "--slurm-cpus", "1", "--slurm-mem", "1",
                   "--slurm-setup", "echo setup-line-ran", "--wait", timeout=300)
    assert [read_summary(d)["status"] for d in sweep.run_dirs()] == ["finished", "finished"]
    for d in sweep.run_dirs():
        assert isinstance(read_summary(d)["final_acc"], float)
        assert [e["type"] for e in events(d)][-1] == "run_end"

    # One array of two tasks, with the options as sbatch flags, requeueable.
    jobs = _jobs(sweep.dir)
    assert sorted(jobs) == sorted(d.name for d in sweep.run_dirs())
    array_id = {j.split("_")[0] for j in jobs.values()}
    assert len(array_id) == 1 and sorted(j.split("_")[1] for j in jobs.values()) == ["0", "1"]
    (script,) = (sweep.dir / SLURM_DIR).glob("*_submission.sh")
    assert (sweep.dir / SLURM_DIR).stat().st_mode & 0o777 == 0o700  # its pickles are run: only the user writes them
    text = script.read_text()
    for flag in ("--array=0-1%2", "--partition=debug", "--time=10", "--cpus-per-task=1", "--mem=1GB", "--requeue"):
        assert f"#SBATCH {flag}\n" in text, flag
    assert "\necho setup-line-ran\n" in text and sys.executable in text
    logs = sorted((sweep.dir / SLURM_DIR).glob("*_log.out"))
    assert len(logs) == 2
    for log in logs:
        out = log.read_text()
        assert "setup-line-ran" in out and "final_acc=" in out

    # The login node's view: every run done, and the scheduler's own word for it.
    listing = gdw("sweeps", "--runs-dir", str(runs))
    row = next(line for line in listing.stdout.splitlines() if sweep.id in line).split()
    assert row[2:7] == ["2", "2", "0", "0", "0"] and row[7] == "slurm"
    from engine.sweep.executor import make_executor

    executor = make_executor("slurm", sweep.options)
    # The runs end a moment before their tasks do (submitit stores the task's result last).
    wait_for(lambda: set(executor.job_states(sweep).values()) == {"COMPLETED"}, timeout=60, what="both tasks COMPLETED")


@pytest.mark.usefixtures("slurm")
def test_a_requeued_task_resumes_and_ends_exactly_as_an_uninterrupted_run(tmp_path):
    runs = tmp_path / "runs"
    sweep, run_dir, job = _one_task(runs, "gdw", epochs=25)

    # The same run, uninterrupted, beside it (same config, same engine, one thread each).
    reference = create_run(tmp_path / "reference", load_run_config(run_dir))
    ref_proc = subprocess.Popen([sys.executable, "-m", "engine", "run", "--run-dir", str(reference)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=child_env(), cwd=ROOT)

    # Requeue once two epochs are checkpointed: Slurm sends SIGTERM, the engine checkpoints and exits.
    wait_for(lambda: sum(e["type"] == "epoch" for e in events(run_dir)) >= 2, timeout=240, what="two epochs under Slurm")
    _scontrol("requeue", job)
    wait_for(lambda: _squeue_state(job) == "PENDING", timeout=120, what="the task back in the queue")
    # Slurm holds a requeued job back for a while (its begin time); start it now rather than wait.
    _scontrol("update", f"JobId={job}", "StartTime=now")
    wait_for(lambda: read_summary(run_dir)["status"] in ("finished", "failed"), timeout=300, what="the resumed run to end")

    assert ref_proc.wait(timeout=300) == 0, ref_proc.stderr.read()
    types = [e["type"] for e in events(run_dir)]
    assert types.count("run_start") == 2 and "stopped" in types and "resume" in types
    stopped = next(e for e in events(run_dir) if e["type"] == "stopped")
    resumed = next(e for e in events(run_dir) if e["type"] == "resume")
    assert stopped["reason"] == "SIGTERM" and 2 <= resumed["from_epoch"] < 25
    assert read_summary(run_dir)["status"] == "finished"
    assert read_summary(run_dir)["final_acc"] == read_summary(reference)["final_acc"]
    assert epoch_records(run_dir) == epoch_records(reference)  # every epoch, to the last digit
    assert _jobs(sweep.dir) == {run_dir.name: job}  # the same task ran twice; nothing was submitted again


@pytest.mark.usefixtures("slurm")
def test_an_engine_killed_under_slurm_is_failed_killed_and_said(tmp_path):
    # What Slurm's out-of-memory kill does to a task: a SIGKILL of its biggest process, the engine.
    runs = tmp_path / "runs"
    sweep, run_dir, job = _one_task(runs, "erm", epochs=200)
    # The epoch's checkpoint is written just after its event: wait for the file itself.
    wait_for(lambda: (run_dir / "checkpoints" / "last.pt").exists(), timeout=240, what="a first checkpoint under Slurm")
    engine_pid = claim_info(run_dir)["pid"]  # the task process runs the engine in itself
    os.kill(engine_pid, signal.SIGKILL)
    wait_for(lambda: read_summary(run_dir)["status"] == "failed", timeout=120, what="the run marked failed")
    assert read_summary(run_dir)["message"] == "killed (SIGKILL; out of memory?) before it ended"
    wait_for(lambda: _squeue_state(job) in ("", "FAILED"), timeout=120, what="the task to fail")
    listed = gdw("sweeps", "--runs-dir", str(runs)).stdout
    row = next(line.split() for line in listed.splitlines() if line.startswith(sweep.id))
    assert row[-7:-2] == ["1", "0", "0", "1", "0"], listed  # runs, done, running, failed, pending
    # The checkpoint is still there: `gdw resume SWEEP` takes the run up again.
    assert (run_dir / "checkpoints" / "last.pt").exists()


@pytest.mark.usefixtures("slurm")
def test_stop_cancels_the_jobs_and_resume_submits_them_again(tmp_path):
    runs = tmp_path / "runs"
    sweep, run_dir, first_job = _one_task(runs, "erm", epochs=200)
    wait_for(lambda: any(e["type"] == "epoch" for e in events(run_dir)), timeout=240, what="a first epoch under Slurm")

    stop = gdw("stop", sweep.id, "--runs-dir", str(runs))
    assert stop.returncode == 0, stop.stdout + stop.stderr
    wait_for(lambda: read_summary(run_dir)["status"] == "stopped", timeout=120, what="a clean stop")
    assert (run_dir / "checkpoints" / "last.pt").exists()
    wait_for(lambda: _squeue_state(first_job) in ("", "CANCELLED"), timeout=120, what="the job cancelled")

    resume = gdw("resume", sweep.id, "--runs-dir", str(runs))
    assert resume.returncode == 0, resume.stdout + resume.stderr
    (second_job,) = _jobs(sweep.dir).values()
    assert second_job != first_job
    wait_for(lambda: any(e["type"] == "resume" for e in events(run_dir)), timeout=240, what="the run resumed under Slurm")
    subprocess.run(["scancel", second_job], timeout=30)
    wait_for(lambda: read_summary(run_dir)["status"] == "stopped", timeout=120, what="a clean stop again")


@pytest.mark.usefixtures("slurm")
def test_a_partition_slurm_rejects_is_one_line_and_creates_nothing(tmp_path):
    runs = tmp_path / "runs"
    proc = gdw("sweep", "digits-clean", "--methods", "erm", "--seeds", "1", *SMALL, "--executor", "slurm",
               "--slurm-partition", "no-such-partition", "--runs-dir", str(runs))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "no-such-partition" in proc.stderr and "debug" in proc.stderr  # what was refused, and what exists
    assert not runs.exists()


def test_without_sbatch_on_path_slurm_is_refused_in_one_line(tmp_path):
    runs = tmp_path / "runs"
    env = {**child_env(), "PATH": str(tmp_path / "empty")}
    proc = subprocess.run([sys.executable, "-m", "gdw_cli", "sweep", "digits-clean", "--methods", "erm", "--seeds", "1",
                           *SMALL, "--executor", "slurm", "--runs-dir", str(runs)],
                          capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "sbatch" in proc.stderr and "Traceback" not in proc.stderr
    assert not runs.exists()


def test_slurm_time_limits_read_as_minutes():
    from engine.sweep.slurm import slurm_minutes

    cases = {"30": 30, "30:00": 30, "0:30": 1, "1:00:00": 60, "2-00:00:00": 2880, "1-12": 2160, "1-00:30": 1470,
             "infinite": None, "UNLIMITED": None, "n/a": None, "": None}
    assert {text: slurm_minutes(text) for text in cases} == cases
