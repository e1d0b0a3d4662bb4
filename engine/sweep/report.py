"""The paper's table from finished runs: settings × methods, mean ± std of final_acc over seeds.

Torch-free. Rows are settings (preset + grid values), columns methods; a cell is the mean ± sample
std (ddof=1) of the finished runs' `final_acc`, with `n=` where fewer seeds finished than the
sweep planned. The best mean of a row is bold, the preset's reference figure (the paper's, from
"Reference: ..." in its description) is shown beside ours, and the last column is the proposed
method (GDW) minus the best of all the row's baselines, paired by seed, with a 95% Student-t
confidence interval. Which method is proposed and which are baselines (or ablations, compared
with nothing) is engine.method_table's `role`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import METHODS, SCHEMA, ConfigError, load_preset
from ..method_table import methods_with_role
from ..runs import load_run_config, read_summary_checked, run_status
from .spec import fmt_value, setting_label

FORMATS = ("md", "csv", "latex")
BASELINES = methods_with_role("baseline")  # what "best baseline" is chosen from
(PROPOSED,) = methods_with_role("proposed")
CSV_COLUMNS = ["setting", "method", "n", "planned", "mean", "std", "seeds", "missing"]
# Names in the presets' "Reference: ..." text -> method names.
REFERENCE_NAMES = {"erm": "erm", "ce": "erm", "l2rw": "l2rw", "mw-net": "mwnet", "mwnet": "mwnet", "gdw": "gdw",
                   "glc": "glc", "co-teaching": "coteach", "co-teach": "coteach", "coteach": "coteach", "insw": "insw"}


# --- Student t, exactly, for integer degrees of freedom ---------------------------------------------


def t_two_sided_mass(t: float, df: int) -> float:
    """P(|T| < t) for Student's t with `df` degrees of freedom (Abramowitz & Stegun 26.7.3-4)."""
    theta = math.atan(t / math.sqrt(df))
    s, c = math.sin(theta), math.cos(theta)
    if df % 2 == 1:
        term, total = c, c if df > 1 else 0.0
        for k in range(3, df - 1, 2):  # c + (2/3)c^3 + (2·4)/(3·5)c^5 + ...
            term *= (k - 1) / k * c * c
            total += term
        return 2 / math.pi * (theta + s * total)
    term, total = 1.0, 1.0
    for k in range(2, df - 1, 2):  # 1 + (1/2)c^2 + (1·3)/(2·4)c^4 + ...
        term *= (k - 1) / k * c * c
        total += term
    return s * total


def t_quantile(p: float, df: int) -> float:
    """The two-sided quantile: P(|T| < t) = p (e.g. p=0.95 gives t_{0.975, df}); by bisection."""
    lo, hi = 0.0, 1.0
    while t_two_sided_mass(hi, df) < p:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_two_sided_mass(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def paired_ci(diffs: list[float], level: float = 0.95) -> tuple[float, float, float] | None:
    """Mean difference and its confidence interval; None with fewer than two pairs."""
    n = len(diffs)
    if n < 2:
        return None
    mean = statistics.fmean(diffs)
    half = t_quantile(level, n - 1) * statistics.stdev(diffs) / math.sqrt(n)
    return mean, mean - half, mean + half


# --- collecting -------------------------------------------------------------------------------------

# Fields that say where or how a run was watched, not what was run: runs that differ only in these
# share a cell. Every other field of the resolved config (but the seed and the method) keys the row.
NOT_THE_EXPERIMENT = ("data.data_dir", "data.download", "data.workers", "train.device", "train.threads", "train.events",
                      "train.step_events_per_s", "train.weights_events_per_epoch", "train.pin_memory")
PER_RUN = ("train.seed", "train.method")  # the seeds of a cell, the columns of a row


def experiment(cfg: dict[str, Any]) -> dict[str, Any]:
    """What a run ran, as `section.key -> value`: its resolved config minus the seed and the method."""
    skip = set(NOT_THE_EXPERIMENT) | set(PER_RUN)
    return {f"{section}.{key}": cfg[section][key] for section in SCHEMA for key in SCHEMA[section]
            if section in cfg and key in cfg[section] and f"{section}.{key}" not in skip}


@dataclass
class Attempt:
    """One run of a cell: its seed, honest status, final_acc when finished, and id."""

    seed: int
    status: str
    acc: float | None
    run_id: str
    message: str = ""


@dataclass
class Cell:
    method: str
    runs: list[Attempt] = field(default_factory=list)  # every run of this setting and method

    @property
    def planned(self) -> int:
        return len({a.seed for a in self.runs})

    @property
    def accs(self) -> dict[int, float]:
        """seed -> final_acc of the finished runs; of a seed that ran twice, the run listed last."""
        return {a.seed: a.acc for a in self.runs if a.acc is not None}

    @property
    def n(self) -> int:
        return len(self.accs)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.accs.values()) if self.accs else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.accs.values()) if self.n >= 2 else None

    def missing(self) -> list[Attempt]:
        """The seeds without a finished run (one attempt each: the last listed)."""
        done = self.accs
        last = {a.seed: a for a in self.runs}
        return [a for seed, a in sorted(last.items()) if seed not in done]

    def duplicates(self) -> dict[int, list[str]]:
        """seed -> run ids, for each seed with more than one run in this cell."""
        by: dict[int, list[str]] = {}
        for a in self.runs:
            by.setdefault(a.seed, []).append(a.run_id)
        return {seed: ids for seed, ids in by.items() if len(ids) > 1}


