"""engine.data: datasets on disk, the meta / imbalance / noise protocol, and batch augmentation."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from cifar_fixture import tiny_image, trust_tiny_cifar, write_tiny_cifar

from engine.config import ConfigError, apply_overrides, defaults
from engine.data import DataBundle, load_data
from engine.data.datasets import load_digits
from engine.data.augment import MEAN, STD, augment_batch, normalize_batch, pil_augment_batch
from engine.data.corruption import (
    apply_protocol,
    corrupt_labels,
    imbalance_counts,
    noise_matrix,
    split_meta,
    stage_rng,
)

CPU = torch.device("cpu")


def make_cfg(**data) -> dict:
    """A resolved config with `data.<key>` overrides (and `seed`)."""
    seed = data.pop("seed", 1)
    overrides = {f"data.{k}": v for k, v in data.items()}
    overrides["train.seed"] = seed
    return apply_overrides(defaults(), overrides)


def pixels(x: torch.Tensor) -> torch.Tensor:
    """Undo normalize_batch: float batch back to integer pixel values."""
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return torch.round((x * std + mean) * 255).to(torch.int64)


def everything(split) -> torch.Tensor:
    return split.batch(torch.arange(split.size), False, None)


# --- CIFAR on disk -------------------------------------------------------------------------


def test_tiny_cifar10_loads_through_torchvision(tmp_path, monkeypatch):
    trust_tiny_cifar(monkeypatch, write_tiny_cifar(tmp_path, "cifar10", n_train=500, n_test=100), "cifar10")
    b = load_data(make_cfg(dataset="cifar10", data_dir=str(tmp_path), meta_per_class=10), CPU)
    assert isinstance(b, DataBundle)
    assert (b.train.size, b.meta.size, b.test.size) == (400, 100, 100)
    assert b.classes[:3] == ["airplane", "automobile", "bird"] and b.num_classes == 10
    assert b.in_shape == (3, 32, 32) and b.augment_default
    assert b.description == "cifar10 · 400 train · 100 meta (10/class) · 100 test"
    # Test image j is tiny_image(500 + j) with label j % 10, in order.
    px = pixels(everything(b.test))
    expected = torch.stack([torch.from_numpy(tiny_image(500 + j, j % 10)) for j in range(100)]).long()
    assert torch.equal(px, expected)
    assert b.test.labels.tolist() == [j % 10 for j in range(100)]


def test_tiny_cifar100_loads_fine_labels(tmp_path, monkeypatch):
    trust_tiny_cifar(monkeypatch, write_tiny_cifar(tmp_path, "cifar100", n_train=1000, n_test=200), "cifar100")
    b = load_data(make_cfg(dataset="cifar100", data_dir=str(tmp_path), meta_per_class=2), CPU)
    assert (b.train.size, b.meta.size, b.test.size) == (800, 200, 200)
    assert b.num_classes == 100 and b.classes[0] == "fine00" and b.classes[99] == "fine99"
    assert b.meta_per_class == [2] * 100 and b.train_per_class == [8] * 100
    # Channel 0 of every image holds its fine label.
    assert torch.equal(pixels(everything(b.train))[:, 0, 0, 0], b.train.true_labels)


def test_missing_cifar_files_say_download(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_data(make_cfg(dataset="cifar10", data_dir=str(tmp_path)), CPU)
    msg = str(e.value)
    assert "--download" in msg and "cifar-10-batches-py" in msg and "data_batch_1" in msg and "\n" not in msg


def test_cifar_files_failing_md5_are_rejected(tmp_path):
    # Without trust_tiny_cifar the tiny files fail torchvision's check against the real release.
    write_tiny_cifar(tmp_path, "cifar100", n_train=100, n_test=10)
    with pytest.raises(ConfigError, match="md5"):
        load_data(make_cfg(dataset="cifar100", data_dir=str(tmp_path), meta_per_class=1), CPU)


def original_index(px: torch.Tensor) -> list[int]:
    """tiny_image encodes each image's index in the training file in channels 1–2."""
    return (px[:, 1, 0, 0] + 256 * px[:, 2, 0, 0]).tolist()


