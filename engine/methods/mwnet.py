"""MW-Net (Shu et al. 2019): instance weights from a weighting network V(ℓ) trained on the meta loss."""

from __future__ import annotations

import torch

from .base import StepStats, VNetMethod, one_hot


class MWNet(VNetMethod):
    name = "mwnet"

    def _iteration(self, x, y, logits, losses, x_meta, y_meta, lr) -> StepStats:
        batch = len(y)
        # The virtual loss mean_i(v_i ℓ_i) goes through the (unclamped) softmax: error = p − y.
        error = (torch.softmax(logits.detach(), dim=1) - one_hot(y, self.num_classes, logits)).detach()
        v = self.vnet(losses)  # B×1, graph into φ
        meta = self._meta_gradient(x, logits, error, v, x_meta, y_meta, lr)
        self._vnet_step(v, meta.d_weights)

        # Actual step with the updated φ, no gradient into φ: loss mean_i(w_i ℓ_i).
        with torch.no_grad():
            w = self.vnet(losses)
        self._actual_update(logits, error * w / batch)
        w = w.reshape(-1)
        return StepStats(
            loss=losses.mean(), logits=logits.detach(), class_weights=w, target_weights=w,
            meta_loss=meta.meta_loss, meta_logits=meta.meta_logits,
        )