@dataclass
class Row:
    setting: str  # the label shown: the sweep's setting (preset + grid) and the overrides it ran with
    preset: str
    grid: dict[str, Any]
    cells: dict[str, Cell] = field(default_factory=dict)
    reference: dict[str, float] = field(default_factory=dict)
    base: str = ""  # the sweep's setting (preset + grid values), before the overrides are added
    config: dict[str, Any] = field(default_factory=dict)  # experiment(): what every run of the row ran
    overrides: dict[str, Any] = field(default_factory=dict)  # fields that differ from the preset as it is now

    def best_method(self) -> str | None:
        means = {m: c.mean for m, c in self.cells.items() if c.mean is not None}
        return max(means, key=lambda m: means[m]) if means else None

    def gdw_vs_best_baseline(self) -> dict[str, Any] | None:
        gdw = self.cells.get(PROPOSED)
        bases = {m: c for m, c in self.cells.items() if m in BASELINES and c.mean is not None}
        if gdw is None or gdw.mean is None or not bases:
            return None
        best = max(bases, key=lambda m: bases[m].mean)
        seeds = sorted(set(gdw.accs) & set(bases[best].accs))
        diffs = [gdw.accs[s] - bases[best].accs[s] for s in seeds]
        out: dict[str, Any] = {"baseline": best, "n": len(diffs), "mean": statistics.fmean(diffs) if diffs else None}
        ci = paired_ci(diffs)
        out["ci"] = None if ci is None else (ci[1], ci[2])
        return out


@dataclass
class Report:
    rows: list[Row]
    methods: list[str]
    grid_keys: list[str]
    notes: list[str] = field(default_factory=list)  # what a reader of the numbers must know (missing, duplicate seeds)


def parse_reference(description: str) -> dict[str, float]:
    """{method: figure} from "Reference: MW-Net 71.54, GDW 76.30 (appendix Table 8)."."""
    text = description.partition("Reference:")[2]
    out = {}
    for name, value in re.findall(r"([A-Za-z0-9-]+)\s+(\d+(?:\.\d+)?)\b", text.split("(")[0]):
        method = REFERENCE_NAMES.get(name.lower())
        if method:
            out[method] = float(value)
    return out