def test_cifar_meta_set_is_disjoint_clean_and_balanced(tmp_path, monkeypatch):
    trust_tiny_cifar(monkeypatch, write_tiny_cifar(tmp_path, "cifar10", n_train=1000, n_test=10), "cifar10")
    cfg = make_cfg(dataset="cifar10", data_dir=str(tmp_path), meta_per_class=20, noise="unif", noise_rate=0.8)
    b = load_data(cfg, CPU)
    train_px, meta_px = pixels(everything(b.train)), pixels(everything(b.meta))
    train_ids, meta_ids = set(original_index(train_px)), set(original_index(meta_px))
    assert len(meta_ids) == 200 and len(train_ids) == 800 and not train_ids & meta_ids
    assert torch.equal(b.meta.labels, meta_px[:, 0, 0, 0])  # meta labels are the true ones
    assert torch.equal(b.meta.labels, b.meta.true_labels)
    assert b.meta_per_class == [20] * 10
    assert torch.equal(b.train.true_labels, train_px[:, 0, 0, 0])
    assert (b.train.labels != b.train.true_labels).any()  # the training set did get noise


# --- the protocol on label arrays ----------------------------------------------------------


def test_split_meta_disjoint_and_balanced():
    labels = np.repeat(np.arange(5), 30)
    meta, rest = split_meta(labels, 7, 5, stage_rng(3, 1))
    assert len(meta) == 35 and len(rest) == 115
    assert not set(meta) & set(rest) and set(meta) | set(rest) == set(range(150))
    assert np.bincount(labels[meta]).tolist() == [7] * 5


def test_meta_per_class_larger_than_a_class_is_an_error():
    labels = np.array([0] * 10 + [1] * 3)
    with pytest.raises(ConfigError, match="class 1 has only 3"):
        split_meta(labels, 5, 2, stage_rng(1, 1))


def test_imbalance_counts_follow_the_formula():
    # 490 per class left after a 10-per-class meta set, imbalance factor 10.
    assert imbalance_counts(490, 10, 10.0) == [490, 379, 293, 227, 176, 136, 105, 81, 63, 49]
    assert imbalance_counts(4900, 10, 100.0)[-1] == 49 and imbalance_counts(4900, 10, 1.0) == [4900] * 10
    for C, imb in ((10, 100.0), (100, 100.0), (7, 3.5)):
        want = [math.floor(490 * (1 / imb) ** (c / (C - 1))) for c in range(C)]
        assert imbalance_counts(490, C, imb) == want


def test_protocol_applies_imbalance_after_the_meta_split():
    labels = np.repeat(np.arange(10), 500)
    p = apply_protocol(labels, 10, seed=5, meta_per_class=10, imbalance=100.0, noise="none", noise_rate=0.0)
    assert np.bincount(labels[p.meta_idx]).tolist() == [10] * 10
    assert np.bincount(labels[p.train_idx], minlength=10).tolist() == imbalance_counts(490, 10, 100.0)
    assert not set(p.meta_idx) & set(p.train_idx)
    assert p.noise_matrix is None and p.measured_noise_rate == 0.0


def test_uniform_noise_rate_is_r_times_c_minus_1_over_c():
    C, r, n = 10, 0.4, 200_000
    labels = np.arange(n) % C
    m = noise_matrix("unif", r, C, stage_rng(1, 3))
    assert np.allclose(m.sum(axis=1), 1.0) and np.allclose(np.diag(m), 1 - r + r / C)
    noisy = corrupt_labels(labels, m, stage_rng(1, 4))
    # Expected flip rate r(C−1)/C = 0.36; the standard error is ~0.0011, allow ~5σ.
    assert abs(np.mean(noisy != labels) - r * (C - 1) / C) < 0.005
    # Flipped labels are spread evenly over the other classes.
    wrong = noisy[(labels == 3) & (noisy != 3)]
    share = np.bincount(wrong, minlength=C)[np.arange(C) != 3] / len(wrong)
    assert np.all(np.abs(share - 1 / (C - 1)) < 0.02)


