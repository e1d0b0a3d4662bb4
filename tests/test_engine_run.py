"""A real headless run of the embedded preset, and what it writes: events, summary, checkpoint."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from engine.events import SCHEMA_VERSION, read_events, validate_event

EPOCHS = 3
FINAL = 2  # final_acc is the mean of the last FINAL epochs: fewer than EPOCHS, so "all" or "the last" would differ


@pytest.fixture(scope="module")
def gdw_run(tmp_path_factory) -> tuple[Path, str]:
    runs = tmp_path_factory.mktemp("runs")
    proc = subprocess.run(
        [sys.executable, "-m", "gdw_cli", "run", "--headless", "digits-unif60", "--epochs", str(EPOCHS),
         "--seed", "10", "--runs-dir", str(runs), "--set", "train.weights_events_per_epoch=2",
         "--set", f"train.final_epochs={FINAL}"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = [d for d in runs.iterdir() if d.is_dir()]
    return run_dir, proc.stdout


def by_type(run_dir: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for e in read_events(run_dir / "events.jsonl"):
        out.setdefault(e["type"], []).append(e)
    return out


def test_last_line_is_final_accuracy_and_matches_summary(gdw_run):
    run_dir, stdout = gdw_run
    last = stdout.strip().splitlines()[-1]
    assert last.startswith("final_acc=")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["epoch"] == EPOCHS
    assert last == f"final_acc={summary['final_acc']:.2f}"
    ev = by_type(run_dir)
    accs = [e["test_acc"] for e in ev["epoch"]]
    assert len(accs) == EPOCHS and len({round(sum(accs[-FINAL:]) / FINAL, 4), round(sum(accs) / EPOCHS, 4), round(accs[-1], 4)}) == 3
    assert summary["final_acc"] == pytest.approx(sum(accs[-FINAL:]) / FINAL, abs=1e-4)  # mean of the last FINAL
    assert summary["best_acc"] == pytest.approx(max(accs), abs=1e-4)
    assert ev["run_end"][0]["final_acc"] == summary["final_acc"]
    # summary.json is for people: its epochs are 1-based; the events keep their documented 0-based ones.
    assert summary["best_epoch"] == accs.index(max(accs)) + 1 == ev["run_end"][0]["best_epoch"] + 1


def test_every_event_is_versioned_and_documented(gdw_run):
    run_dir, _ = gdw_run
    events = read_events(run_dir / "events.jsonl")
    for e in events:
        assert e["v"] == SCHEMA_VERSION and isinstance(e["t"], float)
        validate_event(e)  # every field declared, every declared field written
    kinds = [e["type"] for e in events]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end"
    assert kinds.count("epoch") == EPOCHS and kinds.count("checkpoint") == EPOCHS


def test_run_start_reports_protocol_counts_and_measured_noise(gdw_run):
    run_dir, _ = gdw_run
    start = by_type(run_dir)["run_start"][0]
    assert start["num_classes"] == 10 and start["classes"] == [str(i) for i in range(10)]
    counts = start["counts"]
    assert counts["meta"] == 100 and counts["meta_per_class"] == [10] * 10
    assert counts["train"] == sum(counts["train_per_class"])
    assert counts["train"] + counts["meta"] + counts["test"] == 1797  # sklearn's digits, all used once
    noise = start["noise"]
    # Uniform r = 0.6 over 10 classes flips about r·9/10 = 54% of the labels.
    assert noise["kind"] == "unif" and abs(noise["measured_rate"] - 0.54) < 0.05
    matrix = noise["matrix"]
    assert len(matrix) == 10 and all(abs(sum(row) - 1) < 1e-9 for row in matrix)
    assert start["iters_per_epoch"] == math.ceil(counts["train"] / 100)
    assert start["versions"]["schema"] == SCHEMA_VERSION and start["device"] == "cpu"


def test_weights_events_carry_heatmap_ratio_and_clean_vs_corrupted(gdw_run):
    run_dir, _ = gdw_run
    weights = by_type(run_dir)["weights"]
    ends = [w for w in weights if w["epoch_end"]]
    assert len(ends) == EPOCHS and len(weights) > EPOCHS
    for w in weights:
        assert len(w["omega"]) == 10 and all(len(row) == 10 for row in w["omega"])
        tw = w["target_weight"]
        assert len(tw["bins"]) == len(tw["clean_hist"]) + 1 == len(tw["corrupted_hist"]) + 1
        assert sum(tw["clean_hist"]) == tw["clean_count"] and sum(tw["corrupted_hist"]) == tw["corrupted_count"]
        assert tw["corrupted_count"] > tw["clean_count"] > 0  # 54% of the labels are corrupted
        assert len(w["vnet"]["loss"]) == len(w["vnet"]["weight"]) == 41
        assert all(0 < v < 1 for v in w["vnet"]["weight"])
    for w in ends:
        ratio = w["increase_ratio"]
        assert len(ratio) == 10 and all(0 <= v <= 1 for row in ratio for v in row)
    assert all(w["increase_ratio"] is None for w in weights if not w["epoch_end"])
    # GDW learns to trust clean samples more: their target weight ends above the corrupted ones'.
    last = ends[-1]["target_weight"]
    assert last["clean_mean"] > last["corrupted_mean"]


def test_step_and_epoch_events_have_sane_numbers(gdw_run):
    run_dir, _ = gdw_run
    ev = by_type(run_dir)
    for s in ev["step"]:
        assert s["loss"] > 0 and s["meta_loss"] > 0 and 0 <= s["train_acc"] <= 100 and s["it_s"] > 0
    for e in ev["epoch"]:
        assert len(e["per_class_acc"]) == 10 and 0 <= e["test_acc"] <= 100
        assert e["lr"] == pytest.approx(0.1 * (1 + math.cos(math.pi * e["epoch"] / EPOCHS)) / 2)
    assert ev["epoch"][-1]["test_acc"] > 50  # learns despite 54% wrong labels


def test_checkpoint_is_complete_and_loadable(gdw_run):
    import torch

    run_dir, _ = gdw_run
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)  # tensors and plain values only
    assert state["epoch"] == EPOCHS and state["iter"] == 0
    assert {"method", "clean_set", "rng", "steps", "weights", "history", "epoch_perm"} <= set(state)
    assert {"order_gen", "aug_gen", "torch", "numpy", "python"} == set(state["rng"])
    assert {"model", "optimizer", "vnet", "vnet_optimizer"} == set(state["method"])
    assert len(state["history"]) == EPOCHS
    assert not list((run_dir / "checkpoints").glob(".*tmp*"))  # no half-written leftovers


def test_erm_writes_no_meta_numbers(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "gdw_cli", "run", "--headless", "digits-unif60", "--epochs", "1",
         "--method", "erm", "--runs-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = list(tmp_path.iterdir())
    for e in read_events(run_dir / "events.jsonl"):
        validate_event(e)  # the nulls of erm are written, not left out
    ev = by_type(run_dir)
    assert all(s["meta_loss"] is None and s["meta_acc"] is None for s in ev["step"])
    assert all(w["vnet"] is None and w["increase_ratio"] is None for w in ev["weights"])
    # ERM weighs every sample 1: every heatmap cell of a seen label is 1.
    assert all(v == 1 for w in ev["weights"] for row in w["omega"] for v in row if v is not None)
