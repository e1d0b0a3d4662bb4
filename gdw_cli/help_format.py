"""Metavars in `--help`: `--seed SEED`, `--headless`, `PRESET` — not Typer 0.29's `<int>`, `<bool>`, `<str>`.

That Typer labels every parameter with its Python type, flags included (core.py `display_type`);
the command classes here give each parameter click's classic metavar instead: none for a flag,
otherwise the one the parameter declares or its name in capitals.
"""

from __future__ import annotations

from typing import Any

import typer


class ClassicMetavars:
    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if param.metavar is None:
                param.metavar = "" if getattr(param, "is_flag", False) else param.name.upper()
            if isinstance(param, typer.core.TyperArgument):
                # An argument's type column repeats its name: leave it empty.
                param.display_type_rich = lambda ctx: None
        return params


class Command(ClassicMetavars, typer.core.TyperCommand):
    """Every `gdw` command: `@app.command(cls=Command)`."""
