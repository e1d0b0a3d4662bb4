"""What the training loop lends a method (engine.trainer builds one `RunContext` per run).

A method owns its models, optimisers and schedule; it builds them through this context, reaches
the clean (meta) set through it, and reads where the run is (epoch, iteration) from it. The
clean-set cursor lives here, so its state is checkpointed with the run (`state_dict`).
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import torch
from torch import nn

from ..optim import SGD


def cosine_lr(base_lr: float, epoch: int, epochs: int) -> float:
    """lr_e = lr · (1 + cos(π e / E)) / 2, set once per epoch (docs/algorithm.md §2, step 5)."""
    return base_lr * (1 + math.cos(math.pi * epoch / epochs)) / 2


class RunContext:
    def __init__(self, cfg: dict[str, Any], data, device: torch.device, epochs: int, iters_per_epoch: int,
                 aug_gen: torch.Generator, augment: bool, meta_batch_size: int):
        from ..config import resolved_arch

        self.cfg, self.train = cfg, cfg["train"]
        self.data, self.device = data, device
        self.num_classes = data.num_classes
        self.epochs = epochs  # the loop's epochs (a method may train fewer than train.epochs: Co-teaching)
        self.iters_per_epoch = iters_per_epoch
        self.epoch = 0  # set by the loop: the epoch in progress (at end_epoch: the one just finished)
        self.iter = 0
        self.arch = resolved_arch(cfg)
        self.augment, self.aug_gen = augment, aug_gen
        self.meta_batch_size = meta_batch_size
        self.meta_labels = data.meta.labels.to(device)
        # The clean-set cursor: fresh shuffled passes over the meta set, drawn from their own generator.
        self.meta_gen = torch.Generator().manual_seed(self.train["seed"] + 1)
        self.meta_perm = torch.empty(0, dtype=torch.long)
        self.meta_pos = 0

    # -- building what a method owns ----------------------------------------------------------------

    def build_model(self) -> nn.Module:
        """A freshly initialised network of the preset's architecture, drawn from torch's RNG (seeded by the run)."""
        from ..models import build_model

        model = build_model(self.arch, self.num_classes, tuple(self.data.in_shape), self.cfg["model"]["pretrained"])
        model = model.to(self.device)
        if self.train["channels_last"] and len(self.data.in_shape) == 3:
            model = model.to(memory_format=torch.channels_last)
        return model

    def make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        """The preset's optimiser: SGD with train.lr, train.momentum, train.weight_decay (torch's, via engine/optim.py)."""
        t = self.train
        return SGD(model.parameters(), lr=t["lr"], momentum=t["momentum"], weight_decay=t["weight_decay"])

    def cosine_lr(self, epoch: int, epochs: int) -> float:
        return cosine_lr(self.train["lr"], epoch, epochs)

    @property
    def noise_matrix(self) -> list[list[float]] | None:
        """The C×C corruption matrix the run's labels were drawn from (None without noise)."""
        return self.data.noise_matrix

    def expected_corruption(self) -> float:
        """The fraction of training labels the run's noise model changes: 1 − mean_i T[i, i] (0 without noise).

        Uniform noise at rate r over C classes gives r(C−1)/C, flip and flip2 give r.
        """
        T = self.noise_matrix
        return 0.0 if T is None else 1.0 - sum(T[i][i] for i in range(len(T))) / len(T)

    # -- the clean set ------------------------------------------------------------------------------

    def to_format(self, x: torch.Tensor) -> torch.Tensor:
        if self.train["channels_last"] and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def clean_batch(self, size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The next `size` (default: the meta batch size) clean samples, augmented like training batches."""
        size = min(size or self.meta_batch_size, self.data.meta.size)
        if self.meta_pos >= len(self.meta_perm):
            self.meta_perm = torch.randperm(self.data.meta.size, generator=self.meta_gen)
            self.meta_pos = 0
        idx = self.meta_perm[self.meta_pos : self.meta_pos + size]
        self.meta_pos += size
        x = self.to_format(self.data.meta.batch(idx, self.augment, self.aug_gen))
        return x, self.meta_labels[idx.to(self.device, non_blocking=True)]

    def clean_set(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The whole clean set in order, with the test transform (no augmentation), in test-sized batches."""
        n, bs = self.data.meta.size, self.train["test_batch_size"]
        for start in range(0, n, bs):
            idx = torch.arange(start, min(n, start + bs))
            yield self.to_format(self.data.meta.batch(idx, False, None)), self.meta_labels[idx.to(self.device)]

    def state_dict(self) -> dict[str, Any]:
        return {"meta_gen": self.meta_gen.get_state(), "meta_perm": self.meta_perm.clone(), "meta_pos": self.meta_pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.meta_gen.set_state(state["meta_gen"])
        self.meta_perm = state["meta_perm"].cpu()
        self.meta_pos = int(state["meta_pos"])
