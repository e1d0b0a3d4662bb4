"""GLC, Gold Loss Correction (Hendrycks et al., NeurIPS 2018), in two phases (docs/algorithm.md §9).

Phase 1 trains with plain cross-entropy on the noisy training set. At its end the phase-1 model,
in eval mode, estimates the corruption matrix on the trusted (clean meta) set: row i of Ĉ is the
mean softmax over the trusted samples whose label is i, so Ĉ[i, j] ≈ p(observed j | true i).
Phase 2 restarts from the run's initial weights with a fresh optimiser and schedule; a noisy
sample with observed label ỹ costs −log Σ_i softmax(x)_i Ĉ[i, ỹ], a trusted one plain
cross-entropy, and both kinds share every batch.
"""

from __future__ import annotations

import copy
from typing import Any, Iterable

import torch
import torch.nn.functional as F

from .base import Method, StepStats, set_lr


@torch.no_grad()
def estimate_c_hat(model: torch.nn.Module, trusted: Iterable[tuple[torch.Tensor, torch.Tensor]],
                   num_classes: int) -> torch.Tensor:
    """Ĉ (C×C, float64): row i = mean softmax of the model (eval mode) over the trusted samples labelled i.

    A class with no trusted sample gets the identity row (no corruption assumed): the official
    code would average nothing (NaN). The clean set of this project has every class, so it does
    not happen in a run; a library caller may pass fewer samples.
    """
    was_training = model.training
    model.eval()
    sums = torch.zeros(num_classes, num_classes, dtype=torch.float64)
    counts = torch.zeros(num_classes, dtype=torch.float64)
    for x, y in trusted:
        p = torch.softmax(model(x), dim=1).double().cpu()
        sums.index_add_(0, y.cpu(), p)
        counts.index_add_(0, y.cpu(), torch.ones(len(y), dtype=torch.float64))
    model.train(was_training)
    c_hat = sums / counts.clamp(min=1)[:, None]
    empty = counts == 0
    c_hat[empty] = torch.eye(num_classes, dtype=torch.float64)[empty]
    return c_hat


