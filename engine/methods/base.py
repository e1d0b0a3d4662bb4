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
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jvp

from ..method_table import METHODS
from ..optim import Adam
from ..vnet import VNet
from .forward_trace import RecordedForward, buffer_copies, record_forward

if TYPE_CHECKING:
    from .context import RunContext

# Outer-stepped weights are clamped to this range (docs/algorithm.md §2, step 4).
WEIGHT_MIN, WEIGHT_MAX = 1e-6, 1e6

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
    meta_labels: torch.Tensor | None = None  # the clean batch's labels (set by train_step; for meta accuracy)
    kept: torch.Tensor | None = None  # B×K bool: the samples each of K networks selected (Co-teaching)


@dataclass
class MetaGradient:
    """Result of the virtual step + meta forward: ∂L_meta/∂w for the weights w of G = E ⊙ w / B."""

    d_weights: torch.Tensor  # same shape as the weights: B×C, or B×1 for instance weights
    meta_loss: torch.Tensor
    meta_logits: torch.Tensor


def scalar_for_backward(outputs: torch.Tensor, grad_outputs: torch.Tensor) -> torch.Tensor:
    """⟨outputs, grad_outputs⟩: its gradient is exactly the backward of `outputs` with `grad_outputs`
    (the sum's backward is ones, the product's multiplies them by grad_outputs: bit for bit).

    Why not `outputs.backward(grad_outputs)` / `grad_outputs=`: torch imports sympy (through
    torch.fx.experimental.symbolic_shapes, 0.7–0.9 s here) on the first backward given an explicit
    output gradient, which every run of a meta method paid inside its first iteration.
    """
    return (outputs * grad_outputs.detach()).sum()


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
        grads = torch.autograd.grad(scalar_for_backward(logits, error * w / batch), params, retain_graph=True, allow_unused=True)
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
    """Base class: one iteration (`step`) and, in a run, everything the method owns and when.

    As a library: `step(x, y, x_meta, y_meta, lr)` runs one full iteration and updates the model
    in place (engine.methods.make_method builds one around your model and optimizer).

    In a run (engine.trainer), the loop hands the method a RunContext (engine.methods.context) and
    calls, in order: `for_run` (build the models and optimisers it owns), then per epoch
    `start_epoch`, `train_step` for each training batch, and `end_epoch` (which may restart a
    phase and returns the method's fields of the epoch event). `eval_models` are tested after
    each epoch (the first one is the run's accuracy); `state_dict` covers all the method owns.
    """

    name = "base"  # the method's row in engine.method_table
    hyperparameters: tuple[str, ...] = ()  # the train.* fields it takes (defaults: engine.config.SCHEMA)
    companions: tuple[str, ...] = ()  # further objects make_method passes on (Co-teaching's second network)

    def __init__(self, model: nn.Module, num_classes: int, optimizer: torch.optim.Optimizer):
        self.uses_meta = METHODS[self.name].has_meta_step
        self.model = model
        self.train_forward: nn.Module = model  # the training forward (a compiled module with train.compile)
        self.num_classes = num_classes
        self.optimizer = optimizer
        self._recorded: RecordedForward | None = None
        self.vnet: VNet | None = None
        self.vnet_optimizer: torch.optim.Optimizer | None = None

    # -- in a run -------------------------------------------------------------------------------

    @classmethod
    def for_run(cls, ctx: RunContext, **hyperparameters) -> Method:
        """The method with the models and optimisers it owns, built through the run's context."""
        model = ctx.build_model()
        return cls(model, ctx.num_classes, ctx.make_optimizer(model), **hyperparameters)

    @staticmethod
    def loop_epochs(epochs: int) -> int:
        """How many epochs the loop runs for `train.epochs` (Co-teaching trains two nets for half)."""
        return epochs

    def lr(self, ctx: RunContext) -> float:
        """This epoch's learning rate: the cosine over the run's epochs."""
        return ctx.cosine_lr(ctx.epoch, ctx.epochs)

    def start_epoch(self, ctx: RunContext) -> None:
        """Called at the start of every epoch, and of the epoch a resumed run continues."""

    def train_step(self, x: torch.Tensor, y: torch.Tensor, ctx: RunContext) -> StepStats:
        """One iteration on a training batch; the meta methods draw their clean batch here."""
        x_meta = y_meta = None
        if self.uses_meta:
            x_meta, y_meta = ctx.clean_batch()
        stats = self.step(x, y, x_meta, y_meta, lr=self.lr(ctx))
        stats.meta_labels = y_meta
        return stats

    def end_epoch(self, ctx: RunContext) -> dict[str, Any]:
        """After the epoch's test: may restart a phase; returns the method's fields of the epoch event."""
        return {}

    def eval_models(self) -> list[nn.Module]:
        """The networks tested after each epoch; the first one's accuracy is the run's."""
        return [self.model]

    def compile_training_forward(self) -> None:
        """train.compile: the plain training forward through torch.compile. The meta methods' forwards
        stay eager: they are recorded for the forward-mode pass (engine.methods.forward_trace)."""
        if not self.uses_meta:
            self.train_forward = torch.compile(self.model)

    def first_scored_epoch(self) -> int:
        """final_acc averages the last epochs from this one on (GLC: phase 2's)."""
        return 0

    def summary(self) -> dict[str, Any]:
        """What the method adds to summary.json (GLC: its Ĉ)."""
        return {}

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
            logits = self.train_forward(x)
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
        scalar_for_backward(logits, grad_logits).backward()

    # -- checkpointing ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything the method owns (a method that owns more extends it)."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])

    def weight_function(self, losses: torch.Tensor) -> torch.Tensor | None:
        """V(ℓ) on the given losses (for the UI's weighting-function curve), or None."""
        if self.vnet is None:
            return None
        with torch.no_grad():
            return self.vnet(losses).reshape(-1)


