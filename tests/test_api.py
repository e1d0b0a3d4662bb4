"""The public API exactly as README shows it: a method's step called from a researcher's own loop."""

from __future__ import annotations

import torch
from torch import nn

from engine.methods import make_method


def test_readme_api_example_runs_and_learns():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10))
    method = make_method("gdw", model, num_classes=10, optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4), outer_lr=100.0, clip=0.2)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 8, 8, generator=g)
    y = torch.randint(0, 10, (64,), generator=g)
    x_meta, y_meta = x[:32], y[:32]
    losses = []
    for _ in range(30):
        stats = method.step(x, y, x_meta, y_meta, lr=0.05)   # one full iteration, model updated in place
        losses.append(float(stats.loss))
    assert stats.class_weights.shape == (64, 10)            # B×C ω used (GDW)
    assert stats.meta_loss.ndim == 0
    assert isinstance(method.vnet, nn.Module)               # the weighting network V
    assert method.optimizer.param_groups[0]["lr"] == 0.05    # lr is set on the optimizer for the real step
    assert losses[-1] < 0.5 * losses[0]                       # it fits the batch


def test_instance_methods_return_a_weight_per_sample():
    torch.manual_seed(0)
    for name in ("l2rw", "mwnet"):
        model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
        method = make_method(name, model, num_classes=3, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
        stats = method.step(torch.randn(12, 5), torch.randint(0, 3, (12,)), torch.randn(6, 5), torch.randint(0, 3, (6,)), lr=0.1)
        assert stats.class_weights.shape == (12,)
        assert (method.vnet is None) == (name == "l2rw")
