"""engine.models: shapes, parameter counts, initialisation, and forward-mode AD through functional_call."""

from __future__ import annotations

import copy
import os
import urllib.error

import pytest
import torch
from torch import nn
from torch.func import functional_call, jvp

from engine.config import ConfigError
from engine.models import ShortcutA, build_model


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_resnet32_size_and_output():
    torch.manual_seed(0)
    model = build_model("resnet32", 10, (3, 32, 32))
    assert n_params(model) == 464_154  # He et al.'s "0.46M"
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert build_model("resnet32", 100, (3, 32, 32)).linear.out_features == 100
    blocks = [m for m in model.modules() if m.__class__.__name__ == "BasicBlock"]
    assert len(blocks) == 15


def test_resnet32_option_a_shortcuts_have_no_parameters():
    model = build_model("resnet32", 10, (3, 32, 32))
    shortcuts = [m for m in model.modules() if isinstance(m, ShortcutA)]
    assert len(shortcuts) == 2 and all(n_params(s) == 0 for s in shortcuts)
    x = torch.randn(2, 16, 32, 32)
    y = shortcuts[0](x)
    assert y.shape == (2, 32, 16, 16)
    assert torch.equal(y[:, 8:24], x[:, :, ::2, ::2]) and not y[:, :8].any() and not y[:, 24:].any()


def test_init_is_deterministic_under_manual_seed():
    for arch, shape in (("resnet32", (3, 32, 32)), ("digits_mlp", (64,))):
        torch.manual_seed(5)
        a = build_model(arch, 10, shape)
        torch.manual_seed(5)
        b = build_model(arch, 10, shape)
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


# Small 8×8 inputs keep float64 forward-mode AD through the convolutions quick on CPU.
@pytest.mark.parametrize("arch,shape", [("resnet32", (3, 8, 8)), ("digits_mlp", (64,))])
def test_jvp_through_functional_call_in_train_mode(arch, shape):
    torch.manual_seed(0)
    model = build_model(arch, 10, shape).double().train()
    plain = copy.deepcopy(model)
    params = dict(model.named_parameters())
    buffers = dict(model.named_buffers())
    tangents = {k: torch.randn_like(v) for k, v in params.items()}
    x = torch.randn(4, *shape, dtype=torch.double)

    out, jout = jvp(lambda p: functional_call(model, (p, buffers), (x,)), (params,), (tangents,))
    assert out.shape == jout.shape == (4, 10)
    # The forward equals a plain one, and updates the BatchNorm running stats the same way.
    assert torch.allclose(out, plain(x))
    assert all(torch.allclose(a, b) for a, b in zip(model.buffers(), plain.buffers()))
    # J·t agrees with reverse mode: u·(J t) = (Jᵀu)·t for any u.
    u = torch.randn_like(out)
    grads = torch.autograd.grad((plain(x) * u).sum(), list(plain.parameters()))
    reverse = sum((g * t).sum() for g, t in zip(grads, tangents.values()))
    assert (u * jout).sum().item() == pytest.approx(reverse.item(), rel=1e-9)


def test_digits_mlp_shapes():
    model = build_model("digits_mlp", 10, (64,))
    assert any(isinstance(m, nn.BatchNorm1d) for m in model.modules())
    assert model(torch.rand(4, 64)).shape == (4, 10)
    assert model(torch.rand(4, 1, 8, 8)).shape == (4, 10)


def test_torchvision_resnets_replace_the_classifier():
    model = build_model("resnet18", 7, (3, 32, 32))
    assert model.fc.out_features == 7 and model(torch.randn(2, 3, 32, 32)).shape == (2, 7)
    assert build_model("resnet50", 5, (3, 224, 224)).fc.out_features == 5


def test_pretrained_weights_come_from_the_hub_cache(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    fake = torchvision.models.resnet18().state_dict()  # stands in for the ImageNet file
    os.makedirs(tmp_path / "hub" / "checkpoints")
    torch.save(fake, tmp_path / "hub" / "checkpoints" / os.path.basename(url))
    model = build_model("resnet18", 3, (3, 224, 224), pretrained=True)
    assert torch.equal(model.conv1.weight, fake["conv1.weight"]) and model.fc.out_features == 3


def test_pretrained_weights_missing_without_network(tmp_path, monkeypatch):
    import torchvision.models._api as api

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    with pytest.raises(ConfigError, match="torch hub cache"):
        build_model("resnet50", 10, (3, 224, 224), pretrained=True)


def test_unknown_arch():
    with pytest.raises(ConfigError, match="resnet32"):
        build_model("vgg", 10, (3, 32, 32))
