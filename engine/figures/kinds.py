"""The figures, one function per kind: each draws a Selection and returns the figures with the exact
numbers it drew (the sidecar CSV's rows).

Every artist that carries data has a gid naming what it shows (`curve|setting|metric|label`,
`band|...`), so tests and SVG readers find a line by what it is, not by its position.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Callable

from ..config import ConfigError
from ..method_table import METHODS
from .data import Group, RunRecord, Selection, mean_std
from .style import WIDTHS_IN, colour

ACC = ("test_acc", "test accuracy (%)")
LOSS = ("train_loss", "training loss (nats)")
SEED_STYLES = ("-", "--", ":", "-.")  # runs of one method drawn one by one: one dash pattern each


@dataclass
class Drawn:
    name: str  # the file name's suffix after the selection's stem, e.g. "curves"
    figure: Any  # matplotlib.figure.Figure
    columns: list[str]
    rows: list[list[Any]]


@dataclass
class Options:
    width: str = "double"
    epochs: list[int] | None = None  # 1-based, for omega and table6


def _method_order(groups: list[Group]) -> list[Group]:
    rank = {m: i for i, m in enumerate(METHODS)}
    return sorted(groups, key=lambda g: (rank.get(g.method, len(rank)), g.label))


def _settings(groups: list[Group]) -> list[str]:
    return list(dict.fromkeys(g.setting for g in groups))


def _figure(width: str, height_in: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(WIDTHS_IN[width], height_in), layout="constrained")


def _legend(fig, axes, extra: list[tuple[Any, str]] = ()) -> None:
    """One legend above the panels: each label once, then `extra` (handle, label) pairs."""
    handles, labels = {}, []
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in handles:
                handles[label] = h
                labels.append(label)
    for h, label in extra:
        handles[label] = h
        labels.append(label)
    longest = max((len(k) for k in labels), default=0)
    per_row = (3 if longest <= 9 else 2) if fig.get_figwidth() < 4 else (len(labels) if len(labels) <= 6 and longest <= 14 else 3)
    fig.legend([handles[k] for k in labels], labels, loc="outside upper center", ncols=max(min(len(labels), per_row), 1),
               handlelength=1.8, columnspacing=1.2)


def _dash_patterns(groups: list[Group]) -> dict[int, str]:
    """Runs drawn one by one share their method's colour: the second, third... get other dashes."""
    seen: dict[tuple[str, str], int] = {}
    out = {}
    for g in groups:
        k = seen[(g.setting, g.method)] = seen.get((g.setting, g.method), -1) + 1
        out[id(g)] = SEED_STYLES[k % len(SEED_STYLES)]
    return out


def _series(ax, x: list[int], stats: list[tuple[float, float | None]], gid: str, **style: Any) -> None:
    """A mean line and, where there is a std, its ±1 std band in the same colour."""
    means = [m for m, _ in stats]
    (line,) = ax.plot(x, means, gid=f"curve|{gid}", **style)
    if any(s is not None for _, s in stats):
        lo = [m - (s or 0.0) for m, s in stats]
        hi = [m + (s or 0.0) for m, s in stats]
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0, gid=f"band|{gid}")


def _setting_title(setting: str, groups: list[Group]) -> str:
    """The setting, and how many seeds its lines average where that is more than one."""
    ns = sorted({g.n for g in groups if g.setting == setting})
    if ns[-1] == 1:
        return setting
    return f"{setting} · mean ± std of " + (f"{ns[0]}" if len(ns) == 1 else f"{ns[0]}–{ns[-1]}") + " seeds"


def _setting_panels(settings: list[str], width: str, metrics: int, groups: list[Group]) -> tuple[Any, list[list[Any]]]:
    """One titled block per setting: its `metrics` panels stacked (single column) or side by side (double)."""
    single = width == "single"
    rows_each = metrics if single else 1
    panel_h = 1.45 if single else 1.7
    fig = _figure(width, 0.3 + len(settings) * (rows_each * panel_h + 0.25))
    blocks = []
    for sub, setting in zip(fig.subfigures(len(settings), 1, squeeze=False)[:, 0], settings):
        sub.suptitle(_setting_title(setting, groups))
        axes = sub.subplots(rows_each, 1 if single else metrics, squeeze=False).ravel().tolist()
        for ax in axes:
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(_integer_ticks())
        blocks.append(axes)
    return fig, blocks


