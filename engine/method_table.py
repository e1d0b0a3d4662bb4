"""The training methods, one row each: what every part of gdw-tui needs to know about a method.

Torch-free, so the CLI and the UI read it too. The engine maps each name to its implementation
(engine.methods finds the classes by their `name`); the statistics (engine.stats), the dashboard's
panes and the CLI's choices read these rows instead of comparing method names. Adding a method is
one module in engine/methods/ plus one row here (tests/test_method_table.py checks both exist).
Which hyperparameters a method takes is its class's (`Method.hyperparameters`); their defaults
and ranges are the preset schema's (engine.config.SCHEMA).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


Role = Literal["baseline", "proposed", "ablation"]  # how `gdw report` treats a method's column


@dataclass(frozen=True)
class MethodInfo:
    description: str
    has_meta_step: bool  # a virtual step and a meta loss on the clean meta set every iteration
    has_weighting_network: bool  # a network V(ℓ) maps a sample's loss to its weight
    weights: Literal["none", "instance", "class"]  # one weight per sample, or one per sample and class (ω)
    role: Role = "baseline"  # the report compares "proposed" with the best "baseline"
    label_noise_only: bool = False  # a label-noise method: refused on imbalance-only sweeps (unless --force)
    networks: int = 1  # networks trained side by side (Co-teaching: 2), each tested every epoch
    phases: int = 1  # training phases, each with a fresh model and schedule (GLC: 2)
    selects_samples: bool = False  # trains on a selected subset of each batch (label_precision)
    # Target-weight histograms span [0, hist_top], or [0, hist_top / batch size] with hist_over_batch
    # (L2RW's weights sum to 1 over the batch; V is a sigmoid, so at most 1; ω rarely exceeds 2).
    hist_top: float = 2.0
    hist_over_batch: bool = False

    def hist_max(self, batch_size: int) -> float:
        return self.hist_top / batch_size if self.hist_over_batch else self.hist_top

    @property
    def has_increase_ratio(self) -> bool:
        """Table 6's statistic: how often ω_i went up in the outer step, which only class-level weights have."""
        return self.weights == "class"

    @property
    def has_target_weights(self) -> bool:
        """The weight on each sample's observed label (clean vs corrupted curves and histograms); ERM's is always 1."""
        return self.weights != "none"


METHODS: dict[str, MethodInfo] = {
    "erm": MethodInfo("plain cross-entropy, no reweighting", has_meta_step=False, has_weighting_network=False,
                      weights="none"),
    "l2rw": MethodInfo("Learning to Reweight (Ren et al. 2018): per-batch instance weights from one meta-gradient",
                       has_meta_step=True, has_weighting_network=False, weights="instance",
                       hist_top=4.0, hist_over_batch=True),
    "mwnet": MethodInfo("Meta-Weight-Net (Shu et al. 2019): instance weights from a learned V(loss)",
                        has_meta_step=True, has_weighting_network=True, weights="instance", hist_top=1.0),
    "glc": MethodInfo("Gold Loss Correction (Hendrycks et al. 2018): estimate the corruption matrix, then a corrected loss",
                      has_meta_step=False, has_weighting_network=False, weights="none", label_noise_only=True,
                      phases=2),
    "coteach": MethodInfo("Co-teaching (Han et al. 2018): two networks, each trained on the other's small-loss samples",
                          has_meta_step=False, has_weighting_network=False, weights="instance", hist_top=1.0,
                          label_noise_only=True, networks=2, selects_samples=True),
    "insw": MethodInfo("instance-level weights GDW's way: V(loss) plus one clipped outer step, one weight per sample",
                       has_meta_step=True, has_weighting_network=True, weights="instance"),
    "gdw": MethodInfo("Generalized Data Weighting: class-level weights with the zero-mean constraint",
                      has_meta_step=True, has_weighting_network=True, weights="class", role="proposed"),
    "gdw-nozm": MethodInfo("GDW without the zero-mean constraint (appendix B.2 ablation; expected to be unstable)",
                           has_meta_step=True, has_weighting_network=True, weights="class", role="ablation"),
}


def methods_with_role(role: Role) -> tuple[str, ...]:
    return tuple(name for name, info in METHODS.items() if info.role == role)


def method_info(name: str | None) -> MethodInfo | None:
    """The row for `name`, or None for no name or one this version does not know (a newer run's)."""
    return METHODS.get(name) if name else None
