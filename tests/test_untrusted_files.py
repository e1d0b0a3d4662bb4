"""A runs directory may be shared on a cluster, so every file in it is untrusted input: a checkpoint
whose unpickling would call os.system is refused with one line and runs nothing, on every path that
loads one — `gdw resume RUN`, the sweep task that `gdw resume SWEEP` and Slurm requeues run, and
`gdw resume SWEEP` itself. The checkpoint the engine writes loads under these rules. The one
unpickling left, submitit's on a Slurm node, reads a folder only the user can write.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from engine.checkpoint import load_state, numpy_state_from_plain
from engine.config import ConfigError
from engine.runs import read_summary, write_summary
from engine.sweep.store import find_sweep
from gdw_cli.main import app
from lifecycle_helpers import ROOT, child_env, gdw, sweep_id

runner = CliRunner()


class RunsCommand:
    """Unpickling this calls os.system(command): what a hostile last.pt would hold."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A one-run sweep that finished one epoch: its checkpoint is real, then replaced per test."""
    runs = tmp_path_factory.mktemp("runs")
    r = gdw("sweep", "digits-clean", "--methods", "erm", "--seeds", "1", "--set", "train.epochs=1",
            "--device", "cpu", "--workers", "1", "--runs-dir", str(runs), timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    s = find_sweep(runs, sweep_id(r.stdout))
    run_dir = runs / s.runs[0]["run_id"]
    shutil.copy(run_dir / "checkpoints" / "last.pt", run_dir / "good.pt")  # as the engine wrote it
    return runs, s.id, run_dir


def plant(run_dir: Path, marker: Path) -> Path:
    """Make the run resumable (stopped) with a checkpoint that would run `touch marker` if unpickled."""
    ckpt = run_dir / "checkpoints" / "last.pt"
    state = torch.load(run_dir / "good.pt", weights_only=True)
    state["model"] = {"weight": RunsCommand(f"touch {marker}")}  # nested, as an attacker would hide it
    torch.save(state, ckpt)
    summary = read_summary(run_dir)
    summary.update(status="stopped", final_acc=None)
    write_summary(run_dir, summary)
    return ckpt


def test_the_payload_is_real(tmp_path):
    # The same file, loaded the unsafe way, does run the command: the tests below would see it.
    marker = tmp_path / "ran"
    torch.save({"model": RunsCommand(f"touch {marker}")}, tmp_path / "evil.pt")
    torch.load(tmp_path / "evil.pt", weights_only=False)
    assert marker.exists()


def refusal(path: Path) -> str:
    return (f"checkpoint {path} holds objects other than tensors and plain values (posix.system): "
            "refused without loading, since unpickling them could run code")


def test_gdw_resume_run_refuses_a_checkpoint_that_would_run_code(sweep, tmp_path):
    runs, _, run_dir = sweep
    marker = tmp_path / "ran"
    ckpt = plant(run_dir, marker)
    result = runner.invoke(app, ["resume", run_dir.name, "--headless", "--runs-dir", str(runs)])
    assert not marker.exists(), "the checkpoint's code ran"
    assert result.exit_code == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [f"error: {refusal(ckpt)}"]
    assert "Traceback" not in result.stdout + result.stderr


def test_the_sweep_task_refuses_it_too(sweep, tmp_path):
    # What `gdw resume SWEEP`, the local scheduler and a Slurm requeue run for each run.
    runs, _, run_dir = sweep
    marker = tmp_path / "ran"
    ckpt = plant(run_dir, marker)
    task = subprocess.run([sys.executable, "-m", "engine.sweep.task", "--run-dir", str(run_dir)],
                          capture_output=True, text=True, env=child_env(), cwd=ROOT, timeout=300)
    assert not marker.exists(), "the checkpoint's code ran"
    assert task.returncode == 2, task.stdout + task.stderr
    assert refusal(ckpt) in task.stderr and "Traceback" not in task.stdout + task.stderr


def test_gdw_resume_sweep_refuses_it(sweep, tmp_path):
    runs, sweep_name, run_dir = sweep
    marker = tmp_path / "ran"
    ckpt = plant(run_dir, marker)
    r = gdw("resume", sweep_name, "--wait", "--runs-dir", str(runs), timeout=600)
    assert not marker.exists(), "the checkpoint's code ran"
    assert "Traceback" not in r.stdout + r.stderr
    assert refusal(ckpt) in (run_dir / "engine.log").read_text()


def test_the_checkpoint_the_engine_writes_loads_safely(sweep):
    _, _, run_dir = sweep
    state = load_state(run_dir / "good.pt", "cpu")
    name, keys, pos, has_gauss, cached = numpy_state_from_plain(state["rng"]["numpy"])
    assert name == "MT19937" and keys.dtype == np.uint32 and keys.shape == (624,)
    np.random.set_state((name, keys, pos, has_gauss, cached))  # numpy takes it back


def test_a_checkpoint_from_before_the_plain_numpy_state_still_loads(sweep, tmp_path):
    # Runs interrupted before this version keep numpy's state as an array: still resumable.
    _, _, run_dir = sweep
    state = load_state(run_dir / "good.pt", "cpu")
    np.random.seed(7)
    legacy = np.random.get_state()
    state["rng"]["numpy"] = legacy
    torch.save(state, tmp_path / "legacy.pt")
    loaded = numpy_state_from_plain(load_state(tmp_path / "legacy.pt", "cpu")["rng"]["numpy"])
    assert loaded[0] == legacy[0] and (loaded[1] == legacy[1]).all() and loaded[2:] == legacy[2:]


def test_a_file_that_is_not_a_dict_is_corrupt(tmp_path):
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(ConfigError, match="is corrupt or does not match this run: it holds a list"):
        load_state(tmp_path / "list.pt", "cpu")


def test_the_slurm_folder_of_pickled_calls_is_private(tmp_path):
    # The one unpickling left (submitit's, on the compute node) reads only a folder others cannot write.
    from engine.sweep.slurm import private_folder

    old = os.umask(0)
    try:
        made = private_folder(tmp_path / "sweeps" / "s1" / "slurm")
        loose = tmp_path / "loose"
        loose.mkdir(mode=0o777)
        private_folder(loose)
    finally:
        os.umask(old)
    assert made.stat().st_mode & 0o777 == 0o700 and loose.stat().st_mode & 0o777 == 0o700
