"""engine/optim.py: torch.optim's SGD and Adam, to the bit, without importing torch._dynamo."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from engine import optim
from lifecycle_helpers import ROOT

SETTINGS = {
    "SGD": dict(lr=0.1, momentum=0.9, weight_decay=5e-4),
    "Adam": dict(lr=1e-3, weight_decay=1e-4),
}


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))


def _train(model, opt, steps: range) -> None:
    for i in steps:
        g = torch.Generator().manual_seed(i)
        x, y = torch.randn(8, 6, generator=g), torch.randint(0, 3, (8,), generator=g)
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_every_step_is_torch_optims_to_the_bit_and_checkpoints_cross_load(name):
    torch_cls, ours_cls = getattr(torch.optim, name), getattr(optim, name)
    assert issubclass(ours_cls, torch_cls)

    reference = _net()
    ref_opt = torch_cls(reference.parameters(), **SETTINGS[name])
    _train(reference, ref_opt, range(12))

    # Ours from the start, then a torch.optim checkpoint resumed by ours and one of ours resumed by torch.optim.
    ours = _net()
    ours_opt = ours_cls(ours.parameters(), **SETTINGS[name])
    _train(ours, ours_opt, range(4))
    via_torch = _net()
    via_torch.load_state_dict(ours.state_dict())
    via_torch_opt = torch_cls(via_torch.parameters(), **SETTINGS[name])
    via_torch_opt.load_state_dict(ours_opt.state_dict())
    _train(via_torch, via_torch_opt, range(4, 8))
    back = _net()
    back.load_state_dict(via_torch.state_dict())
    back_opt = ours_cls(back.parameters(), **SETTINGS[name])
    back_opt.load_state_dict(via_torch_opt.state_dict())
    _train(back, back_opt, range(8, 12))

    for p, q in zip(reference.parameters(), back.parameters(), strict=True):
        assert torch.equal(p, q)
    assert ref_opt.state_dict()["param_groups"] == back_opt.state_dict()["param_groups"]
    for a, b in zip(ref_opt.state_dict()["state"].values(), back_opt.state_dict()["state"].values(), strict=True):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_step_updates_leaves_with_gradients_off_and_leaves_grad_mode_as_it_was():
    model = _net()
    opt = optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    model(torch.randn(2, 6)).sum().backward()
    opt.step()  # an in-place update of leaves that require grad: raises unless gradients are off inside
    assert torch.is_grad_enabled()
    assert all(not torch.equal(p, b) for p, b in zip(model.parameters(), before))
    with torch.no_grad():
        opt.step()
        assert not torch.is_grad_enabled()


USE_BOTH = """
import sys, torch
from {module} import SGD, Adam
model, vnet = torch.nn.Linear(4, 3), torch.nn.Linear(1, 1)
sgd = SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
adam = Adam(vnet.parameters(), lr=1e-3, weight_decay=1e-4)
for _ in range(2):
    sgd.zero_grad(); adam.zero_grad()
    (model(torch.randn(2, 4)).sum() + vnet(torch.randn(2, 1)).sum()).backward()
    sgd.step(); adam.step()
sgd.load_state_dict(sgd.state_dict()); adam.load_state_dict(adam.state_dict())
print("torch._dynamo" in sys.modules)
"""


@pytest.mark.parametrize("module, imports_dynamo", [("engine.optim", False), ("torch.optim", True)])
def test_using_the_optimisers_never_imports_torch_dynamo(module, imports_dynamo):
    # torch.optim's own classes are the control: on this torch they do import it (1.6-1.9 s of a run's start).
    r = subprocess.run([sys.executable, "-c", USE_BOTH.format(module=module)], capture_output=True, text=True,
                       cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == str(imports_dynamo)
