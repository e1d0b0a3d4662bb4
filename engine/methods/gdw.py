"""GDW: class-level weights ω (B×C) on the logit gradient, learned by a clipped meta step (docs/algorithm.md §2–3).

`gdw-nozm` is the same method without the zero-mean constraint (appendix B.2 ablation).
"""

from __future__ import annotations

import torch

from .base import OuterStepMethod, StepStats, one_hot

# p is clamped so that 1 − p_t ≥ 0.001 in the zero-mean constraint.
P_MAX = 0.999


def zero_mean_constraint(omega: torch.Tensor, p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Rewrite the target column so that Σ_j ω_j (p_j − y_j) = 0 for every sample (appendix B):

        ω_t = Σ_{j≠t} ω_j p_j / (1 − p_t)

    `p` is the detached, clamped softmax. Out of place, so gradients flow to the other columns.
    """
    rows = torch.arange(len(y), device=y.device)
    p_t = p[rows, y]
    others = (omega * p).sum(dim=1) - omega[rows, y] * p_t
    return omega.index_put((rows, y), others / (1 - p_t))


class GDW(OuterStepMethod):
    name = "gdw"
    zero_mean = True

    def _constrain(self, omega: torch.Tensor, p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return zero_mean_constraint(omega, p, y) if self.zero_mean else omega

    def _iteration(self, x, y, logits, losses, x_meta, y_meta, lr) -> StepStats:
        batch, classes = logits.shape
        # Step 1: p detached and clamped to [0, 0.999]; the logit error is p − y.
        p = torch.softmax(logits.detach(), dim=1).clamp(0, P_MAX)
        error = p - one_hot(y, classes, logits)

        # Step 2: ω_ij = V(ℓ_i) for every class j, then the zero-mean constraint.
        omega = self._constrain(self.vnet(losses).expand(batch, classes), p, y)

        # Steps 3–4: meta-gradient ∂L_meta/∂ω (after the constraint); Adam step on φ through it.
        meta = self._meta_gradient(x, logits, error, omega, x_meta, y_meta, lr)
        self._vnet_step(omega, meta.d_weights)

        # Outer step on ω: normalised, clipped, then clamped.
        before = omega.detach()
        updated = self.outer_step(omega, meta.d_weights)

        # Step 5: re-apply the constraint and back-propagate G = (p − y) ⊙ ω / B into θ.
        used = self._constrain(updated, p, y)
        self._actual_update(logits, error * used / batch)
        rows = torch.arange(batch, device=y.device)
        return StepStats(
            loss=losses.mean(), logits=logits.detach(), class_weights=used, target_weights=used[rows, y],
            meta_loss=meta.meta_loss, meta_logits=meta.meta_logits, omega_increased=updated > before,
        )


class GDWNoZeroMean(GDW):
    name = "gdw-nozm"
    zero_mean = False
