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
    lo, hi = math.inf, -math.inf
    for c in curves:
        values = [p[axis] for p in c.points]
        finite = [v for v in values if math.isfinite(v)] if not all(map(math.isfinite, values)) else values
        if finite:
            lo, hi = min(lo, min(finite)), max(hi, max(finite))
    return (lo, hi) if lo <= hi else None


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
    px_h = plot_rows * 4
    cells = [0] * (plot_w * plot_rows)
    owner = [-1] * (plot_w * plot_rows)
    for ci in reversed(range(len(curves))):  # the first curve is drawn last: it stays on top
        curve = curves[ci]
        _plot_curve(curve.points, ci, cells, owner, plot_w, px_h, (x0, x1, y0, y1))

    lines: list[list[Segment]] = []
    if legend:
        lines.append(legend)
    axis_style = base + AXIS
    for r in range(plot_rows):
        label = ticks.get(r)
        segs = [Segment((label or "").rjust(gutter - 1) + ("┤" if label else "│"), axis_style)]
        segs += _plot_row(cells[r * plot_w:(r + 1) * plot_w], owner[r * plot_w:(r + 1) * plot_w], curves, base)
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


def _plot_curve(points: Sequence[tuple[float, float]], ci: int, cells: list[int], owner: list[int],
                plot_w: int, px_h: int, bounds: tuple[float, float, float, float]) -> None:
    """Draw one curve into the braille cells.

    Points are first reduced to one vertical span per pixel column (a long curve has many points
    per column), then the spans are drawn and neighbouring columns joined: the cost follows the
    chart's width, not the number of points.
    """
    x0, x1, y0, y1 = bounds
    px_w = plot_w * 2
    sx = (px_w - 1) / (x1 - x0)
    sy = (px_h - 1) / (y1 - y0)
    first: list[int | None] = [None] * px_w
    last = [0] * px_w
    low = [0] * px_w
    high = [0] * px_w
    isfinite = math.isfinite
    for x, y in points:
        if not (isfinite(x) and isfinite(y)):
            continue
        px = int((x - x0) * sx + 0.5)
        if not 0 <= px < px_w:
            continue
        py = min(px_h - 1, max(0, int((y1 - y) * sy + 0.5)))
        if first[px] is None:
            first[px] = last[px] = low[px] = high[px] = py
        else:
            last[px] = py
            if py < low[px]:
                low[px] = py
            elif py > high[px]:
                high[px] = py

    def dot(px: int, py: int) -> None:
        k = (py >> 2) * plot_w + (px >> 1)
        cells[k] |= BRAILLE_BITS[px & 1][py & 3]
        owner[k] = ci

    prev: int | None = None
    drawn = 0
    for px in range(px_w):
        top = first[px]
        if top is None:
            continue
        drawn += 1
        for py in range(low[px], high[px] + 1):
            dot(px, py)
        if prev is not None:
            _join(prev, last[prev], px, top, dot)
        prev = px
    if drawn == 1 and prev is not None:  # a lone point (epoch 1): a visible 2×2 dot
        for dx, dy in ((1, 0), (0, 1), (1, 1)):
            qx, qy = prev + dx, low[prev] + dy
            if qx < px_w and qy < px_h:
                dot(qx, qy)


def _join(xa: int, ya: int, xb: int, yb: int, dot: Callable[[int, int], None]) -> None:
    """Bresenham's line between two pixels (ends included)."""
    dx, dy = abs(xb - xa), -abs(yb - ya)
    sx, sy = (1 if xa < xb else -1), (1 if ya < yb else -1)
    err = dx + dy
    while True:
        dot(xa, ya)
        if xa == xb and ya == yb:
            return
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
