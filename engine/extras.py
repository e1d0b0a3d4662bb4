"""Optional extras: a feature whose library is not installed says, in one line, which extra installs it.

The core install stays small; figures, TensorBoard, MLflow, W&B and the browser UI are extras of
pyproject.toml. Torch-free, so the CLI, the UI and the engine (live logging) all check the same way:
`require("plot", "gdw plot")` raises a ConfigError (one line, exit 2 in the CLI) naming the extra and
the pip command that installs it into this install.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from .config import ConfigError

# extra (as in pyproject.toml's [project.optional-dependencies]) -> the modules it provides
EXTRAS: dict[str, tuple[str, ...]] = {
    "serve": ("textual_serve",),
    "plot": ("matplotlib",),
    "tensorboard": ("tensorboard",),
    "mlflow": ("mlflow",),
    "wandb": ("wandb", "PIL"),
}


class MissingExtra(ConfigError):
    """An optional library is not installed; the message names the extra and the command."""


def install_command(extra: str) -> str:
    """The pip command that adds `extra` to this install: editable from a source checkout, else from PyPI."""
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file():  # a checkout installed with `pip install -e`
        where = "." if Path.cwd().resolve() == root else str(root)
        return f"pip install -e '{where}[{extra}]'"
    return f"pip install 'gdw-tui[{extra}]'"


def require(extra: str, feature: str) -> None:
    """Import the extra's modules, or raise MissingExtra: "`feature` needs the 'extra' extra (...): pip ..."."""
    for module in EXTRAS[extra]:
        try:
            importlib.import_module(module)
        except ImportError as e:
            missing = isinstance(e, ModuleNotFoundError) and (e.name or module).split(".")[0] == module.split(".")[0]
            why = f"{module} is not installed" if missing else f"{module} cannot be imported: {e}"
            raise MissingExtra(f"{feature} needs the '{extra}' extra ({why}): {install_command(extra)}") from None


def require_installed(extra: str, feature: str) -> None:
    """`require` without importing: for checks in processes that must stay light (the UI, a launch
    pre-flight); the process that uses the library imports it with `require`."""
    import importlib.util
    import sys

    for module in EXTRAS[extra]:
        found = sys.modules[module] is not None if module in sys.modules else importlib.util.find_spec(module) is not None
        if not found:
            raise MissingExtra(f"{feature} needs the '{extra}' extra ({module} is not installed): {install_command(extra)}")
