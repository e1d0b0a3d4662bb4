"""`e` in the app: the current view as an SVG screenshot plus a CSV of the curves its charts show."""

from __future__ import annotations

import csv
import time
from pathlib import Path

from textual.screen import Screen

from .widgets.line_chart import LineChart

EXPORTS = "exports"
CSV_COLUMNS = ("chart", "curve", "x_axis", "x", "y", "y_smoothed")


def export_dir(screen: Screen, runs_dir: Path) -> Path:
    """exports/ in the run directory of a run's screen, else in the runs directory."""
    run_dir = getattr(screen, "run_dir", None)
    return Path(run_dir if run_dir is not None else runs_dir) / EXPORTS


def export_view(screen: Screen, runs_dir: Path) -> list[Path]:
    """Write <view>-<time>.svg and .csv under export_dir; the paths written (SVG first)."""
    folder = export_dir(screen, runs_dir)
    folder.mkdir(parents=True, exist_ok=True)
    view = type(screen).__name__.removesuffix("Screen").lower() or "screen"
    stem = f"{view}-{time.strftime('%Y%m%d-%H%M%S')}"
    n = 1
    while (folder / f"{stem}.svg").exists() or (folder / f"{stem}.csv").exists():
        n += 1
        stem = f"{view}-{time.strftime('%Y%m%d-%H%M%S')}-{n}"
    svg = folder / f"{stem}.svg"
    svg.write_text(screen.app.export_screenshot(title=stem), encoding="utf-8")
    table = folder / f"{stem}.csv"
    with table.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for chart in screen.query(LineChart):
            name = chart.id or "chart"
            for curve, axis, x, y, smoothed in chart.export_rows():
                writer.writerow((name, curve, axis, repr(x), repr(y), repr(smoothed) if smoothed != "" else ""))
    return [svg, table]
