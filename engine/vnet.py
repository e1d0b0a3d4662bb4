"""The weighting network V(ℓ; φ) of MW-Net and GDW: loss in, instance weight in (0, 1) out."""

from __future__ import annotations

import torch
from torch import nn


class VNet(nn.Module):
    """Linear(1→hidden) → ReLU → Linear(hidden→1) → sigmoid (docs/algorithm.md §1)."""

    def __init__(self, hidden: int):  # train.vnet_hidden
        super().__init__()
        self.hidden = nn.Linear(1, hidden)
        self.out = nn.Linear(hidden, 1)

    def forward(self, loss: torch.Tensor) -> torch.Tensor:
        """loss: per-sample losses, shape (B,) or (B, 1) → weights of shape (B, 1)."""
        h = torch.relu(self.hidden(loss.reshape(-1, 1)))
        return torch.sigmoid(self.out(h))