def _integer_ticks():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def curves(sel: Selection, opt: Options, methods: tuple[str, ...] | None = None, name: str = "curves") -> list[Drawn]:
    """Test accuracy and training loss against epoch: per setting, the mean over seeds ± 1 sample std."""
    groups = _method_order([g for g in sel.groups if methods is None or g.method in methods])
    settings = _settings(groups)
    fig, blocks = _setting_panels(settings, opt.width, 2, groups)
    dashes = _dash_patterns(groups)
    rows: list[list[Any]] = []
    for setting, axes in zip(settings, blocks):
        for (metric, ylabel), ax in zip((ACC, LOSS), axes):
            ax.set_ylabel(ylabel)
            for g in (g for g in groups if g.setting == setting):
                epochs = g.common_epochs()
                stats = [mean_std([_num(r.epochs[e].get(metric)) for r in g.runs]) for e in epochs]
                x = [e + 1 for e in epochs]
                _series(ax, x, stats, f"{setting}|{metric}|{g.label}", color=colour(g.method),
                        linestyle=dashes[id(g)], label=g.label)
                rows += [[setting, metric, g.method, g.label, g.n, xe, m, s] for xe, (m, s) in zip(x, stats)]
    _legend(fig, [ax for axes in blocks for ax in axes])
    return [Drawn(name, fig, ["setting", "metric", "method", "label", "n", "epoch", "mean", "std"], rows)]


def nozm(sel: Selection, opt: Options) -> list[Drawn]:
    """Appendix Figure 7: GDW with and without the zero-mean constraint, on the same axes."""
    have = {g.method for g in sel.groups}
    if not {"gdw", "gdw-nozm"} <= have:
        raise ConfigError(f"--kind nozm needs runs of both gdw and gdw-nozm (these have: {', '.join(sorted(have))})")
    both = {s for s in _settings(sel.groups)
            if {g.method for g in sel.groups if g.setting == s} >= {"gdw", "gdw-nozm"}}
    pairs = Selection([g for g in sel.groups if g.setting in both], sel.name, sel.notes)
    if not both:  # runs named one by one may come from different settings: draw them together
        pairs = Selection([_same_setting(g, "gdw vs gdw-nozm") for g in sel.groups], sel.name, sel.notes)
    return curves(pairs, opt, ("gdw", "gdw-nozm"), "nozm")


def _same_setting(g: Group, setting: str) -> Group:
    return Group(setting, g.method, g.runs, g.label, g.key)


