"""What a sweep is: presets × grid values × methods × seeds, expanded into validated run configs.

Torch-free. Every value goes through engine.config (load_preset, apply_overrides, coerce), so a
sweep refuses exactly what `gdw run` refuses, with the same one-line ConfigErrors, before any
directory is created. A sweep file (TOML) says the same as the command line:

    name = "digits"
    presets = ["digits-clean", "digits-unif60"]
    methods = ["erm", "gdw"]          # default: each preset's own method
    seeds = [1, 10, 100, 1000, 10000] # the paper's seeds (the default)
    [set]                             # fields for every run
    train.epochs = 10
    [grid]                            # cartesian axes
    train.outer_lr = [10, 100, 1000]
    [local]                           # executor options (or [slurm])
    workers = 2
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..config import (
    METHODS, ConfigError, _suggest, coerce, load_preset, load_toml_file, lookup_field, parse_set,
    resolve_preset_path,
)
from .executor import EXECUTORS, check_executor

PAPER_SEEDS = (1, 10, 100, 1000, 10000)  # appendix C
# A sweep of more runs is created only when confirmed (`gdw sweep`: a y/N prompt or --yes; the
# sweep form: Launch pressed twice), so a slip in --seeds or a grid cannot fill a cluster.
CONFIRM_ABOVE = 500


class Lines:
    """The kind of an option that is a list of lines: a string is ONE line (a shell line may hold
    commas, e.g. `export CUDA_VISIBLE_DEVICES=0,1`); several lines are a list."""


# Executor options: name -> (kind, help). Lists are given as comma-separated text on the command line.
LOCAL_OPTIONS: dict[str, tuple[type, str]] = {
    "gpus": (list, "GPU indices to use (default: all visible)"),
    "per_gpu": (int, "runs sharing one GPU"),
    "workers": (int, "parallel runs on a machine without GPUs (the cores are divided among them)"),
}
SLURM_OPTIONS: dict[str, tuple[type, str]] = {
    "partition": (str, "Slurm partition"),
    "time": (int, "time limit per run, minutes"),
    "gpus": (int, "GPUs per task"),
    "cpus": (int, "CPUs per task"),
    "mem": (int, "memory per task, GB"),
    "array_parallelism": (int, "at most this many array tasks at once"),
    "setup": (Lines, "shell lines run before each task (e.g. `module load cuda`)"),
    "account": (str, "Slurm account"),
    "qos": (str, "Slurm QOS"),
}
OPTIONS = {"local": LOCAL_OPTIONS, "slurm": SLURM_OPTIONS}
FILE_FIELDS = ("name", "description", "presets", "methods", "seeds", "set", "grid", "executor", "local", "slurm", "force")


@dataclass
class SweepSpec:
    presets: list[str]
    methods: list[str] | None = None  # None: each preset's own method
    seeds: list[int] = field(default_factory=lambda: list(PAPER_SEEDS))
    sets: dict[str, Any] = field(default_factory=dict)  # section.key -> value, every run
    grid: dict[str, list[Any]] = field(default_factory=dict)  # section.key -> values (typed)
    name: str = ""
    executor: str = "local"
    options: dict[str, Any] = field(default_factory=dict)  # the executor's options
    source: str = ""  # the sweep file it came from, if any
    force: bool = False  # run label-noise methods on imbalance-only presets too


@dataclass(frozen=True)
class RunPlan:
    """One run of the sweep: its place in the grid and its resolved config."""

    preset: str
    method: str
    seed: int
    grid: dict[str, Any]
    config: dict[str, Any]

    @property
    def setting(self) -> str:
        return setting_label(self.preset, self.grid)


def grid_tag(grid: dict[str, Any]) -> str:
    """The grid values in a run's name: `outer_lr10-noise_rate0.4` (empty without a grid)."""
    return "-".join(f"{k.rsplit('.', 1)[-1]}{fmt_value(v)}" for k, v in grid.items())


def setting_label(preset: str, grid: dict[str, Any]) -> str:
    """A row of the report: the preset and any grid values, e.g. `cifar10-unif40 train.outer_lr=10`."""
    return " ".join([preset] + [f"{k}={fmt_value(v)}" for k, v in grid.items()])


def fmt_value(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).lower() if isinstance(v, bool) else str(v)


# --- parsing the pieces ---------------------------------------------------------------------------


def _items(text: str | list[Any], what: str) -> list[Any]:
    items = [s.strip() for s in text.split(",")] if isinstance(text, str) else list(text)
    if not items or any(isinstance(i, str) and not i for i in items):
        raise ConfigError(f"{what} must be a comma-separated list with no empty items (got {text!r})")
    return items


def _no_duplicates(items: list[Any], what: str) -> None:
    seen: set[Any] = set()
    for i in items:
        if i in seen:
            raise ConfigError(f"{what} lists {i!r} twice")
        seen.add(i)


def parse_methods(text: str | list[Any]) -> list[str]:
    methods = _items(text, "--methods")
    for m in methods:
        if m not in METHODS:
            raise ConfigError(f"unknown method '{m}' in --methods{_suggest(str(m), list(METHODS))}; valid methods: {', '.join(METHODS)}")
    _no_duplicates(methods, "--methods")
    return methods