def collect(run_dirs: list[Path], presets_dir: str | None = None) -> Report:
    """Rows keyed by what was run (the resolved config minus seed and method), never merged across configs."""
    rows: dict[tuple[str, str], Row] = {}
    methods: set[str] = set()
    grid_keys: list[str] = []
    notes: list[str] = []
    for run_dir in run_dirs:
        s, problem = read_summary_checked(run_dir)
        if problem:  # an unreadable summary is said, not silently a missing seed
            notes.append(problem)
        try:
            cfg = load_run_config(run_dir)
        except ConfigError as e:
            notes.append(f"run {run_dir.name} is not counted: {e}")
            continue
        preset = str(cfg.get("preset") or s.get("preset") or run_dir.name)
        grid = s.get("grid") if isinstance(s.get("grid"), dict) else {}
        ran = experiment(cfg)
        key = (preset, json.dumps(ran, sort_keys=True, default=str))
        row = rows.get(key)
        if row is None:
            base = s.get("setting") if isinstance(s.get("setting"), str) else setting_label(preset, grid)
            row = rows[key] = Row(base, preset, grid, reference=parse_reference(cfg.get("description", "")),
                                  base=base, config=ran)
        for k in grid:
            if k not in grid_keys:
                grid_keys.append(k)
        method, seed = cfg["train"]["method"], cfg["train"]["seed"]
        methods.add(method)
        status = run_status(run_dir, s)
        acc = s.get("final_acc")
        counted = status == "finished" and isinstance(acc, (int, float)) and not isinstance(acc, bool)
        message = s.get("message") if isinstance(s.get("message"), str) else ""
        row.cells.setdefault(method, Cell(method)).runs.append(
            Attempt(seed, status, float(acc) if counted else None, run_dir.name, message))
    _label_rows(list(rows.values()), presets_dir, notes)
    order = [m for m in METHODS if m in methods]
    report = Report(list(rows.values()), order, grid_keys, notes)
    report.notes.extend(cell_notes(report))
    return report


def _label_rows(rows: list[Row], presets_dir: str | None, notes: list[str]) -> None:
    """Each row says what it ran with: the fields that differ from its preset, and those that tell
    apart rows of the same setting (e.g. a 3-epoch and a 5-epoch sweep of the same presets)."""
    presets: dict[str, dict[str, Any] | None] = {}
    for row in rows:
        if row.preset not in presets:
            try:
                presets[row.preset] = experiment(load_preset(row.preset, presets_dir=presets_dir))
            except ConfigError:
                presets[row.preset] = None
                notes.append(f"preset {row.preset} is not found here: the fields its runs overrode cannot be shown")
        own = presets[row.preset]
        row.overrides = {} if own is None else {k: v for k, v in row.config.items() if own.get(k) != v}
    by_base: dict[str, list[Row]] = {}
    for row in rows:
        by_base.setdefault(row.base, []).append(row)
    for same in by_base.values():
        varying = {k for k in same[0].config if len({json.dumps(r.config.get(k), default=str) for r in same}) > 1}
        for row in same:
            shown = [k for k in row.config if (k in row.overrides or k in varying) and k not in row.grid]
            row.setting = " ".join([row.base] + [f"{k}={fmt_value(row.config[k])}" for k in shown])


def cell_notes(report: Report) -> list[str]:
    """Cells with fewer finished seeds than runs (which are missing, and why) and seeds that ran twice."""
    out = []
    for row in report.rows:
        for m in report.methods:
            cell = row.cells.get(m)
            if cell is None:
                continue
            missing = cell.missing()
            if missing:
                why = ", ".join(f"{a.seed} ({_why(a)})" for a in missing)
                out.append(f"{row.setting} · {m}: {cell.n} of {cell.planned} seeds finished; missing seed(s) {why}")
            for seed, ids in cell.duplicates().items():
                counted = next((a.run_id for a in reversed(cell.runs) if a.seed == seed and a.acc is not None), None)
                which = f"only {counted} is counted" if counted else "none finished"
                out.append(f"{row.setting} · {m}: seed {seed} ran {len(ids)} times ({', '.join(ids)}); {which}")
    return out


def _why(a: Attempt) -> str:
    return f"{a.status}: {a.message}" if a.status == "failed" and a.message else a.status


