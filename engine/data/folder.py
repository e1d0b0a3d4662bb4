"""ImageFolder data (Clothing1M / Places-LT style): data_dir/{train,meta,test}, images decoded lazily per batch.

Decoding runs on a thread pool of data.workers threads (PIL releases the GIL while decoding and
resizing), so there are no worker processes. Random crops and flips draw per-image seeds from
the caller's generator, so a batch is reproducible whatever the thread scheduling.
"""

from __future__ import annotations

import math
import os
import random
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from engine.config import ConfigError
from engine.data.bundle import DataBundle, Split, make_bundle
from engine.data.corruption import apply_protocol

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SPLITS = ("train", "meta", "test")


class FolderSource:
    """Image files decoded on demand: RandomResizedCrop + flip when augmenting, Resize + CenterCrop otherwise."""

    def __init__(self, paths: list[str], image_size: int, device: torch.device, pin_memory: bool, pool):
        self.paths = paths
        self.size = image_size
        self.device = device
        self.pin_memory = pin_memory and device.type == "cuda"
        self.pool = pool  # ThreadPoolExecutor or None (decode in the calling thread)

    def batch(self, idx: torch.Tensor, augment: bool, generator: torch.Generator | None) -> torch.Tensor:
        if augment:
            seeds = torch.randint(2**62, (len(idx),), generator=generator, device=_gen_device(generator)).tolist()
        else:
            seeds = [None] * len(idx)
        rows = idx.tolist()
        images = list(self.pool.map(self.load, rows, seeds) if self.pool is not None else map(self.load, rows, seeds))
        x = torch.stack(images)
        if self.pin_memory:
            # The caching host allocator keeps the pinned buffer alive until the async copy is done.
            return x.pin_memory().to(self.device, non_blocking=True)
        return x.to(self.device)

    def load(self, i: int, seed: int | None) -> torch.Tensor:
        from PIL import Image
        from torchvision.transforms import functional as TF

        with Image.open(self.paths[i]) as f:
            img = f.convert("RGB")
        if seed is None:
            img = TF.center_crop(TF.resize(img, int(self.size * 256 / 224)), self.size)
        else:
            rng = random.Random(seed)
            top, left, h, w = random_resized_crop_params(img.width, img.height, rng)
            img = TF.resized_crop(img, top, left, h, w, [self.size, self.size], antialias=True)
            if rng.random() < 0.5:
                img = TF.hflip(img)
        return TF.normalize(TF.to_tensor(img), IMAGENET_MEAN, IMAGENET_STD)


def _gen_device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def random_resized_crop_params(
    width: int, height: int, rng: random.Random, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)
) -> tuple[int, int, int, int]:
    """torchvision's RandomResizedCrop.get_params, drawing from `rng` instead of torch's global RNG."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return rng.randint(0, height - h), rng.randint(0, width - w), h, w
    # Fallback to a central crop, as torchvision does.
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        w, h = int(round(height * max(ratio))), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def load_imagefolder(cfg: dict, device: torch.device) -> DataBundle:
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    data = cfg["data"]
    root = data["data_dir"]
    missing = [s for s in SPLITS if not os.path.isdir(os.path.join(root, s))]
    if missing:
        raise ConfigError(
            f"imagefolder data needs {root}/train, {root}/meta and {root}/test (one sub-folder per class);"
            f" missing: {', '.join(missing)}"
        )
    classes, class_to_idx = find_classes(os.path.join(root, "train"))
    samples = {}
    for s in SPLITS:
        folder = os.path.join(root, s)
        extra = sorted(set(find_classes(folder)[0]) - set(classes))
        if extra:
            raise ConfigError(f"{folder} has class folders not in {root}/train: {', '.join(extra[:5])}")
        try:
            # Meta and test may lack some classes; train must have images in every class folder.
            samples[s] = make_dataset(folder, class_to_idx, extensions=IMG_EXTENSIONS, allow_empty=s != "train")
        except FileNotFoundError as e:
            raise ConfigError(f"{folder}: {str(e).splitlines()[0]}") from None
        if not samples[s]:
            raise ConfigError(f"{folder} holds no images")

    train_labels = [y for _, y in samples["train"]]
    proto = apply_protocol(
        np.asarray(train_labels, dtype=np.int64),
        len(classes),
        cfg["train"]["seed"],
        meta_per_class=0,  # the meta set is the meta folder
        imbalance=data["imbalance"],
        noise=data["noise"],
        noise_rate=data["noise_rate"],
    )
    pool = ThreadPoolExecutor(data["workers"], thread_name_prefix="gdw-decode") if data["workers"] > 0 else None

    def split(paths: list[str], labels, true_labels) -> Split:
        src = FolderSource(paths, data["image_size"], device, cfg["train"]["pin_memory"], pool)
        return Split(len(paths), torch.as_tensor(labels, dtype=torch.int64), torch.as_tensor(true_labels, dtype=torch.int64), src)

    train_paths = [samples["train"][i][0] for i in proto.train_idx]
    train_true = [train_labels[i] for i in proto.train_idx]
    evals = {s: ([p for p, _ in samples[s]], [y for _, y in samples[s]]) for s in ("meta", "test")}
    return make_bundle(
        "imagefolder",
        split(train_paths, proto.train_labels, train_true),
        split(evals["meta"][0], evals["meta"][1], evals["meta"][1]),
        split(evals["test"][0], evals["test"][1], evals["test"][1]),
        classes,
        (3, data["image_size"], data["image_size"]),
        proto.noise_matrix,
        proto.measured_noise_rate,
        data["augment"],
        data,
        "meta folder",
    )
