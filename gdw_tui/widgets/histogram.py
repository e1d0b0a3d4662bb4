"""Histograms of the target-class weight for clean and corrupted samples, stacked, sharing one x axis."""

from __future__ import annotations

from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from .palette import AXIS, MUTED

LEVELS = " ▁▂▃▄▅▆▇█"
BAR_ROWS = 2  # rows of bars per group


@dataclass
class HistGroup:
    label: str
    counts: list[float]
    color: str
    mean: float | None = None


def column_glyphs(height_eighths: int, rows: int) -> list[str]:
    """The glyphs (top row first) of one bar `height_eighths`/8 rows tall."""
    out = []
    for r in range(rows - 1, -1, -1):
        fill = max(0, min(8, height_eighths - r * 8))
        out.append(LEVELS[fill])
    return out


def render_histograms(edges: list[float], groups: list[HistGroup], width: int, base: Style) -> list[list[Segment]]:
    lines: list[list[Segment]] = []
    lw = max((len(g.label) for g in groups), default=0) + 1
    plot_w = max(1, width - lw)
    for g in groups:
        bins = len(g.counts)
        top = max(g.counts) if g.counts else 0
        heights = [round(c / top * BAR_ROWS * 8) if top else 0 for c in g.counts]
        # Stretch the bins across the width: each cell shows the bin under its centre.
        cols = [column_glyphs(heights[min(bins - 1, int((x + 0.5) * bins / plot_w))], BAR_ROWS) if bins else [" "] * BAR_ROWS for x in range(plot_w)]
        style = base + Style(color=g.color)
        for r in range(BAR_ROWS):
            label = g.label if r == BAR_ROWS - 1 else (f"{g.mean:.2f}" if g.mean is not None and r == 0 else "")
            lines.append([Segment(label.rjust(lw - 1) + " ", style if r == BAR_ROWS - 1 else base + MUTED), Segment("".join(c[r] for c in cols), style)])
    if edges:
        lo, hi = f"{edges[0]:g}", f"{edges[-1]:g}"
        axis = " " * lw + lo + " " * max(1, plot_w - len(lo) - len(hi)) + hi
        lines.append([Segment(axis[:width], base + AXIS)])
    return lines


class Histograms(Widget):
    DEFAULT_CSS = """
    Histograms { height: 5; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.edges: list[float] = []
        self.groups: list[HistGroup] = []

    def set_histograms(self, edges: list[float], groups: list[HistGroup]) -> None:
        self.edges, self.groups = edges, groups
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if not self.groups:
            return Strip.blank(width, base)
        lines = render_histograms(self.edges, self.groups, width, base)
        if y < len(lines):
            return Strip(lines[y]).adjust_cell_length(width, base)
        return Strip.blank(width, base)