def test_bundle_measured_noise_rate_matches_labels():
    b = load_data(make_cfg(dataset="synthetic", synthetic_train=2000, noise="unif", noise_rate=0.5), CPU)
    assert b.measured_noise_rate == pytest.approx((b.train.labels != b.train.true_labels).float().mean().item())
    assert abs(b.measured_noise_rate - 0.45) < 0.04
    assert "unif noise r=0.5 (measured" in b.description


def _synthetic(seed: int, **data) -> DataBundle:
    return load_data(make_cfg(dataset="synthetic", synthetic_train=1000, synthetic_test=50, seed=seed, **data), CPU)


def test_flip_matrix_has_one_off_diagonal_entry_derived_from_the_seed():
    r = 0.4
    mats = {seed: np.array(_synthetic(seed, noise="flip", noise_rate=r).noise_matrix) for seed in (1, 2)}
    for m in mats.values():
        assert np.allclose(m.sum(axis=1), 1.0) and np.allclose(np.diag(m), 1 - r)
        off = m - np.diag(np.diag(m))
        assert ((off > 0).sum(axis=1) == 1).all() and np.allclose(off.max(axis=1), r)
    assert not np.array_equal(mats[1], mats[2])
    assert np.array_equal(mats[1], np.array(_synthetic(1, noise="flip", noise_rate=r).noise_matrix))
    # The matrix depends on the seed only, not on the noise rate.
    m2 = np.array(_synthetic(1, noise="flip", noise_rate=0.2).noise_matrix)
    assert np.array_equal(m2 > 0, mats[1] > 0)


def test_flip2_matrix_has_two_entries_of_half_r():
    m = np.array(_synthetic(7, noise="flip2", noise_rate=0.4).noise_matrix)
    off = m - np.diag(np.diag(m))
    assert np.allclose(m.sum(axis=1), 1.0) and ((off > 0).sum(axis=1) == 2).all()
    assert np.allclose(off[off > 0], 0.2)
    with pytest.raises(ConfigError, match="at least 3 classes"):
        noise_matrix("flip2", 0.4, 2, stage_rng(1, 3))


def test_noise_none_has_no_matrix_and_no_flips():
    b = _synthetic(1)
    assert b.noise_matrix is None and b.measured_noise_rate == 0.0
    assert torch.equal(b.train.labels, b.train.true_labels)


def test_same_seed_same_bundle_other_seed_other_corruption():
    kw = dict(noise="flip", noise_rate=0.3, imbalance=5.0, meta_per_class=5)
    a, b, c = _synthetic(11, **kw), _synthetic(11, **kw), _synthetic(12, **kw)
    for s in ("train", "meta", "test"):
        sa, sb = getattr(a, s), getattr(b, s)
        assert torch.equal(sa.labels, sb.labels) and torch.equal(sa.true_labels, sb.true_labels)
        assert torch.equal(everything(sa), everything(sb))
    assert a.noise_matrix == b.noise_matrix and a.description == b.description
    assert not torch.equal(everything(a.meta), everything(c.meta))  # another meta draw
    assert torch.equal(everything(a.test), everything(c.test))  # the dataset itself is fixed


# --- augmentation --------------------------------------------------------------------------


def _candidates(image: torch.Tensor) -> torch.Tensor:
    """All 9×9 crops of the 4-pixel reflect-padded image, each unflipped and flipped: 162×3×32×32."""
    padded = F.pad(image[None].float(), (4, 4, 4, 4), mode="reflect")[0]
    crops = [padded[:, y : y + 32, x : x + 32] for y in range(9) for x in range(9)]
    crops += [c.flip(-1) for c in crops]
    return torch.stack(crops)


def _match(out: torch.Tensor, cands: torch.Tensor) -> torch.Tensor:
    """For each augmented image, the candidate it equals exactly (−1 if none)."""
    dist = torch.cdist(out.flatten(1).double(), cands.flatten(1).double())
    best = dist.argmin(1)
    return torch.where(dist.min(1).values < 1e-6, best, -1)


