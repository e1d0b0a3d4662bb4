"""The training methods, by name: `make_method(name, model, num_classes, optimizer, ...)`.

The list of names and their descriptions lives in engine.config.METHODS (torch-free);
this registry maps each name to its implementation.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import METHODS, ConfigError
from .base import Method, StepStats, meta_gradient
from .erm import ERM
from .gdw import GDW, GDWNoZeroMean, zero_mean_constraint
from .l2rw import L2RW
from .mwnet import MWNet

REGISTRY: dict[str, type[Method]] = {cls.name: cls for cls in (ERM, L2RW, MWNet, GDW, GDWNoZeroMean)}
assert set(REGISTRY) == set(METHODS), "engine.config.METHODS and the registry disagree"


def make_method(
    name: str,
    model: nn.Module,
    num_classes: int,
    optimizer: torch.optim.Optimizer,
    outer_lr: float = 100.0,
    clip: float = 0.2,
    vnet_lr: float = 1e-3,
    vnet_weight_decay: float = 1e-4,
    vnet_hidden: int = 100,
) -> Method:
    """A method ready to `step(x, y, x_meta, y_meta, lr=...)`; `.vnet` is V (None for erm, l2rw)."""
    if name not in REGISTRY:
        raise ConfigError(f"unknown method '{name}'; valid methods: {', '.join(REGISTRY)}")
    return REGISTRY[name](
        model, num_classes, optimizer, outer_lr=outer_lr, clip=clip,
        vnet_lr=vnet_lr, vnet_weight_decay=vnet_weight_decay, vnet_hidden=vnet_hidden,
    )


__all__ = ["make_method", "Method", "StepStats", "REGISTRY", "meta_gradient", "zero_mean_constraint"]
