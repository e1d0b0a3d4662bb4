"""The training methods, by name: `make_method(name, model, num_classes, optimizer, ...)`.

What each method is lives in engine.method_table (torch-free, one row a method); this registry
maps each name to its implementation: the Method subclass, in a module of this package, whose
`name` is that row's.
"""

from __future__ import annotations

import importlib
import pkgutil

import torch
from torch import nn

from ..config import SCHEMA, ConfigError
from ..method_table import HYPERPARAMETERS, METHODS
from .base import Method, StepStats, meta_gradient
from .gdw import zero_mean_constraint

# Modules of this package that hold the shared machinery, not a method.
SUPPORT_MODULES = ("base", "forward_trace")


def implementations() -> dict[str, type[Method]]:
    """Every Method subclass defined in a method module of this package, by its `name`."""
    found: dict[str, type[Method]] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name in SUPPORT_MODULES:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for cls in vars(module).values():
            if isinstance(cls, type) and issubclass(cls, Method) and cls.__module__ == module.__name__:
                found[cls.name] = cls
    return found


REGISTRY = implementations()
if set(REGISTRY) != set(METHODS):
    raise ImportError(f"engine.method_table and engine/methods disagree: rows {sorted(METHODS)}, classes {sorted(REGISTRY)}")


def make_method(
    name: str,
    model: nn.Module,
    num_classes: int,
    optimizer: torch.optim.Optimizer,
    **hyperparameters: float,
) -> Method:
    """A method ready to `step(x, y, x_meta, y_meta, lr=...)`; `.vnet` is V (None for erm, l2rw).

    `hyperparameters`: any of outer_lr, clip, vnet_lr, vnet_weight_decay, vnet_hidden; the others
    take the preset schema's defaults.
    """
    if name not in REGISTRY:
        raise ConfigError(f"unknown method '{name}'; valid methods: {', '.join(REGISTRY)}")
    unknown = set(hyperparameters) - set(HYPERPARAMETERS)
    if unknown:
        raise TypeError(f"make_method got unknown hyperparameters {sorted(unknown)}; valid: {', '.join(HYPERPARAMETERS)}")
    values = {k: SCHEMA["train"][k].default for k in HYPERPARAMETERS} | hyperparameters
    return REGISTRY[name](model, num_classes, optimizer, **values)


__all__ = ["make_method", "Method", "StepStats", "REGISTRY", "meta_gradient", "zero_mean_constraint"]