def test_augment_batch_is_a_reflect_padded_crop_and_flip():
    g = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=g)
    batch = image[None].expand(600, 3, 32, 32).contiguous()
    out = augment_batch(batch, torch.Generator().manual_seed(1))
    assert out.shape == (600, 3, 32, 32) and out.dtype == torch.float32
    idx = _match(pixels(out), _candidates(image))
    assert (idx >= 0).all()  # every output is exactly one crop (and maybe flip) of the padded image
    # Offsets and flips are drawn per image: many distinct crops, about half flipped.
    assert len(set(idx.tolist())) > 100
    assert 0.4 < (idx >= 81).float().mean().item() < 0.6
    # The generator alone decides the result.
    assert torch.equal(out, augment_batch(batch, torch.Generator().manual_seed(1)))
    assert not torch.equal(out, augment_batch(batch, torch.Generator().manual_seed(2)))


def test_augment_batch_on_a_hand_made_image():
    # Pixel value = 8·row + col (mod 256) in every channel: crops are easy to read off.
    r, c = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    image = ((8 * r + c) % 256).to(torch.uint8).expand(3, 32, 32).contiguous()
    out = pixels(augment_batch(image[None].repeat(50, 1, 1, 1), torch.Generator().manual_seed(3)))
    padded = F.pad(image[None].float(), (4, 4, 4, 4), mode="reflect")[0].long()
    for o in out:
        found = [
            (y, x, flip)
            for y in range(9)
            for x in range(9)
            for flip in (False, True)
            if torch.equal(o, padded[:, y : y + 32, x : x + 32].flip(-1) if flip else padded[:, y : y + 32, x : x + 32])
        ]
        assert len(found) == 1


def test_pil_reference_pipeline_gives_the_same_kind_of_images():
    image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
    hwc = image.permute(1, 2, 0).numpy()[None].repeat(40, axis=0)
    torch.manual_seed(0)
    assert (_match(pixels(pil_augment_batch(hwc)), _candidates(image)) >= 0).all()
    plain = pil_augment_batch(hwc[:2], augment=False)
    assert torch.allclose(plain, normalize_batch(image[None].repeat(2, 1, 1, 1)), atol=1e-6)


def test_normalisation_constants():
    black = normalize_batch(torch.zeros(1, 3, 2, 2, dtype=torch.uint8))
    white = normalize_batch(torch.full((1, 3, 2, 2), 255, dtype=torch.uint8))
    for ch, (m, s) in enumerate(((125.3, 63.0), (123.0, 62.1), (113.9, 66.7))):
        assert black[0, ch, 0, 0].item() == pytest.approx(-m / s, rel=1e-6)
        assert white[0, ch, 0, 0].item() == pytest.approx((255 - m) / s, rel=1e-6)


def test_train_batch_augments_only_when_asked():
    b = _synthetic(1)
    idx = torch.tensor([3, 1, 4, 1, 5])
    plain = b.train.batch(idx, False, None)
    assert torch.equal(pixels(plain), pixels(b.train.batch(idx, False, None)))
    aug = b.train.batch(idx, True, torch.Generator().manual_seed(0))
    assert aug.shape == plain.shape == (5, 3, 32, 32) and not torch.equal(aug, plain)


# --- digits and synthetic ------------------------------------------------------------------


def test_digits_bundle():
    b = load_data(make_cfg(dataset="digits", meta_per_class=10), CPU)
    assert (b.train.size, b.meta.size, b.test.size) == (1337, 100, 360)
    assert b.train.size + b.meta.size + b.test.size == 1797
    assert b.in_shape == (64,) and b.classes == [str(d) for d in range(10)] and not b.augment_default
    x = b.train.batch(torch.arange(10), True, None)  # no augmentation for feature vectors
    assert x.shape == (10, 64) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    # Stratified test set, the same for every run seed.
    assert np.bincount(b.test.labels.numpy()).min() >= 35
    other = load_data(make_cfg(dataset="digits", seed=99), CPU)
    assert torch.equal(everything(b.test), everything(other.test)) and torch.equal(b.test.labels, other.test.labels)
    assert not torch.equal(everything(b.meta), everything(other.meta))  # the meta draw follows the seed


