"""`e` on the dashboard and on the sweeps screen also writes the paper figures of what they show.

The figures are `gdw plot`'s own, made by a child `gdw plot` process: the same files and CSVs as the
command writes, and the UI process never imports matplotlib (nor waits for it: the screen stays live
while the child draws). A run's go to `<run>/exports/figures/`, a sweep's to
`<runs dir>/exports/figures/` under the sweep's id.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from textual.screen import Screen

from .export import EXPORTS

FIGURES = "figures"
FORMAT = "pdf"


def figures_target(screen: Screen, runs_dir: Path) -> tuple[str, Path] | None:
    """(the run or sweep `gdw plot` is given, the directory the figures go to), or None for other screens."""
    from .dashboard import DashboardScreen
    from .sweeps_screen import SweepsScreen

    if isinstance(screen, DashboardScreen):
        return str(screen.run_dir), Path(screen.run_dir) / EXPORTS / FIGURES
    if isinstance(screen, SweepsScreen) and screen.sweep_id:
        return screen.sweep_id, Path(runs_dir) / EXPORTS / FIGURES
    return None


def plot_command(ref: str, out: Path, runs_dir: Path) -> list[str]:
    return [sys.executable, "-m", "gdw_cli", "plot", ref, "--out", str(out), "--format", FORMAT, "--runs-dir", str(runs_dir)]


async def write_figures(ref: str, out: Path, runs_dir: Path) -> tuple[bool, str]:
    """Run `gdw plot`; (True, "N figures in DIR") or (False, its one-line error)."""
    proc = await asyncio.create_subprocess_exec(*plot_command(ref, out, runs_dir), stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        stdout, stderr = await proc.communicate()
    except asyncio.CancelledError:  # the app is closing: the child goes with it (it writes nothing half-done)
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        lines = stderr.decode(errors="replace").strip().splitlines()
        return False, (lines[-1].removeprefix("error: ") if lines else f"gdw plot exited with code {proc.returncode}")
    figures = [line for line in stdout.decode(errors="replace").splitlines() if line.endswith(f".{FORMAT}")]
    return True, f"{len(figures)} figure{'s' if len(figures) != 1 else ''} ({FORMAT} + csv) in {out}"