def report_runs(runs_dir: Path, refs: list[str]) -> list[Path]:
    """Run directories of the given sweeps and runs, in order, each once."""
    from ..runs import find_run
    from .store import sweep_named

    out: list[Path] = []
    for ref in refs:
        sweep = sweep_named(runs_dir, ref)
        if sweep is not None:
            found = sweep.run_dirs()
        else:
            try:
                found = [find_run(runs_dir, ref)]
            except ConfigError as e:
                raise ConfigError(f"no sweep or run '{ref}' in {runs_dir} (see `gdw sweeps` and `gdw runs`)") from e
        out.extend(d for d in found if d not in out)
    return out


# --- formatting -------------------------------------------------------------------------------------


def fmt_cell(cell: Cell | None, reference: float | None = None) -> str:
    if cell is None:
        return ""
    if cell.mean is None:
        return f"– (0 of {cell.planned})"
    text = f"{cell.mean:.2f}" + (f" ± {cell.std:.2f}" if cell.std is not None else "")
    if cell.n < cell.planned:
        text += f" (n={cell.n} of {cell.planned})"  # the notes say which seeds are missing and why
    if reference is not None:
        text += f" [paper {reference:.2f}]"
    return text


def fmt_diff(d: dict[str, Any] | None) -> str:
    if d is None or d["mean"] is None:
        return ""
    text = f"{d['mean']:+.2f}"
    if d["ci"] is not None:
        text += f" [{d['ci'][0]:+.2f}, {d['ci'][1]:+.2f}]"
    return text + f" vs {d['baseline']} (n={d['n']})"


DIFF_HEADER = f"{PROPOSED.upper()} − best baseline (95% CI)"


def table_rows(report: Report, bold: tuple[str, str]) -> tuple[list[str], list[list[str]]]:
    """The table's header and rows; the GDW − best baseline column only when some row has one
    (a sweep without GDW, or without a baseline, has none)."""
    diffs = [fmt_diff(row.gdw_vs_best_baseline()) for row in report.rows]
    with_diff = any(diffs)
    header = ["setting"] + report.methods + ([DIFF_HEADER] if with_diff else [])
    body = []
    for row, diff in zip(report.rows, diffs):
        best = row.best_method()
        cells = []
        for m in report.methods:
            text = fmt_cell(row.cells.get(m), row.reference.get(m))
            cells.append(f"{bold[0]}{text}{bold[1]}" if m == best and text else text)
        body.append([row.setting] + cells + ([diff] if with_diff else []))
    return header, body


def to_markdown(report: Report) -> str:
    header, body = table_rows(report, ("**", "**"))
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines) + "\n"


def _latex_escape(text: str) -> str:
    return (text.replace("\\", r"\textbackslash{}").replace("&", r"\&").replace("%", r"\%").replace("_", r"\_")
            .replace("#", r"\#").replace("±", r"$\pm$").replace("−", "$-$").replace("–", "--"))


def to_latex(report: Report) -> str:
    header, body = table_rows(report, ("\x00", "\x01"))
    def cell(text: str) -> str:
        return _latex_escape(text).replace("\x00", r"\textbf{").replace("\x01", "}")
    lines = [r"\begin{tabular}{l" + "c" * (len(header) - 1) + "}", r"\toprule",
             " & ".join(cell(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(cell(c) for c in r) + r" \\" for r in body]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def to_csv(report: Report) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS + report.grid_keys)
    for row in report.rows:
        for m in report.methods:
            c = row.cells.get(m)
            if c is None:
                continue
            w.writerow([row.setting, m, c.n, c.planned, "" if c.mean is None else f"{c.mean:.4f}",
                        "" if c.std is None else f"{c.std:.4f}", " ".join(str(s) for s in sorted(c.accs)),
                        " ".join(str(a.seed) for a in c.missing())]
                       + [row.grid.get(k, "") for k in report.grid_keys])
    return buf.getvalue()


def render(report: Report, fmt: str) -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    return {"md": to_markdown, "csv": to_csv, "latex": to_latex}[fmt](report)


def rich_table(report: Report):
    from rich.table import Table

    header, body = table_rows(report, ("[bold]", "[/bold]"))
    table = Table(*header, title="final_acc, mean ± std over seeds (best of each row in bold)",
                  caption="\n".join(report.notes) or None, caption_justify="left")
    for r in body:
        table.add_row(*r)
    return table