def test_digits_cache_is_exact_and_spares_the_scikit_learn_import(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = load_digits()  # from scikit-learn, then cached
    (cache,) = (tmp_path / "gdw-tui").glob("digits-sklearn-*.npz")
    fields = ("train_x", "train_y", "test_x", "test_y")
    second = load_digits()
    for name in fields:
        assert np.array_equal(getattr(first, name), getattr(second, name))
        assert getattr(first, name).dtype == getattr(second, name).dtype
    # A fresh process with the cache in place never imports scikit-learn.
    code = ("import sys; from engine.data.datasets import load_digits; r = load_digits(); "
            "print(len(r.train_y), len(r.test_y), 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "XDG_CACHE_HOME": str(tmp_path)})
    assert out.stdout.split() == ["1437", "360", "False"]
    # A damaged cache is rebuilt, with the same arrays.
    cache.write_bytes(b"PK\x03\x04 not a zip")
    third = load_digits()
    assert np.array_equal(third.test_x, first.test_x)
    with np.load(cache) as f:
        assert np.array_equal(f["train_y"], first.train_y)


def test_synthetic_bundle_is_class_dependent():
    b = load_data(make_cfg(dataset="synthetic", synthetic_train=2000, synthetic_test=500, synthetic_classes=5), CPU)
    assert (b.train.size, b.meta.size, b.test.size) == (1950, 50, 500)
    assert b.num_classes == 5 and b.in_shape == (3, 32, 32) and b.augment_default
    assert b.train_per_class == [390] * 5
    # Nearest class-mean colour classifies far above chance (20%), so the data is learnable.
    tr, te = everything(b.train).mean((2, 3)), everything(b.test).mean((2, 3))
    means = torch.stack([tr[b.train.labels == c].mean(0) for c in range(5)])
    acc = (torch.cdist(te, means).argmin(1) == b.test.labels).float().mean().item()
    assert acc > 0.5


# --- imagefolder ---------------------------------------------------------------------------


def _write_folder(root, counts: dict[str, dict[str, int]]):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, per_class in counts.items():
        for cls, n in per_class.items():
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                size = (int(rng.integers(20, 60)), int(rng.integers(20, 60)))
                Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(d / f"{i}.png")


def test_imagefolder_bundle(tmp_path):
    _write_folder(tmp_path, {"train": {"cat": 6, "dog": 4}, "meta": {"cat": 2, "dog": 2}, "test": {"cat": 3, "dog": 1}})
    cfg = make_cfg(dataset="imagefolder", data_dir=str(tmp_path), image_size=16, workers=2)
    b = load_data(cfg, CPU)
    assert b.classes == ["cat", "dog"] and (b.train.size, b.meta.size, b.test.size) == (10, 4, 4)
    assert b.in_shape == (3, 16, 16) and b.train_per_class == [6, 4] and b.meta_per_class == [2, 2]
    assert b.test.labels.tolist() == [0, 0, 0, 1]
    idx = torch.arange(10)
    x = b.train.batch(idx, True, torch.Generator().manual_seed(0))
    assert x.shape == (10, 3, 16, 16) and x.dtype == torch.float32
    assert torch.equal(x, b.train.batch(idx, True, torch.Generator().manual_seed(0)))  # threads do not matter
    assert torch.equal(b.test.batch(torch.arange(4), False, None), b.test.batch(torch.arange(4), False, None))


def test_imagefolder_missing_folder(tmp_path):
    _write_folder(tmp_path, {"train": {"a": 1}, "test": {"a": 1}})
    with pytest.raises(ConfigError, match="missing: meta"):
        load_data(make_cfg(dataset="imagefolder", data_dir=str(tmp_path)), CPU)
