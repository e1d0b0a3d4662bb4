"""A run's checkpoint: everything needed to continue exactly where it was, written atomically.

The state is the model, the optimizer, the method (V and its Adam state), where the run is (epoch,
iteration, this epoch's index order, the meta-set pointer), its history and running statistics,
and every random number generator it draws from: torch's, numpy's, Python's and the run's own
data-order, meta and augmentation generators. A CPU run resumed from it continues bit for bit
as if it had never stopped (tests/test_reliability.py).

A runs directory can be shared, so a checkpoint is untrusted input: it holds only tensors and plain
values (numpy's generator state is stored as a tensor, not a numpy array) and is read with
`torch.load(weights_only=True)`, which refuses any other object instead of unpickling it — a
file that would import or call something (os.system...) is refused with one line and runs nothing.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .config import ConfigError
from .console import one_line
from .rundir import checkpoint_path
from .runs import fsync_dir

if TYPE_CHECKING:
    from .trainer import Run


def capture(run: Run) -> dict[str, Any]:
    return {
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "method": run.method.state_dict(),
        "epoch": run.epoch,
        "iter": run.iter,
        "epoch_perm": run.epoch_perm,
        "meta_perm": run.meta_perm,
        "meta_pos": run.meta_pos,
        "history": run.history,
        "best_acc": run.best_acc,
        "best_epoch": run.best_epoch,
        "wall_s": run.wall(),
        "order_gen": run.order_gen.get_state(),
        "meta_gen": run.meta_gen.get_state(),
        "aug_gen": run.aug_gen.get_state(),
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": numpy_state_plain(np.random.get_state()),
        "python_rng": random.getstate(),
        "steps": run.steps.state_dict(),
        "weights": run.weights.state_dict(),
    }


def save(run: Run) -> None:
    """Write the checkpoint; the last good one is replaced only by a complete one."""
    path = checkpoint_path(run.run_dir)
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    state = capture(run)
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)  # and the rename itself survives a power cut
    except BaseException:
        # A full disk or a second signal mid-write: drop the partial file (it holds space a
        # resume needs); the previous checkpoint is untouched.
        tmp.unlink(missing_ok=True)
        raise


def numpy_state_plain(state: tuple) -> dict[str, Any]:
    """numpy's legacy generator state as plain values and a tensor (weights_only can load it)."""
    name, keys, pos, has_gauss, cached_gaussian = state
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)}


def numpy_state_from_plain(state: dict[str, Any] | tuple) -> tuple:
    if isinstance(state, tuple):  # written before the plain form: the array came through LEGACY_NUMPY
        return state
    keys = state["keys"].numpy().astype(np.uint32)
    return state["name"], keys, state["pos"], state["has_gauss"], state["cached_gaussian"]


# Checkpoints written before numpy's state was stored as a tensor hold one uint32 numpy array;
# these are the only extra types weights_only may rebuild for it (they call no code of the file's).
LEGACY_NUMPY = [np._core.multiarray._reconstruct, np.ndarray, np.dtype, np.dtypes.UInt32DType]


def load_state(path: Path, device: Any) -> dict[str, Any]:
    """The checkpoint's dict, loaded without running anything the file names; ConfigError otherwise."""
    try:
        with torch.serialization.safe_globals(LEGACY_NUMPY):
            state = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:
        text = str(e)
        named = re.search(r"GLOBAL ([\w.]+)", text)
        if named:  # the file asks to import something: what a code-running pickle does
            raise ConfigError(f"checkpoint {path} holds objects other than tensors and plain values ({named.group(1)}): "
                              "refused without loading, since unpickling them could run code") from None
        reason = re.search(r"WeightsUnpickler error:\s*(.+)", text)  # torch's own line, without its advice
        why = f"not a plain checkpoint ({reason.group(1).strip()})" if reason else one_line(e)
        raise ConfigError(f"checkpoint {path} is corrupt or does not match this run: {why}") from None
    if not isinstance(state, dict):
        raise ConfigError(f"checkpoint {path} is corrupt or does not match this run: it holds a {type(state).__name__}, not a dict")
    return state


def restore(run: Run) -> None:
    """Put the run back in the checkpoint's state; a truncated, foreign or unsafe file is a ConfigError."""
    path = checkpoint_path(run.run_dir)  # its existence was checked by engine.rundir.resume_refusal
    state = load_state(path, run.device)
    try:
        run.model.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        run.method.load_state_dict(state["method"])
        run.epoch, run.iter = state["epoch"], state["iter"]
        run.epoch_perm, run.meta_perm, run.meta_pos = state["epoch_perm"], state["meta_perm"], state["meta_pos"]
        run.history = state["history"]
        run.best_acc, run.best_epoch = state["best_acc"], state["best_epoch"]
        run.wall_before = state["wall_s"]
        run.order_gen.set_state(state["order_gen"])
        run.meta_gen.set_state(state["meta_gen"])
        run.aug_gen.set_state(state["aug_gen"])
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(numpy_state_from_plain(state["numpy_rng"]))
        random.setstate(state["python_rng"])
        run.steps.load_state_dict(state["steps"])
        run.weights.load_state_dict(state["weights"])
        if run.epoch_perm is not None:
            run.epoch_perm = run.epoch_perm.cpu()
        run.meta_perm = run.meta_perm.cpu()
    except Exception as e:
        raise ConfigError(f"checkpoint {path} is corrupt or does not match this run: {one_line(e)}") from None
