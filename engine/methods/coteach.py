"""Co-teaching (Han et al., NeurIPS 2018): two networks teach each other (docs/algorithm.md §10).

Each batch goes through both networks; each network ranks the batch by its own per-sample loss
and keeps the (1 − R(e)) fraction with the smallest loss; network 1 is updated on the samples
network 2 kept, and vice versa. R(e) rises linearly from 0 to τ over the first T_k epochs.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .base import Method, StepStats, set_lr


def forget_rate(tau: float, epoch: int, rise_epochs: int) -> float:
    """R(e) for the 0-based epoch e: the official code's np.linspace(0, τ, T_k)[e] for e < T_k, then τ."""
    if epoch >= rise_epochs:
        return tau
    return tau * epoch / (rise_epochs - 1) if rise_epochs > 1 else 0.0


class CoTeaching(Method):
    name = "coteach"
    hyperparameters = ("forget_rate", "forget_epochs")
    companions = ("model2", "optimizer2")

    def __init__(self, model, num_classes, optimizer, *, model2, optimizer2, forget_rate: float, forget_epochs: int):
        super().__init__(model, num_classes, optimizer)
        if not 0 <= forget_rate < 1:
            raise ValueError(f"Co-teaching's forget_rate τ must be in [0, 1) (got {forget_rate})")
        self.model2, self.optimizer2 = model2, optimizer2
        self.train_forward2 = model2
        self.tau, self.rise_epochs = forget_rate, forget_epochs
        self.forget_rate = 0.0  # R(e) of the epoch in progress (set_epoch)

    @classmethod
    def for_run(cls, ctx, *, forget_rate: float, forget_epochs: int) -> CoTeaching:
        """Two networks drawn one after the other from the run's seed: different initial weights."""
        net1 = ctx.build_model()
        net2 = ctx.build_model()
        tau = ctx.expected_corruption() if forget_rate < 0 else forget_rate
        return cls(net1, ctx.num_classes, ctx.make_optimizer(net1), model2=net2, optimizer2=ctx.make_optimizer(net2),
                   forget_rate=tau, forget_epochs=forget_epochs)

    @staticmethod
    def loop_epochs(epochs: int) -> int:
        """Two networks, each trained for half the run's epochs, rounded up: the paper's 40 of 80 on CIFAR
        (appendix C, "for a fair comparison") and 3 of Clothing1M's 5 (appendix E)."""
        return (epochs + 1) // 2

    def set_epoch(self, epoch: int) -> None:
        self.forget_rate = forget_rate(self.tau, epoch, self.rise_epochs)

    def start_epoch(self, ctx) -> None:
        self.set_epoch(ctx.epoch)

    def end_epoch(self, ctx) -> dict[str, Any]:
        return {"forget_rate": round(self.forget_rate, 6)}

    def eval_models(self) -> list[torch.nn.Module]:
        return [self.model, self.model2]  # network 1's accuracy is the run's

    def compile_training_forward(self) -> None:
        self.train_forward = torch.compile(self.model)
        self.train_forward2 = torch.compile(self.model2)

    def step(self, x, y, x_meta=None, y_meta=None, lr: float = 0.1) -> StepStats:
        self.model.train()
        self.model2.train()
        logits1, logits2 = self.train_forward(x), self.train_forward2(x)
        loss1 = F.cross_entropy(logits1, y, reduction="none")
        loss2 = F.cross_entropy(logits2, y, reduction="none")
        keep = max(1, int((1 - self.forget_rate) * len(y)))
        small1 = torch.argsort(loss1.detach(), stable=True)[:keep]  # network 1's small-loss samples
        small2 = torch.argsort(loss2.detach(), stable=True)[:keep]
        # The exchange: each network learns from the samples the other one kept (mean over them).
        update1 = F.cross_entropy(logits1[small2], y[small2])
        update2 = F.cross_entropy(logits2[small1], y[small1])
        self.optimizer.zero_grad(set_to_none=True)
        self.optimizer2.zero_grad(set_to_none=True)
        (update1 + update2).backward()  # two separate graphs: each network gets its own gradient
        for opt in (self.optimizer, self.optimizer2):
            set_lr(opt, lr)
            opt.step()
        kept = torch.zeros(len(y), 2, dtype=torch.bool, device=y.device)
        kept[small1, 0] = True
        kept[small2, 1] = True
        used1 = kept[:, 1].to(logits1.dtype)  # network 1's weight on each sample: 1 where it trained on it
        return StepStats(loss=loss1.detach().mean(), logits=logits1.detach(), class_weights=used1,
                         target_weights=used1, kept=kept)

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {"model2": self.model2.state_dict(), "optimizer2": self.optimizer2.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.model2.load_state_dict(state["model2"])
        self.optimizer2.load_state_dict(state["optimizer2"])
