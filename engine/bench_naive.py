"""GDW written the way the authors' code does it (docs/algorithm.md §4, §7) — for `gdw bench` only.

Per iteration it rebuilds the model twice (construct + load_state_dict), forwards the training
batch three times, runs one backward through the network whose result is thrown away, and gets
the meta-gradient by differentiating through a create_graph double backward. As in that code,
the logit error p − y keeps its graph through the softmax (only p's value is clamped), so the
thrown-away backward and the meta backward also flow through the network via p. It computes the same numbers as
engine.methods' GDW (a test checks that), so the benchmark compares like with like.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from .config import SCHEMA
from .methods.base import StepStats, set_lr
from .methods.base import WEIGHT_MAX as OMEGA_MAX, WEIGHT_MIN as OMEGA_MIN
from .methods.gdw import P_MAX, zero_mean_constraint
from .optim import Adam  # as the engine builds it, so the comparison is the algorithm's, not the optimiser wrapper's
from .vnet import VNet


class NaiveGDW:
    name = "gdw-naive"
    uses_meta = True

    def __init__(self, model: nn.Module, build: Callable[[], nn.Module], num_classes: int,
                 optimizer: torch.optim.Optimizer):
        # The preset schema's defaults, as `make_method` gives the lean GDW it is compared with.
        train = {k: f.default for k, f in SCHEMA["train"].items()}
        self.model, self.build, self.C = model, build, num_classes
        self.optimizer, self.outer_lr, self.clip = optimizer, train["outer_lr"], train["clip"]
        param = next(model.parameters())
        self.vnet = VNet(train["vnet_hidden"]).to(device=param.device, dtype=param.dtype)
        self.vnet_optimizer = Adam(self.vnet.parameters(), lr=train["vnet_lr"],
                                               weight_decay=train["vnet_weight_decay"])

    def _rebuild(self) -> nn.Module:
        p = next(self.model.parameters())
        meta_model = self.build().to(device=p.device, dtype=p.dtype)
        meta_model.load_state_dict(self.model.state_dict())
        return meta_model

    def step(self, x, y, x_meta, y_meta, lr: float = 0.1) -> StepStats:
        B = len(y)
        self.model.train()
        # 1. first rebuild and first forward
        meta_model = self._rebuild()
        meta_model.train()
        names = [n for n, _ in meta_model.named_parameters()]
        params = [p for _, p in meta_model.named_parameters()]
        out = meta_model(x)
        # As there, only p's value is clamped (p.data): p keeps its graph into the network, so the
        # thrown-away backward below and the double backward both run through the whole model.
        p_graph = torch.softmax(out, 1)
        p = p_graph.detach().clamp(0, P_MAX)
        error = p_graph + (p - p_graph).detach() - F.one_hot(y, self.C).to(out.dtype)
        losses = F.cross_entropy(out, y, reduction="none").detach()
        omega = zero_mean_constraint(self.vnet(losses).expand(B, self.C), p, y)
        G = error * omega / B
        # 2. the backward whose result is thrown away, then the create_graph double backward
        G.sum().backward(retain_graph=True)
        omega.retain_grad()  # only from here on, as in the authors' code, so the gradient above is not kept
        grads = torch.autograd.grad(out, params, grad_outputs=G, create_graph=True)
        virtual = {n: w - lr * g for n, w, g in zip(names, params, grads)}
        # 3. meta loss at θ', back-propagated through the double graph into V and ω
        meta_logits = functional_call(meta_model, virtual, (x_meta,))
        meta_loss = F.cross_entropy(meta_logits, y_meta)
        self.vnet_optimizer.zero_grad()
        meta_loss.backward()
        self.vnet_optimizer.step()
        g = omega.grad
        updated = torch.clamp(omega.detach() - torch.clamp(self.outer_lr * g / g.abs().sum(), -self.clip, self.clip),
                              OMEGA_MIN, OMEGA_MAX)
        # 4. second rebuild and second (unused) forward, then the third forward on the real model
        unused = self._rebuild()
        unused.train()
        unused(x)
        out = self.model(x)
        p = torch.softmax(out, 1).detach().clamp(0, P_MAX)
        error = p - F.one_hot(y, self.C).to(out.dtype)
        used = zero_mean_constraint(updated, p, y)
        self.optimizer.zero_grad(set_to_none=True)
        out.backward(error * used / B)
        set_lr(self.optimizer, lr)
        self.optimizer.step()
        rows = torch.arange(B, device=y.device)
        return StepStats(loss=losses.mean(), logits=out.detach(), class_weights=used, target_weights=used[rows, y],
                         meta_loss=meta_loss.detach(), meta_logits=meta_logits.detach())
