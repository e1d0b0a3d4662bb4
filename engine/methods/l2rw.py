"""L2RW (Ren et al. 2018): per-batch instance weights from the sign of one meta-gradient."""

from __future__ import annotations

import torch

from .base import Method, StepStats, one_hot


class L2RW(Method):
    name = "l2rw"

    def _iteration(self, x, y, logits, losses, x_meta, y_meta, lr) -> StepStats:
        # ε_i = 0: the virtual loss Σ ε_i ℓ_i goes through the (unclamped) softmax.
        error = (torch.softmax(logits.detach(), dim=1) - one_hot(y, self.num_classes, logits)).detach()
        eps = torch.zeros(len(y), 1, dtype=logits.dtype, device=logits.device)
        meta = self._meta_gradient(x, logits, error, eps, x_meta, y_meta, lr, zero_weights=True)

        # w_i = max(−∂L_meta/∂ε_i, 0), normalised to sum 1 unless every w_i is 0.
        w = torch.clamp(-meta.d_weights.reshape(-1), min=0)
        total = w.sum()
        w = torch.where(total > 0, w / torch.where(total > 0, total, torch.ones_like(total)), w)

        # Actual step: loss Σ_i w_i ℓ_i, i.e. logit gradient (p − y) ⊙ w (no 1/B: w sums to 1).
        self._actual_update(logits, error * w[:, None])
        return StepStats(
            loss=losses.mean(), logits=logits.detach(), class_weights=w, target_weights=w,
            meta_loss=meta.meta_loss, meta_logits=meta.meta_logits,
        )