def _num(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else math.nan


# --- matrices ----------------------------------------------------------------------------------------


def _class_weight_groups(sel: Selection, kind: str) -> list[Group]:
    groups = [g for g in _method_order(sel.groups) if g.info is not None and g.info.weights == "class"]
    if not groups:
        have = ", ".join(sorted({g.method for g in sel.groups}))
        class_level = ", ".join(m for m, info in METHODS.items() if info.weights == "class")
        raise ConfigError(f"--kind {kind} needs a run with class-level weights ω ({class_level}); these are {have}")
    return groups


def _mean_matrix(runs: list[RunRecord], epoch: int, key: str) -> tuple[list[list[float]], list[list[int]]]:
    """Element-wise mean over the runs of their epoch-end matrix `key`, and how many runs each cell
    averages: a label a run did not see in that window (null) is left out, NaN where no run saw it."""
    mats = [r.epoch_end_weights[epoch][key] for r in runs]
    c = len(mats[0])
    cells = [[[v for v in (_num(m[i][j]) for m in mats) if math.isfinite(v)] for j in range(c)] for i in range(c)]
    return ([[statistics.fmean(v) if v else math.nan for v in row] for row in cells],
            [[len(v) for v in row] for row in cells])


def _chosen_epochs(g: Group, key: str, wanted: list[int] | None, default: Callable[[list[int]], list[int]]) -> list[int]:
    """0-based epochs to draw: the 1-based --epochs, checked against what every run of the group has."""
    have = g.common_epochs(lambda r: [e for e, w in r.epoch_end_weights.items() if w.get(key) is not None])
    if not have:
        raise ConfigError(f"{_who(g)} has no finished epoch with {key} yet")
    if wanted is None:
        return default(have)
    missing = [e for e in wanted if e - 1 not in have]
    if missing:
        raise ConfigError(f"--epochs {','.join(map(str, missing))}: {_who(g)} recorded epochs "
                          f"{have[0] + 1}–{have[-1] + 1}")
    return [e - 1 for e in wanted]


def _who(g: Group) -> str:
    return f"run {g.runs[0].run_id}" if g.n == 1 else f"{g.method} on {g.setting} ({g.n} runs)"


def _class_ticks(ax, classes: list[str], c: int, y: bool, side_in: float) -> None:
    """Class names as ticks, every one where 8-pt labels fit along the side, else every 2nd, 5th, 10th..."""
    names = classes if len(classes) == c else [str(i) for i in range(c)]
    room = max(1, int(side_in * 72 / 10))  # labels that fit, ~10 pt each
    step = next(s for s in (1, 2, 3, 5, 10, 20, 25, 50, 100, c) if math.ceil(c / s) <= room)
    idx = list(range(0, c, step))
    ax.set_xticks(idx, [names[i] for i in idx], rotation=90 if max(len(n) for n in names) > 2 else 0)
    ax.set_yticks(idx, [names[i] for i in idx] if y else [""] * len(idx))


def _group_name(kind: str, g: Group, sel: Selection) -> str:
    """A file per group: `<kind>_<setting>_<method>`, or `<kind>` alone for the one run the files are named after."""
    return kind if g.key == sel.name else f"{kind}_{_file_part(g.key)}"


def _file_part(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


def omega(sel: Selection, opt: Options) -> list[Drawn]:
    """The ω heatmap at chosen epochs (rows: observed label, columns: ω_j), one colour scale and bar."""
    out = []
    groups = _class_weight_groups(sel, "omega")
    for g in groups:
        epochs = _chosen_epochs(g, "omega", opt.epochs, lambda have: sorted({have[0], have[len(have) // 2], have[-1]}))
        means = [_mean_matrix(g.runs, e, "omega") for e in epochs]
        mats = [m for m, _ in means]
        finite = [v for m in mats for row in m for v in row if math.isfinite(v)]
        vmin, vmax = (min(finite), max(finite)) if finite else (0.0, 1.0)
        single = opt.width == "single"
        cols = (len(epochs) if len(epochs) <= 3 else 2) if single else min(len(epochs), 4)
        nrows = math.ceil(len(epochs) / cols)
        side = (WIDTHS_IN[opt.width] - (0.5 if single else 1.2)) / cols
        fig = _figure(opt.width, 0.3 + nrows * (side + 0.45) + (0.6 if single else 0))
        axes = fig.subplots(nrows, cols, squeeze=False)
        c = len(mats[0])
        classes = g.runs[0].classes
        rows = []
        image = None
        for k, (e, m) in enumerate(zip(epochs, mats)):
            ax = axes[k // cols][k % cols]
            image = ax.imshow(_masked(m), cmap=_cmap("viridis"), vmin=vmin, vmax=vmax, interpolation="nearest",
                              gid=f"omega|{g.label}|{e + 1}")
            ax.set_title(f"epoch {e + 1}")
            _class_ticks(ax, classes, c, y=k % cols == 0, side_in=side)
            ax.set_xlabel(r"$\omega_j$ (class $j$)")
            if k % cols == 0:
                ax.set_ylabel("observed label")
            seen = means[k][1]
            rows += [[g.setting, g.method, seen[i][j], e + 1, _name(classes, i), _name(classes, j), m[i][j]]
                     for i in range(c) for j in range(c)]
        for k in range(len(epochs), nrows * cols):
            axes[k // cols][k % cols].set_visible(False)
        fig.colorbar(image, ax=axes.ravel().tolist(), label=r"$\omega$ (class-level weight)", shrink=0.9 if single else 0.8,
                     location="bottom" if single else "right", aspect=30 if single else 20)
        fig.suptitle(f"{g.setting} · {g.title}")
        out.append(Drawn(_group_name("omega", g, sel), fig,
                         ["setting", "method", "n", "epoch", "observed_label", "class_j", "omega"], rows))
    return out


def table6(sel: Selection, opt: Options) -> list[Drawn]:
    """Appendix Table 6: the fraction of class-j samples whose ω_i went up in the outer step, in one epoch."""
    out = []
    for g in _class_weight_groups(sel, "table6"):
        wanted = opt.epochs[-1:] if opt.epochs else None
        (e,) = _chosen_epochs(g, "increase_ratio", wanted, lambda have: [have[-1]])
        m, seen = _mean_matrix(g.runs, e, "increase_ratio")
        c = len(m)
        single = opt.width == "single"
        side = WIDTHS_IN[opt.width] - (0.55 if single else 1.6)
        fig = _figure(opt.width, side + (1.0 if single else 0.45))
        ax = fig.subplots()
        # Diverging around 0.5 (ColorBrewer RdBu, colour-blind safe): ω_i rose for more samples (red) or fewer (blue).
        image = ax.imshow(_masked(m), cmap=_cmap("RdBu_r"), vmin=0.0, vmax=1.0, interpolation="nearest",
                          gid=f"table6|{g.label}|{e + 1}")
        classes = g.runs[0].classes
        _class_ticks(ax, classes, c, y=False, side_in=side)
        ax.set_yticks(ax.get_xticks(), [rf"$\omega_{{{int(i)}}}$" for i in ax.get_xticks()])
        ax.set_xlabel(r"samples of class $j$")
        ax.set_ylabel(r"class-level weight $\omega_i$")
        _values_in_cells(ax, image, m, 72 * side * 0.85 / c)
        fig.colorbar(image, ax=ax, label=r"fraction of samples whose $\omega_i$ rose", shrink=0.9 if single else 0.8,
                     location="bottom" if single else "right", aspect=30 if single else 20)
        ax.set_title(f"epoch {e + 1}")
        fig.suptitle(f"{g.setting} · {g.title}")
        rows = [[g.setting, g.method, seen[i][j], e + 1, f"ω{i}", _name(classes, j), m[i][j]] for i in range(c) for j in range(c)]
        out.append(Drawn(_group_name("table6", g, sel), fig,
                         ["setting", "method", "n", "epoch", "weight", "class_j", "increase_ratio"], rows))
    return out


def _values_in_cells(ax, image, m: list[list[float]], cell_pt: float) -> None:
    """Each value written in its cell at 8 pt where it fits: "0.936" in a wide cell, ".94" in a narrow one."""
    if cell_pt < 14:
        return  # too many classes for the width: the sidecar CSV has the values
    for i, row in enumerate(m):
        for j, v in enumerate(row):
            if math.isfinite(v):
                text = f"{v:.3f}" if cell_pt >= 28 else f"{v:.2f}".lstrip("0")
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color=_text_on(image.cmap(image.norm(v))))


def _text_on(rgba: tuple[float, ...]) -> str:
    """Black text on a light cell, white on a dark one (relative luminance, WCAG)."""
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgba[:3]]
    return "black" if 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2] > 0.18 else "white"


def _name(classes: list[str], i: int) -> str:
    return classes[i] if i < len(classes) else str(i)


def _masked(m: list[list[float]]):
    import numpy as np

    a = np.array(m, dtype=float)
    return np.ma.masked_invalid(a)


def _cmap(name: str):
    import matplotlib

    return matplotlib.colormaps[name].with_extremes(bad="#dddddd")  # labels not seen: grey, never a colour of the scale


# --- target weights -----------------------------------------------------------------------------------


def weights(sel: Selection, opt: Options) -> list[Drawn]:
    """Clean vs corrupted samples' target-class weight, the epoch's mean, over training (mean ± std over seeds)."""
    groups = [g for g in _method_order(sel.groups) if g.info is not None and g.info.has_target_weights]
    if not groups:
        have = ", ".join(sorted({g.method for g in sel.groups}))
        raise ConfigError(f"--kind weights needs a method with per-sample weights (not erm); these are {have}")
    settings = _settings(groups)
    fig, blocks = _setting_panels(settings, opt.width, 1, groups)
    rows: list[list[Any]] = []
    for setting, (ax,) in zip(settings, blocks):
        ax.set_ylabel("target-class weight")
        for g in (g for g in groups if g.setting == setting):
            # L2RW's weights sum to 1 over a batch: × batch size puts them on the others' scale.
            scale = g.runs[0].batch_size if g.info.hist_over_batch else 1
            label = g.label + (f" (×{scale})" if scale != 1 else "")
            targets = [r.target() for r in g.runs]
            for kind, dash in (("clean", "-"), ("corrupted", "--")):
                epochs = sorted(set.intersection(*[{e for e, t in tg.items() if t.mean(kind) is not None} for tg in targets]))
                if not epochs:
                    continue
                stats = [_scaled(mean_std([tg[e].mean(kind) for tg in targets]), scale) for e in epochs]
                x = [e + 1 for e in epochs]
                _series(ax, x, stats, f"{setting}|{kind}|{g.label}", color=colour(g.method), linestyle=dash,
                        label=label if kind == "clean" else None)
                rows += [[setting, g.method, g.label, g.n, kind, scale, xe, m, s] for xe, (m, s) in zip(x, stats)]
    from matplotlib.lines import Line2D

    _legend(fig, [axes[0] for axes in blocks], [(Line2D([], [], color="#555555", linestyle="-"), "clean samples"),
                                                (Line2D([], [], color="#555555", linestyle="--"), "corrupted samples")])
    return [Drawn("weights", fig, ["setting", "method", "label", "n", "samples", "scale", "epoch", "mean", "std"], rows)]


def _scaled(stat: tuple[float, float | None], scale: float) -> tuple[float, float | None]:
    m, s = stat
    return m * scale, (None if s is None else s * scale)


# --- GLC's corruption estimate ----------------------------------------------------------------------


def _c_hat(r: RunRecord) -> tuple[int, list[list[Any]]] | None:
    """(0-based epoch, Ĉ) of the epoch GLC estimated it at, or None."""
    found = [(e, ev["c_hat"]) for e, ev in sorted(r.epochs.items()) if isinstance(ev.get("c_hat"), list)]
    return found[-1] if found else None


def _mean_of(mats: list[list[list[Any]]]) -> list[list[float]]:
    c = len(mats[0])
    return [[statistics.fmean(_num(m[i][j]) for m in mats) for j in range(c)] for i in range(c)]


def corruption(sel: Selection, opt: Options) -> list[Drawn]:
    """GLC's estimate Ĉ beside the corruption matrix the labels were drawn from, and their mean absolute error."""
    groups = [g for g in _method_order(sel.groups) if all(_c_hat(r) for r in g.runs)]
    if not groups:
        have = ", ".join(sorted({g.method for g in sel.groups}))
        raise ConfigError(f"--kind corruption needs a glc run that has estimated Ĉ (the end of its phase 1); these are {have}")
    out = []
    for g in groups:
        estimates = [_c_hat(r) for r in g.runs]
        c = len(estimates[0][1])
        eye = [[1.0 if i == j else 0.0 for j in range(c)] for i in range(c)]  # no noise: every label kept
        trues = [r.noise_matrix or eye for r in g.runs]
        errors = [statistics.fmean(abs(_num(ch[i][j]) - t[i][j]) for i in range(c) for j in range(c))
                  for (_, ch), t in zip(estimates, trues)]
        mae, mae_std = mean_std(errors)
        shown = [("estimated", _mean_of([ch for _, ch in estimates])), ("true", _mean_of(trues))]
        single = opt.width == "single"
        side = (WIDTHS_IN[opt.width] - (0.5 if single else 1.2)) / 2
        fig = _figure(opt.width, side + (1.45 if single else 0.9))
        axes = fig.subplots(1, 2, squeeze=False)[0]
        classes = g.runs[0].classes
        image = None
        rows = []
        epochs = sorted({e + 1 for e, _ in estimates})
        for k, (ax, (which, m)) in enumerate(zip(axes, shown)):
            image = ax.imshow(_masked(m), cmap=_cmap("viridis"), vmin=0.0, vmax=1.0, interpolation="nearest",
                              gid=f"corruption|{g.label}|{which}")
            _values_in_cells(ax, image, m, 72 * side * 0.85 / c)
            _class_ticks(ax, classes, c, y=k == 0, side_in=side)
            ax.set_xlabel("observed label $j$")
            if k == 0:
                ax.set_ylabel("true label $i$")
            ax.set_title(r"$\hat{C}$, epoch " + ",".join(map(str, epochs)) if which == "estimated" else "$C$ used")
            rows += [[g.setting, g.method, g.n, which, _name(classes, i), _name(classes, j), m[i][j]]
                     for i in range(c) for j in range(c)]
        rows.append([g.setting, g.method, g.n, "mean_abs_error", "", "", mae])
        fig.colorbar(image, ax=axes.tolist(), label="p(observed $j$ | true $i$)", shrink=0.9 if single else 0.8,
                     location="bottom" if single else "right", aspect=30 if single else 20)
        error = f"{mae:.3f}" + (f" ± {mae_std:.3f}" if mae_std is not None else "")
        fig.suptitle(f"{g.setting} · {g.title} · mean " + r"$|\hat{C} - C|$" + f" = {error}")
        out.append(Drawn(_group_name("corruption", g, sel), fig,
                         ["setting", "method", "n", "matrix", "true_label", "observed_label", "value"], rows))
    return out


KINDS: dict[str, Callable[[Selection, Options], list[Drawn]]] = {
    "curves": curves, "nozm": nozm, "omega": omega, "table6": table6, "weights": weights, "corruption": corruption,
}


def applicable(sel: Selection) -> list[str]:
    """The default set: every kind these runs have the data for."""
    methods = {g.method for g in sel.groups}
    infos = [g.info for g in sel.groups if g.info is not None]
    out = ["curves"]
    if {"gdw", "gdw-nozm"} <= methods:
        out.append("nozm")
    if any(i.weights == "class" for i in infos):
        out += ["omega", "table6"]
    if any(i.has_target_weights for i in infos):
        out.append("weights")
    if any(_c_hat(r) for g in sel.groups for r in g.runs):
        out.append("corruption")
    return out
