"""The shared shape of one training iteration, and the meta-gradient written once (docs/algorithm.md §2, §4).

Every method does: one forward of the training batch (graph kept), optionally a meta step
that yields ∂L_meta/∂w for the logit-gradient weights w, then the actual update, which
back-propagates a weighted logit gradient G through the SAME forward. No model is rebuilt
and the training batch is forwarded once (plus one tangent-only forward-mode pass for the
meta-gradient, which reuses the values that forward recorded: engine.methods.forward_trace).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jvp

from ..method_table import METHODS
from ..vnet import VNet
from .forward_trace import RecordedForward, buffer_copies, record_forward

# torch.func.jvp loads torch's JVP decompositions, which call the deprecated torch.jit.script
# inside torch itself: a FutureWarning on every run's stderr that the user can do nothing about.
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)


@dataclass
class StepStats:
    """What one iteration did. Tensors are detached and stay on the device (no sync per step)."""

    loss: torch.Tensor  # mean training cross-entropy w.r.t. the observed labels
    logits: torch.Tensor  # B×C training logits (for accuracy against true labels)
    class_weights: torch.Tensor  # B×C ω used in the actual update (GDW) or B instance weights
    target_weights: torch.Tensor  # B: the weight on each sample's observed-label class
    meta_loss: torch.Tensor | None = None
    meta_logits: torch.Tensor | None = None
    omega_increased: torch.Tensor | None = None  # B×C bool: ω went up in the outer step (GDW)


@dataclass
class MetaGradient:
    """Result of the virtual step + meta forward: ∂L_meta/∂w for the weights w of G = E ⊙ w / B."""

    d_weights: torch.Tensor  # same shape as the weights: B×C, or B×1 for instance weights
    meta_loss: torch.Tensor
    meta_logits: torch.Tensor


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def one_hot(y: torch.Tensor, num_classes: int, like: torch.Tensor) -> torch.Tensor:
    return F.one_hot(y, num_classes).to(like.dtype)


def meta_gradient(
    model: nn.Module,
    x: torch.Tensor,
    logits: torch.Tensor,
    error: torch.Tensor,
    weights: torch.Tensor,
    x_meta: torch.Tensor,
    y_meta: torch.Tensor,
    lr: float,
    zero_weights: bool = False,
    recorded: RecordedForward | None = None,
) -> MetaGradient:
    """∂L_meta/∂w for one virtual SGD step θ' = θ − lr · Jᵀ(error ⊙ w / B)   (docs/algorithm.md §2 steps 3–4, §4).

    `logits` is the training batch's forward at θ (graph kept), `error` the detached B×C logit
    error (p − y), `weights` the B×C or B×1 weights w (only their value is used here), or a
    B×1 zero tensor with `zero_weights=True` (L2RW's ε = 0: then g = 0 and θ' = θ, so the
    virtual backward is skipped).

    The virtual step is linear in w, so with u = ∇_θ' L_meta (a first-order backward at θ'):

        ∂L_meta/∂w = −(lr / B) · error ⊙ (J u)            (summed over classes for B×1 weights)

    where J u, the Jacobian of the training logits w.r.t. θ applied to u, is one
    Jacobian-vector product. This is exact — the same numbers as differentiating through a
    create_graph double backward — and cheaper. With `recorded` (the training forward made by
    `record_forward`) only the tangents are computed; without it `torch.func.jvp` recomputes the
    forward too. BatchNorm runs in train mode on copies of the running statistics, so the real
    model's statistics only see the real forward.
    """
    batch = logits.shape[0]
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in model.named_parameters() if p.requires_grad]
    w = weights.detach()

    # Virtual step θ' = θ − lr·g with g = Jᵀ G.
    if not zero_weights:
        grads = torch.autograd.grad(logits, params, grad_outputs=error * w / batch, retain_graph=True, allow_unused=True)
        virtual = {n: (p.detach() - lr * g if g is not None else p.detach()).requires_grad_() for n, p, g in zip(names, params, grads)}
    else:
        virtual = {n: p.detach().clone().requires_grad_() for n, p in zip(names, params)}

    # Meta loss at θ' and u = ∇_θ' L_meta.
    meta_logits = functional_call(model, (virtual, buffer_copies(model)), (x_meta,))
    meta_loss = F.cross_entropy(meta_logits, y_meta)
    u = torch.autograd.grad(meta_loss, list(virtual.values()), allow_unused=True)
    tangents = {n: (t if t is not None else torch.zeros_like(virtual[n])) for n, t in zip(names, u)}

    # J u: one forward-mode pass of the training batch at θ.
    if recorded is not None:
        ju = recorded.jvp(tangents)
    else:
        # The statistics are copied inside the function: a transform may not mutate captured tensors.
        primals = {n: p.detach() for n, p in zip(names, params)}
        _, ju = jvp(lambda p: functional_call(model, (p, buffer_copies(model)), (x,)), (primals,), (tangents,))

    d_weights = -(lr / batch) * error * ju
    if weights.shape[1] == 1:
        d_weights = d_weights.sum(dim=1, keepdim=True)
    return MetaGradient(d_weights=d_weights, meta_loss=meta_loss.detach(), meta_logits=meta_logits.detach())


class Method:
    """Base class: holds the model, its optimizer and (for MW-Net and GDW) the weighting network V.

    `step(x, y, x_meta, y_meta, lr)` runs one full iteration and updates the model in place.
    """

    name = "base"  # the method's row in engine.method_table

    def __init__(
        self,
        model: nn.Module,
        num_classes: int,
        optimizer: torch.optim.Optimizer,
        *,
        outer_lr: float,
        clip: float,
        vnet_lr: float,
        vnet_weight_decay: float,
        vnet_hidden: int,
    ):
        info = METHODS[self.name]
        self.uses_meta = info.has_meta_step
        self.uses_vnet = info.has_weighting_network
        self.model = model
        self.num_classes = num_classes
        self.optimizer = optimizer
        self.outer_lr = outer_lr
        self.clip = clip
        self._recorded: RecordedForward | None = None
        self.vnet: VNet | None = None
        self.vnet_optimizer: torch.optim.Optimizer | None = None
        if self.uses_vnet:
            param = next(model.parameters())
            self.vnet = VNet(vnet_hidden).to(device=param.device, dtype=param.dtype)
            self.vnet_optimizer = torch.optim.Adam(self.vnet.parameters(), lr=vnet_lr, weight_decay=vnet_weight_decay)

    # -- the iteration -------------------------------------------------------------------------

    def step(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        x_meta: torch.Tensor | None = None,
        y_meta: torch.Tensor | None = None,
        lr: float = 0.1,
    ) -> StepStats:
        if self.uses_meta and (x_meta is None or y_meta is None):
            raise ValueError(f"method {self.name} needs a meta batch (x_meta, y_meta)")
        self.model.train()
        # The one forward of the training batch; its graph serves both steps. Meta methods record
        # it, so that the meta-gradient's forward-mode pass computes tangents only.
        if self.uses_meta:
            logits, self._recorded = record_forward(self.model, x)
        else:
            logits = self.model(x)
        losses = F.cross_entropy(logits, y, reduction="none")
        try:
            stats = self._iteration(x, y, logits, losses.detach(), x_meta, y_meta, lr)
        finally:
            self._recorded = None  # the recorded values are this iteration's only
        set_lr(self.optimizer, lr)
        self.optimizer.step()
        return stats

    def _iteration(self, x, y, logits, losses, x_meta, y_meta, lr) -> StepStats:  # pragma: no cover
        raise NotImplementedError

    def _meta_gradient(self, x, logits, error, weights, x_meta, y_meta, lr, zero_weights=False) -> MetaGradient:
        """`meta_gradient` on this method's model, with this iteration's recorded forward."""
        return meta_gradient(self.model, x, logits, error, weights, x_meta, y_meta, lr,
                             zero_weights=zero_weights, recorded=self._recorded)

    def _actual_update(self, logits: torch.Tensor, grad_logits: torch.Tensor) -> None:
        """Back-propagate the weighted logit gradient G through the retained forward into θ."""
        self.optimizer.zero_grad(set_to_none=True)
        logits.backward(grad_logits)

    def _vnet_step(self, weights: torch.Tensor, d_weights: torch.Tensor) -> None:
        """One Adam step on φ with ∂L_meta/∂φ = (∂w/∂φ)ᵀ ∂L_meta/∂w."""
        assert self.vnet_optimizer is not None
        self.vnet_optimizer.zero_grad(set_to_none=True)
        weights.backward(d_weights)
        self.vnet_optimizer.step()

    # -- checkpointing ---------------------------------------------------------------------------

    def state_dict(self) -> dict:
        if self.vnet is None:
            return {}
        return {"vnet": self.vnet.state_dict(), "vnet_optimizer": self.vnet_optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if self.vnet is not None:
            self.vnet.load_state_dict(state["vnet"])
            self.vnet_optimizer.load_state_dict(state["vnet_optimizer"])

    def weight_function(self, losses: torch.Tensor) -> torch.Tensor | None:
        """V(ℓ) on the given losses (for the UI's weighting-function curve), or None."""
        if self.vnet is None:
            return None
        with torch.no_grad():
            return self.vnet(losses).reshape(-1)
