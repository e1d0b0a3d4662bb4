"""Sweeps on GPU slots (`pytest -m cuda`; scripts/gpu_check.sh runs these on a GPU machine).

Skipped where no CUDA device is present: CI machines have none."""

from __future__ import annotations

import json

import pytest

from engine.launch import cuda_device_count
from engine.runs import read_summary
from engine.sweep.local import plan_slots
from engine.sweep.store import find_sweep
from lifecycle_helpers import gdw, last_line

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(cuda_device_count() == 0, reason="needs a CUDA device")]


def test_gpu_slots_are_per_gpu_copies_of_each_gpu():
    slots = plan_slots({"gpus": [0], "per_gpu": 3}, "cuda")
    assert [s.gpu for s in slots] == ["0", "0", "0"]
    assert slots[0].env()["CUDA_VISIBLE_DEVICES"] == "0"


def test_sweep_packs_two_runs_on_one_gpu(tmp_path):
    # The runs are forked from the sweep's fork server: had it initialised CUDA before forking,
    # they would fail here ("Cannot re-initialize CUDA in forked subprocess").
    r = gdw("sweep", "digits-clean", "--methods", "erm,gdw", "--seeds", "1", "--device", "cuda", "--gpus", "0",
            "--per-gpu", "2", "--set", "train.epochs=2", "--runs-dir", str(tmp_path), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    sweep = find_sweep(tmp_path, last_line(r.stdout).removeprefix("sweep="))
    for d in sweep.run_dirs():
        s = read_summary(d)
        assert s["status"] == "finished" and str(s["device"]).startswith("cuda"), s
    records = [json.loads(x) for x in (sweep.dir / "schedule.jsonl").read_text().splitlines()]
    assert [x["event"] for x in records][:2] == ["start", "start"]  # both on the GPU at once
    assert sorted(x["slot"] for x in records if x["event"] == "start") == [0, 1]
