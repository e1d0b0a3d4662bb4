"""The GDW data protocol on label arrays: clean meta split, long-tail imbalance, label noise (docs/algorithm.md §6).

Everything here is numpy on label vectors and draws only from numpy Generators derived from the
run seed. Each stage has its own stream, so e.g. changing the noise rate leaves the meta set
and the kept images unchanged, and the flip matrix depends only on the seed and class count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.config import ConfigError

# Stream tags: one independent numpy Generator per protocol stage.
_META, _IMBALANCE, _MATRIX, _NOISE = 1, 2, 3, 4


def stage_rng(seed: int, stage: int) -> np.random.Generator:
    return np.random.default_rng([seed, stage])


@dataclass
class Protocol:
    meta_idx: np.ndarray  # indices into the original training set (clean, balanced)
    train_idx: np.ndarray  # indices into the original training set, after imbalance
    train_labels: np.ndarray  # observed (possibly corrupted) labels of train_idx
    noise_matrix: np.ndarray | None  # C×C corruption matrix, None when there is no noise
    measured_noise_rate: float


def apply_protocol(
    labels: np.ndarray,
    num_classes: int,
    seed: int,
    meta_per_class: int,
    imbalance: float,
    noise: str,
    noise_rate: float,
) -> Protocol:
    """Meta set out of the training set, then imbalance on the rest, then noise on what is left.

    `meta_per_class=0` takes no meta set (the meta images come from elsewhere, e.g. a folder).
    """
    labels = np.asarray(labels, dtype=np.int64)
    if meta_per_class > 0:
        meta_idx, rest = split_meta(labels, meta_per_class, num_classes, stage_rng(seed, _META))
    else:
        meta_idx, rest = np.empty(0, dtype=np.int64), np.arange(len(labels))
    train_idx = apply_imbalance(rest, labels[rest], num_classes, imbalance, stage_rng(seed, _IMBALANCE))
    if len(train_idx) == 0:
        raise ConfigError("no training images are left after taking the meta set out; lower data.meta_per_class")
    true = labels[train_idx]
    matrix = noise_matrix(noise, noise_rate, num_classes, stage_rng(seed, _MATRIX))
    observed = true if matrix is None else corrupt_labels(true, matrix, stage_rng(seed, _NOISE))
    return Protocol(meta_idx, train_idx, observed, matrix, float(np.mean(observed != true)))


def split_meta(
    labels: np.ndarray, per_class: int, num_classes: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(meta indices, remaining indices): `per_class` random images of every class, both sorted."""
    counts = np.bincount(labels, minlength=num_classes)
    short = [c for c in range(num_classes) if counts[c] < per_class]
    if short:
        c = short[0]
        raise ConfigError(
            f"data.meta_per_class={per_class} but class {c} has only {counts[c]} training images"
            f" ({len(short)} class(es) too small); lower data.meta_per_class"
        )
    meta = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in range(num_classes)])
    is_meta = np.zeros(len(labels), dtype=bool)
    is_meta[meta] = True
    return np.sort(meta), np.flatnonzero(~is_meta)


def imbalance_counts(n_max: int, num_classes: int, imbalance: float) -> list[int]:
    """Images kept per class: ⌊n_max · ρ^(c/(C−1))⌋ with ρ = 1/imbalance (the Meta-Weight-Net formula)."""
    rho = 1.0 / imbalance
    return [int(math.floor(n_max * rho ** (c / (num_classes - 1)))) for c in range(num_classes)]


def apply_imbalance(
    idx: np.ndarray, labels: np.ndarray, num_classes: int, imbalance: float, rng: np.random.Generator
) -> np.ndarray:
    """The subset of `idx` (whose labels are `labels`) that keeps imbalance_counts() per class, sorted."""
    if imbalance == 1.0:
        return np.asarray(idx, dtype=np.int64)
    counts = np.bincount(labels, minlength=num_classes)
    keep = imbalance_counts(int(counts.max()), num_classes, imbalance)
    chosen = [rng.permutation(idx[labels == c])[: keep[c]] for c in range(num_classes)]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def noise_matrix(kind: str, rate: float, num_classes: int, rng: np.random.Generator) -> np.ndarray | None:
    """Row y is the distribution of the observed label of a class-y image; None for no noise."""
    C = num_classes
    if kind == "none" or rate == 0.0:
        return None
    if kind == "unif":
        return rate / C * np.ones((C, C)) + (1.0 - rate) * np.eye(C)
    if kind in ("flip", "flip2"):
        k = 1 if kind == "flip" else 2
        if C - 1 < k:
            raise ConfigError(f"data.noise='{kind}' needs at least {k + 1} classes (this dataset has {C})")
        m = (1.0 - rate) * np.eye(C)
        for y in range(C):
            others = np.delete(np.arange(C), y)
            m[y, rng.choice(others, size=k, replace=False)] = rate / k
        return m
    raise ConfigError(f"data.noise must be one of none, unif, flip, flip2 (got {kind!r})")


def corrupt_labels(labels: np.ndarray, matrix: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each label y replaced by an independent draw from row y of `matrix`."""
    out = labels.copy()
    for y in np.unique(labels):
        members = np.flatnonzero(labels == y)
        row = matrix[y] / matrix[y].sum()  # guard against rounding a hair off 1
        out[members] = rng.choice(len(row), size=len(members), p=row)
    return out
