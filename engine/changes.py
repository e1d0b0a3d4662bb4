"""What a run changed from its preset: `epochs=3 noise_rate=0.4` (gdw runs, gdw show, the UI's runs list)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import SCHEMA, ConfigError, load_preset, resolved_arch
from .runs import load_run_config, read_summary

# Shown as `key=value` when the key names one field only (`epochs`), else as `section.key=value`.
_SECTIONS_OF: dict[str, list[str]] = {}
for _section, _fields in SCHEMA.items():
    for _key in _fields:
        _SECTIONS_OF.setdefault(_key, []).append(_section)

OWN_COLUMNS = {"train.method", "train.seed"}  # every listing has them in columns of their own


def changes_from_preset(cfg: dict[str, Any], preset: dict[str, Any]) -> str:
    """What a run's resolved config sets differently from its preset: `epochs=3 lr=0.05`."""
    out = []
    for section, fields in SCHEMA.items():
        for key in fields:
            value, default = cfg[section][key], preset[section][key]
            if f"{section}.{key}" == "model.arch":  # `auto` and the model it stands for are the same
                value, default = resolved_arch(cfg), resolved_arch(preset)
            if value != default and f"{section}.{key}" not in OWN_COLUMNS:
                name = key if len(_SECTIONS_OF[key]) == 1 else f"{section}.{key}"
                shown = str(value).lower() if isinstance(value, bool) else f"{value:g}" if isinstance(value, float) else str(value)
                out.append(f"{name}={shown}")
    return " ".join(out)


def preset_changes(cfg: dict[str, Any], presets_dir: str | None = None,
                   presets: dict[str, dict[str, Any]] | None = None) -> str | None:
    """changes_from_preset against the preset cfg names; None when that preset cannot be read.
    `presets`: a cache for many runs (10,000 runs of a sweep share one preset, read once)."""
    try:
        name = cfg["preset"]
        preset = (presets or {}).get(name) or load_preset(name, None, presets_dir)
        if presets is not None:
            presets[name] = preset
        return changes_from_preset(cfg, preset)
    except ConfigError:
        return None


def run_changes(run_dir: Path, presets_dir: str | None, presets: dict[str, dict[str, Any]] | None = None,
                summary: dict[str, Any] | None = None) -> str:
    """A run's changes: those its summary.json stored when the run was made (`changes`, already
    type-checked by read_summary_checked), else (a run made before that field) computed from its
    config.toml; '?' when its config or its preset cannot be read."""
    stored = (summary if summary is not None else read_summary(run_dir)).get("changes")
    if isinstance(stored, str):
        return stored
    try:
        cfg = load_run_config(run_dir)
    except ConfigError:
        return "?"
    changes = preset_changes(cfg, presets_dir, presets)
    return "?" if changes is None else changes
