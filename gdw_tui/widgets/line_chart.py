"""A braille line chart with a y axis, an x axis and a legend (Line API, redrawn only when data or size change).

Focused, it has a cursor (← → Home End, or a click) whose readout line gives each curve's exact
value at that x, and keys for the x axis (`x`: iteration, epoch, % of training, wall time),
smoothing (`S`, an exponential moving average as in TensorBoard) and a log y scale (`L`).
Under NO_COLOR every curve is the same grey, so curves are then told apart by line style
(solid, dashed, dotted, dash-dot), which the legend shows.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.strip import Strip
from textual.widget import Widget

from ..formatting import format_duration
from ..series import BoundedSeries
from .palette import AXIS, MUTED

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


def format_tick(value: float, step: float) -> str:
    if abs(value) >= 10000:
        return f"{value / 1000:.0f}k"
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
        glyph = line_style(i)[0] if monochrome else "──"
        text = f"{glyph} {c.label}{'' if c.points else ' (no data)'}  "
        if len(text) > width:
            text = text[:width - 3] + "…  "
        if used + len(text) > width and segs:
            if len(rows) + 1 == max_rows:
                more = f"+{len(curves) - i} more"
                if used + len(more) > width:
                    segs.pop()
                    used = sum(len(s.text) for s in segs)
                    more = f"+{len(curves) - i + 1} more"
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
class _Shown:
    """A curve as drawn: its points on the chosen x axis (smoothed, log y), and what it came from."""

    curve: Curve  # as drawn (points converted)
    source: Curve  # as given
    xs: list[float]  # x of each point as drawn (NaN: not drawable on this axis)
    ys: list[float]  # y of each point as given
    smoothed: list[float] | None


class LineChart(Widget, can_focus=True):
    """Curves over a shared x axis. `set_curves` replaces the data; drawing happens on the next paint.

    `x_modes`: the x axes `x` cycles through (names of X_AXIS_NAMES; the first is the default,
    drawn with `x_format`); empty for a chart whose x is not time-like (V(ℓ)). `smoothable` and
    `log_y`-able charts take `S` and `L`.
    """

    DEFAULT_CSS = """
    LineChart { height: 1fr; min-height: 5; }
    """

    BINDINGS = [
        Binding("left", "cursor(-1)", "cursor", show=False),
        Binding("right", "cursor(1)", "cursor", show=False),
        Binding("shift+left", "cursor(-10)", show=False),
        Binding("shift+right", "cursor(10)", show=False),
        Binding("home", "cursor_to(0)", show=False),
        Binding("end", "cursor_to(-1)", show=False),
        Binding("x", "cycle_x", "x axis"),
        Binding("S", "cycle_smoothing", "smooth"),
        Binding("L", "toggle_log", "log scale"),
    ]

    def __init__(self, x_label: str = "", empty_text: str = "no data yet", *, x_modes: Sequence[str] = (),
                 smoothable: bool = False, log_y_allowed: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.x_label = x_label
        self.empty_text = empty_text
        self.curves: list[Curve] = []
        self.x_range: tuple[float, float] | None = None
        self.y_range: tuple[float, float] | None = None
        self.x_info: XInfo | None = None  # for curves without their own
        self.x_format: Callable[[float], str] | None = None
        self.x_modes = tuple(x_modes)
        self.x_mode = self.x_modes[0] if self.x_modes else ""
        self.smoothable = smoothable
        self.smoothing = 0.0
        self.log_y_allowed = log_y_allowed
        self.log_y = False
        self.cursor_x: float | None = None  # None: no cursor
        self._shown: list[_Shown] = []
        self._frame: ChartFrame | None = None
        self._lines: list[Strip] | None = None
        self._lines_size = (0, 0)
        self._cursor_xs: list[float] | None = None  # every x with a point, sorted (built when the cursor needs it)
        self._overlay: dict[int, Strip] | None = None  # rows the cursor changes

    # --- data ---------------------------------------------------------------------------------

    def set_curves(
        self,
        curves: list[Curve],
        x_range: tuple[float, float] | None = None,
        y_range: tuple[float, float] | None = None,
        x_info: XInfo | None = None,
    ) -> None:
        self.curves, self.x_range, self.y_range = curves, x_range, y_range
        if x_info is not None:
            self.x_info = x_info
        self._invalidate()

    def _invalidate(self) -> None:
        self._lines = None
        self._cursor_xs = None
        self._overlay = None
        self.refresh()

    @property
    def default_view(self) -> bool:
        """Native x axis, no smoothing, linear y: the curves are drawn as given."""
        return (not self.x_modes or self.x_mode == self.x_modes[0]) and not self.smoothing and not self.log_y

    def _show_curves(self) -> list[_Shown]:
        """The curves on the chosen x axis, smoothed and on a log y scale as set."""
        shown = []
        for c in self.curves:
            info = c.x_info or self.x_info
            xs = [p[0] for p in c.points]
            ys = [p[1] for p in c.points]
            converted = bool(self.x_modes) and info is not None and self.x_mode != info.native
            if converted:
                times = list(c.times) if c.times is not None else [math.nan] * len(xs)
                t0 = info.t0 if info.t0 is not None else next((t for t in times if math.isfinite(t)), math.nan)
                xs = [info.convert(self.x_mode, x, t, t0) for x, t in zip(xs, times)]
            smoothed = ema(ys, self.smoothing) if self.smoothing else None
            drawn = smoothed or ys
            if self.log_y:
                drawn = [math.log10(y) if y > 0 else math.nan for y in drawn]
            if converted or drawn is not ys:
                c_drawn = Curve(c.label, list(zip(xs, drawn)), c.color)
            else:
                c_drawn = c  # drawn as given: the default view costs no copy
            shown.append(_Shown(c_drawn, c, xs, ys, smoothed))
        return shown

    # --- settings -----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cycle_x":
            return len(self.x_modes) > 1
        if action == "cycle_smoothing":
            return self.smoothable
        if action == "toggle_log":
            return self.log_y_allowed
        return True

    def action_cycle_x(self) -> None:
        if len(self.x_modes) > 1:
            self.x_mode = self.x_modes[(self.x_modes.index(self.x_mode) + 1) % len(self.x_modes)]
            self._invalidate()

    def action_cycle_smoothing(self) -> None:
        if self.smoothable:
            self.smoothing = EMA_WEIGHTS[(EMA_WEIGHTS.index(self.smoothing) + 1) % len(EMA_WEIGHTS)]
            self._invalidate()

    def action_toggle_log(self) -> None:
        if self.log_y_allowed:
            self.log_y = not self.log_y
            self._invalidate()

    def settings_tag(self) -> str:
        """What differs from the default view, for the legend row: `x epoch · EMA 0.9 · log y`."""
        parts = []
        if self.x_modes and self.x_mode != self.x_modes[0]:
            parts.append(f"x {X_AXIS_NAMES[self.x_mode]}")
        if self.smoothing:
            parts.append(f"EMA {self.smoothing:g}")
        if self.log_y:
            parts.append("log y")
        return " · ".join(parts)

    def _axis_label(self) -> str:
        return X_AXIS_NAMES.get(self.x_mode, self.x_mode) if self.x_modes else self.x_label

    def _x_formatter(self, span: float) -> Callable[[float], str] | None:
        if not self.x_modes or self.x_mode == self.x_modes[0]:
            return self.x_format
        if self.x_mode == "time":
            return format_duration
        if self.x_mode == "progress":
            return lambda v: f"{v:.0f}%"
        if self.x_mode == "iteration":
            return lambda v: f"{v:.0f}"
        return lambda v: f"{v:.0f}" if span >= 4 else f"{v:.1f}"

    # --- cursor -------------------------------------------------------------------------------

    def all_xs(self) -> list[float]:
        """Every x that some curve has a point at, sorted: the positions the cursor steps through."""
        if self._lines is None:
            self._render()
        if self._cursor_xs is None:
            self._cursor_xs = sorted({x for s in self._shown for x in s.xs if math.isfinite(x)})
        return self._cursor_xs

    def _snap(self, x: float) -> int | None:
        xs = self.all_xs()
        if not xs:
            return None
        i = bisect_left(xs, x)
        if i == len(xs) or (i > 0 and x - xs[i - 1] <= xs[i] - x):
            i -= 1
        return i

    def _move_cursor_to(self, x: float | None) -> None:
        self.cursor_x = x
        self._overlay = None
        self.refresh()

    def action_cursor(self, step: int) -> None:
        xs = self.all_xs()
        if not xs:
            return
        if self.cursor_x is None:
            self._move_cursor_to(xs[-1])  # the newest point first
            return
        i = self._snap(self.cursor_x) or 0
        self._move_cursor_to(xs[max(0, min(len(xs) - 1, i + step))])

    def action_cursor_to(self, index: int) -> None:
        xs = self.all_xs()
        if xs:
            self._move_cursor_to(xs[index])

    def on_click(self, event: events.Click) -> None:
        frame = self._frame
        if frame is None or not frame.plot_w:
            return
        column = event.x - frame.gutter
        if 0 <= column < frame.plot_w:
            i = self._snap(frame.x_of(column))
            if i is not None:
                self._move_cursor_to(self.all_xs()[i])

    def on_blur(self) -> None:
        if self.cursor_x is not None:
            self._move_cursor_to(None)

    def values_at(self, x: float) -> list[tuple[str, float, float | None, bool]]:
        """(label, value, smoothed value or None, exact) of each curve at the point nearest x."""
        out = []
        for s in self._shown:
            j = _nearest(s.xs, x)
            if j is None:
                out.append((s.source.label, math.nan, None, False))
                continue
            exact = abs(s.xs[j] - x) <= 1e-9 * max(1.0, abs(x))
            out.append((s.source.label, s.ys[j], s.smoothed[j] if s.smoothed else None, exact))
        return out

    def where(self, x: float) -> str:
        """The cursor's x position: on the chosen axis first, then the iteration or the epoch."""
        for s in self._shown:
            j = _nearest(s.xs, x)
            if j is None or abs(s.xs[j] - x) > 1e-9 * max(1.0, abs(x)):
                continue
            info = s.source.x_info or self.x_info
            native = s.source.points[j][0]
            if info is None or not self.x_modes:
                return f"{self.x_label} {native:.6g}"
            it, ep = info.iteration(native), info.epoch(native)
            parts = {
                "iteration": f"it {it:.0f}" if math.isfinite(it) else "",
                "epoch": f"epoch {ep:.4g}" if math.isfinite(ep) else "",
                "progress": f"{x:.1f}%" if self.x_mode == "progress" else "",
                "time": format_duration(x) if self.x_mode == "time" else "",
            }
            order = [self.x_mode] + (["epoch"] if self.x_mode == "iteration" else ["iteration"])
            return " · ".join(p for p in (parts[k] for k in order) if p)
        return f"{self._axis_label()} {x:.6g}"

    def readout(self) -> str:
        """The cursor's readout line as text ('' without a cursor)."""
        return "".join(s.text for s in self._readout_segments()) if self.cursor_x is not None else ""

    def _readout_segments(self) -> list[Segment]:
        x = self.cursor_x
        assert x is not None
        base = self.rich_style
        mono = self.app.no_color
        segs = [Segment(f"▏{self.where(x)} │", base + AXIS)]
        for i, (s, (label, value, smoothed, exact)) in enumerate(zip(self._shown, self.values_at(x))):
            glyph = f"{line_style(i)[0]} " if mono else ""
            text = f" {glyph}{label} {'' if exact or not math.isfinite(value) else '≈'}{format_value(value)}"
            if smoothed is not None:
                text += f" ema {smoothed:.4g}"
            segs.append(Segment(text, base + s.curve.style))
        return segs

    # --- drawing ------------------------------------------------------------------------------

    def on_resize(self) -> None:
        self._lines = None
        self._overlay = None

    def _render(self) -> None:
        width, height = self.size
        base = self.rich_style
        self._shown = self._show_curves()
        xs = [x for s in self._shown for x in s.xs if math.isfinite(x)]
        x_range = self.x_range if self.default_view else None
        span = (max(xs) - min(xs)) if xs else 0.0
        frame = chart_frame(
            [s.curve for s in self._shown], width, height, x_label=self._axis_label(), x_range=x_range,
            y_range=None if self.log_y else self.y_range, x_format=self._x_formatter(span),
            y_format=format_log_tick if self.log_y else format_tick, base=base, empty_text=self.empty_text,
            monochrome=self.app.no_color, tag=self.settings_tag(),
        )
        self._frame = frame
        self._lines = [Strip(segs, width).adjust_cell_length(width, base) for segs in frame.lines]
        self._lines_size = (width, height)
        self._cursor_xs = None
        self._overlay = None

    def _draw_cursor(self) -> dict[int, Strip]:
        """The rows the cursor changes: its column in the plot and on the axis, and the readout line."""
        frame, lines = self._frame, self._lines
        assert frame is not None and lines is not None and self.cursor_x is not None
        width = self.size.width
        if not frame.plot_w or len(lines) < frame.plot_top + frame.plot_rows + 2:
            return {}
        i = self._snap(self.cursor_x)
        if i is None:
            return {}
        x = self.all_xs()[i]
        col = frame.column_of(x)
        cell = frame.gutter + col
        base = self.rich_style
        overlay: dict[int, Strip] = {}
        for r in range(frame.plot_rows):
            k = r * frame.plot_w + col
            mask, who = frame.cells[k], frame.owner[k]
            if mask:
                style = base + self._shown_curve_style(who) + Style(reverse=True)
                char = chr(0x2800 + mask)
            else:
                style, char = base + AXIS, "│"
            overlay[frame.plot_top + r] = _replace_cell(lines[frame.plot_top + r], cell, char, style, width)
        axis_row = frame.plot_top + frame.plot_rows
        overlay[axis_row] = _replace_cell(lines[axis_row], cell, "┴", base + AXIS, width)
        self.cursor_x = x
        overlay[axis_row + 1] = Strip(self._readout_segments(), None).crop_extend(0, width, base)
        return overlay

    def _shown_curve_style(self, index: int) -> Style:
        return self._shown[index].curve.style if 0 <= index < len(self._shown) else Style()

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        if self._lines is None or self._lines_size != (width, height):
            self._render()
        assert self._lines is not None
        if self.cursor_x is not None:  # only then: the default paint does no extra work
            if self._overlay is None:
                self._overlay = self._draw_cursor()
            if y in self._overlay:
                return self._overlay[y]
        if 0 <= y < len(self._lines):
            return self._lines[y]
        return Strip.blank(width, self.rich_style)

    # --- export -------------------------------------------------------------------------------

    def export_rows(self) -> list[tuple[str, str, float, float, float | str]]:
        """(curve, x axis, x, y, smoothed y or '') of every point drawn, on the chosen x axis."""
        if self._lines is None:
            self._shown = self._show_curves()
        axis = self._axis_label()
        rows = []
        for s in self._shown:
            for j, (x, y) in enumerate(zip(s.xs, s.ys)):
                rows.append((s.source.label, axis, x, y, s.smoothed[j] if s.smoothed else ""))
        return rows


def _nearest(xs: list[float], x: float) -> int | None:
    """Index of the point nearest x, None when x lies outside the curve (or it has no point)."""
    if not xs or not (xs[0] <= x <= xs[-1] or math.isclose(x, xs[0]) or math.isclose(x, xs[-1])):
        return None
    i = bisect_left(xs, x)
    if i == len(xs) or (i > 0 and x - xs[i - 1] <= xs[i] - x):
        i -= 1
    return i


def _replace_cell(strip: Strip, cell: int, char: str, style: Style, width: int) -> Strip:
    left, _, right = strip.divide([cell, cell + 1, width])
    return Strip.join([left, Strip([Segment(char, style)], 1), right])
