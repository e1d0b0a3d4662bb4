"""Each method against a deliberately naive reference written here from docs/algorithm.md §2, in float64.

The reference does what the spec describes the slow way: it deep-copies the model for the
virtual step, differentiates through a create_graph double backward, applies the zero-mean
constraint with a Python loop, and forwards the training batch again for the actual step.
The engine must produce the same parameters, BN statistics, V and weights after several
iterations on a model with BatchNorm.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from engine.methods import make_method
from engine.methods.forward_trace import record_forward

C, B, BM = 5, 8, 6
LR, OUTER_LR, CLIP = 0.3, 100.0, 0.2


def small_bn_net() -> nn.Module:
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, C),
    ).double()
    with torch.no_grad():
        net[-1].weight.mul_(40)  # confident predictions, so the p ≤ 0.999 clamp is exercised
    return net


class Untraceable(nn.Module):
    """The same network behind a data-dependent branch: torch.fx cannot trace it, so the
    meta-gradient falls back from the recorded tangent pass to torch.func.jvp."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x) if bool(torch.isfinite(x).all()) else self.net(torch.nan_to_num(x))


def test_reference_batches_exercise_the_probability_clamp():
    torch.manual_seed(0)
    p = torch.softmax(small_bn_net()(next(batches(1))[0]), 1)
    assert (p > 0.999).any()


def batches(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        yield (
            torch.randn(B, 3, 6, 6, generator=g, dtype=torch.float64),
            torch.randint(0, C, (B,), generator=g),
            torch.randn(BM, 3, 6, 6, generator=g, dtype=torch.float64),
            torch.randint(0, C, (BM,), generator=g),
        )


def ref_constraint(omega, p, y):
    rows = []
    for i in range(len(y)):
        t = int(y[i])
        row = [omega[i, j] for j in range(omega.shape[1])]
        row[t] = sum(omega[i, j] * p[i, j] for j in range(omega.shape[1]) if j != t) / (1 - p[i, t])
        rows.append(torch.stack(row))
    return torch.stack(rows)


def ref_step(method, model, vnet, opt, vopt, x, y, xm, ym, lr):
    """One iteration, naively. Returns the weights used in the actual update."""
    meta_model = copy.deepcopy(model)  # the virtual step must not touch the real model or its BN stats
    names = [n for n, _ in meta_model.named_parameters()]
    params = [p for _, p in meta_model.named_parameters()]
    out = meta_model(x)
    yoh = F.one_hot(y, C).double()
    loss_i = F.cross_entropy(out, y, reduction="none")

    if method == "l2rw":
        eps = torch.zeros(B, dtype=torch.float64, requires_grad=True)
        grads = torch.autograd.grad((eps * loss_i).sum(), params, create_graph=True)
    elif method == "mwnet":
        v = vnet(loss_i.detach().view(-1, 1)).view(-1)
        grads = torch.autograd.grad((v * loss_i).mean(), params, create_graph=True)
    else:
        p = torch.softmax(out, 1).detach().clamp(0, 0.999)
        v = vnet(loss_i.detach().view(-1, 1)).repeat(1, C)
        if method == "gdw":
            v = ref_constraint(v, p, y)
        v.retain_grad()
        grads = torch.autograd.grad(out, params, grad_outputs=(p - yoh) * v / B, create_graph=True)

    virtual = {n: p - lr * g for n, p, g in zip(names, params, grads)}
    meta_loss = F.cross_entropy(functional_call(meta_model, virtual, (xm,)), ym)

    if method == "l2rw":
        (g_eps,) = torch.autograd.grad(meta_loss, eps)
        w = torch.clamp(-g_eps, min=0)
        w = w / w.sum() if w.sum() > 0 else w
    else:
        vopt.zero_grad()
        meta_loss.backward()
        vopt.step()
        if method == "mwnet":
            with torch.no_grad():
                w = vnet(loss_i.detach().view(-1, 1)).view(-1)
        else:
            dv = v.grad
            w = (v.detach() - torch.clamp(OUTER_LR * dv / dv.abs().sum(), -CLIP, CLIP)).clamp(1e-6, 1e6)

    # The actual step forwards the batch again through the real model (as the authors' code does).
    out2 = model(x)
    opt.zero_grad()
    if method == "l2rw":
        (w * F.cross_entropy(out2, y, reduction="none")).sum().backward()
    elif method == "mwnet":
        (w * F.cross_entropy(out2, y, reduction="none")).mean().backward()
    else:
        p2 = torch.softmax(out2, 1).detach().clamp(0, 0.999)
        if method == "gdw":
            w = ref_constraint(w, p2, y)
        out2.backward((p2 - yoh) * w / B)
    for group in opt.param_groups:
        group["lr"] = lr
    opt.step()
    return w.detach(), meta_loss.detach()


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9, weight_decay=5e-4)


