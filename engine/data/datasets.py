"""Raw in-memory datasets as numpy arrays: scikit-learn digits, CIFAR-10/100 from disk, and synthetic CIFAR-shaped data."""

from __future__ import annotations

import importlib.metadata
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.config import ConfigError
from engine.launch import missing_cifar_message


@dataclass
class RawArrays:
    train_x: np.ndarray  # uint8 N×3×32×32 images, or float32 N×F features
    train_y: np.ndarray  # int64
    test_x: np.ndarray
    test_y: np.ndarray
    classes: list[str]
    augmentable: bool  # CIFAR-style crop/flip makes sense for these inputs


def load_arrays(data_cfg: dict) -> RawArrays:
    name = data_cfg["dataset"]
    if name == "digits":
        return load_digits()
    if name in ("cifar10", "cifar100"):
        return load_cifar(name, data_cfg["data_dir"], data_cfg["download"])
    if name == "synthetic":
        return make_synthetic(data_cfg["synthetic_train"], data_cfg["synthetic_test"], data_cfg["synthetic_classes"])
    raise ConfigError(f"data.dataset '{name}' is not an in-memory dataset")


def load_digits() -> RawArrays:
    """scikit-learn's bundled 8×8 digits as 64 features in [0, 1]; a fixed stratified 20% test split.

    Importing scikit-learn costs 1.5–2 s of every engine start, so the prepared arrays are kept
    in a per-user cache (one file per scikit-learn version) and later starts read that instead.
    """
    path = _digits_cache_path()
    if path is not None:
        try:
            with np.load(path, allow_pickle=False) as f:  # a file is data, never code
                return RawArrays(f["train_x"], f["train_y"], f["test_x"], f["test_y"], [str(d) for d in range(10)], False)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # no cache yet, or a damaged one: rebuild it below
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    x, y = sk_load_digits(return_X_y=True)
    # Fixed split (not the run seed): the test set is part of the dataset, like CIFAR's.
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    x_tr, x_te = (x_tr / 16.0).astype(np.float32), (x_te / 16.0).astype(np.float32)  # pixel values are 0..16
    raw = RawArrays(x_tr, y_tr.astype(np.int64), x_te, y_te.astype(np.int64), [str(d) for d in range(10)], False)
    if path is not None:
        _write_digits_cache(path, raw)
    return raw


def _digits_cache_path() -> Path | None:
    try:
        version = importlib.metadata.version("scikit-learn")
    except importlib.metadata.PackageNotFoundError:
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gdw-tui" / f"digits-sklearn-{version}.npz"


def _write_digits_cache(path: Path, raw: RawArrays) -> None:
    """Atomically (temporary file + rename), so a concurrent start never reads half a file; a
    cache that cannot be written (read-only home) only means the next start imports scikit-learn again."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, train_x=raw.train_x, train_y=raw.train_y, test_x=raw.test_x, test_y=raw.test_y)
        os.replace(tmp, path)
    except OSError:
        pass


def load_cifar(name: str, data_dir: str, download: bool) -> RawArrays:
    """CIFAR through torchvision's own loader (md5-checked), images kept as uint8 N×3×32×32."""
    import torchvision

    cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
    folder = os.path.join(data_dir, cls.base_folder)
    expected = [f for f, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    missing = [f for f in expected if not os.path.isfile(os.path.join(folder, f))]
    if missing and not download:
        raise ConfigError(missing_cifar_message(name, folder))
    try:
        train = cls(data_dir, train=True, download=download)
        test = cls(data_dir, train=False, download=False)
    except RuntimeError:
        # torchvision's message when a file fails its md5 check.
        raise ConfigError(
            f"{name} files in {folder} are incomplete or corrupted (md5 check failed); delete them and pass --download to fetch them again"
        ) from None
    except OSError as e:  # download failures (no network, disk full) surface as URLError/OSError
        raise ConfigError(f"could not download {name} into {data_dir}: {e}") from None
    return RawArrays(
        _chw(train.data),
        np.asarray(train.targets, dtype=np.int64),
        _chw(test.data),
        np.asarray(test.targets, dtype=np.int64),
        list(train.classes),
        True,
    )


def _chw(images: np.ndarray) -> np.ndarray:
    """torchvision keeps CIFAR as N×H×W×C; the models want N×C×H×W."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2))


def make_synthetic(n_train: int, n_test: int, num_classes: int, chunk: int = 8192) -> RawArrays:
    """CIFAR-shaped uint8 images whose class sets a mean colour, blurred by per-image and per-pixel noise.

    A fixed dataset (its own seed, not the run seed): learnable but not trivially, for smoke tests
    and benchmarks.
    """
    rng = np.random.default_rng(20211206)
    colours = rng.uniform(48, 208, size=(num_classes, 3)).astype(np.float32)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.permutation(np.arange(n) % num_classes).astype(np.int64)  # balanced classes
        images = np.empty((n, 3, 32, 32), dtype=np.uint8)
        for s in range(0, n, chunk):  # chunks bound the float32 working memory
            lab = labels[s : s + chunk]
            mean = colours[lab] + rng.normal(0, 30, size=(len(lab), 3)).astype(np.float32)
            pix = mean[:, :, None, None] + rng.standard_normal((len(lab), 3, 32, 32), dtype=np.float32) * 40
            images[s : s + chunk] = np.clip(pix, 0, 255).astype(np.uint8)
        return images, labels

    train_x, train_y = draw(n_train)
    test_x, test_y = draw(n_test)
    return RawArrays(train_x, train_y, test_x, test_y, [f"class{c}" for c in range(num_classes)], True)
