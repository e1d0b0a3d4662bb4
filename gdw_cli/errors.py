"""Bad input ends with one line on stderr and exit code 2: usage errors included."""

from __future__ import annotations

import errno
import os
import sys
from typing import Any

import typer
from rich.console import Console

from .help_format import ClassicMetavars

err = Console(stderr=True)


def print_error(message: str) -> None:
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)


def warn(message: str) -> None:
    """A problem that does not stop the command (an unreadable file among many): one line on stderr."""
    err.print(f"warning: {message}", markup=False, highlight=False, soft_wrap=True)


def name_too_long(e: OSError) -> str:
    """ENAMETOOLONG in words: which name of the path is too long, and the limit."""
    path = os.fsdecode(e.filename) if e.filename is not None else ""
    longest = max(path.split(os.sep), key=lambda part: len(os.fsencode(part)), default="")
    size = len(os.fsencode(longest))
    if size > 255:
        return f"a name in a path is {size} bytes long; a file system allows at most 255: {_clip(longest)}"
    return f"a path is {len(os.fsencode(path))} bytes long, more than the file system allows: {_clip(path)}"


def _clip(text: str, keep: int = 24) -> str:
    return text if len(text) <= 2 * keep else f"{text[:keep]}…{text[-keep:]}"


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
            if isinstance(e, OSError) and e.errno == errno.ENAMETOOLONG:  # wherever a path is used
                print_error(name_too_long(e))
                sys.exit(2)
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
