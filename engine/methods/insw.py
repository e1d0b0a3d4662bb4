"""INSW: instance-level weights GDW's way (docs/algorithm.md §8).

GDW's weight generation stopped at its first stage: V(ℓ) gives each sample one weight, one
normalised, clipped outer step moves it along its meta-gradient (GDW's outer_lr and clip), and
the actual update uses that one weight per sample — no class expansion, no zero-mean constraint.
"""

from __future__ import annotations

import torch

from .base import OuterStepMethod, StepStats, one_hot


class INSW(OuterStepMethod):
    name = "insw"

    def _iteration(self, x, y, logits, losses, x_meta, y_meta, lr) -> StepStats:
        batch = len(y)
        # One weight per sample weights the loss, as MW-Net's does: the (unclamped) softmax error p − y.
        error = (torch.softmax(logits.detach(), dim=1) - one_hot(y, self.num_classes, logits)).detach()
        v = self.vnet(losses)  # B×1, graph into φ
        meta = self._meta_gradient(x, logits, error, v, x_meta, y_meta, lr)
        self._vnet_step(v, meta.d_weights)
        # The outer step on the B×1 weights, then the actual update with them: loss mean_i(w_i ℓ_i).
        w = self.outer_step(v, meta.d_weights)
        self._actual_update(logits, error * w / batch)
        return StepStats(
            loss=losses.mean(), logits=logits.detach(), class_weights=w, target_weights=w.reshape(-1),
            meta_loss=meta.meta_loss, meta_logits=meta.meta_logits,
        )
