"""The C×C weight heatmap: colour scale with legend, labels, a cursor that reads out exact values, zoom.

Small matrices (≤ 20 classes) draw one coloured cell per class, with the value printed when the
cells are wide enough. Larger ones draw two matrix rows per terminal row with half blocks
('▀': upper row as foreground, lower row as background), so a 100×100 matrix needs 100×50
cells at zoom 1:1; when that does not fit, blocks of b×b classes are averaged (zoom 1:b, chosen
to fit unless the user zooms in, in which case the view scrolls to follow the cursor).
"""

from __future__ import annotations

import math
from array import array

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.events import Click, MouseScrollDown, MouseScrollUp
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from ..heatmap_math import (  # noqa: F401 - downsample, finite_range, format_value: used by callers through here
    CELL_MODE_MAX, ZOOMS, abbreviate, cell_text, downsample, finite_range, fit_block, format_value, level, levels,
    cell_mode_cell_at, halfblock_cell_at, move_cursor, scroll_to_cursor,
)
from .palette import LEVELS, MUTED, block_style, cell_style, level_rgb

FIXED_ROWS = 3  # column header, readout, legend
CURSOR_KEYS = Binding.Group("cursor", compact=True)


class Heatmap(Widget, can_focus=True):
    """Shows one C×C matrix. The owner sets data with `set_matrix`; the cursor is kept across updates."""

    DEFAULT_CSS = """
    Heatmap { height: 1fr; min-height: 6; }
    """

    BINDINGS = [
        # Shown in the footer while the heatmap has focus, as one `↑↓←→ cursor` entry.
        Binding("up", "move(-1, 0)", "cursor", key_display="↑", group=CURSOR_KEYS),
        Binding("down", "move(1, 0)", "cursor", key_display="↓", group=CURSOR_KEYS),
        Binding("left", "move(0, -1)", "cursor", key_display="←", group=CURSOR_KEYS),
        Binding("right", "move(0, 1)", "cursor", key_display="→", group=CURSOR_KEYS),
        Binding("pageup", "move(-10, 0)", show=False),
        Binding("pagedown", "move(10, 0)", show=False),
        Binding("home", "jump(0)", show=False),
        Binding("end", "jump(-1)", show=False),
        Binding("plus,equals_sign", "zoom(-1)", "zoom in", show=False),
        Binding("minus", "zoom(1)", "zoom out", show=False),
        Binding("0", "zoom(0)", "fit", show=False),
    ]

    cursor: reactive[tuple[int, int]] = reactive((0, 0), layout=False)
    zoom: reactive[int | None] = reactive(None)  # block size; None = the smallest that fits

    class CursorMoved(Message):
        def __init__(self, heatmap: "Heatmap", row: int, col: int) -> None:
            super().__init__()
            self.heatmap, self.row, self.col = heatmap, row, col

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.values: array | list[float] = []
        self.size_c = 0
        self.row_labels: list[str] = []
        self.col_labels: list[str] = []
        self.lo, self.hi = 0.0, 1.0
        self.row_name, self.col_name = "label", "ω"
        self.empty_text = "waiting for the first weights snapshot"
        self._view = (0, 0)  # first displayed (row, col) in display cells, for zoomed-in scrolling
        self._cache: list[Strip] | None = None
        self._cache_key: tuple = ()
        self._tiles: tuple[int, int, list[float], list[int]] | None = None  # (block, n, means, colour levels)
        self._has_missing = False

    # --- data ----------------------------------------------------------------------------------

    def set_matrix(
        self,
        values: array | list[float] | None,
        size: int,
        labels: list[str],
        lo: float | None = None,
        hi: float | None = None,
        row_name: str = "label",
        col_name: str = "ω",
        empty_text: str | None = None,
    ) -> None:
        """New data; lo/hi fix the colour scale (default: the finite range of the values)."""
        previous_size = self.size_c
        self.values = values if values is not None else []
        self.size_c = size if values is not None else 0
        self.row_labels = self.col_labels = list(labels)
        rng = (lo, hi) if lo is not None and hi is not None else finite_range(self.values) or (0.0, 1.0)
        self.lo = rng[0] if lo is None else lo
        self.hi = rng[1] if hi is None else hi
        self.row_name, self.col_name = row_name, col_name
        self._has_missing = any(v != v for v in self.values)
        if empty_text is not None:
            self.empty_text = empty_text
        self._tiles = None
        r, c = self.cursor
        if self.size_c and (r >= self.size_c or c >= self.size_c):
            self.cursor = (min(r, self.size_c - 1), min(c, self.size_c - 1))
        if self.size_c != previous_size:
            self._follow_cursor()
        self._invalidate()

    def value_at(self, row: int, col: int) -> float:
        if not self.size_c:
            return math.nan
        return float(self.values[row * self.size_c + col])

    # --- geometry ------------------------------------------------------------------------------

    @property
    def cell_mode(self) -> bool:
        return 0 < self.size_c <= CELL_MODE_MAX and self._cell_width() >= 2 and self._rows_avail() >= self.size_c

    def _label_width(self) -> int:
        if 0 < self.size_c <= CELL_MODE_MAX:
            return min(10, max(len(s) for s in self.row_labels) if self.row_labels else 2)
        return len(str(max(0, self.size_c - 1)))

    def _rows_avail(self) -> int:
        return max(0, self.size.height - FIXED_ROWS)

    def _cols_avail(self) -> int:
        return max(0, self.size.width - self._label_width() - 1)

    def _cell_width(self) -> int:
        return min(7, self._cols_avail() // max(1, self.size_c))

    def _cell_height(self) -> int:
        """Rows per class in cell mode: taller cells when the pane has room, so the matrix looks square."""
        return max(1, min(3, self._rows_avail() // max(1, self.size_c), self._cell_width() // 2))

    def fit_block(self) -> int:
        """Smallest zoom whose whole matrix fits: n columns and n/2 rows (half blocks)."""
        return fit_block(self.size_c, self._cols_avail(), self._rows_avail())

    @property
    def block(self) -> int:
        if self.cell_mode:
            return 1
        return self.zoom if self.zoom is not None else self.fit_block()

    def tiles(self) -> tuple[int, list[float]]:
        """(n, means) of the n×n tiles at the current zoom; computed once per data and zoom."""
        b = self.block
        if self._tiles is None or self._tiles[0] != b:
            n, means = downsample(self.values, self.size_c, b, self._has_missing)
            lo, hi = self.lo, self.hi
            self._tiles = (b, n, means, levels(means, lo, hi))
        return self._tiles[1], self._tiles[2]

    def tile_levels(self) -> list[int]:
        self.tiles()
        return self._tiles[3]

    # --- cursor and zoom -----------------------------------------------------------------------

    def action_move(self, d_row: int, d_col: int) -> None:
        if not self.size_c:
            return
        self.cursor = move_cursor(self.cursor, self.size_c, self.block, d_row, d_col)

    def action_jump(self, where: int) -> None:
        if self.size_c:
            end = self.size_c - 1 if where < 0 else 0
            self.cursor = (end, end)

    def action_zoom(self, direction: int) -> None:
        if not self.size_c or self.cell_mode:
            return
        if direction == 0:
            self.zoom = None
            return
        current = ZOOMS.index(self.block) if self.block in ZOOMS else 0
        fit = self.fit_block()
        new = ZOOMS[max(0, min(len(ZOOMS) - 1, current + direction))]
        self.zoom = None if new == fit else new

    def watch_cursor(self, cursor: tuple[int, int]) -> None:
        self._follow_cursor()
        self._invalidate()
        self.post_message(self.CursorMoved(self, *cursor))

    def watch_zoom(self) -> None:
        self._tiles = None
        self._follow_cursor()
        self._invalidate()

    def on_resize(self) -> None:
        self._follow_cursor()
        self._invalidate()

    def _follow_cursor(self) -> None:
        """Scroll a zoomed-in view so the cursor's tile is shown (here, not while drawing)."""
        if not self.size_c or not self.size.width or self.cell_mode:
            return
        b = self.block
        n = math.ceil(self.size_c / b)
        cursor = (self.cursor[0] // b, self.cursor[1] // b)
        self._view = scroll_to_cursor(self._view, n, self._cols_avail(), self._rows_avail(), cursor)

    def on_click(self, event: Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or not self.size_c:
            return
        cell = self.cell_at(offset.x, offset.y)
        if cell is not None:
            self.focus()
            self.cursor = cell

    def on_mouse_scroll_down(self, event: MouseScrollDown) -> None:
        event.stop()
        self.action_move(1, 0)

    def on_mouse_scroll_up(self, event: MouseScrollUp) -> None:
        event.stop()
        self.action_move(-1, 0)

    def cell_at(self, x: int, y: int) -> tuple[int, int] | None:
        """The matrix cell (row, col) drawn at content offset (x, y), or None."""
        if self.cell_mode:
            return cell_mode_cell_at(x, y, self._label_width() + 1, self._cell_width(), self._cell_height(), self.size_c)
        n, _ = self.tiles()
        return halfblock_cell_at(x, y, self._label_width() + 1, self._rows_avail(), self._view, n, self.block,
                                 self.size_c, self.cursor)

    # --- readout -------------------------------------------------------------------------------

    def readout(self) -> str:
        if not self.size_c:
            return ""
        r, c = self.cursor
        b = self.block
        if b == 1:
            value = self.value_at(r, c)
            head = f"{self.row_name} {self._class_name(r)} · {self.col_name} {self._class_name(c)}"
            if value != value:
                return f"{head}: no samples in this window"
            return f"{head} = {format_value(value)}"
        r0, c0 = (r // b) * b, (c // b) * b
        r1, c1 = min(r0 + b, self.size_c) - 1, min(c0 + b, self.size_c) - 1
        n, means = self.tiles()
        value = means[(r // b) * n + c // b]
        return f"{self.row_name} {r0}–{r1} · {self.col_name} {c0}–{c1}: mean {format_value(value)} (zoom 1:{b}, + zooms in)"

    def _class_name(self, i: int) -> str:
        label = self.row_labels[i] if i < len(self.row_labels) else str(i)
        return label if label == str(i) else f"{i} ({label})"

    def zoom_text(self) -> str:
        if not self.size_c:
            return ""
        if self.cell_mode:
            return "a cell per class"
        b = self.block
        return f"zoom 1:{b}" + (" (fit)" if self.zoom is None else "")

    # --- drawing -------------------------------------------------------------------------------

    def _invalidate(self) -> None:
        self._cache = None
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        key = (width, height)
        if self._cache is None or self._cache_key != key:
            self._cache = self._render_all(width, height)
            self._cache_key = key
        if 0 <= y < len(self._cache):
            return self._cache[y]
        return Strip.blank(width, self.rich_style)

    def _render_all(self, width: int, height: int) -> list[Strip]:
        base = self.rich_style
        if not self.size_c or width < 8 or height < FIXED_ROWS + 1:
            lines = [Strip.blank(width, base) for _ in range(height)]
            if height:
                lines[height // 2] = Strip([Segment(self.empty_text[:width].center(width), base + MUTED)], width)
            return lines
        rows = self._cell_rows(base) if self.cell_mode else self._halfblock_rows(base)
        rows = rows[: height - 2]
        rows += [[Segment("", base)]] * (height - 2 - len(rows))
        rows.append([Segment(self.readout()[:width], base + Style(bold=True))])
        rows.append(self._legend(base, width))
        return [Strip(segs).adjust_cell_length(width, base) for segs in rows]

    def _cell_rows(self, base: Style) -> list[list[Segment]]:
        c = self.size_c
        lw, cw = self._label_width(), self._cell_width()
        r_cur, c_cur = self.cursor
        highlight = base + Style(reverse=True, bold=True)
        header = [Segment(" " * (lw + 1), base)]
        col_names, row_names = abbreviate(self.col_labels, cw - 1), abbreviate(self.row_labels, lw)
        for j in range(c):
            text = col_names[j].center(cw) if j < len(col_names) else str(j).center(cw)
            header.append(Segment(text, highlight if j == c_cur else base + MUTED))
        rows = [header]
        ch = self._cell_height()
        for a in range(c):
            label = row_names[a].rjust(lw) if a < len(row_names) else str(a).rjust(lw)
            for sub in range(ch):
                text_row = sub == ch // 2  # the value is printed on the middle row of a tall cell
                shown = label if text_row else " " * lw
                segs = [Segment(shown, highlight if a == r_cur else base + MUTED), Segment(" ", base)]
                for j in range(c):
                    v = self.value_at(a, j)
                    lvl = level(v, self.lo, self.hi)
                    style = block_style(lvl) if lvl >= 0 else base + MUTED
                    text = " " * cw
                    if text_row:
                        text = ("·" if lvl < 0 else cell_text(v, cw - 1)).center(cw)
                    if a == r_cur and j == c_cur:
                        style = style + Style(reverse=True, bold=True)
                        if text_row and text.startswith(" "):
                            text = "▸" + text[1:]
                    segs.append(Segment(text, style))
                rows.append(segs)
        return rows

    def _halfblock_rows(self, base: Style) -> list[list[Segment]]:
        b = self.block
        n, means = self.tiles()
        lw = self._label_width()
        cols, term_rows = self._cols_avail(), self._rows_avail()
        cur_r, cur_c = self.cursor[0] // b, self.cursor[1] // b
        vr, vc = self._view
        levels = self.tile_levels()
        shown_cols = range(vc, min(n, vc + cols))

        # Column header: a class index wherever a multiple of 10 starts a column, if it fits.
        header = [" "] * len(shown_cols)
        for k, dc in enumerate(shown_cols):
            text = str(dc * b)
            if (dc * b) % 10 == 0 and all(h == " " for h in header[max(0, k - 1): k + len(text) + 1]):
                header[k: k + len(text)] = list(text)[: len(header) - k]
        marker = cur_c - vc
        segs = [Segment(" " * (lw + 1), base)]
        if 0 <= marker < len(header):
            segs += [Segment("".join(header[:marker]), base + MUTED), Segment("▼", base + Style(bold=True)),
                     Segment("".join(header[marker + 1:]), base + MUTED)]
        else:
            segs.append(Segment("".join(header), base + MUTED))
        rows = [segs]

        cursor_rgb = (255, 255, 255)
        for t in range(term_rows):
            top, bottom = vr + 2 * t, vr + 2 * t + 1
            if top >= n:
                break
            is_cursor_row = cur_r in (top, bottom)
            first, last = top * b, min(self.size_c, (bottom + 1) * b) - 1
            tens = -(-first // 10) * 10
            label = str(self.cursor[0]) if is_cursor_row else str(tens) if tens <= last else ""
            label_style = base + Style(reverse=True, bold=True) if is_cursor_row else base + MUTED
            segs = [Segment(label.rjust(lw), label_style), Segment(" ", base)]
            for dc in shown_cols:
                lt = levels[top * n + dc]
                lb = levels[bottom * n + dc] if bottom < n else None
                if dc == cur_c and is_cursor_row:
                    other = lb if top == cur_r else lt
                    other_rgb = level_rgb(other) if other is not None else None
                    glyph = "▀" if top == cur_r else "▄"
                    segs.append(Segment(glyph, Style(color=_rich_rgb(cursor_rgb), bgcolor=_rich_rgb(other_rgb)) if other_rgb else base + Style(color=_rich_rgb(cursor_rgb))))
                elif lb is None:
                    segs.append(Segment("▀", base + Style(color=_rich_rgb(level_rgb(lt)))))
                else:
                    segs.append(Segment("▀", cell_style(lt, lb)))
            rows.append(segs)
        return rows

    def _legend(self, base: Style, width: int) -> list[Segment]:
        lo, hi = format_value(self.lo), format_value(self.hi)
        zoom = self.zoom_text()
        bar_w = max(4, min(24, width - len(lo) - len(hi) - len(zoom) - 12))
        segs = [Segment(f"{lo} ", base + MUTED)]
        for k in range(bar_w):
            rgb = level_rgb(round(k / max(1, bar_w - 1) * (LEVELS - 1)))
            segs.append(Segment(" ", Style(bgcolor=_rich_rgb(rgb))))
        segs.append(Segment(f" {hi}", base + MUTED))
        if self._has_missing:
            segs.append(Segment("  · blank: no samples", base + MUTED))
        if zoom:
            segs.append(Segment(f"  {zoom}", base + MUTED))
        return segs


def _rich_rgb(rgb: tuple[int, int, int] | None) -> Color | None:
    return None if rgb is None else Color.from_rgb(*rgb)