class VNetMethod(Method):
    """A method with the weighting network V(ℓ; φ) and its Adam optimiser (MW-Net, GDW, INSW)."""

    hyperparameters = ("vnet_lr", "vnet_weight_decay", "vnet_hidden")

    def __init__(self, model, num_classes, optimizer, *, vnet_lr: float, vnet_weight_decay: float, vnet_hidden: int):
        super().__init__(model, num_classes, optimizer)
        param = next(model.parameters())
        self.vnet = VNet(vnet_hidden).to(device=param.device, dtype=param.dtype)
        self.vnet_optimizer = Adam(self.vnet.parameters(), lr=vnet_lr, weight_decay=vnet_weight_decay)

    def _vnet_step(self, weights: torch.Tensor, d_weights: torch.Tensor) -> None:
        """One Adam step on φ with ∂L_meta/∂φ = (∂w/∂φ)ᵀ ∂L_meta/∂w."""
        self.vnet_optimizer.zero_grad(set_to_none=True)
        scalar_for_backward(weights, d_weights).backward()
        self.vnet_optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {"vnet": self.vnet.state_dict(), "vnet_optimizer": self.vnet_optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.vnet.load_state_dict(state["vnet"])
        self.vnet_optimizer.load_state_dict(state["vnet_optimizer"])


class OuterStepMethod(VNetMethod):
    """V plus GDW's normalised, clipped outer step on the weights (GDW, INSW)."""

    hyperparameters = ("outer_lr", "clip") + VNetMethod.hyperparameters

    def __init__(self, model, num_classes, optimizer, *, outer_lr: float, clip: float, **vnet):
        super().__init__(model, num_classes, optimizer, **vnet)
        self.outer_lr, self.clip = outer_lr, clip

    def outer_step(self, weights: torch.Tensor, d_weights: torch.Tensor) -> torch.Tensor:
        """w ← clamp(w − clip(η · ∂L/∂w / Σ|∂L/∂w|, −c, c), 10⁻⁶, 10⁶)   (docs/algorithm.md §2, step 4)."""
        step = torch.clamp(self.outer_lr * d_weights / d_weights.abs().sum(), -self.clip, self.clip)
        return torch.clamp(weights.detach() - step, WEIGHT_MIN, WEIGHT_MAX)
