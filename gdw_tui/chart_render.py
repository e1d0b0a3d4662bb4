"""The line chart's pure part: curves, axes, ticks, braille plotting and the legend, as Rich segments.

No Textual here: the widget (gdw_tui/widgets/line_chart.py) asks `chart_frame` for the lines and
keeps the cursor, keys and caching; the compare screen and the tests call the same functions.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from rich.segment import Segment
from rich.style import Style

from .series import BoundedSeries
from .widgets.palette import AXIS, MUTED


# Dot bits of a braille cell, indexed [column][row] within the 2×4 cell.
BRAILLE_BITS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))

# x axes a chart can switch between (`x`), as named under the axis.
X_AXIS_NAMES = {"iteration": "iteration", "epoch": "epoch", "progress": "% of training", "time": "wall time"}
EMA_WEIGHTS = (0.0, 0.6, 0.9, 0.99)  # `S` cycles through these (0: off); TensorBoard's default is 0.6

# Line styles for NO_COLOR: legend glyphs, and the pixel columns drawn out of each period.
LINE_STYLES = (
    ("──", 1, frozenset({0})),  # solid
    ("╌╌", 6, frozenset({0, 1, 2, 3})),  # dashed
    ("┈┈", 4, frozenset({0})),  # dotted
    ("─·", 9, frozenset({0, 1, 2, 3, 6})),  # dash-dot
)
LEGEND_MAX_ROWS = 8  # and at most a third of the chart's height: the plot keeps the rest


def line_style(index: int) -> tuple[str, int, frozenset[int]]:
    return LINE_STYLES[index % len(LINE_STYLES)]


@dataclass(frozen=True)
class XInfo:
    """What a curve's x means, so it can be shown against the other x axes.

    native: "iteration" (the 0-based global iteration of a step) or "epoch" (epochs done, from 1).
    """

    native: str = "iteration"
    iters_per_epoch: int = 0
    epochs: int = 0  # planned, for "% of training"
    t0: float | None = None  # wall clock at the start of the run, for "wall time"

    @classmethod
    def of_run(cls, model: Any, native: str) -> XInfo:
        """From a RunModel (or anything with iters_per_epoch, epochs and segments)."""
        t0 = model.segments[0][0] if model.segments else None
        return cls(native, model.iters_per_epoch, model.epochs, t0)

    def iteration(self, x: float) -> float:
        if self.native == "iteration":
            return x
        return x * self.iters_per_epoch - 1 if self.iters_per_epoch else math.nan

    def epoch(self, x: float) -> float:
        if self.native == "epoch":
            return x
        return (x + 1) / self.iters_per_epoch if self.iters_per_epoch else math.nan

    def convert(self, mode: str, x: float, t: float, t0: float) -> float:
        if mode == "iteration":
            return self.iteration(x)
        if mode == "epoch":
            return self.epoch(x)
        if mode == "progress":
            return 100.0 * self.epoch(x) / self.epochs if self.epochs else math.nan
        if mode == "time":
            return t - t0
        return x


@dataclass
class Curve:
    """One curve. `points` may be a BoundedSeries: its points and their wall times are taken."""

    label: str
    points: Sequence[tuple[float, float]]
    color: str
    times: Sequence[float] | None = None
    x_info: XInfo | None = None
    legend: bool = True  # False: drawn but not listed (the second edge of a band)
    style: Style = field(init=False)

    def __post_init__(self) -> None:
        if isinstance(self.points, BoundedSeries):
            series = self.points
            self.points, self.times = series.points(), series.times()
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


LARGE = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))  # a diverged loss reaches 1e10 and more


def format_tick(value: float, step: float) -> str:
    if abs(value) >= 1e15:
        return f"{value:.1e}"
    if abs(value) >= 10000:
        scale, suffix = next((s, x) for s, x in LARGE if abs(value) >= 10 * s)
        decimals = min(2, max(0, -math.floor(math.log10(step / scale)))) if step > 0 else 0
        return f"{value / scale:.{decimals}f}{suffix}"
    if step >= 1 or value == 0:
        return f"{value:.0f}"
    decimals = min(4, max(1, -math.floor(math.log10(step))))
    return f"{value:.{decimals}f}"


def format_log_tick(value: float, step: float) -> str:
    """A tick of a log10 axis, labelled with the value itself (10**value)."""
    return f"{10 ** value:.3g}"


def format_value(value: float) -> str:
    """A curve value in the cursor readout: exact for the values events carry (4 decimals or fewer)."""
    return f"{value:.6g}" if math.isfinite(value) else "–"


def data_range(curves: Sequence[Curve], axis: int) -> tuple[float, float] | None:
    lo, hi = math.inf, -math.inf
    for c in curves:
        values = [p[axis] for p in c.points]
        finite = [v for v in values if math.isfinite(v)] if not all(map(math.isfinite, values)) else values
        if finite:
            lo, hi = min(lo, min(finite)), max(hi, max(finite))
    return (lo, hi) if lo <= hi else None


@dataclass
class ChartFrame:
    """A rendered chart and where its plot lies, for the cursor drawn over it."""

    lines: list[list[Segment]]
    gutter: int = 0  # cells left of the plot (y labels and the axis line)
    plot_top: int = 0  # first plot row
    plot_rows: int = 0
    plot_w: int = 0
    x0: float = 0.0
    x1: float = 1.0
    cells: list[int] = field(default_factory=list)  # braille masks of the plot, row by row
    owner: list[int] = field(default_factory=list)  # index of the curve drawn in each cell, -1 none

    def column_of(self, x: float) -> int:
        """Plot column (0-based) of an x value, as the curves are drawn."""
        px = int((x - self.x0) * (self.plot_w * 2 - 1) / (self.x1 - self.x0) + 0.5)
        return max(0, min(self.plot_w - 1, px >> 1))

    def x_of(self, column: int) -> float:
        """The x value at the middle of a plot column."""
        return self.x0 + (2 * column + 0.5) * (self.x1 - self.x0) / (self.plot_w * 2 - 1)


def render_chart(curves: Sequence[Curve], width: int, height: int, **kwargs: Any) -> list[list[Segment]]:
    """Lines of segments for a chart of `width`×`height` cells (legend, plot, x axis)."""
    return chart_frame(curves, width, height, **kwargs).lines


def chart_frame(
    curves: Sequence[Curve],
    width: int,
    height: int,
    *,
    x_label: str = "",
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    x_format: Callable[[float], str] | None = None,
    y_format: Callable[[float, float], str] = format_tick,
    base: Style = Style(),
    empty_text: str = "no data yet",
    monochrome: bool = False,
    tag: str = "",
) -> ChartFrame:
    """The chart as a ChartFrame. `monochrome`: curves drawn in line styles (NO_COLOR); `tag`:
    the chart's settings, right-aligned on the legend row."""
    blank = [[Segment(" " * width, base)] for _ in range(height)]
    if width < 12 or height < 4:
        return ChartFrame(blank)
    legend = _legend(curves, width, base, monochrome, tag, max(1, min(LEGEND_MAX_ROWS, (height - 4) // 3)))
    plot_rows = height - len(legend) - 1 - 1  # legend, plot, axis, x labels
    if not any(c.points for c in curves) or plot_rows < 1:
        msg = empty_text[:width].center(width)
        blank[height // 2] = [Segment(msg, base + MUTED)]
        return ChartFrame(blank)

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
    ticks = _y_ticks(y0, y1, y_step, plot_rows, y_format)
    gutter = max(len(t) for t in ticks.values()) + 1
    plot_w = width - gutter
    px_h = plot_rows * 4
    cells = [0] * (plot_w * plot_rows)
    owner = [-1] * (plot_w * plot_rows)
    for ci in reversed(range(len(curves))):  # the first curve is drawn last: it stays on top
        curve = curves[ci]
        pattern = line_style(ci)[1:] if monochrome and ci % len(LINE_STYLES) else None
        _plot_curve(curve.points, ci, cells, owner, plot_w, px_h, (x0, x1, y0, y1), pattern)

    lines: list[list[Segment]] = list(legend)
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
    return ChartFrame(lines, gutter, len(legend), plot_rows, plot_w, x0, x1, cells, owner)


def _y_ticks(y0: float, y1: float, step: float, rows: int,
             fmt: Callable[[float, float], str] = format_tick) -> dict[int, str]:
    """Row -> label: the top and bottom of the axis, then the steps between that have room."""
    def row_of(v: float) -> int:
        return round((y1 - v) / (y1 - y0) * (rows - 1)) if rows > 1 else 0

    values = [y1, y0] + [y0 + k * step for k in range(1, int(round((y1 - y0) / step)))]
    ticks: dict[int, str] = {}
    for v in values:
        row = row_of(v)
        if all(abs(row - r) >= 2 for r in ticks):
            ticks[row] = fmt(v, step)
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


def _legend(curves: Sequence[Curve], width: int, base: Style, monochrome: bool = False, tag: str = "",
            max_rows: int = 1) -> list[list[Segment]]:
    """Legend rows: `── label` per curve (its line style under NO_COLOR), wrapped onto at most
    `max_rows` rows; a label too long for a row is shortened, curves beyond the rows are counted."""
    rows: list[list[Segment]] = []
    segs: list[Segment] = []
    used = 0
    for i, c in enumerate(curves):
        if not c.legend:
            continue
        glyph = line_style(i)[0] if monochrome else "──"
        text = f"{glyph} {c.label}{'' if c.points else ' (no data)'}  "
        if len(text) > width:
            text = text[:width - 3] + "…  "
        if used + len(text) > width and segs:
            if len(rows) + 1 == max_rows:
                left = sum(1 for c in curves[i:] if c.legend)
                more = f"+{left} more"
                if used + len(more) > width:
                    segs.pop()
                    used = sum(len(s.text) for s in segs)
                    more = f"+{left + 1} more"
                segs.append(Segment(more, base + MUTED))
                used += len(more)
                break
            rows.append(segs + [Segment(" " * (width - used), base)])
            segs, used = [], 0
        segs.append(Segment(text, base + c.style))
        used += len(text)
    tag = tag[:width]
    if segs:
        rest = width - used
        if not rows and tag and len(tag) + 1 <= rest:
            segs.append(Segment(" " * (rest - len(tag)), base))
            segs.append(Segment(tag, base + MUTED))
            tag = ""
        else:
            segs.append(Segment(" " * rest, base))
        rows.append(segs)
    if tag and rows and len(rows) < max_rows:  # no room beside the labels: a row of its own
        rows.append([Segment(" " * (width - len(tag)), base), Segment(tag, base + MUTED)])
    return rows[:max_rows]


def _plot_curve(points: Sequence[tuple[float, float]], ci: int, cells: list[int], owner: list[int],
                plot_w: int, px_h: int, bounds: tuple[float, float, float, float],
                pattern: tuple[int, frozenset[int]] | None = None) -> None:
    """Draw one curve into the braille cells.

    Points are first reduced to one vertical span per pixel column (a long curve has many points
    per column), then the spans are drawn and neighbouring columns joined: the cost follows the
    chart's width, not the number of points. `pattern` (period, columns drawn): a dashed line.
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

    draw = dot
    if pattern is not None:
        period, drawn_columns = pattern

        def draw(px: int, py: int) -> None:
            if px % period in drawn_columns:
                dot(px, py)

    prev: int | None = None
    drawn = 0
    for px in range(px_w):
        top = first[px]
        if top is None:
            continue
        drawn += 1
        for py in range(low[px], high[px] + 1):
            draw(px, py)
        if prev is not None:
            _join(prev, last[prev], px, top, draw)
        prev = px
    if drawn == 1 and prev is not None:  # a lone point (epoch 1): a visible 2×2 dot
        for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
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


def ema(values: Sequence[float], weight: float) -> list[float]:
    """TensorBoard's smoothing: an exponential moving average, debiased so it starts at the data."""
    out: list[float] = []
    last, n = 0.0, 0
    for v in values:
        if not math.isfinite(v):
            out.append(v)
            continue
        n += 1
        last = last * weight + (1 - weight) * v
        out.append(last / (1 - weight ** n))
    return out


@dataclass
class Shown:
    """A curve as drawn: its points on the chosen x axis (smoothed, log y), and what it came from."""

    curve: Curve  # as drawn (points converted)
    source: Curve  # as given
    xs: list[float]  # x of each point as drawn (NaN: not drawable on this axis)
    ys: list[float]  # y of each point as given
    smoothed: list[float] | None


def nearest(xs: list[float], x: float) -> int | None:
    """Index of the point nearest x, None when x lies outside the curve (or it has no point)."""
    if not xs or not (xs[0] <= x <= xs[-1] or math.isclose(x, xs[0]) or math.isclose(x, xs[-1])):
        return None
    i = bisect_left(xs, x)
    if i == len(xs) or (i > 0 and x - xs[i - 1] <= xs[i] - x):
        i -= 1
    return i


def shown_curves(curves: Sequence[Curve], x_info: XInfo | None, x_modes: Sequence[str], x_mode: str,
                 smoothing: float, log_y: bool) -> list[Shown]:
    """The curves on the chosen x axis, smoothed and on a log y scale as set."""
    shown = []
    for c in curves:
        info = c.x_info or x_info
        xs = [p[0] for p in c.points]
        ys = [p[1] for p in c.points]
        converted = bool(x_modes) and info is not None and x_mode != info.native
        if converted:
            times = list(c.times) if c.times is not None else [math.nan] * len(xs)
            t0 = info.t0 if info.t0 is not None else next((t for t in times if math.isfinite(t)), math.nan)
            xs = [info.convert(x_mode, x, t, t0) for x, t in zip(xs, times)]
        smoothed = ema(ys, smoothing) if smoothing else None
        drawn = smoothed or ys
        if log_y:
            drawn = [math.log10(y) if y > 0 else math.nan for y in drawn]
        if converted or drawn is not ys:
            c_drawn = Curve(c.label, list(zip(xs, drawn)), c.color)
        else:
            c_drawn = c  # drawn as given: the default view costs no copy
        shown.append(Shown(c_drawn, c, xs, ys, smoothed))
    return shown
