"""The tangent-only forward-mode pass (engine.methods.forward_trace) against torch.func.jvp, in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jvp

from engine.methods.forward_trace import record_forward
from engine.models import build_model


def reference_jvp(model: nn.Module, x: torch.Tensor, tangents: dict[str, torch.Tensor]) -> torch.Tensor:
    """torch.func.jvp over the whole model: primal and tangent together, statistics on copies."""
    params = {n: p.detach() for n, p in model.named_parameters()}
    dots = {n: tangents.get(n, torch.zeros_like(p)) for n, p in params.items()}
    buffers = lambda: {n: b.clone() for n, b in model.named_buffers()}  # noqa: E731
    return jvp(lambda p: functional_call(model, (p, buffers()), (x,)), (params,), (dots,))[1]


def random_tangents(model: nn.Module, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {n: torch.randn(p.shape, generator=g, dtype=p.dtype) for n, p in model.named_parameters() if p.requires_grad}


class Branchy(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 3), nn.Linear(4, 3)

    def forward(self, x):
        return self.a(x) if x.sum() > 0 else self.b(x)


class SharedWeights(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)
        self.b.weight = self.a.weight

    def forward(self, x):
        return self.b(F.relu(self.a(x)))


class Odd(nn.Module):
    """Layers without a hand-written rule (generic per-node jvp), a bias-only conv, eval-mode BN, BN without affine."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.conv.weight.requires_grad_(False)  # frozen: only the bias moves
        self.bn_plain = nn.BatchNorm2d(6, affine=False)
        self.gn = nn.GroupNorm(2, 6)
        self.bn_eval = nn.BatchNorm2d(6)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(6 * 4 * 4, 5)

    def forward(self, x):
        out = torch.tanh(self.bn_plain(self.conv(x)))
        out = self.bn_eval(self.gn(out)) * 2.0 + out
        out = self.pool(F.leaky_relu(out, 0.1))
        return self.head(out.flatten(1))


def _double(model: nn.Module) -> nn.Module:
    return model.double()


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: build_model("resnet32", 10, (3, 16, 16)), (3, 16, 16)),
        (lambda: build_model("resnet18", 7, (3, 16, 16)), (3, 16, 16)),
        (lambda: build_model("digits_mlp", 10, (64,)), (64,)),
        (Odd, (3, 8, 8)),
    ],
    ids=["resnet32", "resnet18", "digits_mlp", "generic-layers"],
)
def test_recorded_jvp_equals_torch_func_jvp(make, shape):
    torch.manual_seed(0)
    model = _double(make()).train()
    if isinstance(model, Odd):
        model.bn_eval.eval()
        with torch.no_grad():
            model.bn_eval.running_mean.uniform_(-1, 1)
            model.bn_eval.running_var.uniform_(0.5, 2)
    x = torch.randn(6, *shape, dtype=torch.float64)
    tangents = random_tangents(model)
    expected = reference_jvp(model, x, tangents)
    out, recorded = record_forward(model, x)
    assert recorded is not None
    got = recorded.jvp(tangents)
    assert got.shape == out.shape
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
    assert expected.abs().max() > 1e-3  # a real tangent, not zeros on both sides


def test_recorded_jvp_with_channels_last_memory_format():
    torch.manual_seed(0)
    model = build_model("resnet32", 10, (3, 16, 16)).double().train().to(memory_format=torch.channels_last)
    x = torch.randn(6, 3, 16, 16, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    tangents = random_tangents(model)
    expected = reference_jvp(model, x, tangents)
    _, recorded = record_forward(model, x)
    torch.testing.assert_close(recorded.jvp(tangents), expected, rtol=1e-10, atol=1e-12)


def test_recorded_forward_is_the_plain_forward():
    """Same logits, same gradients, BatchNorm statistics updated exactly once."""
    torch.manual_seed(0)
    model = build_model("resnet32", 10, (3, 16, 16)).double().train()
    twin = build_model("resnet32", 10, (3, 16, 16)).double().train()
    twin.load_state_dict(model.state_dict())
    x = torch.randn(5, 3, 16, 16, dtype=torch.float64)
    out, recorded = record_forward(model, x)
    ref = twin(x)
    assert recorded is not None
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    out.square().sum().backward()
    ref.square().sum().backward()
    for (n, p), q in zip(model.named_parameters(), twin.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-12, atol=1e-14, msg=n)
    for (n, b), c in zip(model.named_buffers(), twin.buffers()):
        torch.testing.assert_close(b, c, rtol=0, atol=0, msg=n)
    # The tangent pass leaves the statistics alone.
    before = {n: b.clone() for n, b in model.named_buffers()}
    recorded.jvp(random_tangents(model))
    for n, b in model.named_buffers():
        assert torch.equal(b, before[n]), n


def test_only_the_values_the_tangent_pass_reads_are_kept():
    model = build_model("resnet32", 10, (3, 16, 16)).train()
    _, recorded = record_forward(model, torch.randn(4, 3, 16, 16))
    nodes = list(recorded.traced.graph.nodes)
    # BatchNorm outputs and residual sums are not kept (no rule reads them); conv outputs are (BN reads them).
    assert len(recorded.values) < 0.7 * len(nodes)
    kept_ops = {str(n.target) for n in recorded.values if n.op == "call_module"}
    assert any(t.endswith("conv1") for t in kept_ops) and not any(t.endswith("bn2") for t in kept_ops)


@pytest.mark.parametrize("model", [Branchy(), SharedWeights()], ids=["data-dependent-branch", "shared-parameters"])
def test_models_that_cannot_be_recorded_fall_back(model):
    x = torch.randn(3, 4)
    out, recorded = record_forward(model, x)
    assert recorded is None
    torch.testing.assert_close(out, model(x))


def test_inplace_relu_is_not_recorded():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(inplace=True), nn.Linear(4, 2))
    assert record_forward(model, torch.randn(3, 4))[1] is None


class Broadcasting(nn.Module):
    """A residual add whose moving side is smaller than the sum (broadcast over the batch)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)
        self.offset = nn.Parameter(torch.randn(3))

    def forward(self, x):
        return self.lin(x).detach() + self.offset


def test_add_rule_broadcasts_the_tangent():
    model = Broadcasting().double()
    x = torch.randn(5, 4, dtype=torch.float64)
    _, recorded = record_forward(model, x)
    tangents = random_tangents(model)
    got = recorded.jvp(tangents)
    assert got.shape == (5, 3)
    torch.testing.assert_close(got, reference_jvp(model, x, tangents), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(got, tangents["offset"].expand(5, 3))


def test_tangent_pass_builds_no_autograd_graph():
    model = build_model("resnet32", 10, (3, 16, 16)).train()
    out, recorded = record_forward(model, torch.randn(4, 3, 16, 16))
    assert out.requires_grad
    assert not recorded.jvp(random_tangents(model)).requires_grad
