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
from ..method_table import METHODS
from .base import Method, StepStats, meta_gradient
from .gdw import zero_mean_constraint

# Modules of this package that hold the shared machinery, not a method.
SUPPORT_MODULES = ("base", "context", "forward_trace")


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


# Every hyperparameter some method declares (each is a train.* field of the preset schema).
ALL_HYPERPARAMETERS = tuple(dict.fromkeys(k for cls in REGISTRY.values() for k in cls.hyperparameters))


def method_class(name: str) -> type[Method]:
    if name not in REGISTRY:
        raise ConfigError(f"unknown method '{name}'; valid methods: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def make_method(
    name: str,
    model: nn.Module,
    num_classes: int,
    optimizer: torch.optim.Optimizer,
    **hyperparameters,
) -> Method:
    """A method ready to `step(x, y, x_meta, y_meta, lr=...)`; `.vnet` is V (None without one).

    `hyperparameters`: the method's own (its class's `hyperparameters`, e.g. outer_lr, clip, vnet_lr,
    vnet_weight_decay, vnet_hidden for GDW) take the given value, the others the preset schema's
    default; another method's hyperparameter is accepted and ignored (one call can build any method),
    a name no method takes is a TypeError. Co-teaching also takes its second network and optimiser:
    `model2=..., optimizer2=...`.
    """
    cls = method_class(name)
    unknown = set(hyperparameters) - set(ALL_HYPERPARAMETERS) - set(cls.companions)
    if unknown:
        valid = ", ".join(ALL_HYPERPARAMETERS + cls.companions)
        raise TypeError(f"make_method got unknown hyperparameters {sorted(unknown)}; valid: {valid}")
    own = {k: v for k, v in hyperparameters.items() if k in cls.hyperparameters or k in cls.companions}
    values = {k: SCHEMA["train"][k].default for k in cls.hyperparameters} | own
    return cls(model, num_classes, optimizer, **values)


__all__ = ["make_method", "method_class", "Method", "StepStats", "REGISTRY", "meta_gradient", "zero_mean_constraint"]
