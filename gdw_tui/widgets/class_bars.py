"""Per-class test accuracy as horizontal bars, one row per class (scrolls inside its pane for 100 classes)."""

from __future__ import annotations

import math

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget

from .palette import MUTED, level, level_rgb

EIGHTHS = " ▏▎▍▌▋▊▉█"


def bar_text(fraction: float, width: int) -> str:
    """A bar `width` cells long filled to `fraction` with eighth-block resolution."""
    fraction = 0.0 if fraction != fraction else max(0.0, min(1.0, fraction))
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    text = "█" * full + (EIGHTHS[part] if part else "")
    return text.ljust(width)


class ClassBars(Widget):
    DEFAULT_CSS = """
    ClassBars { height: auto; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.labels: list[str] = []
        self.values: list[float] = []
        self.empty_text = "per-class accuracy after the first epoch"

    def set_values(self, labels: list[str], values: list[float]) -> None:
        resized = len(values) != len(self.values)
        self.labels, self.values = labels, values
        self.refresh(layout=resized)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(1, len(self.values))

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if not self.values:
            return Strip([Segment(self.empty_text[:width], base + MUTED)]).adjust_cell_length(width, base) if y == 0 else Strip.blank(width, base)
        if y >= len(self.values):
            return Strip.blank(width, base)
        lw = min(14, max(len(s) for s in self.labels) if self.labels else 3)
        label = (self.labels[y] if y < len(self.labels) else str(y))[:lw].ljust(lw)
        v = self.values[y]
        value = "   –" if v != v else f"{v:5.1f}"
        bar_w = max(1, width - lw - len(value) - 2)
        color = Style(color=_rgb(level(v, 0.0, 100.0))) if v == v else MUTED
        segs = [
            Segment(label + " ", base),
            Segment(bar_text(v / 100 if v == v else math.nan, bar_w), base + color),
            Segment(" " + value, base),
        ]
        return Strip(segs).adjust_cell_length(width, base)


def _rgb(lvl: int) -> Color:
    return Color.from_rgb(*level_rgb(lvl))
