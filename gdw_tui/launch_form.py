"""The launch form's logic: fields → `section.key` overrides → a resolved config, with engine.config's messages.

Kept free of widgets so the validation the user sees while typing is tested directly, and so it
can only ever say what the CLI says (every message comes from engine.config.ConfigError).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from engine.config import ConfigError, coerce, load_preset, parse_set
from engine.export.live import check_live_log
from engine.launch import check_data_present, check_device_available

# form field -> the config field it sets
FORM_FIELDS = {
    "method": "train.method", "seed": "train.seed", "epochs": "train.epochs", "device": "train.device",
    "data_dir": "data.data_dir", "download": "data.download", "log": "train.log",
}
FIELD_LABELS = {"data_dir": "data dir"}  # how the form names a field when it differs from the key


@dataclass
class FormResult:
    cfg: dict[str, Any] | None = None
    errors: dict[str, str] = field(default_factory=dict)  # form field ("method", …, "more", "preset") -> message

    @property
    def ok(self) -> bool:
        return self.cfg is not None and not self.errors

    def first_error(self) -> str:
        return next(iter(self.errors.values()), "")


def parse_more(text: str) -> list[tuple[str, str]]:
    """`section.key=value` items separated by spaces or commas; quotes allow spaces in a value."""
    try:
        items = shlex.split(text.replace(",", " "))
    except ValueError as e:
        raise ConfigError(f"overrides: {e} (quote a value that has spaces)") from None
    return [parse_set(item) for item in items]


def validate(preset: str, values: dict[str, str], more: str, presets_dir: str | None) -> FormResult:
    """Check each field alone (to point at the wrong one), then the whole config (cross-field rules)."""
    result = FormResult()
    overrides: dict[str, Any] = {}
    for name, dotted in FORM_FIELDS.items():
        raw = values.get(name, "")
        if raw is None or str(raw).strip() == "":
            continue  # empty: the preset's value
        try:
            overrides[dotted] = coerce(dotted, str(raw).strip())
        except ConfigError as e:
            result.errors[name] = str(e)
    try:
        for dotted, raw in parse_more(more):
            value = coerce(dotted, raw)
            field_name = next((n for n, d in FORM_FIELDS.items() if d == dotted), None)
            if field_name is not None and dotted in overrides and overrides[dotted] != value:
                # One value per key: a silent winner would train something the form does not show.
                label = FIELD_LABELS.get(field_name, field_name)
                raise ConfigError(
                    f"{dotted} is set twice: the {label} field says {values[field_name]!s}, more: says {raw}"
                    f" (change the {label} field, or drop it from more:)"
                )
            overrides[dotted] = value
    except ConfigError as e:
        result.errors["more"] = str(e)
    if result.errors:
        return result
    try:
        result.cfg = load_preset(preset, overrides, presets_dir)
    except ConfigError as e:
        result.errors["preset"] = str(e)
        return result
    # The launch pre-flight (engine.launch.preflight), field by field, so the error points at the field.
    for name, check in (("device", lambda: check_device_available(result.cfg["train"]["device"])),
                        ("data_dir", lambda: check_data_present(result.cfg)),
                        ("log", lambda: check_live_log(result.cfg, probe_server=False))):
        try:
            check()
        except ConfigError as e:
            result.errors[name] = str(e)
    if result.errors:
        result.cfg = None
    return result
