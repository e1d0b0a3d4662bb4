"""Print docs/presets.md: the table of built-in presets, generated from the preset files themselves.

Usage: python scripts/presets_table.py > docs/presets.md   (tests/test_packaging.py keeps them equal)
The reference figure is the text after "Reference: " in each preset's description.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.config import SCHEMA, from_toml_dict, load_toml_file  # noqa: E402

PRESETS_DIR = ROOT / "presets"


def _num(x: float) -> str:
    return f"{x:g}"


def reference(description: str) -> str:
    ref = description.partition("Reference: ")[2].strip().rstrip(".")
    return "—" if not ref or ref.startswith("none") else ref


def order(name: str) -> tuple:
    """Quick presets first, then CIFAR-10, CIFAR-100 (uniform, flip, imbalance, mixed), then real data."""
    groups = ("digits-unif60", "digits-clean", "digits-imb", "synthetic-", "cifar10-", "cifar100-")
    group = next((i for i, g in enumerate(groups) if name.startswith(g)), len(groups))
    rest = name.split("-", 1)[-1]
    kind = next((i for i, k in enumerate(("unif", "flip", "imb", "mix")) if rest.startswith(k)), 4)
    numbers = tuple(int(n) for n in re.findall(r"\d+", rest))
    return group, kind, numbers, name


def rows() -> list[dict[str, str]]:
    out = []
    for path in sorted(PRESETS_DIR.glob("*.toml"), key=lambda p: order(p.stem)):
        cfg = from_toml_dict(load_toml_file(path), path.name)
        d, t = cfg["data"], cfg["train"]
        out.append({
            "name": f"`{path.stem}`",
            "title": cfg["title"],
            "dataset": d["dataset"],
            "noise": "none" if d["noise"] == "none" else f"{d['noise']} {_num(d['noise_rate'])}",
            "imbalance": _num(d["imbalance"]),
            "method": t["method"],
            "epochs": str(t["epochs"]),
            "reference": reference(cfg["description"]),
        })
    return out


def render() -> str:
    cols = ["name", "title", "dataset", "noise", "imbalance", "method", "epochs", "reference"]
    defaults = SCHEMA["train"]
    lines = [
        "# Built-in presets",
        "",
        "Generated from `presets/*.toml` by `python scripts/presets_table.py > docs/presets.md`;",
        "a test keeps this page equal to the script's output.",
        "",
        "Run one with `gdw run --headless NAME`; change any field with `--set section.key=value`",
        "(`gdw presets` lists them too). *noise* is the corruption kind and rate r (uniform r flips",
        "about r·(C−1)/C of the labels), *imbalance* the long-tail factor n_max/n_min (1 = balanced).",
        "*reference* is the paper's figure for the setting, test accuracy in percent, where the",
        "paper (its tables and appendix) gives one; each preset's description says more.",
        "All CIFAR presets follow appendix C: ResNet-32, batch 100, SGD lr 0.1 with cosine decay over",
        f"80 epochs, momentum {defaults['momentum'].default:g}, weight decay {defaults['weight_decay'].default:g},"
        " outer lr 100 (CIFAR-10) or 1000 (CIFAR-100), 1000 clean meta images.",
        "",
        "User presets: put `NAME.toml` files in a directory and pass `--presets-dir DIR` or set",
        "`GDW_PRESETS=DIR[:DIR…]`; a user preset with a built-in's name takes its place.",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "|".join("---" for _ in cols) + "|",
    ]
    for r in rows():
        lines.append("| " + " | ".join(r[c].replace("|", "\\|") for c in cols) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
