"""ERM: plain mean cross-entropy, no meta step — the baseline every ratio is measured against."""

from __future__ import annotations

import torch

from .base import Method, StepStats


class ERM(Method):
    name = "erm"

    def _iteration(self, x, y, logits, losses, x_meta, y_meta, lr) -> StepStats:
        self.optimizer.zero_grad(set_to_none=True)
        losses_graph = torch.nn.functional.cross_entropy(logits, y)
        losses_graph.backward()
        ones = torch.ones_like(losses)
        return StepStats(loss=losses.mean(), logits=logits.detach(), class_weights=ones, target_weights=ones)
