"""The preset schema: every experiment field with its type, range and default, and preset loading.

Torch-free, so the CLI and the UI validate input without importing the engine's heavy parts.
A preset is a TOML file with `title`, `description` and the sections `[data]`, `[model]`,
`[train]`; anything it leaves out takes the default below. This module is the one source of
truth for field names and defaults, the dataset list and the architecture list (the methods are
engine.method_table's).
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .method_table import METHODS

DATASETS = ("digits", "cifar10", "cifar100", "synthetic", "imagefolder")
NOISES = ("none", "unif", "flip", "flip2")
ARCHS = ("auto", "digits_mlp", "resnet32", "resnet18", "resnet50")
LOG_BACKENDS = ("none", "tensorboard", "mlflow", "wandb")  # live logging (engine.export.live)


class ConfigError(ValueError):
    """Bad user input: the message is one line that names the problem and what is valid."""


@dataclass(frozen=True)
class Field:
    kind: type  # bool, int, float or str
    default: Any
    help: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] | None = None
    lo_open: bool = False  # lo itself not allowed
    hi_open: bool = False
    auto: float | None = None  # a value outside the range that means "derive it from the run" (-1)

    def describe_range(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        lo = "(" if self.lo_open else "["
        hi = ")" if self.hi_open else "]"
        auto = "" if self.auto is None else f" or {_fmt(self.auto)} (auto)"
        return f"in {lo}{_fmt(self.lo)}, {_fmt(self.hi)}{hi}{auto}"


def _fmt(x: float | None) -> str:
    if x is None:
        return "∞"
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(x)


SCHEMA: dict[str, dict[str, Field]] = {
    "data": {
        "dataset": Field(str, "digits", "dataset to train on", choices=DATASETS),
        "data_dir": Field(str, "./data", "where dataset files are (and are downloaded to with --download)"),
        "download": Field(bool, False, "download CIFAR files if they are missing"),
        "noise": Field(str, "none", "label corruption: none, unif(orm), flip, flip2", choices=NOISES),
        "noise_rate": Field(float, 0.0, "corruption rate r", 0.0, 1.0),
        "imbalance": Field(float, 1.0, "long-tail imbalance factor n_max/n_min (1 = balanced, 100 = 'imbalance 100')", 1.0, 1e5),
        "meta_per_class": Field(int, 10, "clean meta images per class, taken out of the training set", 1, 1e6),
        "augment": Field(bool, True, "CIFAR-style augmentation (crop with reflect padding, flip) for 32×32 data"),
        "synthetic_train": Field(int, 5000, "training images of the synthetic dataset (before the meta split)", 10, 1e7),
        "synthetic_test": Field(int, 1000, "test images of the synthetic dataset", 1, 1e7),
        "synthetic_classes": Field(int, 10, "classes of the synthetic dataset", 2, 1000),
        "image_size": Field(int, 224, "image size for imagefolder data", 16, 1024),
        "workers": Field(int, 4, "decoding threads for imagefolder data (0 = in the training thread)", 0, 64),
    },
    "model": {
        "arch": Field(str, "auto", "network: auto picks digits_mlp, resnet32 or resnet50 by dataset", choices=ARCHS),
        "pretrained": Field(bool, False, "ImageNet weights for resnet18/50 (torchvision; needs them cached or --download)"),
    },
    "train": {
        "method": Field(str, "gdw", "training method", choices=tuple(METHODS)),
        "epochs": Field(int, 80, "epochs", 1, 100000),
        "batch_size": Field(int, 100, "training batch size", 1, 1 << 20),
        "meta_batch_size": Field(int, 0, "meta batch size (0 = same as batch_size)", 0, 1 << 20),
        "test_batch_size": Field(int, 500, "evaluation batch size", 1, 1 << 20),
        "lr": Field(float, 0.1, "initial learning rate (cosine decay per epoch)", 0.0, 100.0, lo_open=True),
        "momentum": Field(float, 0.9, "SGD momentum", 0.0, 1.0, hi_open=True),
        "weight_decay": Field(float, 5e-4, "SGD weight decay", 0.0, 1.0),
        "outer_lr": Field(float, 100.0, "GDW outer learning rate η_ω (100 on CIFAR-10, 1000 on CIFAR-100)", 0.0, 1e9, lo_open=True),
        "clip": Field(float, 0.2, "GDW clip c of the class-level weight step", 0.0, 1e6, lo_open=True),
        "vnet_lr": Field(float, 1e-3, "Adam learning rate of the weighting network V", 0.0, 10.0, lo_open=True),
        "vnet_weight_decay": Field(float, 1e-4, "Adam weight decay of V", 0.0, 1.0),
        "vnet_hidden": Field(int, 100, "hidden units of V", 1, 100000),
        "glc_phase1_epochs": Field(int, 0, "GLC: epochs of phase 1 (plain cross-entropy, then Ĉ is estimated on the clean set); 0 = half of train.epochs; phase 2 gets the rest", 0, 100000),
        "forget_rate": Field(float, -1.0, "Co-teaching: τ, the largest fraction of each batch dropped; -1 = the fraction of training labels the run's noise changes (uniform r over C classes: r(C−1)/C; flip, flip2: r; no noise: 0)", 0.0, 1.0, hi_open=True, auto=-1.0),
        "forget_epochs": Field(int, 10, "Co-teaching: T_k, the epochs over which the forget rate rises from 0 to τ", 1, 100000),
        "seed": Field(int, 1, "seed for initialisation, corruption and data order", 0, 2**31 - 1),
        "device": Field(str, "auto", "auto (CUDA when present), cpu, cuda or cuda:N"),
        "threads": Field(int, 0, "torch CPU threads (0 = auto: 1 for the tiny digits model, where threading costs more than it gives)", 0, 4096),
        "final_epochs": Field(int, 5, "final accuracy = mean test accuracy of this many last epochs", 1, 100000),
        "events": Field(bool, True, "write step and weights events (off only for benchmarking)"),
        "step_events_per_s": Field(float, 10.0, "at most this many step events a second", 0.01, 100000.0),
        "weights_events_per_epoch": Field(int, 4, "weights snapshots per epoch", 1, 100000),
        "channels_last": Field(bool, False, "channels_last memory format (CUDA; can change the last bits)"),
        "compile": Field(bool, False, "torch.compile the model's plain forward: ERM's training forward and evaluation (the meta methods train eagerly)"),
        "bf16": Field(bool, False, "bf16 autocast on CUDA (changes the numbers)"),
        "pin_memory": Field(bool, False, "pinned host memory and non-blocking copies for imagefolder data"),
        "log": Field(str, "none", "stream the run's records live to tensorboard, mlflow or wandb (needs that extra)",
                     choices=LOG_BACKENDS),
        "log_to": Field(str, "", "where --log writes: a directory (tensorboard, wandb; default RUNS_DIR/tensorboard, "
                                 "RUNS_DIR/wandb) or an MLflow tracking URI (default $MLFLOW_TRACKING_URI, else SQLite in ./mlruns)"),
    },
}
TOP_LEVEL = {"title": Field(str, "", "one-line title"), "description": Field(str, "", "what the preset reproduces")}


def defaults() -> dict[str, Any]:
    cfg: dict[str, Any] = {k: f.default for k, f in TOP_LEVEL.items()}
    for section, fields in SCHEMA.items():
        cfg[section] = {k: f.default for k, f in fields.items()}
    return cfg


def all_field_names() -> list[str]:
    return [f"{s}.{k}" for s, fields in SCHEMA.items() for k in fields] + list(TOP_LEVEL)


def _suggest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else ""


def lookup_field(dotted: str) -> Field:
    section, _, key = dotted.partition(".")
    if not key and section in TOP_LEVEL:
        return TOP_LEVEL[section]
    if section in SCHEMA and key in SCHEMA[section]:
        return SCHEMA[section][key]
    raise ConfigError(f"unknown field '{dotted}'{_suggest(dotted, all_field_names())}")


def coerce(dotted: str, value: Any) -> Any:
    """Check one value against its field: type, then range or choices. Returns the typed value."""
    f = lookup_field(dotted)
    typed = _coerce_type(dotted, f, value)
    if f.choices is not None and typed not in f.choices:
        raise ConfigError(f"{dotted} must be {f.describe_range()} (got {value!r}){_suggest(str(typed), list(f.choices))}")
    if f.kind in (int, float) and not (f.auto is not None and typed == f.auto):
        bad = (
            (f.lo is not None and (typed < f.lo or (f.lo_open and typed == f.lo)))
            or (f.hi is not None and (typed > f.hi or (f.hi_open and typed == f.hi)))
            or (f.kind is float and not math.isfinite(typed))
        )
        if bad:
            raise ConfigError(f"{dotted} must be {f.describe_range()} (got {value!r})")
    if dotted == "train.device":
        check_device_syntax(typed)
        typed = typed.strip().lower()  # what was checked is what torch.device gets
    return typed


def _coerce_type(dotted: str, f: Field, value: Any) -> Any:
    kind = f.kind
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            return value.strip().lower() in ("true", "1", "yes", "on")
        raise ConfigError(f"{dotted} must be true or false (got {value!r})")
    if kind is int:
        if isinstance(value, bool):
            raise ConfigError(f"{dotted} must be an integer (got {value!r})")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip().replace("_", ""))
            except ValueError:
                pass
        raise ConfigError(f"{dotted} must be an integer (got {value!r})")
    if kind is float:
        if isinstance(value, bool):
            raise ConfigError(f"{dotted} must be a number (got {value!r})")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ConfigError(f"{dotted} must be a number (got {value!r})")
    if not isinstance(value, str):
        raise ConfigError(f"{dotted} must be a string (got {value!r})")
    return value


def check_device_syntax(device: str) -> None:
    d = device.strip().lower()
    if d in ("auto", "cpu", "cuda") or (d.startswith("cuda:") and d[5:].isdigit()):
        return
    raise ConfigError(f"train.device must be auto, cpu, cuda or cuda:N (got {device!r})")


def cuda_index(spec: str, count: int) -> int:
    """The index of a `cuda`/`cuda:N` device among `count` CUDA devices; ConfigError if it is not there."""
    index = int(spec.split(":")[1]) if ":" in spec else 0
    if count == 0:
        raise ConfigError(f"device '{spec}' is not available: no CUDA device found; use --device cpu or auto")
    if index >= count:
        raise ConfigError(f"device '{spec}' is not available: this machine has {count} CUDA device(s), cuda:0..cuda:{count - 1}")
    return index


def parse_set(item: str) -> tuple[str, str]:
    """`section.key=value` from the command line."""
    name, sep, value = item.partition("=")
    name = name.strip()
    if not sep or not name or "." not in name and name not in TOP_LEVEL:
        sections = [s for s, fields in SCHEMA.items() if name in fields]
        hint = f"; did you mean '{sections[0]}.{name}={value.strip()}'?" if sep and len(sections) == 1 else ""
        raise ConfigError(f"--set expects section.key=value, e.g. train.epochs=10 (got {item!r}){hint}")
    lookup_field(name)
    return name, value.strip()


def apply_overrides(cfg: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of cfg with `section.key` overrides applied (values checked), then cross-checked."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in cfg.items()}
    for dotted, value in overrides.items():
        typed = coerce(dotted, value)
        section, _, key = dotted.partition(".")
        if key:
            out[section][key] = typed
        else:
            out[section] = typed
    check_consistency(out)
    return out


def check_consistency(cfg: dict[str, Any]) -> None:
    """Rules that involve more than one field."""
    data = cfg["data"]
    if data["noise"] == "none" and data["noise_rate"] > 0:
        raise ConfigError(
            f"data.noise_rate={data['noise_rate']} needs data.noise to be unif, flip or flip2 (it is 'none')"
        )
    if data["noise"] != "none" and data["noise_rate"] == 0:
        raise ConfigError(f"data.noise='{data['noise']}' needs data.noise_rate > 0 (or set data.noise='none')")
    train = cfg["train"]
    if train["method"] == "glc":
        if train["epochs"] < 2:
            raise ConfigError(f"method glc trains in two phases: train.epochs must be at least 2 (got {train['epochs']})")
        if train["glc_phase1_epochs"] >= train["epochs"]:
            raise ConfigError(f"train.glc_phase1_epochs={train['glc_phase1_epochs']} leaves no epoch for GLC's phase 2; "
                              f"it must be less than train.epochs={train['epochs']} (0 = half)")


def from_toml_dict(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """Validate a parsed preset against the schema and fill in the defaults."""
    cfg = defaults()
    for key, value in raw.items():
        if key in TOP_LEVEL:
            try:
                cfg[key] = coerce(key, value)
            except ConfigError as e:
                raise ConfigError(f"{source}: {e}") from None
        elif key == "preset" and isinstance(value, str):
            cfg[key] = value  # a run's config.toml records the preset it came from
        elif key in SCHEMA:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: [{key}] must be a table of fields")
            for sub, subvalue in value.items():
                dotted = f"{key}.{sub}"
                try:
                    cfg[key][sub] = coerce(dotted, subvalue)
                except ConfigError as e:
                    raise ConfigError(f"{source}: {e}") from None
        else:
            options = list(SCHEMA) + list(TOP_LEVEL)
            raise ConfigError(f"{source}: unknown section or field '{key}'{_suggest(key, options)}")
    try:
        check_consistency(cfg)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    return cfg


def load_toml_file(path: Path) -> dict[str, Any]:
    try:
        data = Path(path).read_bytes()
        # A UTF-8 byte order mark (some Windows editors write one) is not part of the TOML.
        text = data.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
        return tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError(f"preset file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"preset path is a directory, not a .toml file: {path}") from None
    except PermissionError:
        raise ConfigError(f"preset file is not readable: {path}") from None
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ConfigError(f"{path} is not valid TOML: line {line} is not UTF-8 text "
                          f"(byte 0x{data[e.start]:02x} at position {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(toml_error(path, text, e)) from None


def toml_error(path: Path, text: str, e: tomllib.TOMLDecodeError) -> str:
    """tomllib's message, with the key named where it only says "Cannot overwrite a value"."""
    message = str(e).splitlines()[0]
    at = re.search(r"\(at line (\d+), column \d+\)", message)
    if at and message.startswith("Cannot overwrite a value"):
        number = int(at.group(1))
        key = text.splitlines()[number - 1].partition("=")[0].strip()
        return f"{path} is not valid TOML: line {number}: '{key}' is set twice"
    return f"{path} is not valid TOML: {message}"


