"""A braille line chart with a y axis, an x axis and a legend (Line API, redrawn only when data or size change)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from .palette import AXIS, MUTED

# Dot bits of a braille cell, indexed [column][row] within the 2×4 cell.
BRAILLE_BITS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))


@dataclass
class Curve:
    label: str
    points: Sequence[tuple[float, float]]
    color: str
    style: Style = field(init=False)

    def __post_init__(self) -> None:
        self.style = Style(color=self.color)


def nice_step(span: float, target_ticks: int) -> float:
    """A 1-2-5 step so that about `target_ticks` steps cover `span`."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / max(1, target_ticks)
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def format_tick(value: float, step: float) -> str:
    if abs(value) >= 10000:
        return f"{value / 1000:.0f}k"
    if step >= 1 or value == 0:
        return f"{value:.0f}"
    decimals = min(4, max(1, -math.floor(math.log10(step))))
    return f"{value:.{decimals}f}"


def data_range(curves: Sequence[Curve], axis: int) -> tuple[float, float] | None:
    values = [p[axis] for c in curves for p in c.points if math.isfinite(p[axis])]
    if not values:
        return None
    return min(values), max(values)


def render_chart(
    curves: Sequence[Curve],
    width: int,
    height: int,
    *,
    x_label: str = "",
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    x_format: Callable[[float], str] | None = None,
    base: Style = Style(),
    empty_text: str = "no data yet",
) -> list[list[Segment]]:
    """Lines of segments for a chart of `width`×`height` cells (legend, plot, x axis)."""
    blank = [[Segment(" " * width, base)] for _ in range(height)]
    if width < 12 or height < 4:
        return blank
    curves = [c for c in curves if c.points]
    legend = _legend(curves, width, base)
    plot_rows = height - 1 - (1 if legend else 0) - 1  # legend, plot, axis, x labels
    if not curves or plot_rows < 1:
        msg = empty_text[:width].center(width)
        blank[height // 2] = [Segment(msg, base + MUTED)]
        return blank

    xr = x_range or data_range(curves, 0) or (0.0, 1.0)
    yr = y_range or data_range(curves, 1) or (0.0, 1.0)
    x0, x1 = xr
    if x1 <= x0:
        x0, x1 = x0 - 0.5, x0 + 0.5
    y_step = nice_step(yr[1] - yr[0], max(3, plot_rows // 4))
    y0 = math.floor(yr[0] / y_step) * y_step if y_range is None else yr[0]
    y1 = math.ceil(yr[1] / y_step) * y_step if y_range is None else yr[1]
    if y1 <= y0:
        y0, y1 = y0 - y_step, y0 + y_step

    # y labels: a tick on every other row where it lands on a step, top and bottom always.
    ticks = _y_ticks(y0, y1, y_step, plot_rows)
    gutter = max(len(t) for t in ticks.values()) + 1
    plot_w = width - gutter
    px_w, px_h = plot_w * 2, plot_rows * 4
    cells: list[list[int]] = [[0] * plot_w for _ in range(plot_rows)]
    owner: list[list[int]] = [[-1] * plot_w for _ in range(plot_rows)]

    def to_px(x: float, y: float) -> tuple[int, int]:
        px = round((x - x0) / (x1 - x0) * (px_w - 1))
        py = round((y1 - y) / (y1 - y0) * (px_h - 1))
        return px, py

    for ci, curve in enumerate(curves):
        prev: tuple[int, int] | None = None
        for x, y in curve.points:
            if not (math.isfinite(x) and math.isfinite(y)):
                prev = None
                continue
            p = to_px(x, y)
            for qx, qy in _line(prev or p, p):
                if 0 <= qx < px_w and 0 <= qy < px_h:
                    row, col = qy // 4, qx // 2
                    cells[row][col] |= BRAILLE_BITS[qx % 2][qy % 4]
                    owner[row][col] = ci
            prev = p
        if len(curve.points) == 1 and prev is not None:  # a lone point (epoch 1) as a visible dot
            px, py = prev
            for qx, qy in ((px + 1, py), (px, py + 1), (px + 1, py + 1)):
                if 0 <= qx < px_w and 0 <= qy < px_h:
                    cells[qy // 4][qx // 2] |= BRAILLE_BITS[qx % 2][qy % 4]
                    owner[qy // 4][qx // 2] = ci

    lines: list[list[Segment]] = []
    if legend:
        lines.append(legend)
    axis_style = base + AXIS
    for r in range(plot_rows):
        label = ticks.get(r)
        segs = [Segment((label or "").rjust(gutter - 1) + ("┤" if label else "│"), axis_style)]
        segs += _plot_row(cells[r], owner[r], curves, base)
        lines.append(segs)
    lines.append([Segment(" " * (gutter - 1) + "└" + "─" * plot_w, axis_style)])
    fmt = x_format or (lambda v: format_tick(v, nice_step(x1 - x0, 4)))
    left, right = fmt(x0), fmt(x1)
    middle = f" {x_label} " if x_label else ""
    pad = plot_w - len(left) - len(right) - len(middle)
    if pad >= 0:
        xl = " " * gutter + left + " " * (pad // 2) + middle + " " * (pad - pad // 2) + right
    else:
        xl = (" " * gutter + left + " " * max(1, plot_w - len(left) - len(right)) + right)[:width]
    lines.append([Segment(xl.ljust(width)[:width], axis_style)])
    return lines


def _y_ticks(y0: float, y1: float, step: float, rows: int) -> dict[int, str]:
    """Row -> label: the top and bottom of the axis, then the steps between that have room."""
    def row_of(v: float) -> int:
        return round((y1 - v) / (y1 - y0) * (rows - 1)) if rows > 1 else 0

    values = [y1, y0] + [y0 + k * step for k in range(1, int(round((y1 - y0) / step)))]
    ticks: dict[int, str] = {}
    for v in values:
        row = row_of(v)
        if all(abs(row - r) >= 2 for r in ticks):
            ticks[row] = format_tick(v, step)
    return ticks


def _plot_row(cells: list[int], owner: list[int], curves: Sequence[Curve], base: Style) -> list[Segment]:
    segs: list[Segment] = []
    run_owner, run_chars = -2, []
    for mask, who in zip(cells, owner):
        if who != run_owner and run_chars:
            segs.append(Segment("".join(run_chars), base + curves[run_owner].style if run_owner >= 0 else base))
            run_chars = []
        run_owner = who
        run_chars.append(chr(0x2800 + mask) if mask else " ")
    if run_chars:
        segs.append(Segment("".join(run_chars), base + curves[run_owner].style if run_owner >= 0 else base))
    return segs


def _legend(curves: Sequence[Curve], width: int, base: Style) -> list[Segment]:
    segs: list[Segment] = []
    used = 0
    for c in curves:
        text = f"── {c.label}  "
        if used + len(text) > width:
            break
        segs.append(Segment(text, base + c.style))
        used += len(text)
    if segs:
        segs.append(Segment(" " * (width - used), base))
    return segs


def _line(a: tuple[int, int], b: tuple[int, int]) -> list[tuple[int, int]]:
    """Bresenham's line from a to b, both ends included."""
    (xa, ya), (xb, yb) = a, b
    dx, dy = abs(xb - xa), -abs(yb - ya)
    sx, sy = (1 if xa < xb else -1), (1 if ya < yb else -1)
    err = dx + dy
    out = []
    while True:
        out.append((xa, ya))
        if xa == xb and ya == yb:
            return out
        e2 = 2 * err
        if e2 >= dy:
            err += dy
            xa += sx
        if e2 <= dx:
            err += dx
            ya += sy


class LineChart(Widget):
    """Curves over a shared x axis. `set_curves` replaces the data; drawing happens on the next paint."""

    DEFAULT_CSS = """
    LineChart { height: 1fr; min-height: 5; }
    """

    def __init__(self, x_label: str = "", empty_text: str = "no data yet", **kwargs) -> None:
        super().__init__(**kwargs)
        self.x_label = x_label
        self.empty_text = empty_text
        self.curves: list[Curve] = []
        self.x_range: tuple[float, float] | None = None
        self.y_range: tuple[float, float] | None = None
        self.x_format: Callable[[float], str] | None = None
        self._lines: list[Strip] | None = None
        self._lines_size = (0, 0)

    def set_curves(
        self,
        curves: list[Curve],
        x_range: tuple[float, float] | None = None,
        y_range: tuple[float, float] | None = None,
    ) -> None:
        self.curves, self.x_range, self.y_range = curves, x_range, y_range
        self._lines = None
        self.refresh()

    def on_resize(self) -> None:
        self._lines = None

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        if self._lines is None or self._lines_size != (width, height):
            base = self.rich_style
            rows = render_chart(
                self.curves, width, height, x_label=self.x_label, x_range=self.x_range, y_range=self.y_range,
                x_format=self.x_format, base=base, empty_text=self.empty_text,
            )
            self._lines = [Strip(segs, width).adjust_cell_length(width, base) for segs in rows]
            self._lines_size = (width, height)
        if 0 <= y < len(self._lines):
            return self._lines[y]
        return Strip.blank(width, self.rich_style)
