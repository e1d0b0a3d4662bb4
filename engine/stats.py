"""Running statistics for the step and weights events, accumulated on the device.

Nothing here synchronises with the device per iteration: sums stay on the device and are read
once per event, so a GPU is never stalled by bookkeeping.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from .method_table import METHODS

HIST_BINS = 20


def _r(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else float(f"{x:.{digits}g}")


class StepAccumulator:
    """Loss, meta loss and accuracies over the current event window and the current epoch."""

    # columns of the sums: loss, meta loss, correct (true labels), meta correct
    def __init__(self, device: torch.device, method: str):
        self.device = device
        info = METHODS[method]
        self.has_meta = info.has_meta_step
        # Co-teaching: per network, the samples it kept and those of them whose label is right.
        self.selects = info.selects_samples
        self.networks = info.networks
        self.first_bad = torch.full((), -1, dtype=torch.long, device=device)
        self.reset_epoch()

    def reset_epoch(self) -> None:
        self.kept_sums = torch.zeros(2, self.networks, dtype=torch.float64, device=self.device)  # kept, kept and clean
        self.epoch_sums = torch.zeros(4, dtype=torch.float64, device=self.device)
        self.epoch_counts = [0, 0, 0]  # iterations, samples, meta samples
        self._reset_window()

    def _reset_window(self) -> None:
        self.win_sums = torch.zeros(4, dtype=torch.float64, device=self.device)
        self.win_counts = [0, 0, 0]
        self.win_start = time.time()

    def add(self, stats, y: torch.Tensor, y_true: torch.Tensor, global_iter: int) -> None:
        y_meta = stats.meta_labels
        correct = (stats.logits.argmax(1) == y_true).sum()
        if self.selects and stats.kept is not None:
            kept = stats.kept.double()
            clean = (y == y_true).double()[:, None]
            self.kept_sums += torch.stack([kept.sum(0), (kept * clean).sum(0)])
        finite = torch.isfinite(stats.loss) & torch.isfinite(stats.class_weights).all()
        if stats.meta_loss is not None:
            meta_correct = (stats.meta_logits.argmax(1) == y_meta).sum()
            finite = finite & torch.isfinite(stats.meta_loss)
            row = torch.stack([stats.loss.double(), stats.meta_loss.double(), correct.double(), meta_correct.double()])
        else:
            row = torch.stack([stats.loss.double(), torch.zeros((), dtype=torch.float64, device=self.device),
                               correct.double(), torch.zeros((), dtype=torch.float64, device=self.device)])
        self.first_bad = torch.where((self.first_bad < 0) & ~finite, torch.full_like(self.first_bad, global_iter), self.first_bad)
        self.win_sums += row
        self.epoch_sums += row
        n_meta = 0 if y_meta is None else len(y_meta)
        for counts in (self.win_counts, self.epoch_counts):
            counts[0] += 1
            counts[1] += len(y)
            counts[2] += n_meta

    def first_nonfinite(self) -> int | None:
        bad = int(self.first_bad)
        return None if bad < 0 else bad

    def _means(self, sums: torch.Tensor, counts: list[int]) -> dict[str, Any]:
        loss, meta_loss, correct, meta_correct = sums.tolist()
        iters, samples, meta_samples = counts
        return {
            "loss": _r(loss / max(iters, 1)),
            "meta_loss": _r(meta_loss / max(iters, 1)) if self.has_meta else None,
            "train_acc": _r(100 * correct / max(samples, 1)),
            "meta_acc": _r(100 * meta_correct / max(meta_samples, 1)) if self.has_meta else None,
        }

    def window(self, batch_size: int) -> dict[str, Any]:
        out = self._means(self.win_sums, self.win_counts)
        elapsed = max(time.time() - self.win_start, 1e-9)
        out["it_s"] = _r(self.win_counts[0] / elapsed, 4)
        out["samples_s"] = _r(self.win_counts[1] / elapsed, 4)
        self._reset_window()
        return out

    def epoch_means(self) -> dict[str, Any]:
        m = self._means(self.epoch_sums, self.epoch_counts)
        return {"train_loss": m["loss"], "train_acc": m["train_acc"], "meta_loss": m["meta_loss"], "meta_acc": m["meta_acc"]}

    def label_precision(self) -> list[float | None] | None:
        """Per network: the fraction of the samples it kept this epoch whose observed label is correct."""
        if not self.selects:
            return None
        kept, clean = self.kept_sums.tolist()
        return [_r(c / k) if k else None for k, c in zip(kept, clean)]

    def state_dict(self) -> dict[str, Any]:
        return {"epoch_sums": self.epoch_sums.cpu(), "epoch_counts": list(self.epoch_counts), "first_bad": int(self.first_bad),
                "kept_sums": self.kept_sums.cpu()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "kept_sums" in state:  # (checkpoints of earlier versions have none: no method selected samples)
            self.kept_sums = state["kept_sums"].to(self.device)
        self.epoch_sums = state["epoch_sums"].to(self.device)
        self.epoch_counts = list(state["epoch_counts"])
        self.first_bad = torch.tensor(state["first_bad"], device=self.device)
        self._reset_window()


class WeightAccumulator:
    """ω by observed label, target weights of clean vs corrupted samples, and Table 6's increase ratio."""

    def __init__(self, num_classes: int, device: torch.device, method: str, batch_size: int):
        self.C, self.device, self.method = num_classes, device, method
        self.hist_max = METHODS[method].hist_max(batch_size)
        self.tracks_increase = METHODS[method].has_increase_ratio
        self.reset_epoch()

    def reset_epoch(self) -> None:
        C, dev = self.C, self.device
        self.inc_count = torch.zeros(C, C, dtype=torch.float64, device=dev)  # [sample class j][weight i]
        self.inc_samples = torch.zeros(C, dtype=torch.float64, device=dev)
        self._reset_window()

    def _reset_window(self) -> None:
        C, dev = self.C, self.device
        self.omega_sum = torch.zeros(C, C, dtype=torch.float64, device=dev)
        self.label_count = torch.zeros(C, dtype=torch.float64, device=dev)
        self.target_sum = torch.zeros(2, dtype=torch.float64, device=dev)  # clean, corrupted
        self.target_n = torch.zeros(2, dtype=torch.float64, device=dev)
        self.hist = torch.zeros(2 * HIST_BINS, dtype=torch.float64, device=dev)

    def add(self, stats, y: torch.Tensor, y_true: torch.Tensor) -> None:
        w = stats.class_weights.detach().double()
        if w.dim() == 1 or w.shape[1] == 1:  # instance weights, B or B×1: the same weight in every column
            w = w.reshape(-1, 1).expand(-1, self.C)
        ones = torch.ones(len(y), dtype=torch.float64, device=self.device)
        self.omega_sum.index_add_(0, y, w)
        self.label_count.index_add_(0, y, ones)
        corrupted = (y != y_true).long()
        target = stats.target_weights.detach().double().reshape(-1)
        self.target_sum.index_add_(0, corrupted, target)
        self.target_n.index_add_(0, corrupted, ones)
        # nan_to_num: a diverged (NaN) weight must not become an out-of-range index (an IndexError on
        # CPU, a device-side assert on CUDA) before the trainer can report the divergence itself.
        bins = torch.nan_to_num(target / self.hist_max * HIST_BINS, nan=0.0).floor().clamp(0, HIST_BINS - 1).long()
        self.hist.index_add_(0, bins + HIST_BINS * corrupted, ones)
        if self.tracks_increase and stats.omega_increased is not None:
            self.inc_count.index_add_(0, y, stats.omega_increased.double())
            self.inc_samples.index_add_(0, y, ones)

    def window(self) -> dict[str, Any]:
        counts = self.label_count.tolist()
        rows = (self.omega_sum / self.label_count.clamp(min=1)[:, None]).tolist()
        omega = [[_r(v, 5) for v in row] if n > 0 else [None] * self.C for row, n in zip(rows, counts)]
        sums, ns, hist = self.target_sum.tolist(), self.target_n.tolist(), self.hist.tolist()
        target = {
            "clean_mean": _r(sums[0] / ns[0], 5) if ns[0] else None,
            "corrupted_mean": _r(sums[1] / ns[1], 5) if ns[1] else None,
            "clean_count": int(ns[0]),
            "corrupted_count": int(ns[1]),
            "bins": [_r(self.hist_max * i / HIST_BINS, 5) for i in range(HIST_BINS + 1)],
            "clean_hist": [int(v) for v in hist[:HIST_BINS]],
            "corrupted_hist": [int(v) for v in hist[HIST_BINS:]],
        }
        self._reset_window()
        return {"omega": omega, "target_weight": target}

    def increase_ratio(self) -> list[list[float | None]] | None:
        """[i][j]: fraction of samples of class j whose ω_i went up in the outer step this epoch."""
        if not self.tracks_increase:
            return None
        ratio = (self.inc_count / self.inc_samples.clamp(min=1)[:, None]).t().tolist()
        seen = self.inc_samples.tolist()
        return [[_r(v, 4) if seen[j] else None for j, v in enumerate(row)] for row in ratio]

    def state_dict(self) -> dict[str, Any]:
        return {"inc_count": self.inc_count.cpu(), "inc_samples": self.inc_samples.cpu()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inc_count = state["inc_count"].to(self.device)
        self.inc_samples = state["inc_samples"].to(self.device)
