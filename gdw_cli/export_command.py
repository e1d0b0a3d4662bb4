"""`gdw export RUN|SWEEP... --to tensorboard|mlflow|wandb|csv`: a run's records in the lab's own tools.

The conversion is engine.export; this module is the command line: options, one line and exit
code 2 for any bad input (names, options, a missing extra, an unwritable --out, an unreachable
tracking URI), before anything is written.
"""

from __future__ import annotations

from typing import Optional

import typer

from engine.config import ConfigError
from engine.runs import runs_dir_from

from .errors import fail
from .headless import console


def export_cmd(
    refs: list[str] = typer.Argument(..., metavar="RUN|SWEEP...", help="run ids or directories, sweep ids or names"),
    to: str = typer.Option(..., "--to", metavar="TARGET", help="tensorboard, mlflow, wandb or csv"),
    out: Optional[str] = typer.Option(None, "--out", metavar="DIR",
                                      help="tensorboard, wandb, csv: where to write (default ./gdw-export/TARGET)"),
    tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri", metavar="URI",
                                               help="mlflow: the tracking server or store (default $MLFLOW_TRACKING_URI, else SQLite in ./mlruns)"),
    project: Optional[str] = typer.Option(None, "--project", metavar="NAME", help="mlflow: the experiment; wandb: the project (default gdw)"),
    online: bool = typer.Option(False, "--online", help="wandb: upload now (default: offline files under --out, for `wandb sync`)"),
    runs_dir: Optional[str] = typer.Option(None, "--runs-dir", metavar="DIR", help="runs directory (default: $GDW_RUNS_DIR or ./runs)"),
) -> None:
    """Export runs or sweeps to TensorBoard, MLflow, W&B or a tidy CSV; again later adds only what is new."""
    from engine.export.export import check_options, export, resolve

    try:
        check_options(to, out, tracking_uri, project, online)
        targets = resolve(runs_dir_from(runs_dir), refs)
        export(targets, to, out, tracking_uri, project, online,
               say=lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True))
    except ConfigError as e:
        fail(str(e))
    except OSError as e:  # the destination failed while writing (full disk, removed directory)
        fail(f"export to {to} failed: {e.strerror or e}{f' ({e.filename})' if e.filename else ''}")


def register(app: typer.Typer) -> None:
    from .help_format import Command

    app.command("export", cls=Command)(export_cmd)