@pytest.mark.parametrize("jvp_path", ["recorded", "torch.func.jvp"])
@pytest.mark.parametrize("name", ["erm", "l2rw", "mwnet", "gdw", "gdw-nozm"])
def test_method_matches_naive_reference(name, jvp_path):
    torch.manual_seed(0)
    model = small_bn_net() if jvp_path == "recorded" else Untraceable(small_bn_net())
    model.eval()  # (no statistics update from this check)
    assert (record_forward(model, next(batches(1))[0])[1] is not None) == (jvp_path == "recorded")
    model.train()
    ref_model = copy.deepcopy(model)
    method = make_method(name, model, num_classes=C, optimizer=sgd(model), outer_lr=OUTER_LR, clip=CLIP)
    start = copy.deepcopy(model.state_dict())
    ref_opt = sgd(ref_model)
    ref_vnet = ref_vopt = None
    if method.vnet is not None:
        ref_vnet = copy.deepcopy(method.vnet)
        ref_vopt = torch.optim.Adam(ref_vnet.parameters(), lr=1e-3, weight_decay=1e-4)

    for it, (x, y, xm, ym) in enumerate(batches(4)):
        lr = LR * (1 - 0.1 * it)  # the per-iteration lr is used for both the virtual and the real step
        stats = method.step(x, y, xm, ym, lr=lr)
        if name == "erm":
            ref_opt.zero_grad()
            F.cross_entropy(ref_model(x), y).backward()
            for group in ref_opt.param_groups:
                group["lr"] = lr
            ref_opt.step()
            continue
        w_ref, meta_ref = ref_step(name.replace("-nozm", "_nozm"), ref_model, ref_vnet, ref_opt, ref_vopt, x, y, xm, ym, lr)
        torch.testing.assert_close(stats.meta_loss, meta_ref, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(stats.class_weights.reshape(w_ref.shape), w_ref, rtol=1e-9, atol=1e-12)

    for (n, p), p_ref in zip(model.state_dict().items(), ref_model.state_dict().values()):
        torch.testing.assert_close(p, p_ref, rtol=1e-9, atol=1e-12, msg=f"{name}: {n} differs")
    if ref_vnet is not None:
        for p, p_ref in zip(method.vnet.parameters(), ref_vnet.parameters()):
            torch.testing.assert_close(p, p_ref, rtol=1e-9, atol=1e-12)
    # The run really moved: parity is not trivially satisfied by nothing happening. Every
    # parameter and BN statistic differs from where this model started.
    unchanged = [n for n, p in model.state_dict().items() if p.is_floating_point() and torch.allclose(p, start[n])]
    assert unchanged == []


def test_gdw_weights_satisfy_zero_mean_constraint():
    torch.manual_seed(1)
    model = small_bn_net()
    method = make_method("gdw", model, num_classes=C, optimizer=sgd(model))
    for x, y, xm, ym in batches(3, seed=3):
        stats = method.step(x, y, xm, ym, lr=LR)
        p = torch.softmax(stats.logits, 1).clamp(0, 0.999)
        weighted = (stats.class_weights * (p - F.one_hot(y, C).double())).sum(1)
        torch.testing.assert_close(weighted, torch.zeros(B, dtype=torch.float64), atol=1e-12, rtol=0)
        assert stats.class_weights.shape == (B, C)
        assert (stats.class_weights > 0).all()


def test_gdw_without_constraint_breaks_zero_mean():
    torch.manual_seed(1)
    model = small_bn_net()
    method = make_method("gdw-nozm", model, num_classes=C, optimizer=sgd(model))
    x, y, xm, ym = next(batches(1, seed=3))
    stats = method.step(x, y, xm, ym, lr=LR)
    p = torch.softmax(stats.logits, 1).clamp(0, 0.999)
    weighted = (stats.class_weights * (p - F.one_hot(y, C).double())).sum(1)
    assert weighted.abs().max() > 1e-4


def test_l2rw_weights_are_normalised_and_nonnegative():
    torch.manual_seed(2)
    model = small_bn_net()
    method = make_method("l2rw", model, num_classes=C, optimizer=sgd(model))
    for x, y, xm, ym in batches(5, seed=4):
        w = method.step(x, y, xm, ym, lr=LR).class_weights
        assert (w >= 0).all()
        total = float(w.sum())
        assert total == pytest.approx(1.0, abs=1e-12) or total == 0.0


def test_gdw_outer_step_is_clipped():
    torch.manual_seed(3)
    model = small_bn_net()
    method = make_method("gdw-nozm", model, num_classes=C, optimizer=sgd(model), outer_lr=1e9, clip=0.05)
    x, y, xm, ym = next(batches(1, seed=5))
    with torch.no_grad():
        v0 = method.vnet(F.cross_entropy(model(x), y, reduction="none")).reshape(-1, 1).expand(B, C).clone()
    torch.manual_seed(3)
    model2 = small_bn_net()
    method2 = make_method("gdw-nozm", model2, num_classes=C, optimizer=sgd(model2), outer_lr=1e9, clip=0.05)
    method2.vnet.load_state_dict(method.vnet.state_dict())
    stats = method2.step(x, y, xm, ym, lr=LR)
    change = (stats.class_weights - v0).abs()
    # A huge outer lr saturates the clip: no entry moves by more than c, and most move by exactly c.
    assert float(change.max()) == pytest.approx(0.05, abs=1e-12)
    assert float((change - 0.05).abs().lt(1e-9).double().mean()) > 0.5


def test_meta_methods_require_a_meta_batch():
    model = small_bn_net()
    method = make_method("gdw", model, num_classes=C, optimizer=sgd(model))
    x, y, _, _ = next(batches(1))
    with pytest.raises(ValueError, match="meta batch"):
        method.step(x, y, lr=LR)


def test_scalar_for_backward_is_the_explicit_gradient_backward_bit_for_bit():
    from engine.methods.base import scalar_for_backward

    def grads(use_scalar: bool) -> list[torch.Tensor]:
        torch.manual_seed(3)
        net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
        x, g = torch.randn(7, 3, 8, 8), torch.randn(7, 5)
        out = net(x)
        if use_scalar:
            virtual = torch.autograd.grad(scalar_for_backward(out, g), list(net.parameters()), retain_graph=True)
            scalar_for_backward(out, g * 3).backward()
        else:
            virtual = torch.autograd.grad(out, list(net.parameters()), grad_outputs=g, retain_graph=True)
            out.backward(g * 3)
        return list(virtual) + [p.grad for p in net.parameters()]

    for a, b in zip(grads(True), grads(False), strict=True):
        assert torch.equal(a, b)
