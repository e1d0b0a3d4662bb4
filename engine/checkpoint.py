"""A run's checkpoint: `Run.state_dict()` as one object, written atomically.

What is in it is the run's to say (engine.trainer.Run.state_dict: the method's state — its models,
optimisers and whatever else it owns —, the clean-set cursor, where the loop is, its statistics and
every random number generator); this module only writes and reads it. A CPU run resumed from it
continues bit for bit as if it had never stopped (tests/test_reliability.py).

A runs directory can be shared, so a checkpoint is untrusted input: it holds only tensors and plain
values (numpy's generator state is stored as a tensor, not a numpy array) and is read with
`torch.load(weights_only=True)`, which refuses any other object instead of unpickling it — a
file that would import or call something (os.system...) is refused with one line and runs nothing.
Checkpoints of earlier versions (the flat layout, numpy's state as an array) still resume.
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

# The layout of the saved object; 1 was the flat layout of the versions before the method owned its models.
FORMAT = 2


def save(run: Run) -> None:
    """Write the checkpoint; the last good one is replaced only by a complete one."""
    path = checkpoint_path(run.run_dir)
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    state = {"format": FORMAT, **run.state_dict()}
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


# Checkpoints written before numpy's state was stored as a tensor hold one uint32 numpy array;
# these are the only extra types weights_only may rebuild for it (they call no code of the file's).
LEGACY_NUMPY = [np._core.multiarray._reconstruct, np.ndarray, np.dtype, np.dtypes.UInt32DType]


def load_state(path: Path, device: Any = "cpu") -> dict[str, Any]:
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


def from_flat_layout(state: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint of format 1 (before a method owned its model and optimiser) in today's layout."""
    if "format" in state:
        return state
    return {
        "method": {"model": state["model"], "optimizer": state["optimizer"], **state["method"]},
        "clean_set": {"meta_gen": state["meta_gen"], "meta_perm": state["meta_perm"], "meta_pos": state["meta_pos"]},
        **{k: state[k] for k in ("epoch", "iter", "epoch_perm", "history", "best_acc", "best_epoch", "wall_s")},
        "rng": {"order_gen": state["order_gen"], "aug_gen": state["aug_gen"], "torch": state["torch_rng"],
                "numpy": state["numpy_rng"], "python": state["python_rng"]},
        "steps": state["steps"],
        "weights": state["weights"],
    }


def restore(run: Run) -> None:
    """Put the run back in the checkpoint's state; a truncated, foreign or unsafe file is a ConfigError."""
    path = checkpoint_path(run.run_dir)  # its existence was checked by engine.rundir.resume_refusal
    state = load_state(path)
    try:
        run.load_state_dict(from_flat_layout(state))
    except Exception as e:
        raise ConfigError(f"checkpoint {path} is corrupt or does not match this run: {one_line(e)}") from None


# --- random number generators as plain values ------------------------------------------------------


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


def rng_states() -> dict[str, Any]:
    """torch's, numpy's and Python's global generators."""
    return {"torch": torch.get_rng_state(), "numpy": numpy_state_plain(np.random.get_state()),
            "python": random.getstate()}


def set_rng_states(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    np.random.set_state(numpy_state_from_plain(state["numpy"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
