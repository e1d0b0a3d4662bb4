"""Exact resume for the methods of other shapes: GLC killed in its phase 2, Co-teaching (two
networks, two optimisers, the forget-rate schedule) killed mid-run. Each is SIGKILLed inside an
epoch (engine/hold.py), resumed with `gdw resume`, and must give the uninterrupted run's final
accuracy and every epoch's numbers — the method's own fields (phase, Ĉ, label precision, forget
rate, both networks' accuracies) included — and the same summary.json `glc` block.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from engine.config import load_preset
from engine.launch import launch_detached
from engine.runs import create_run, read_summary
from lifecycle_helpers import SMALL, events, gdw_popen

# method -> (train.epochs, extra fields, epoch index of the kill). GLC: 4 epochs = 2 + 2, killed in
# phase 2's second epoch (resumed from a phase-2 checkpoint). Co-teaching: 6 → 3 loop epochs, the
# forget rate rising over 2 of them, killed in the second.
CASES = {
    "glc": (4, {}, 3),
    "coteach": (6, {"train.forget_epochs": 2}, 1),
}
METHOD_FIELDS = ("net_accs", "phase", "c_hat", "label_precision", "forget_rate")


def epoch_numbers(run_dir):
    keep = ("epoch", "test_acc", "test_loss", "per_class_acc", "train_loss", "train_acc", "lr", "best_acc") + METHOD_FIELDS
    return [{k: e.get(k) for k in keep} for e in events(run_dir) if e["type"] == "epoch"]


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume-methods")
    out = {}
    refs, jobs = {}, {}
    for method, (epochs, extra, kill_epoch) in CASES.items():
        sets = [a for k, v in extra.items() for a in ("--set", f"{k}={v}")]
        refs[method] = gdw_popen("run", "--headless", "digits-unif60", "--epochs", str(epochs), "--method", method,
                                 *SMALL, *sets, "--runs-dir", str(root / f"ref-{method}"))
        cfg = load_preset("digits-unif60", {"train.epochs": epochs, "train.method": method, "train.device": "cpu",
                                            "train.step_events_per_s": 10000, **extra})
        run_dir = create_run(root / f"kill-{method}", cfg)
        hold = f"step@{kill_epoch}.3:{run_dir / 'release'}"
        jobs[method] = (run_dir, launch_detached(run_dir, env={"OMP_NUM_THREADS": "1", "GDW_TEST_HOLD": hold}))
    pending = dict(jobs)
    deadline = time.monotonic() + 300
    while pending:
        assert time.monotonic() < deadline, f"engines never reached the kill point: {list(pending)}"
        for method, (run_dir, proc) in list(pending.items()):
            assert proc.poll() is None, (run_dir / "engine.log").read_text()
            if (run_dir / "release.held").exists():
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                del pending[method]
        time.sleep(0.02)
    for method, (run_dir, _) in jobs.items():
        killed_at = [e for e in events(run_dir) if e["type"] == "epoch"]
        resume = gdw_popen("resume", run_dir.name, "--headless", "--runs-dir", str(run_dir.parent))
        so, se = resume.communicate(timeout=300)
        out[method] = {"run_dir": run_dir, "rc": resume.returncode, "stderr": se, "epochs_before_kill": len(killed_at)}
    for method, proc in refs.items():
        so, se = proc.communicate(timeout=300)
        assert proc.returncode == 0, se
        (ref_dir,) = [d for d in (root / f"ref-{method}").iterdir() if d.is_dir()]
        out[method]["ref_dir"] = ref_dir
    return out


@pytest.mark.parametrize("method", list(CASES))
def test_sigkill_and_resume_is_exact(resumed, method):
    job = resumed[method]
    assert job["rc"] == 0, job["stderr"]
    assert job["epochs_before_kill"] == CASES[method][2]  # killed inside that epoch, after its predecessors
    ref, got = read_summary(job["ref_dir"]), read_summary(job["run_dir"])
    assert got["status"] == "finished" and got["final_acc"] == ref["final_acc"]
    ref_epochs, got_epochs = epoch_numbers(job["ref_dir"]), epoch_numbers(job["run_dir"])
    assert got_epochs == ref_epochs
    if method == "glc":
        assert [e["phase"] for e in got_epochs] == [1, 1, 2, 2]
        assert [e["c_hat"] is not None for e in got_epochs] == [False, True, False, False]
        assert got["glc"] == ref["glc"] and got["glc"]["phase1_epochs"] == 2
        assert 0 < got["glc"]["mean_abs_error"] < 0.5
    else:
        assert len(got_epochs) == 3
        assert all(len(e["net_accs"]) == 2 and len(e["label_precision"]) == 2 for e in got_epochs)
        assert got_epochs[0]["net_accs"][0] != got_epochs[0]["net_accs"][1] or got_epochs[1]["net_accs"][0] != got_epochs[1]["net_accs"][1]
        # The schedule: 0, then τ = 0.54 (60% uniform noise over 10 classes changes 54% of labels).
        assert [e["forget_rate"] for e in got_epochs] == [0.0, 0.54, 0.54]