class GLC(Method):
    name = "glc"
    hyperparameters = ("glc_phase1_epochs",)

    def __init__(self, model, num_classes, optimizer, *, glc_phase1_epochs: int):
        super().__init__(model, num_classes, optimizer)
        self.phase1_epochs = glc_phase1_epochs  # 0: half of the run's epochs (resolved by for_run)
        self.c_hat: torch.Tensor | None = None  # set at the end of phase 1; phase 2 uses it
        self.initial_state: dict | None = copy.deepcopy(model.state_dict())  # phase 2 restarts from it
        self.true_matrix: list[list[float]] | None = None  # the run's corruption matrix (for the summary)

    @classmethod
    def for_run(cls, ctx, **hyperparameters) -> GLC:
        method = super().for_run(ctx, **hyperparameters)
        method.phase1_epochs = method.phase1_epochs or ctx.epochs // 2
        C = ctx.num_classes
        method.true_matrix = ctx.noise_matrix
        if method.true_matrix is None and ctx.cfg["data"]["dataset"] != "imagefolder":
            # Labels the engine left uncorrupted: the truth is the identity. (An image folder's labels
            # may carry real-world noise of unknown matrix, Clothing1M's: none is claimed.)
            method.true_matrix = [[float(i == j) for j in range(C)] for i in range(C)]
        return method

    # -- the two phases ------------------------------------------------------------------------

    def phase(self, epoch: int) -> int:
        return 1 if epoch < self.phase1_epochs else 2

    def lr(self, ctx) -> float:
        """Each phase has its own cosine schedule: over phase 1's epochs, then over the rest."""
        if self.phase(ctx.epoch) == 1:
            return ctx.cosine_lr(ctx.epoch, self.phase1_epochs)
        return ctx.cosine_lr(ctx.epoch - self.phase1_epochs, ctx.epochs - self.phase1_epochs)

    def trusted_per_batch(self, batch: int, ctx) -> int:
        """Trusted samples joined to a noisy batch: their share of a shuffled union of both sets (≥ 1),
        as the official code's single loader over trusted and noisy data gives on average."""
        return max(1, round(batch * ctx.data.meta.size / ctx.data.train.size))

    def train_step(self, x, y, ctx) -> StepStats:
        if self.c_hat is None:
            return self.step(x, y, lr=self.lr(ctx))
        x_trusted, y_trusted = ctx.clean_batch(self.trusted_per_batch(len(y), ctx))
        return self.step(x, y, x_trusted, y_trusted, lr=self.lr(ctx))

    def end_epoch(self, ctx) -> dict[str, Any]:
        fields: dict[str, Any] = {"phase": self.phase(ctx.epoch)}
        if self.c_hat is None and ctx.epoch >= self.phase1_epochs - 1:
            self.estimate(ctx.clean_set())
            fields["c_hat"] = [[round(v, 6) for v in row] for row in self.c_hat.tolist()]
            self.restart(ctx.make_optimizer(self.model))
        return fields

    def estimate(self, trusted: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """Ĉ from the current (phase-1) model; from now on `step` uses the corrected loss."""
        self.c_hat = estimate_c_hat(self.model, trusted, self.num_classes)
        return self.c_hat

    def restart(self, optimizer: torch.optim.Optimizer) -> None:
        """Phase 2: the initial weights again, and a fresh optimiser."""
        self.model.load_state_dict(self.initial_state)
        self.optimizer = optimizer
        self.initial_state = None

    def first_scored_epoch(self) -> int:
        return self.phase1_epochs  # final_acc: phase 2's last epochs

    def summary(self) -> dict[str, Any]:
        """summary.json's `glc`: Ĉ, the matrix the noise was drawn from, their mean |difference|, the split."""
        if self.c_hat is None:
            return {}
        c_hat, T = self.c_hat.tolist(), self.true_matrix
        error = None
        if T is not None:
            error = round(sum(abs(c_hat[i][j] - T[i][j]) for i in range(len(T)) for j in range(len(T))) / len(T) ** 2, 6)
        return {"glc": {"c_hat": [[round(v, 6) for v in row] for row in c_hat], "true_matrix": T,
                        "mean_abs_error": error, "phase1_epochs": self.phase1_epochs}}

    # -- the iteration -------------------------------------------------------------------------

    def step(self, x, y, x_meta=None, y_meta=None, lr: float = 0.1) -> StepStats:
        """Phase 1 (no Ĉ yet): mean cross-entropy. Phase 2: the noisy batch x, y and the trusted
        samples x_meta, y_meta forwarded together; the loss is (Σ corrected + Σ trusted CE) / all."""
        self.model.train()
        n = len(y)
        both = self.c_hat is not None and x_meta is not None
        logits_all = self.train_forward(torch.cat([x, x_meta]) if both else x)
        logits = logits_all[:n]
        losses = F.cross_entropy(logits, y, reduction="none")
        if self.c_hat is None:
            loss = losses.mean()
        else:
            c_hat = self.c_hat.to(device=logits.device, dtype=logits.dtype)
            # Σ_i softmax(x)_i Ĉ[i, ỹ]: the probability the model gives to observing ỹ.
            observed = (torch.softmax(logits, dim=1) * c_hat.t()[y]).sum(dim=1)
            total = -torch.log(observed).sum()
            if both:
                total = total + F.cross_entropy(logits_all[n:], y_meta, reduction="sum")
            loss = total / len(logits_all)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        set_lr(self.optimizer, lr)
        self.optimizer.step()
        ones = torch.ones_like(losses.detach())
        return StepStats(loss=losses.detach().mean(), logits=logits.detach(), class_weights=ones, target_weights=ones)

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {"c_hat": self.c_hat, "initial_state": self.initial_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.c_hat = state["c_hat"]
        self.initial_state = state["initial_state"]
