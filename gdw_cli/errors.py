"""Bad input ends with one line on stderr and exit code 2: usage errors included."""

from __future__ import annotations

import sys
from typing import Any

import typer
from rich.console import Console

from .help_format import ClassicMetavars

err = Console(stderr=True)


def print_error(message: str) -> None:
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)


def fail(message: str) -> None:
    print_error(message)
    raise typer.Exit(2)


class OneLineErrors(ClassicMetavars, typer.core.TyperGroup):
    """Usage errors (a value of the wrong type, a missing argument, an unknown option) end like
    every other bad input: one line on stderr and exit code 2, not Typer's usage box."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            # Not standalone: Typer returns the exit code of typer.Exit and raises usage errors.
            rv = super().main(*args, standalone_mode=False, **kwargs)
        except Exception as e:
            # click's ClickException (vendored by newer Typer versions), recognised by its interface.
            if not (hasattr(e, "format_message") and hasattr(e, "exit_code")):
                raise
            message = e.format_message()
            if type(e).__name__ == "NoArgsIsHelpError":  # plain `gdw`: the help is the message (or already shown)
                if message:
                    print(message, file=sys.stderr)
            else:
                print_error(" ".join(message.split()))
            sys.exit(e.exit_code)
        sys.exit(rv if isinstance(rv, int) else 0)
