"""`gdw plot`: publication figures of runs and sweeps, each with a sidecar CSV of the numbers drawn.

Registered on the `gdw` app by `register(app)`. Bad input (a kind, a format, a width, --epochs, a
sweep with no finished run, a run without what the kind needs, an unwritable --out, a missing
`plot` extra) ends with one line and exit code 2, before any file is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from engine.config import ConfigError
from engine.runs import runs_dir_from

from .errors import err, fail
from .headless import console
from .help_format import Command

KIND_NAMES = ("curves", "nozm", "omega", "table6", "weights", "corruption")  # engine.figures.kinds.KINDS, without importing matplotlib
WIDTHS = ("single", "double")
FORMATS = ("pdf", "png", "svg")


def parse_epochs(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        epochs = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        epochs = []
    if not epochs or min(epochs) < 1:
        raise ConfigError(f"--epochs takes 1-based epoch numbers separated by commas, e.g. 1,40,80 (got {text!r})")
    return epochs


def check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{option} must be one of {', '.join(choices)} (got {value!r})")


def plot_files(runs_dir: Path, refs: list[str], kinds: list[str] | None, out: Path, fmt: str, width: str,
               epochs: list[int] | None) -> tuple[list[Path], list[str]]:
    """Draw and write the figures; (paths written, notes on what was left out). ConfigError on bad input."""
    for k in kinds or []:
        check_choice("--kind", k, KIND_NAMES)
    check_choice("--format", fmt, FORMATS)
    check_choice("--width", width, WIDTHS)
    from engine.extras import require

    require("plot", "gdw plot")
    from engine.figures.data import select
    from engine.figures.kinds import Options, applicable
    from engine.figures.output import check_out_dir, draw, write

    check_out_dir(out)
    sel = select(runs_dir, refs)
    chosen = list(dict.fromkeys(kinds)) if kinds else applicable(sel)
    drawn = draw(sel, chosen, Options(width=width, epochs=epochs))
    return write(sel, drawn, out, fmt), sel.notes


def register(app: typer.Typer) -> None:
    @app.command("plot", cls=Command)
    def plot_cmd(
        refs: list[str] = typer.Argument(..., metavar="SWEEP|RUN...", help="sweeps and/or runs"),
        kind: Optional[list[str]] = typer.Option(
            None, "--kind", metavar="KIND",
            help="curves, nozm, omega, table6, weights or corruption (repeatable; default: every kind the runs have data for)"),
        out: str = typer.Option("figures", "--out", metavar="DIR", help="directory for the figures and their CSVs"),
        fmt: str = typer.Option("pdf", "--format", help="pdf, png or svg"),
        width: str = typer.Option("double", "--width", help="single (3.25 in) or double (6.75 in) column"),
        epochs: Optional[str] = typer.Option(None, "--epochs", metavar="E1,E2,...",
                                             help="omega: the epochs to show (1-based; default first, middle, last); table6: the last one"),
        runs_dir: Optional[str] = typer.Option(None, "--runs-dir", metavar="DIR", help="runs directory (default: $GDW_RUNS_DIR or ./runs)"),
    ) -> None:
        """Figures for a paper: curves with seed bands, Figure 7 (nozm), ω heatmaps, Table 6, target weights, GLC's Ĉ; a CSV beside each."""
        try:
            written, notes = plot_files(runs_dir_from(runs_dir), refs, kind, Path(out).expanduser(), fmt, width,
                                        parse_epochs(epochs))
        except ConfigError as e:
            fail(str(e))
        for note in notes:
            err.print(note, markup=False, highlight=False, soft_wrap=True)
        for path in written:
            console.print(f"wrote {path}", markup=False, highlight=False, soft_wrap=True)
