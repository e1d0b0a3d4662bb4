"""INSW, GLC and Co-teaching against independent references, in float64, to 1e-9.

Each reference is written here the slow, literal way from the method's own description (INSW:
docs/algorithm.md §8, a deep-copied model and a create_graph double backward, like GDW's reference
in test_methods_parity) or from the steps of the authors' official code (GLC: mmazeika/glc
CIFAR/train_ours.py — phase-1 cross-entropy, Ĉ as the per-label mean softmax of the eval-mode
model over the trusted set, transposed and indexed by the noisy label in phase 2, gold and silver
samples in one forward, (Σ corrected + Σ gold CE) / batch; Co-teaching: bhanML/Co-teaching
loss.py and main.py — per-sample losses, argsort, the exchange, np.linspace forget schedule).
The engine's code must give the same weights, Ĉ, parameters and BatchNorm statistics.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from engine.methods import make_method
from engine.methods.coteach import forget_rate
from test_methods_parity import B, C, CLIP, LR, OUTER_LR, batches, sgd, small_bn_net

TOL = dict(rtol=1e-9, atol=1e-12)


def assert_same_model(model, ref, what):
    for (n, p), p_ref in zip(model.state_dict().items(), ref.state_dict().values()):
        torch.testing.assert_close(p, p_ref, **TOL, msg=f"{what}: {n} differs")


def set_lr(opt, lr):
    for group in opt.param_groups:
        group["lr"] = lr


# --- INSW ------------------------------------------------------------------------------------------


def ref_insw_step(model, vnet, opt, vopt, x, y, xm, ym, lr):
    meta_model = copy.deepcopy(model)
    names = [n for n, _ in meta_model.named_parameters()]
    params = [p for _, p in meta_model.named_parameters()]
    out = meta_model(x)
    loss_i = F.cross_entropy(out, y, reduction="none")
    v = vnet(loss_i.detach().view(-1, 1))  # one weight per sample, B×1
    v.retain_grad()
    grads = torch.autograd.grad((v.view(-1) * loss_i).mean(), params, create_graph=True)
    virtual = {n: p - lr * g for n, p, g in zip(names, params, grads)}
    meta_loss = F.cross_entropy(functional_call(meta_model, virtual, (xm,)), ym)
    vopt.zero_grad()
    meta_loss.backward()
    vopt.step()
    dv = v.grad
    w = (v.detach() - torch.clamp(OUTER_LR * dv / dv.abs().sum(), -CLIP, CLIP)).clamp(1e-6, 1e6)
    out2 = model(x)
    opt.zero_grad()
    (w.view(-1) * F.cross_entropy(out2, y, reduction="none")).mean().backward()
    set_lr(opt, lr)
    opt.step()
    return w, meta_loss.detach()


def test_insw_matches_its_reference():
    torch.manual_seed(0)
    model = small_bn_net()
    ref_model = copy.deepcopy(model)
    method = make_method("insw", model, num_classes=C, optimizer=sgd(model), outer_lr=OUTER_LR, clip=CLIP)
    ref_vnet = copy.deepcopy(method.vnet)
    ref_opt, ref_vopt = sgd(ref_model), torch.optim.Adam(ref_vnet.parameters(), lr=1e-3, weight_decay=1e-4)
    for it, (x, y, xm, ym) in enumerate(batches(4)):
        lr = LR * (1 - 0.1 * it)
        stats = method.step(x, y, xm, ym, lr=lr)
        w_ref, meta_ref = ref_insw_step(ref_model, ref_vnet, ref_opt, ref_vopt, x, y, xm, ym, lr)
        assert stats.class_weights.shape == (B, 1)  # one weight per sample
        torch.testing.assert_close(stats.class_weights, w_ref, **TOL)
        torch.testing.assert_close(stats.meta_loss, meta_ref, rtol=1e-10, atol=1e-12)
        assert not torch.allclose(stats.class_weights, stats.class_weights[0])  # weights differ per sample
    assert_same_model(model, ref_model, "insw")
    for p, p_ref in zip(method.vnet.parameters(), ref_vnet.parameters()):
        torch.testing.assert_close(p, p_ref, **TOL)


# --- GLC -------------------------------------------------------------------------------------------


def ref_c_hat_transpose(model, xs, labels):
    """get_C_hat_transpose: eval mode, softmax of each trusted sample, per-label mean, transposed."""
    model.eval()
    with torch.no_grad():
        probs = [row for x in xs for row in torch.softmax(model(x), 1)]
    model.train()
    labels = [int(t) for y in labels for t in y]
    c_hat = torch.zeros(C, C, dtype=torch.float64)
    for label in range(C):
        rows = [probs[i] for i in range(len(labels)) if labels[i] == label]
        c_hat[label] = torch.stack(rows).mean(0)
    return c_hat.t()


def ref_glc_phase2_step(model, opt, c_hat_t, x_silver, y_silver, x_gold, y_gold, lr):
    data = torch.cat([x_silver, x_gold])
    output = model(data)
    n = len(y_silver)
    pre1 = c_hat_t[y_silver]
    pre2 = torch.softmax(output[:n], 1) * pre1
    loss_s = -(torch.log(pre2.sum(1))).sum(0)
    loss_g = F.cross_entropy(output[n:], y_gold, reduction="sum")
    loss = (loss_s + loss_g) / len(data)
    opt.zero_grad()
    loss.backward()
    set_lr(opt, lr)
    opt.step()


def test_glc_matches_the_official_steps():
    torch.manual_seed(0)
    model = small_bn_net()
    with torch.no_grad():
        model[-1].weight.div_(40)  # softer predictions: every Ĉ entry carries weight
    initial = copy.deepcopy(model)
    ref_model = copy.deepcopy(model)
    method = make_method("glc", model, num_classes=C, optimizer=sgd(model))
    ref_opt = sgd(ref_model)
    data = list(batches(6, seed=7))
    # Phase 1: plain cross-entropy on the noisy batches.
    for it, (x, y, _, _) in enumerate(data[:3]):
        method.step(x, y, lr=LR)
        ref_opt.zero_grad()
        F.cross_entropy(ref_model(x), y).backward()
        set_lr(ref_opt, LR)
        ref_opt.step()
    assert_same_model(model, ref_model, "glc phase 1")
    # Ĉ on the trusted set (every class present), then phase 2 from the initial weights.
    g = torch.Generator().manual_seed(3)
    xs = [torch.randn(10, 3, 6, 6, generator=g, dtype=torch.float64) for _ in range(2)]
    ys = [torch.arange(10) % C, torch.randint(0, C, (10,), generator=g)]
    c_hat = method.estimate(zip(xs, ys))
    c_hat_t = ref_c_hat_transpose(ref_model, xs, ys)
    torch.testing.assert_close(c_hat.t(), c_hat_t, **TOL)
    assert torch.allclose(c_hat.sum(1), torch.ones(C, dtype=torch.float64))
    assert float((c_hat - torch.eye(C, dtype=torch.float64)).abs().max()) > 0.05  # a real estimate, not I
    method.restart(sgd(model))
    assert_same_model(model, initial, "glc restart")
    ref_model = copy.deepcopy(initial)
    ref_opt = sgd(ref_model)
    for it, (x, y, xm, ym) in enumerate(data[3:]):
        lr = LR * (1 - 0.2 * it)
        method.step(x, y, xm[:2], ym[:2], lr=lr)
        ref_glc_phase2_step(ref_model, ref_opt, c_hat_t, x, y, xm[:2], ym[:2], lr)
    assert_same_model(model, ref_model, "glc phase 2")


def test_glc_gives_a_class_without_trusted_samples_the_identity_row():
    torch.manual_seed(0)
    model = small_bn_net()
    method = make_method("glc", model, num_classes=C, optimizer=sgd(model))
    x = torch.randn(4, 3, 6, 6, dtype=torch.float64)
    c_hat = method.estimate([(x, torch.tensor([0, 0, 1, 1]))])
    torch.testing.assert_close(c_hat[2:], torch.eye(C, dtype=torch.float64)[2:], rtol=0, atol=0)
    assert not torch.equal(c_hat[0], torch.eye(C, dtype=torch.float64)[0])


# --- Co-teaching -----------------------------------------------------------------------------------


def ref_loss_coteaching(y_1, y_2, t, rate, noise_or_not):
    """loss.py's loss_coteaching, with the mean over the kept samples (see docs/algorithm.md §10)."""
    loss_1 = F.cross_entropy(y_1, t, reduction="none")
    ind_1_sorted = np.argsort(loss_1.detach().numpy())
    loss_2 = F.cross_entropy(y_2, t, reduction="none")
    ind_2_sorted = np.argsort(loss_2.detach().numpy())
    num_remember = int((1 - rate) * len(ind_1_sorted))
    pure_ratio_1 = np.sum(noise_or_not[ind_1_sorted[:num_remember]]) / float(num_remember)
    pure_ratio_2 = np.sum(noise_or_not[ind_2_sorted[:num_remember]]) / float(num_remember)
    ind_1_update, ind_2_update = ind_1_sorted[:num_remember], ind_2_sorted[:num_remember]
    loss_1_update = F.cross_entropy(y_1[ind_2_update], t[ind_2_update])
    loss_2_update = F.cross_entropy(y_2[ind_1_update], t[ind_1_update])
    return loss_1_update, loss_2_update, pure_ratio_1, pure_ratio_2


