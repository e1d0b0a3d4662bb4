"""The data containers the trainer sees: Split (labels + batch access), DataBundle, and in-memory tensor inputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from engine.data.augment import augment_batch, normalize_batch


class Source(Protocol):
    """Where a split's inputs come from; `batch` returns float32 model inputs on the device."""

    def batch(self, idx: torch.Tensor, augment: bool, generator: torch.Generator | None) -> torch.Tensor: ...


@dataclass
class Split:
    size: int
    labels: torch.Tensor  # observed (possibly corrupted) labels, int64, CPU
    true_labels: torch.Tensor  # true labels, int64, CPU (== labels for meta/test)
    source: Source

    def batch(self, idx: torch.Tensor, augment: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
        """Inputs of the samples `idx` (int64, CPU) on the device, normalised, augmented when asked.

        Augmentation randomness comes only from `generator`, which lives on the device. Sources
        that have no augmentation (digits features) ignore `augment`.
        """
        return self.source.batch(idx, augment, generator)


@dataclass
class DataBundle:
    train: Split
    meta: Split
    test: Split
    classes: list[str]
    num_classes: int
    in_shape: tuple  # per-sample input shape, e.g. (3, 32, 32) or (64,)
    noise_matrix: list[list[float]] | None  # C×C transition matrix used for corruption (None without noise)
    measured_noise_rate: float  # fraction of train labels != true labels
    train_per_class: list[int]  # counts by TRUE label
    meta_per_class: list[int]
    augment_default: bool  # whether training should augment (data.augment and the dataset supports it)
    description: str  # one line, e.g. "cifar10 · 49,000 train · 1,000 meta (100/class) · 10,000 test"


class TensorSource:
    """All inputs held in one tensor on the device: uint8 N×3×H×W images, or float N×F features."""

    def __init__(self, data: torch.Tensor):
        self.data = data
        self.images = data.dtype == torch.uint8

    def batch(self, idx: torch.Tensor, augment: bool, generator: torch.Generator | None) -> torch.Tensor:
        x = self.data.index_select(0, idx.to(self.data.device, non_blocking=True))
        if not self.images:
            return x
        return augment_batch(x, generator) if augment else normalize_batch(x)


def make_bundle(
    name: str,
    train: Split,
    meta: Split,
    test: Split,
    classes: list[str],
    in_shape: tuple,
    noise_matrix,
    measured_noise_rate: float,
    augment_default: bool,
    data_cfg: dict,
    meta_note: str,
) -> DataBundle:
    """A DataBundle with the per-class counts and the one-line description filled in."""
    C = len(classes)
    train_pc = torch.bincount(train.true_labels, minlength=C).tolist()
    meta_pc = torch.bincount(meta.true_labels, minlength=C).tolist()
    parts = [name, f"{train.size:,} train", f"{meta.size:,} meta ({meta_note})", f"{test.size:,} test"]
    if data_cfg["imbalance"] != 1.0:
        parts.append(f"imbalance {data_cfg['imbalance']:g}")
    if noise_matrix is not None:
        parts.append(f"{data_cfg['noise']} noise r={data_cfg['noise_rate']:g} (measured {measured_noise_rate:.1%})")
    return DataBundle(
        train=train,
        meta=meta,
        test=test,
        classes=classes,
        num_classes=C,
        in_shape=tuple(in_shape),
        noise_matrix=None if noise_matrix is None else [[float(v) for v in row] for row in noise_matrix],
        measured_noise_rate=float(measured_noise_rate),
        train_per_class=train_pc,
        meta_per_class=meta_pc,
        augment_default=augment_default,
        description=" · ".join(parts),
    )
