"""A braille line chart with a y axis, an x axis and a legend (Line API, redrawn only when data or size change).

Focused, it has a cursor (← → Home End, or a click) whose readout line gives each curve's exact
value at that x, and keys for the x axis (`x`: iteration, epoch, % of training, wall time),
smoothing (`S`, an exponential moving average as in TensorBoard) and a log y scale (`L`).
Under NO_COLOR every curve is the same grey, so curves are then told apart by line style
(solid, dashed, dotted, dash-dot), which the legend shows. What is drawn comes from the pure
renderer, gdw_tui/chart_render.py; this module is the widget around it.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from typing import Callable, Sequence

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.strip import Strip
from textual.widget import Widget

from ..chart_render import (
    EMA_WEIGHTS, X_AXIS_NAMES, ChartFrame, Curve, Shown, XInfo, chart_frame, format_log_tick, format_tick,
    format_value, line_style, nearest, shown_curves,
)
from ..formatting import format_duration
from .palette import AXIS


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
                 smoothable: bool = False, log_y_allowed: bool = False,
                 x_format: Callable[[float], str] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.x_label = x_label
        self.empty_text = empty_text
        self.curves: list[Curve] = []
        self.x_range: tuple[float, float] | None = None
        self.y_range: tuple[float, float] | None = None
        self.x_info: XInfo | None = None  # for curves without their own
        self.x_format = x_format
        self.x_modes = tuple(x_modes)
        self.x_mode = self.x_modes[0] if self.x_modes else ""
        self.smoothable = smoothable
        self.smoothing = 0.0
        self.log_y_allowed = log_y_allowed
        self.log_y = False
        self.cursor_x: float | None = None  # None: no cursor
        self._shown: list[Shown] = []
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

    def _show_curves(self) -> list[Shown]:
        return shown_curves(self.curves, self.x_info, self.x_modes, self.x_mode, self.smoothing, self.log_y)

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
            self._draw()
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
            j = nearest(s.xs, x)
            if j is None:
                out.append((s.source.label, math.nan, None, False))
                continue
            exact = abs(s.xs[j] - x) <= 1e-9 * max(1.0, abs(x))
            out.append((s.source.label, s.ys[j], s.smoothed[j] if s.smoothed else None, exact))
        return out

    def where(self, x: float) -> str:
        """The cursor's x position: on the chosen axis first, then the iteration or the epoch."""
        for s in self._shown:
            j = nearest(s.xs, x)
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

    def _draw(self) -> None:
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
            self._draw()
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


def _replace_cell(strip: Strip, cell: int, char: str, style: Style, width: int) -> Strip:
    left, _, right = strip.divide([cell, cell + 1, width])
    return Strip.join([left, Strip([Segment(char, style)], 1), right])
