"""Tiny CIFAR-10/100 datasets written in the real on-disk pickle format that torchvision reads.

torchvision's CIFAR10/CIFAR100 verify every file against the md5 of the real release
(`train_list`, `test_list`, `meta` class attributes) and refuse anything else. We keep the
production loader exactly torchvision's, md5 check included, and in tests only register the
checksums of the tiny files we wrote (`trust_tiny_cifar`, via pytest's monkeypatch, undone after
each test). So the tests go through torchvision's real reading code, and a corrupted real file
is still rejected in production.
"""

from __future__ import annotations

import hashlib
import os
import pickle

import numpy as np

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def tiny_image(index: int, label: int) -> np.ndarray:
    """A recognisable 3×32×32 uint8 image: channel 0 encodes the label, 1–2 the index."""
    img = np.zeros((3, 32, 32), dtype=np.uint8)
    img[0] = label
    img[1] = index % 256
    img[2] = index // 256
    return img


def _records(n: int, num_classes: int, offset: int) -> tuple[np.ndarray, list[int]]:
    labels = [(i % num_classes) for i in range(n)]  # balanced
    data = np.stack([tiny_image(offset + i, y).reshape(-1) for i, y in enumerate(labels)]) if n else np.zeros((0, 3072), np.uint8)
    return data, labels


def _dump(path: str, obj: dict) -> str:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)  # the release files are Python 2 pickles
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def write_tiny_cifar(root, kind: str = "cifar10", n_train: int = 500, n_test: int = 100) -> dict[str, str]:
    """Write a tiny cifar10 or cifar100 under `root`; returns {file name: md5}.

    Train image i has label i % C (so classes are balanced) and pixel values from tiny_image(i);
    test image j is tiny_image(n_train + j).
    """
    md5 = {}
    if kind == "cifar10":
        folder = os.path.join(root, "cifar-10-batches-py")
        os.makedirs(folder, exist_ok=True)
        data, labels = _records(n_train, 10, 0)
        parts = np.array_split(np.arange(n_train), 5)  # five data_batch files, like the release
        for b, idx in enumerate(parts, start=1):
            name = f"data_batch_{b}"
            md5[name] = _dump(
                os.path.join(folder, name),
                {
                    "batch_label": f"training batch {b} of 5",
                    "labels": [labels[i] for i in idx],
                    "data": data[idx],
                    "filenames": [f"img_{i}.png" for i in idx],
                },
            )
        data, labels = _records(n_test, 10, n_train)
        md5["test_batch"] = _dump(
            os.path.join(folder, "test_batch"),
            {"batch_label": "testing batch 1 of 1", "labels": labels, "data": data,
             "filenames": [f"test_{j}.png" for j in range(n_test)]},
        )
        md5["batches.meta"] = _dump(
            os.path.join(folder, "batches.meta"),
            {"label_names": CIFAR10_CLASSES, "num_cases_per_batch": max(1, n_train // 5), "num_vis": 3072},
        )
    elif kind == "cifar100":
        folder = os.path.join(root, "cifar-100-python")
        os.makedirs(folder, exist_ok=True)
        for name, n, offset in (("train", n_train, 0), ("test", n_test, n_train)):
            data, labels = _records(n, 100, offset)
            md5[name] = _dump(
                os.path.join(folder, name),
                {
                    "filenames": [f"{name}_{i}.png" for i in range(n)],
                    "batch_label": f"{name}ing batch 1 of 1",
                    "fine_labels": labels,
                    "coarse_labels": [y // 5 for y in labels],
                    "data": data,
                },
            )
        md5["meta"] = _dump(
            os.path.join(folder, "meta"),
            {"fine_label_names": [f"fine{c:02d}" for c in range(100)],
             "coarse_label_names": [f"coarse{c:02d}" for c in range(20)]},
        )
    else:
        raise ValueError(f"kind must be cifar10 or cifar100, not {kind!r}")
    return md5


def trust_tiny_cifar(monkeypatch, md5: dict[str, str], kind: str = "cifar10") -> None:
    """Make torchvision's md5 check accept the files write_tiny_cifar wrote (for this test only)."""
    import torchvision

    cls = torchvision.datasets.CIFAR10 if kind == "cifar10" else torchvision.datasets.CIFAR100
    monkeypatch.setattr(cls, "train_list", [[name, md5[name]] for name, _ in cls.train_list])
    monkeypatch.setattr(cls, "test_list", [[name, md5[name]] for name, _ in cls.test_list])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5[cls.meta["filename"]]})
