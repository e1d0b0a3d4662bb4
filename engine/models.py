"""The networks: CIFAR ResNet-32, a small MLP for scikit-learn digits, and torchvision ResNet-18/50.

All of them work with torch.func.functional_call and torch.func.jvp in train mode, which the
meta-gradient methods need: no in-place ReLU, and BatchNorm keeps no `num_batches_tracked`
counter (see `_forward_ad_safe`). Initialisation draws only from torch's global RNG, so
torch.manual_seed makes it deterministic.
"""

from __future__ import annotations

import math
import os
import urllib.error

import torch
import torch.nn.functional as F
from torch import nn

from engine import config
from engine.config import ConfigError

ARCHS = tuple(a for a in config.ARCHS if a != "auto")  # "auto" is resolved by the preset (config.resolved_arch)


def build_model(arch: str, num_classes: int, in_shape: tuple, pretrained: bool = False) -> nn.Module:
    """A freshly initialised network for `num_classes` classes and per-sample inputs of `in_shape`."""
    if arch == "digits_mlp":
        model: nn.Module = DigitsMLP(math.prod(in_shape), num_classes)
    elif arch == "resnet32":
        model = ResNet32(num_classes, in_channels=in_shape[0])
    elif arch in ("resnet18", "resnet50"):
        model = _torchvision_resnet(arch, num_classes, pretrained)
    else:
        raise ConfigError(f"unknown model.arch '{arch}'; valid: {', '.join(ARCHS)}")
    return _forward_ad_safe(model)


def _forward_ad_safe(model: nn.Module) -> nn.Module:
    """Make `jvp(lambda p: functional_call(model, (p, buffers), (x,)), ...)` work in train mode.

    nn.BatchNorm bumps `num_batches_tracked` with an in-place add_, which torch.func refuses on a
    buffer captured from outside the transform. The counter only matters when momentum is None;
    with the fixed momentum used here, dropping it changes nothing. The running mean/var are
    still updated (inside the batch_norm kernel, which torch.func allows), exactly as a plain
    forward updates them. ReLUs become out-of-place for the same reason.
    """
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.momentum is not None:
            m.num_batches_tracked = None
        elif isinstance(m, nn.ReLU):
            m.inplace = False
    return model


class DigitsMLP(nn.Module):
    """Linear-BN-ReLU ×2 then Linear: trains in seconds on CPU and still exercises BatchNorm."""

    def __init__(self, in_features: int, num_classes: int, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),  # N×1×8×8 images and N×64 feature rows alike
            nn.Linear(in_features, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ShortcutA(nn.Module):
    """He et al.'s option A: subsample by `stride`, zero-pad the new channels; no parameters."""

    def __init__(self, stride: int, pad_channels: int):
        super().__init__()
        self.stride = stride
        self.pad_channels = pad_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        half = self.pad_channels // 2
        return F.pad(x, (0, 0, 0, 0, half, self.pad_channels - half))


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride != 1 or in_planes != planes:
            self.shortcut: nn.Module = ShortcutA(stride, planes - in_planes)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet32(nn.Module):
    """CIFAR ResNet-32 (He et al. 2016): 3 stages × 5 basic blocks, 16/32/64 channels, ~0.46M parameters."""

    def __init__(self, num_classes: int, in_channels: int = 3, blocks_per_stage: int = 5):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers = []
        in_planes = 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            for b in range(blocks_per_stage):
                layers.append(BasicBlock(in_planes, planes, stride if b == 0 else 1))
                in_planes = planes
        self.layers = nn.Sequential(*layers)
        self.linear = nn.Linear(64, num_classes)
        # Kaiming-normal convolutions and classifier, as in the reference CIFAR ResNets.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layers(out)
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


def _torchvision_resnet(arch: str, num_classes: int, pretrained: bool) -> nn.Module:
    import torchvision

    builder = getattr(torchvision.models, arch)
    if pretrained:
        weights = torchvision.models.get_model_weights(arch).IMAGENET1K_V1
        model = builder(weights=None)
        model.load_state_dict(_imagenet_state_dict(arch, weights))
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    else:
        model = builder(weights=None, num_classes=num_classes)
    return model


def _imagenet_state_dict(arch: str, weights) -> dict:
    cached = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))
    try:
        # Reads the cache when the file is there, downloads into it otherwise.
        return weights.get_state_dict(progress=False, check_hash=True)
    except (urllib.error.URLError, OSError, RuntimeError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(
            f"ImageNet weights for {arch} must be in the torch hub cache ({cached}) and could not be downloaded: {reason}"
        ) from None