@pytest.mark.parametrize(("tau", "rise"), [(0.5, 10), (0.36, 4), (0.2, 1), (0.0, 10)])
def test_forget_rate_schedule_is_the_official_linspace(tau, rise):
    schedule = np.ones(25) * tau
    schedule[:rise] = np.linspace(0, tau, rise)
    assert [forget_rate(tau, e, rise) for e in range(25)] == pytest.approx(schedule.tolist(), abs=1e-15)


def test_coteaching_matches_the_official_steps():
    torch.manual_seed(0)
    net1, net2 = small_bn_net(), small_bn_net()  # drawn one after the other: different initial weights
    assert not torch.equal(net1[0].weight, net2[0].weight)
    ref1, ref2 = copy.deepcopy(net1), copy.deepcopy(net2)
    method = make_method("coteach", net1, num_classes=C, optimizer=sgd(net1), model2=net2, optimizer2=sgd(net2),
                         forget_rate=0.5, forget_epochs=3)
    opt1, opt2 = sgd(ref1), sgd(ref2)
    tau = 0.5
    g = torch.Generator().manual_seed(11)
    for epoch in range(4):
        method.set_epoch(epoch)
        rate = np.linspace(0, tau, 3)[epoch] if epoch < 3 else tau
        for x, y, _, _ in batches(2, seed=epoch):
            y_true = torch.where(torch.rand(B, generator=g) < 0.5, y, (y + 1) % C)  # half the labels wrong
            clean = (y == y_true).numpy()
            stats = method.step(x, y, lr=LR)
            l1, l2, pure1, pure2 = ref_loss_coteaching(ref1(x), ref2(x), y, rate, clean)
            opt1.zero_grad()
            l1.backward()
            set_lr(opt1, LR)
            opt1.step()
            opt2.zero_grad()
            l2.backward()
            set_lr(opt2, LR)
            opt2.step()
            kept = stats.kept.double()
            precision = (kept * torch.from_numpy(clean).double()[:, None]).sum(0) / kept.sum(0)
            assert precision.tolist() == pytest.approx([pure1, pure2], abs=1e-12)
            assert int(kept[:, 0].sum()) == int((1 - rate) * B)
    assert_same_model(net1, ref1, "coteach net 1")
    assert_same_model(net2, ref2, "coteach net 2")