def parse_seeds(text: str | list[Any]) -> list[int]:
    try:
        seeds = [coerce("train.seed", s) for s in _items(text, "--seeds")]
    except ConfigError as e:
        raise ConfigError(f"--seeds: {e}" if not str(e).startswith("--seeds") else str(e)) from None
    _no_duplicates(seeds, "--seeds")
    return seeds


def parse_grid_axis(item: str) -> tuple[str, list[Any]]:
    """`section.key=v1,v2,...` → the field and its typed values."""
    name, sep, values = item.partition("=")
    name = name.strip()
    if not sep or not name or not values.strip():
        raise ConfigError(f"--grid expects section.key=v1,v2,..., e.g. train.outer_lr=10,100,1000 (got {item!r})")
    return check_grid_axis(name, _items(values, f"--grid {name}"))


def check_grid_axis(name: str, values: list[Any]) -> tuple[str, list[Any]]:
    if "." not in name:
        raise ConfigError(f"--grid key must be section.key, e.g. train.outer_lr (got {name!r})")
    lookup_field(name)
    if name in ("train.method", "train.seed"):
        raise ConfigError(f"--grid {name}: use --{name.split('.')[1]}s instead")
    if not values:
        raise ConfigError(f"--grid {name} has no values")
    typed = [coerce(name, v) for v in values]
    _no_duplicates(typed, f"--grid {name}")
    return name, typed


def parse_options(executor: str, raw: dict[str, Any], where: str) -> dict[str, Any]:
    """Executor options by name: checked types, lists from comma-separated text; unknown names refused."""
    schema = OPTIONS[check_executor(executor)]
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if value is None:
            continue
        if key not in schema:
            raise ConfigError(f"{where}: unknown {executor} option '{key}'{_suggest(key, list(schema))}; valid: {', '.join(schema)}")
        kind = schema[key][0]
        label = f"{executor} option {key}" if where != "command line" else f"--{_cli_name(executor, key)}"
        out[key] = _option_value(kind, value, label)
    if executor == "local":
        for key in ("per_gpu", "workers"):
            if key in out and out[key] < 1:
                raise ConfigError(f"{_label(executor, key, where)} must be at least 1 (got {out[key]})")
        if "gpus" in out:
            gpus = [_option_value(int, g, _label(executor, "gpus", where)) for g in out["gpus"]]
            if not gpus or any(g < 0 for g in gpus):
                raise ConfigError(f"{_label(executor, 'gpus', where)} must list GPU indices >= 0 (got {raw['gpus']!r})")
            _no_duplicates(gpus, _label(executor, "gpus", where))
            out["gpus"] = gpus
    else:
        for key in ("time", "gpus", "cpus", "mem", "array_parallelism"):
            if key in out and out[key] < (0 if key == "gpus" else 1):
                raise ConfigError(f"{_label(executor, key, where)} must be at least {0 if key == 'gpus' else 1} (got {out[key]})")
    return out


def _cli_name(executor: str, key: str) -> str:
    name = key.replace("_", "-")
    return f"slurm-{name}" if executor == "slurm" else name


def _label(executor: str, key: str, where: str) -> str:
    return f"--{_cli_name(executor, key)}" if where == "command line" else f"{where}: {executor} option {key}"


def _option_value(kind: type, value: Any, label: str) -> Any:
    if kind is Lines:
        lines = [value] if isinstance(value, str) else value
        if not isinstance(lines, (list, tuple)) or not lines or not all(isinstance(x, str) and x.strip() for x in lines):
            raise ConfigError(f"{label} must be a line or a list of lines (got {value!r})")
        return [x.strip() for x in lines]
    if kind is list:
        if isinstance(value, str):
            return _items(value, label)
        if isinstance(value, (list, tuple)):
            return list(value)
        raise ConfigError(f"{label} must be a list (got {value!r})")
    if kind is int:
        if isinstance(value, bool):
            raise ConfigError(f"{label} must be an integer (got {value!r})")
        try:
            return int(str(value).strip()) if not isinstance(value, int) else value
        except ValueError:
            raise ConfigError(f"{label} must be an integer (got {value!r})") from None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{label} must be a non-empty string (got {value!r})")
    return value.strip()


# --- sweep files ----------------------------------------------------------------------------------


def builtin_sweeps_dir() -> Path:
    return Path(str(resources.files("gdw_presets"))) / "sweeps"


def builtin_sweeps() -> dict[str, Path]:
    d = builtin_sweeps_dir()
    return {p.stem: p for p in sorted(d.glob("*.toml"))} if d.is_dir() else {}


def is_sweep_file(ref: str) -> bool:
    """A .toml with a top-level `presets` list is a sweep file (a preset file has sections instead)."""
    p = Path(ref).expanduser()
    if p.suffix != ".toml" or not p.is_file():
        return False
    try:
        return "presets" in load_toml_file(p)
    except ConfigError:
        return False


def _flatten(table: Any, where: str, prefix: str = "") -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table of section.key = value")
    out: dict[str, Any] = {}
    for k, v in table.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, where, name + "."))
        else:
            out[name] = v
    return out