# --- finding presets -------------------------------------------------------------------------


def preset_dirs(extra: str | os.PathLike[str] | None = None) -> list[Path]:
    """User directories first (--presets-dir, then GDW_PRESETS, os.pathsep-separated), built-ins last."""
    dirs: list[Path] = []
    if extra:
        dirs.append(Path(extra).expanduser())
    for part in os.environ.get("GDW_PRESETS", "").split(os.pathsep):
        if part.strip():
            dirs.append(Path(part.strip()).expanduser())
    dirs.append(builtin_presets_dir())
    return dirs


def builtin_presets_dir() -> Path:
    return Path(str(resources.files("gdw_presets")))


def check_presets_dir(path: str | os.PathLike[str] | None) -> None:
    if path and not Path(path).expanduser().is_dir():
        raise ConfigError(f"presets directory not found: {path}")


def available_presets(extra: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """name -> path; a user preset hides a built-in one of the same name."""
    found: dict[str, Path] = {}
    for d in reversed(preset_dirs(extra)):
        if d.is_dir():
            for p in sorted(d.glob("*.toml")):
                found[p.stem] = p
    return dict(sorted(found.items()))


def resolve_preset_path(name_or_path: str, extra: str | os.PathLike[str] | None = None) -> tuple[str, Path]:
    """A preset name or a path to a .toml → (preset name, path)."""
    looks_like_path = name_or_path.endswith(".toml") or os.sep in name_or_path or "/" in name_or_path
    if looks_like_path:
        p = Path(name_or_path).expanduser()
        if not p.exists():
            raise ConfigError(f"preset file not found: {name_or_path}")
        return p.stem, p
    presets = available_presets(extra)
    if name_or_path in presets:
        return name_or_path, presets[name_or_path]
    names = list(presets)
    close = difflib.get_close_matches(name_or_path, names, n=1, cutoff=0.5)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ConfigError(
        f"unknown preset '{name_or_path}'{hint}; valid presets: {', '.join(names)} (or a path to a .toml file)"
    )


def load_preset(
    name_or_path: str,
    overrides: dict[str, Any] | None = None,
    presets_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """The resolved config of a preset, with `section.key` overrides; `preset` names where it came from."""
    check_presets_dir(presets_dir)
    name, path = resolve_preset_path(name_or_path, presets_dir)
    cfg = from_toml_dict(load_toml_file(path), path.name)
    cfg = apply_overrides(cfg, overrides or {})
    cfg["preset"] = name
    return cfg


def resolved_arch(cfg: dict[str, Any]) -> str:
    arch = cfg["model"]["arch"]
    if arch != "auto":
        return arch
    return {"digits": "digits_mlp", "imagefolder": "resnet50"}.get(cfg["data"]["dataset"], "resnet32")


def to_toml(cfg: dict[str, Any]) -> str:
    import tomli_w

    return tomli_w.dumps(cfg)
