"""Run lifecycle under faults: exact resume after SIGKILL and after a clean stop, failures the
engine reports itself (exception, divergence, out of memory, full disk).

The resume tests drive real processes: a headless `gdw run` as the uninterrupted reference, and
engines started detached exactly as the UI starts them (engine.launch), killed or stopped part-way
through an epoch, then `gdw resume --headless`. All of them run at once to keep the wall time low.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from engine.config import load_preset
from engine.launch import launch_detached
from engine.runs import create_run, read_summary, run_status, stop_run
from gdw_cli.main import app
from lifecycle_helpers import SMALL, epoch_records, events, gdw, gdw_popen, last_line, wait_for

EPOCHS = 3
# Signal the engine at this iteration (or later) of the second epoch: after the first checkpoint,
# well inside the epoch (digits-unif60 has 14 iterations per epoch).
SIGNAL_AT = (1, 3)


def reference_args(method: str) -> list[str]:
    return ["digits-unif60", "--epochs", str(EPOCHS), "--method", method, *SMALL]


def start_detached(runs_dir: Path, method: str) -> tuple[Path, subprocess.Popen]:
    """A run with the same config as reference_args, started the way the UI starts one."""
    cfg = load_preset("digits-unif60", {"train.epochs": EPOCHS, "train.method": method, "train.device": "cpu",
                                        "train.step_events_per_s": 10000})
    run_dir = create_run(runs_dir, cfg)
    # The engine waits, inside its second epoch, until the test has acted (engine/hold.py).
    hold = f"step@{SIGNAL_AT[0]}.{SIGNAL_AT[1]}:{run_dir / 'release'}"
    return run_dir, launch_detached(run_dir, env={"OMP_NUM_THREADS": "1", "GDW_TEST_HOLD": hold})


def final_acc_line(stdout: str) -> float:
    line = last_line(stdout)
    assert line.startswith("final_acc="), stdout
    return float(line.split("=", 1)[1])


def the_run(runs_dir: Path) -> Path:
    (run_dir,) = [d for d in runs_dir.iterdir() if d.is_dir()]
    return run_dir


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory):
    """Reference runs, SIGKILLed runs (gdw, mwnet) and a cleanly stopped run (gdw), all resumed."""
    root = tmp_path_factory.mktemp("lifecycle")
    out: dict = {}
    refs = {m: gdw_popen("run", "--headless", *reference_args(m), "--runs-dir", str(root / f"ref-{m}"))
            for m in ("gdw", "mwnet")}
    jobs = {f"kill-{m}": start_detached(root / f"kill-{m}", m) for m in ("gdw", "mwnet")}
    jobs["stop-gdw"] = start_detached(root / "stop-gdw", "gdw")

    # Watch all engines at once; act on each when it is part-way through its second epoch.
    pending = dict(jobs)
    deadline = time.monotonic() + 180
    while pending:
        assert time.monotonic() < deadline, f"engines never reached epoch 2: {list(pending)}"
        for name, (run_dir, proc) in list(pending.items()):
            assert proc.poll() is None, f"{name} exited early ({proc.returncode}): {(run_dir / 'engine.log').read_text()}"
            if not (run_dir / "release.held").exists():  # not yet held inside its second epoch
                continue
            # SIGKILL, or SIGTERM exactly as `gdw stop` sends it (test_cli drives `gdw stop` itself).
            if name.startswith("kill"):
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                # As if the kill had come in the middle of writing a long line (a large weights event).
                with open(run_dir / "events.jsonl", "a") as f:
                    f.write('{"type":"weights","v":1,"t":1.0,"omega":[[0.1')
            else:
                assert stop_run(run_dir)
                (run_dir / "release").touch()  # let it finish the iteration, checkpoint and exit
            del pending[name]
        time.sleep(0.02)

    for name, (run_dir, proc) in jobs.items():
        rc = proc.wait(timeout=120)
        info = out[name] = {"run_dir": run_dir, "engine_rc": rc, "status": run_status(run_dir),
                            "summary": read_summary(run_dir), "events": events(run_dir)}
        if name.startswith("stop"):
            info["checkpoint"] = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
        info["show"] = CliRunner().invoke(app, ["show", run_dir.name, "--runs-dir", str(run_dir.parent)])

    resumers = {name: gdw_popen("resume", out[name]["run_dir"].name, "--headless", "--runs-dir",
                                str(out[name]["run_dir"].parent)) for name in jobs}
    for name, proc in resumers.items():
        so, se = proc.communicate(timeout=240)
        out[name]["resume"] = (proc.returncode, so, se)
    for method, proc in refs.items():
        so, se = proc.communicate(timeout=240)
        out[f"ref-{method}"] = {"rc": proc.returncode, "stdout": so, "stderr": se, "run_dir": the_run(root / f"ref-{method}")}
    return out


def check_exact_resume(lifecycle, name: str, method: str) -> None:
    ref, job = lifecycle[f"ref-{method}"], lifecycle[name]
    assert ref["rc"] == 0, ref["stderr"]
    rc, stdout, stderr = job["resume"]
    assert rc == 0, stderr
    ref_final = read_summary(ref["run_dir"])["final_acc"]
    resumed_final = read_summary(job["run_dir"])["final_acc"]
    assert read_summary(job["run_dir"])["status"] == "finished"
    # Exactly equal: the summary, the `final_acc=` last line, and every epoch's numbers.
    assert resumed_final == ref_final
    assert final_acc_line(stdout) == final_acc_line(ref["stdout"])
    ref_epochs, resumed_epochs = epoch_records(ref["run_dir"]), epoch_records(job["run_dir"])
    print(f"{name}: final_acc reference {ref_final} resumed {resumed_final}; test_acc per epoch "
          f"{[e['test_acc'] for e in ref_epochs]} vs {[e['test_acc'] for e in resumed_epochs]}")
    assert [e["epoch"] for e in resumed_epochs] == list(range(EPOCHS))
    assert resumed_epochs == ref_epochs
    # One events.jsonl: the first segment, a resume event, the second segment's start.
    types = [e["type"] for e in events(job["run_dir"])]
    assert types.count("run_start") == 2 and types.count("resume") == 1 and types[-1] == "run_end"
    assert types.index("resume") == types.index("run_start", 1) - 1


@pytest.mark.parametrize("method", ["gdw", "mwnet"])
def test_sigkill_mid_epoch_is_interrupted_and_resumes_exactly(lifecycle, method):
    job = lifecycle[f"kill-{method}"]
    assert job["engine_rc"] == -signal.SIGKILL
    # Killed inside the second epoch: one epoch event, the checkpoint after it, steps of epoch 2.
    before = job["events"]
    assert [e["epoch"] for e in before if e["type"] == "epoch"] == [0]
    assert [e["epoch"] for e in before if e["type"] == "checkpoint"] == [1]
    assert any(e["type"] == "step" and e["epoch"] == 1 for e in before)
    assert not any(e["type"] in ("run_end", "failure", "stopped") for e in before)
    # Honest status: the summary still says running, but the engine is gone.
    assert job["summary"]["status"] == "running"
    assert job["status"] == "interrupted"
    show = job["show"]
    assert show.exit_code == 0
    assert "interrupted" in show.stdout and f"gdw resume {job['run_dir'].name}" in show.stdout
    check_exact_resume(lifecycle, f"kill-{method}", method)
    resume = next(e for e in events(job["run_dir"]) if e["type"] == "resume")
    assert (resume["from_epoch"], resume["from_iter"]) == (1, 0)  # from the end-of-epoch-1 checkpoint


def test_clean_stop_mid_epoch_checkpoints_and_resumes_exactly(lifecycle):
    job = lifecycle["stop-gdw"]
    assert job["engine_rc"] == 0
    assert job["status"] == "stopped" and job["summary"]["status"] == "stopped"
    # The iteration was finished, then a checkpoint inside the epoch, then the stopped event.
    ev = job["events"]
    assert [e["type"] for e in ev[-2:]] == ["checkpoint", "stopped"]
    stopped = ev[-1]
    assert stopped["reason"] == "SIGTERM" and stopped["epoch"] == 1 and 0 < stopped["iter"] < 14
    ckpt = job["checkpoint"]
    assert ckpt["epoch"] == 1 and ckpt["iter"] == stopped["iter"] > 0
    assert job["summary"]["message"] == f"stopped (SIGTERM) at epoch 2, after iteration {stopped['iter']}"
    assert "stopped" in job["show"].stdout
    check_exact_resume(lifecycle, "stop-gdw", "gdw")
    # The resumed segment starts at the stopped iteration: no step of epoch 2 before it is redone.
    after = events(job["run_dir"])
    resumed_at = next(i for i, e in enumerate(after) if e["type"] == "resume")
    assert (after[resumed_at]["from_epoch"], after[resumed_at]["from_iter"]) == (1, stopped["iter"])
    first_step = next(e for e in after[resumed_at:] if e["type"] == "step")
    assert (first_step["epoch"], first_step["iter"]) == (1, stopped["iter"])


# An augmented run: digits has no augmentation, so the runs above never draw from the augmentation
# generator. Synthetic 32×32 images are cropped and flipped (training and clean batches alike); a
# small MLP and 4 iterations per epoch (300 images less 100 meta, batch 50) keep it to seconds.
AUGMENTED = ["synthetic-smoke", "--epochs", "2", "--set", "model.arch=digits_mlp", "--set", "data.synthetic_train=300",
             "--set", "data.synthetic_test=50", "--set", "train.batch_size=50", *SMALL]


def test_sigkilled_augmented_run_resumes_exactly(tmp_path):
    ref = gdw_popen("run", "--headless", *AUGMENTED, "--runs-dir", str(tmp_path / "ref"))
    cfg = load_preset("synthetic-smoke", {"train.epochs": 2, "model.arch": "digits_mlp", "data.synthetic_train": 300,
                                          "data.synthetic_test": 50, "train.batch_size": 50, "train.device": "cpu",
                                          "train.step_events_per_s": 10000})
    assert cfg["data"]["augment"]
    run_dir = create_run(tmp_path / "killed", cfg)
    # Held inside the second epoch, after the end-of-epoch-1 checkpoint: the augmentation generator
    # has moved on by a whole epoch of draws, which the resumed run must pick up.
    proc = launch_detached(run_dir, env={"OMP_NUM_THREADS": "1",
                                         "GDW_TEST_HOLD": f"step@1.2:{run_dir / 'release'}"})
    try:
        wait_for(lambda: (run_dir / "release.held").exists(), what="the hold in epoch 2", proc=proc)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert [e["epoch"] for e in events(run_dir) if e["type"] == "checkpoint"] == [1]

    resumed = gdw("resume", run_dir.name, "--headless", "--runs-dir", str(run_dir.parent))
    assert resumed.returncode == 0, resumed.stderr
    so, se = ref.communicate(timeout=240)
    assert ref.returncode == 0, se
    ref_dir = the_run(tmp_path / "ref")
    resume = next(e for e in events(run_dir) if e["type"] == "resume")
    assert (resume["from_epoch"], resume["from_iter"]) == (1, 0)
    assert read_summary(run_dir)["status"] == "finished"
    assert read_summary(run_dir)["final_acc"] == read_summary(ref_dir)["final_acc"]
    assert final_acc_line(resumed.stdout) == final_acc_line(so)
    ref_epochs, resumed_epochs = epoch_records(ref_dir), epoch_records(run_dir)
    assert [e["epoch"] for e in resumed_epochs] == [0, 1]
    assert resumed_epochs == ref_epochs


# --- failures the engine reports itself (in-process, through the CLI) ------------------------------

runner = CliRunner()


def cli(*args: str):
    return runner.invoke(app, list(args))


def failure_event(run_dir: Path) -> dict:
    fails = [e for e in events(run_dir) if e["type"] == "failure"]
    assert len(fails) == 1, fails
    return fails[0]


def fail_on_call(n: int, exc: BaseException):
    """A replacement for Method.step that raises `exc` on its n-th call (1-based)."""
    from engine.methods.base import Method

    real = Method.step
    calls = {"n": 0}

    def step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            raise exc
        return real(self, *args, **kwargs)

    return step


def test_exception_in_training_is_a_failure_with_traceback(tmp_path, monkeypatch):
    from engine.methods.base import Method

    monkeypatch.setattr(Method, "step", fail_on_call(20, RuntimeError("injected fault in the weighting step")))
    result = cli("run", "--headless", "digits-unif60", "--epochs", "2", *SMALL, "--runs-dir", str(tmp_path))
    assert result.exit_code == 1
    run_dir = the_run(tmp_path)
    assert result.stderr.strip() == (f"run {run_dir.name} failed: RuntimeError: injected fault in the weighting step "
                                     f"(details: gdw show {run_dir.name})")
    assert "final_acc=" not in result.stdout
    f = failure_event(run_dir)
    # The 20th iteration is iteration 6 (0-based 5) of the second epoch.
    assert (f["kind"], f["epoch"], f["iter"]) == ("error", 1, 5)
    assert f["message"] == "RuntimeError: injected fault in the weighting step"
    assert f["traceback"].startswith("Traceback (most recent call last):")
    assert "injected fault" in f["traceback"] and "in train" in f["traceback"]
    s = read_summary(run_dir)
    assert s["status"] == "failed" and s["message"] == f["message"]
    assert run_status(run_dir) == "failed"

    shown = cli("show", run_dir.name, "--runs-dir", str(tmp_path))
    assert shown.exit_code == 0
    assert "failed" in shown.stdout and "RuntimeError: injected fault in the weighting step" in shown.stdout
    assert "Traceback (most recent call last):" in shown.stdout

    # A failed run resumes from its last good checkpoint (the end of epoch 1) and finishes.
    monkeypatch.undo()
    resumed = cli("resume", run_dir.name, "--headless", "--runs-dir", str(tmp_path))
    assert resumed.exit_code == 0, resumed.output
    assert read_summary(run_dir)["status"] == "finished"
    assert [e["epoch"] for e in events(run_dir) if e["type"] == "epoch"] == [0, 1]


def test_exception_while_setting_up_is_a_failure_too(tmp_path, monkeypatch):
    """An exception before training starts (building the data or the model) is reported the same way."""
    import engine.data

    def broken(cfg, device):
        raise RuntimeError("injected fault while loading the data")

    monkeypatch.setattr(engine.data, "load_data", broken)
    result = cli("run", "--headless", "digits-unif60", "--epochs", "1", *SMALL, "--runs-dir", str(tmp_path))
    assert result.exit_code == 1
    run_dir = the_run(tmp_path)
    f = failure_event(run_dir)
    assert f["message"] == "RuntimeError: injected fault while loading the data"
    assert (f["epoch"], f["iter"]) == (None, None) and f["traceback"].startswith("Traceback (most recent call last):")
    assert "injected fault while loading the data" in f["traceback"].splitlines()[-1]
    s = read_summary(run_dir)
    assert s["status"] == "failed" and s["message"] == f["message"] and run_status(run_dir) == "failed"
    assert f"failed: {f['message']}" in result.stderr
    shown = cli("show", run_dir.name, "--runs-dir", str(tmp_path))
    assert f["message"] in shown.stdout and "Traceback (most recent call last):" in shown.stdout


def test_second_signal_during_the_stop_fails_at_once(tmp_path, monkeypatch):
    """The first SIGTERM asks for a clean stop; a second one before it is done ends the run at
    once: a failure saying so, exit 1, and the last epoch checkpoint untouched."""
    from engine.methods.base import Method

    real = Method.step
    calls = {"n": 0}

    def step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 18:  # iteration 4 of the second epoch
            os.kill(os.getpid(), signal.SIGTERM)  # handled here: a clean stop is requested
            os.kill(os.getpid(), signal.SIGTERM)  # handled here too: stop now
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Method, "step", step)
    result = cli("run", "--headless", "digits-unif60", "--epochs", "3", *SMALL, "--runs-dir", str(tmp_path))
    assert result.exit_code == 1
    run_dir = the_run(tmp_path)
    f = failure_event(run_dir)
    assert f["message"] == "interrupted by a second signal before a clean stop" and (f["epoch"], f["iter"]) == (1, 3)
    assert not any(e["type"] == "stopped" for e in events(run_dir))
    assert read_summary(run_dir)["status"] == "failed" and run_status(run_dir) == "failed"
    assert torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 1
    # The handlers are put back: this process is not left ignoring SIGTERM.
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_divergence_names_epoch_and_iteration(tmp_path):
    # gdw-nozm without the zero-mean constraint, pushed hard: ω explodes and the loss turns NaN.
    result = cli("run", "--headless", "digits-unif60", "--method", "gdw-nozm", "--epochs", "2", *SMALL,
                 "--set", "train.lr=100", "--set", "train.outer_lr=1e9", "--set", "train.clip=1e6",
                 "--runs-dir", str(tmp_path))
    assert result.exit_code == 1
    run_dir = the_run(tmp_path)
    f = failure_event(run_dir)
    assert f["kind"] == "diverged" and f["traceback"] is None
    assert f["message"] == f"diverged at epoch {f['epoch'] + 1}, iteration {f['iter'] + 1}: non-finite loss or weight"
    assert read_summary(run_dir)["status"] == "failed"
    assert f"failed: {f['message']}" in result.stderr
    # Every event written before the failure is valid JSON with finite numbers (no NaN leaked out).
    for line in (run_dir / "events.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-finite {c} in events.jsonl"))


def test_divergence_is_caught_before_a_weights_event(tmp_path):
    # Weights snapshots every iteration and (almost) no step events: the NaN must be reported as
    # divergence, not trip the JSON encoder of the weights event.
    result = cli("run", "--headless", "digits-unif60", "--method", "gdw-nozm", "--epochs", "2", "--device", "cpu",
                 "--set", "train.lr=100", "--set", "train.outer_lr=1e9", "--set", "train.clip=1e6",
                 "--set", "train.step_events_per_s=0.01", "--set", "train.weights_events_per_epoch=100",
                 "--runs-dir", str(tmp_path))
    assert result.exit_code == 1
    f = failure_event(the_run(tmp_path))
    assert f["kind"] == "diverged", f["message"]


def test_out_of_memory_names_batch_size_and_hint(tmp_path, monkeypatch):
    from engine.methods.base import Method

    oom = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    monkeypatch.setattr(Method, "step", fail_on_call(3, oom))
    result = cli("run", "--headless", "digits-unif60", "--epochs", "1", *SMALL, "--set", "train.batch_size=50",
                 "--runs-dir", str(tmp_path))
    assert result.exit_code == 1
    run_dir = the_run(tmp_path)
    f = failure_event(run_dir)
    assert f["kind"] == "oom" and (f["epoch"], f["iter"]) == (0, 2)
    assert f["message"] == "CUDA out of memory with train.batch_size=50 on cpu; lower train.batch_size"
    assert read_summary(run_dir)["message"] == f["message"]
    assert f["message"] in result.stderr


def test_full_disk_while_checkpointing_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    """ENOSPC in the middle of the second checkpoint: a clear failure, the first checkpoint intact."""
    real_save = torch.save
    calls = {"n": 0}

    def save(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            f.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    result = cli("run", "--headless", "digits-unif60", "--epochs", "3", *SMALL, "--runs-dir", str(tmp_path))
    assert result.exit_code == 1
    run_dir = the_run(tmp_path)
    f = failure_event(run_dir)
    assert f["message"] == (f"cannot write the run's files (No space left on device); free space or make {run_dir} "
                            f"writable, then `gdw resume {run_dir.name}` (the last good checkpoint is kept)")
    assert read_summary(run_dir)["status"] == "failed"
    ckpt_dir = run_dir / "checkpoints"
    assert sorted(p.name for p in ckpt_dir.iterdir()) == ["last.pt"]  # the partial temporary file is gone
    assert torch.load(ckpt_dir / "last.pt", weights_only=True)["epoch"] == 1

    monkeypatch.undo()  # space freed: the run resumes from the intact checkpoint
    resumed = cli("resume", run_dir.name, "--headless", "--runs-dir", str(tmp_path))
    assert resumed.exit_code == 0, resumed.output
    assert read_summary(run_dir)["status"] == "finished"
    # Epoch 2 ended but its checkpoint did not: it is redone after the resume event.
    ev = events(run_dir)
    resumed_at = next(i for i, e in enumerate(ev) if e["type"] == "resume")
    assert ev[resumed_at]["from_epoch"] == 1
    assert [e["epoch"] for e in ev[:resumed_at] if e["type"] == "epoch"] == [0, 1]
    assert [e["epoch"] for e in ev[resumed_at:] if e["type"] == "epoch"] == [1, 2]


def test_full_disk_everywhere_still_gives_one_clear_line(tmp_path, monkeypatch):
    """When not even the failure can be recorded: the CLI says why, and the run is not left 'running'."""
    from engine import trainer
    from engine.events import EventWriter

    real_emit = EventWriter.emit

    def emit(self, type_, **fields):
        if type_ == "epoch" or type_ == "failure":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_emit(self, type_, **fields)

    monkeypatch.setattr(EventWriter, "emit", emit)
    real_write = trainer.write_summary

    def write_summary(run_dir, summary):
        if summary["status"] == "failed":
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(run_dir, summary)

    monkeypatch.setattr(trainer, "write_summary", write_summary)
    result = cli("run", "--headless", "digits-unif60", "--epochs", "1", *SMALL, "--runs-dir", str(tmp_path))
    monkeypatch.undo()
    assert result.exit_code == 1
    run_dir = the_run(tmp_path)
    assert result.stderr.strip().splitlines() == [
        f"run {run_dir.name} failed: OSError: [Errno 28] No space left on device (details: gdw show {run_dir.name})"]
    # The summary could not be updated (it still says running), but the status is honest.
    assert read_summary(run_dir)["status"] == "running"
    assert run_status(run_dir) == "interrupted"


def test_a_stop_during_start_up_is_a_clean_stop(tmp_path):
    """SIGTERM before the engine has imported torch or loaded data: remembered, then a clean stop."""
    import time as _time

    from engine.config import load_preset
    from engine.launch import launch_detached
    from engine.runs import create_run, run_status

    run_dir = create_run(tmp_path / "runs", load_preset("digits-unif60"))
    release = tmp_path / "release"
    # The engine waits at its start-up point (engine/hold.py) until `release` exists.
    proc = launch_detached(run_dir, env={"GDW_TEST_HOLD": f"startup:{release}"})
    deadline = _time.monotonic() + 60
    while not (tmp_path / "release.held").exists():
        assert proc.poll() is None and _time.monotonic() < deadline, "the engine never reached its start-up point"
        _time.sleep(0.05)
    assert not (run_dir / "events.jsonl").exists()  # nothing of the run has started yet
    proc.terminate()
    release.touch()
    assert proc.wait(timeout=120) == 0
    assert run_status(run_dir) == "stopped"
    assert (run_dir / "checkpoints" / "last.pt").exists()
