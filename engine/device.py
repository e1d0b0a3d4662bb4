"""Which device a run trains on, and its name for the events."""

from __future__ import annotations

import platform

import torch

from .config import cuda_index


def resolve_device(spec: str) -> torch.device:
    """auto → CUDA when present, else CPU; an unavailable device is a one-line ConfigError."""
    spec = spec.strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return torch.device(f"cuda:{cuda_index(spec, count)}")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
