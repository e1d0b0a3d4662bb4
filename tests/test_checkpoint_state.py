"""The checkpoint is the run's state_dict, as one object: it round-trips key for key.

A run trained part-way is saved; a fresh run of the same config loads it and must give back every
key with the same value (tensors bit for bit), for methods of every shape: one model with V (gdw),
two phases (glc, after its restart) and two networks (coteach). A restore line dropped from
Run.load_state_dict (the augmentation generator's state, say) leaves a key at its fresh value and
fails here. The file itself is read with weights_only=True: tensors and plain values only.
"""

from __future__ import annotations

import time

import pytest
import torch

from engine import checkpoint
from engine.config import load_preset
from engine.rundir import checkpoint_path
from engine.runs import create_run
from engine.trainer import Run

CPU = torch.device("cpu")


def flat(state, prefix: str = "") -> dict[str, object]:
    """Every leaf of a nested state, by its path."""
    if isinstance(state, dict):
        out: dict[str, object] = {f"{prefix}{{keys}}": sorted(map(str, state))}
        for k, v in state.items():
            out |= flat(v, f"{prefix}{k}/")
        return out
    if isinstance(state, (list, tuple)):
        out = {f"{prefix}{{len}}": len(state)}
        for i, v in enumerate(state):
            out |= flat(v, f"{prefix}{i}/")
        return out
    return {prefix: state}


def same(a, b) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    return a == b


def make_run(run_dir, cfg) -> Run:
    run = Run(run_dir, cfg, CPU, None)
    run.segment_start = time.time()
    return run


@pytest.mark.parametrize("method", ["gdw", "glc", "coteach"])
def test_run_state_round_trips_every_key(tmp_path, method):
    # glc: 2 epochs = phase 1 + phase 2 (Ĉ estimated, model restarted); coteach: 4 → 2 loop epochs.
    epochs = {"gdw": 1, "glc": 2, "coteach": 4}[method]
    # Synthetic 32×32 images, so the augmentation generator is drawn from (digits has none); a small MLP.
    cfg = load_preset("synthetic-smoke", {"train.method": method, "train.epochs": epochs, "train.device": "cpu",
                                          "model.arch": "digits_mlp", "data.synthetic_train": 300,
                                          "data.synthetic_test": 50, "train.batch_size": 50})
    run_dir = create_run(tmp_path, cfg)
    trained = make_run(run_dir, cfg)
    try:
        trained.train()
        # And part of one more epoch's worth of draws, so the generators are mid-stream.
        trained.ctx.clean_batch()
        trained.data.train.batch(torch.arange(5), trained.augment, trained.aug_gen)
        torch.rand(3)
        checkpoint.save(trained)
        saved = flat(trained.state_dict())
    finally:
        trained.close()
    if method == "glc":
        assert trained.method.c_hat is not None and trained.state_dict()["method"]["initial_state"] is None

    fresh = make_run(run_dir, cfg)
    try:
        before = flat(fresh.state_dict())
        checkpoint.restore(fresh)  # from the file, weights_only
        loaded = flat(fresh.state_dict())
    finally:
        fresh.close()
    assert sorted(loaded) == sorted(saved)
    differs = [k for k in saved if k != "wall_s/" and not same(saved[k], loaded[k])]
    assert differs == []
    assert loaded["wall_s/"] == pytest.approx(saved["wall_s/"], abs=5)  # the clock moved on a little
    # The comparison has teeth: a fresh run differs from the trained one in many keys, the
    # augmentation, clean-set and global generators among them.
    changed = {k for k in saved if k in before and not same(saved[k], before[k])}
    assert {"rng/aug_gen/", "rng/order_gen/", "rng/torch/", "clean_set/meta_gen/"} <= changed


def test_checkpoint_is_read_with_weights_only(tmp_path):
    cfg = load_preset("digits-unif60", {"train.epochs": 1, "train.device": "cpu"})
    run = make_run(create_run(tmp_path, cfg), cfg)
    try:
        checkpoint.save(run)
    finally:
        run.close()
    state = torch.load(checkpoint_path(run.run_dir), weights_only=True)
    assert state["format"] == checkpoint.FORMAT


def test_a_checkpoint_of_the_flat_layout_still_resumes(tmp_path):
    """Runs interrupted before the method owned its model were checkpointed flat (format 1)."""
    cfg = load_preset("digits-unif60", {"train.method": "mwnet", "train.epochs": 1, "train.device": "cpu"})
    run_dir = create_run(tmp_path, cfg)
    trained = make_run(run_dir, cfg)
    try:
        trained.train()
        new = trained.state_dict()
    finally:
        trained.close()
    m, rng = new["method"], new["rng"]
    flat_layout = {
        "model": m["model"], "optimizer": m["optimizer"], "method": {k: m[k] for k in ("vnet", "vnet_optimizer")},
        **{k: new[k] for k in ("epoch", "iter", "epoch_perm", "history", "best_acc", "best_epoch", "wall_s")},
        **{k: new["clean_set"][k] for k in ("meta_gen", "meta_perm", "meta_pos")},
        "order_gen": rng["order_gen"], "aug_gen": rng["aug_gen"], "torch_rng": rng["torch"], "numpy_rng": rng["numpy"],
        "python_rng": rng["python"], "steps": {k: v for k, v in new["steps"].items() if k != "kept_sums"},
        "weights": new["weights"],
    }
    torch.save(flat_layout, checkpoint_path(run_dir))
    fresh = make_run(run_dir, cfg)
    try:
        checkpoint.restore(fresh)
        loaded = flat(fresh.state_dict())
    finally:
        fresh.close()
    saved = flat(new)
    assert [k for k in saved if k != "wall_s/" and not same(saved[k], loaded[k])] == []
