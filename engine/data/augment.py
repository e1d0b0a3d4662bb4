"""CIFAR augmentation on whole uint8 batches on the device, and the per-image PIL reference it replaces.

`augment_batch` does in one gather what the authors' pipeline does image by image:
RandomCrop(32, padding=4, padding_mode="reflect"), RandomHorizontalFlip, ToTensor, Normalize.
"""

from __future__ import annotations

import numpy as np
import torch

PAD = 4
# CIFAR channel statistics used by the GDW / Meta-Weight-Net code, in [0, 1] units.
MEAN = (125.3 / 255, 123.0 / 255, 113.9 / 255)
STD = (63.0 / 255, 62.1 / 255, 66.7 / 255)


def normalize_batch(images: torch.Tensor) -> torch.Tensor:
    """uint8 N×3×H×W → float32, scaled to [0, 1] then normalised per channel (ToTensor + Normalize)."""
    x = images.float().div_(255)
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return x.sub_(mean).div_(std)


def augment_batch(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random reflect-padded crop and horizontal flip per image, then normalise; uint8 in, float32 out.

    Randomness comes only from `generator` (which must live on the images' device). Instead of
    materialising the padded batch, each output pixel reads the source pixel that reflect padding
    would have put there, so crop and flip are one gather.
    """
    n, c, h, w = images.shape
    device = images.device
    dy = torch.randint(0, 2 * PAD + 1, (n,), generator=generator, device=device)
    dx = torch.randint(0, 2 * PAD + 1, (n,), generator=generator, device=device)
    flip = torch.rand(n, generator=generator, device=device) < 0.5

    rows = _reflect(dy[:, None] + torch.arange(h, device=device) - PAD, h)  # N×H
    cols_idx = torch.arange(w, device=device)
    cols_idx = torch.where(flip[:, None], w - 1 - cols_idx, cols_idx)  # flipping reverses the crop's columns
    cols = _reflect(dx[:, None] + cols_idx - PAD, w)  # N×W

    flat = rows[:, :, None] * w + cols[:, None, :]  # N×H×W index into each H·W plane
    flat = flat[:, None].expand(n, c, h, w).reshape(n, c, h * w)
    out = images.reshape(n, c, h * w).gather(2, flat).view(n, c, h, w)
    return normalize_batch(out)


def _reflect(i: torch.Tensor, size: int) -> torch.Tensor:
    """Index into the unpadded axis that reflect padding (no edge repeat, PAD < size) maps `i` to."""
    i = i.abs()
    return torch.where(i > size - 1, 2 * (size - 1) - i, i)


def pil_augment_batch(images: np.ndarray, augment: bool = True) -> torch.Tensor:
    """Reference: the authors' per-image torchvision pipeline on N×32×32×3 uint8 HWC images.

    That is the layout torchvision's CIFAR datasets keep in `.data`. Randomness comes from torch's
    global RNG, as in a DataLoader. Returns N×3×32×32 float32 on the CPU.
    """
    from PIL import Image
    from torchvision import transforms

    steps = [transforms.RandomCrop(32, padding=PAD, padding_mode="reflect"), transforms.RandomHorizontalFlip()]
    pipeline = transforms.Compose((steps if augment else []) + [transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    return torch.stack([pipeline(Image.fromarray(img)) for img in images])