def load_sweep_file(path: str | os.PathLike[str]) -> SweepSpec:
    p = Path(path).expanduser()
    raw = load_toml_file(p)
    src = p.name
    for key in raw:
        if key not in FILE_FIELDS:
            raise ConfigError(f"{src}: unknown field '{key}'{_suggest(key, list(FILE_FIELDS))}; valid fields: {', '.join(FILE_FIELDS)}")
    presets = raw.get("presets")
    if not isinstance(presets, list) or not presets or not all(isinstance(x, str) and x for x in presets):
        raise ConfigError(f"{src}: presets must be a non-empty list of preset names")
    try:
        methods = parse_methods(raw["methods"]) if "methods" in raw else None
        seeds = parse_seeds(raw["seeds"]) if "seeds" in raw else list(PAPER_SEEDS)
        sets: dict[str, Any] = {}
        for name, value in _flatten(raw.get("set", {}), "[set]").items():
            coerce(name, value)
            sets[name] = value
        grid: dict[str, list[Any]] = {}
        for name, values in _flatten(raw.get("grid", {}), "[grid]").items():
            if not isinstance(values, list):
                raise ConfigError(f"[grid] {name} must be a list of values (got {values!r})")
            grid.update([check_grid_axis(name, values)])
        executor = raw.get("executor", "local")
        if not isinstance(executor, str):
            raise ConfigError(f"executor must be one of {', '.join(EXECUTORS)} (got {executor!r})")
        for table in EXECUTORS:
            if table in raw and not isinstance(raw[table], dict):
                example = {"local": "workers = 2", "slurm": 'partition = "gpu"'}[table]
                raise ConfigError(f"{table} must be a table of options: a line [{table}], then one option per line "
                                  f"such as {example} (got {table} = {raw[table]!r})")
        options = parse_options(executor, raw.get(executor, {}), f"[{executor}]")
    except ConfigError as e:
        raise ConfigError(f"{src}: {e}") from None
    name = raw.get("name", p.stem)
    if not isinstance(name, str):
        raise ConfigError(f"{src}: name must be a string (got {name!r})")
    force = raw.get("force", False)
    if not isinstance(force, bool):
        raise ConfigError(f"{src}: force must be true or false (got {force!r})")
    return SweepSpec(presets=list(presets), methods=methods, seeds=seeds, sets=sets, grid=grid, name=name or p.stem,
                     executor=executor, options=options, source=str(p), force=force)


def file_options(path: str | os.PathLike[str], executor: str) -> dict[str, Any]:
    """A sweep file's options for `executor` (also for the one it does not select)."""
    raw = load_toml_file(Path(path).expanduser())
    table = raw.get(executor, {})
    return parse_options(executor, table, f"[{executor}]") if isinstance(table, dict) else {}


# --- expansion ------------------------------------------------------------------------------------


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        name, value = parse_set(item)
        if name in ("train.method", "train.seed"):
            raise ConfigError(f"--set {name}: a sweep takes --methods and --seeds instead")
        coerce(name, value)
        out[name] = value
    return out


def expand(spec: SweepSpec, presets_dir: str | os.PathLike[str] | None = None) -> list[RunPlan]:
    """Every run of the sweep, configs resolved and checked; ConfigError on the first bad one."""
    if not spec.presets:
        raise ConfigError("a sweep needs at least one preset")
    _no_duplicates(spec.presets, "the preset list")
    if not spec.seeds:
        raise ConfigError("--seeds must list at least one seed")
    names = [resolve_preset_path(p, presets_dir)[0] for p in spec.presets]  # unknown presets first, one line each
    _no_duplicates(names, "the preset list")
    axes = list(spec.grid.items())
    plans: list[RunPlan] = []
    for preset in spec.presets:
        for values in itertools.product(*[vals for _, vals in axes]):
            grid = {name: v for (name, _), v in zip(axes, values)}
            base = {**spec.sets, **grid}
            try:
                own = load_preset(preset, base, presets_dir)
            except ConfigError as e:
                where = f" with {setting_label('', grid).strip()}" if grid else ""
                raise ConfigError(f"preset {preset}{where}: {e}") from None
            for method in spec.methods or [own["train"]["method"]]:
                if not spec.force:
                    check_fits_the_setting(method, own)
                for seed in spec.seeds:
                    cfg = load_preset(preset, {**base, "train.method": method, "train.seed": seed}, presets_dir)
                    plans.append(RunPlan(cfg["preset"], method, seed, grid, cfg))
    return plans


def check_fits_the_setting(method: str, cfg: dict[str, Any]) -> None:
    """A label-noise method (GLC, Co-teaching) on a preset whose only difficulty is class imbalance is
    refused: it would correct noise that is not there. --force (or `force = true` in a sweep file) runs it."""
    data = cfg["data"]
    if METHODS[method].label_noise_only and data["noise"] == "none" and data["imbalance"] > 1:
        raise ConfigError(f"{method} is a label-noise method and preset {cfg['preset']} has no label noise (class imbalance "
                          f"{data['imbalance']:g} only); leave {method} out of --methods, or pass --force to run it anyway")
