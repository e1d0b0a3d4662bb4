"""Data for the trainer: `load_data(cfg, device)` builds the train / meta / test splits of the GDW protocol.

For digits, CIFAR and synthetic data the inputs live in one tensor on the device (no worker
processes): the meta set is taken out of the training set, then imbalance and label noise are
applied (engine.data.corruption), all drawn from the run seed. ImageFolder data is decoded per batch.
"""

from __future__ import annotations

import torch

from engine.data.bundle import DataBundle, Split, TensorSource, make_bundle
from engine.data.corruption import apply_protocol
from engine.data.datasets import load_arrays

__all__ = ["DataBundle", "Split", "load_data"]


def load_data(cfg: dict, device: torch.device) -> DataBundle:
    """The DataBundle for the resolved config `cfg` (engine.config), inputs on `device`."""
    data = cfg["data"]
    if data["dataset"] == "imagefolder":
        from engine.data.folder import load_imagefolder

        return load_imagefolder(cfg, device)

    raw = load_arrays(data)
    C = len(raw.classes)
    proto = apply_protocol(
        raw.train_y,
        C,
        cfg["train"]["seed"],
        meta_per_class=data["meta_per_class"],
        imbalance=data["imbalance"],
        noise=data["noise"],
        noise_rate=data["noise_rate"],
    )

    def split(x, labels, true_labels) -> Split:
        inputs = torch.from_numpy(x).to(device)
        return Split(len(labels), torch.from_numpy(labels), torch.from_numpy(true_labels), TensorSource(inputs))

    meta_y = raw.train_y[proto.meta_idx]
    return make_bundle(
        data["dataset"],
        split(raw.train_x[proto.train_idx], proto.train_labels, raw.train_y[proto.train_idx]),
        split(raw.train_x[proto.meta_idx], meta_y, meta_y.copy()),
        split(raw.test_x, raw.test_y, raw.test_y.copy()),
        raw.classes,
        raw.train_x.shape[1:],
        proto.noise_matrix,
        proto.measured_noise_rate,
        data["augment"] and raw.augmentable,
        data,
        f"{data['meta_per_class']}/class",
    )
