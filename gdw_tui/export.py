"""`e` in the app: the current view as an SVG screenshot plus CSVs of what it shows in numbers.

The charts' curves go to `<view>-<time>.csv` (when the view has charts); a screen adds tables of
its own with `csv_tables()` (the dashboard's ω, the sweeps screen's grid, the report), each to
`<view>-<time>-<name>.csv`. A view without numbers gets the SVG alone, never a header-only CSV.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

from textual.screen import Screen

from .widgets.line_chart import LineChart

EXPORTS = "exports"
CSV_COLUMNS = ("chart", "curve", "x_axis", "x", "y", "y_smoothed")

# name -> (header, rows): what a screen's csv_tables() returns.
CsvTables = dict[str, tuple[Sequence[str], Iterable[Sequence[Any]]]]


def export_dir(screen: Screen, runs_dir: Path) -> Path:
    """exports/ in the run directory of a run's screen, else in the runs directory."""
    run_dir = getattr(screen, "run_dir", None)
    return Path(run_dir if run_dir is not None else runs_dir) / EXPORTS


def chart_rows(screen: Screen) -> list[tuple]:
    rows = []
    for chart in screen.query(LineChart):
        name = chart.id or "chart"
        for curve, axis, x, y, smoothed in chart.export_rows():
            rows.append((name, curve, axis, repr(x), repr(y), repr(smoothed) if smoothed != "" else ""))
    return rows


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def export_view(screen: Screen, runs_dir: Path) -> list[Path]:
    """Write <view>-<time>.svg and its CSVs under export_dir; the paths written (SVG first)."""
    folder = export_dir(screen, runs_dir)
    folder.mkdir(parents=True, exist_ok=True)
    view = type(screen).__name__.removesuffix("Screen").lower() or "screen"
    stem = f"{view}-{time.strftime('%Y%m%d-%H%M%S')}"
    n = 1
    while any(folder.glob(f"{stem}.*")) or any(folder.glob(f"{stem}-*.csv")):
        n += 1
        stem = f"{view}-{time.strftime('%Y%m%d-%H%M%S')}-{n}"
    svg = folder / f"{stem}.svg"
    svg.write_text(screen.app.export_screenshot(title=stem), encoding="utf-8")
    written = [svg]
    curves = chart_rows(screen)
    if curves:
        written.append(folder / f"{stem}.csv")
        _write_csv(written[-1], CSV_COLUMNS, curves)
    tables: CsvTables = screen.csv_tables() if hasattr(screen, "csv_tables") else {}
    for name, (header, rows) in tables.items():
        written.append(folder / f"{stem}-{name}.csv")
        _write_csv(written[-1], header, rows)
    return written
