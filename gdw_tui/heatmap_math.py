"""The heatmap's arithmetic, apart from any drawing: tiles, colour levels, labels and view geometry.

Plain Python (no Textual, no Rich, no torch), so every rule here is unit-tested directly;
widgets/heatmap.py turns the results into cells.
"""

from __future__ import annotations

import math
import operator
from typing import Sequence

LEVELS = 256  # steps of the colour scale
CELL_MODE_MAX = 20  # up to this many classes: one coloured cell per class
ZOOMS = (1, 2, 3, 4, 5, 10, 20)  # block sizes (classes per tile side)


# --- colour levels -------------------------------------------------------------------------------


def level(value: float, lo: float, hi: float) -> int:
    """Position of value on a [lo, hi] scale as 0..LEVELS-1; -1 for a missing (NaN) value."""
    if value is None or math.isnan(value):
        return -1
    if hi <= lo:
        return LEVELS // 2
    f = (value - lo) / (hi - lo)
    return max(0, min(LEVELS - 1, int(f * (LEVELS - 1) + 0.5)))


def levels(values: Sequence[float], lo: float, hi: float) -> list[int]:
    """`level` of many values at once (the heatmap's thousands of tiles per frame)."""
    if hi <= lo:
        return [-1 if v != v else LEVELS // 2 for v in values]
    scale, top = (LEVELS - 1) / (hi - lo), LEVELS - 1
    return [-1 if v != v else max(0, min(top, int((v - lo) * scale + 0.5))) for v in values]


def finite_range(values: Sequence[float]) -> tuple[float, float] | None:
    finite = [v for v in values if v == v and math.isfinite(v)]
    if not finite:
        return None
    return min(finite), max(finite)


# --- tiles ---------------------------------------------------------------------------------------


def downsample(values: Sequence[float], size: int, block: int, has_nan: bool | None = None) -> tuple[int, list[float]]:
    """Means of block×block tiles of a flat size×size matrix, ignoring NaN (all-NaN tile → NaN).

    `has_nan`: whether values holds a NaN, when the caller already knows (None: look)."""
    if block <= 1:
        return size, list(values)
    n = math.ceil(size / block)
    if has_nan if has_nan is not None else any(v != v for v in values):
        return n, _downsample_with_nan(values, size, block, n)
    # No NaN (the usual case): add the block's rows element-wise, then each tile's columns (strided
    # slices) — C-level map/add instead of one Python step per matrix entry.
    pad = [0.0] * (n * block - size)
    widths = [min(block, size - c * block) for c in range(n)]
    means: list[float] = []
    for top in range(0, size, block):
        rows = [values[r * size:(r + 1) * size] for r in range(top, min(size, top + block))]
        cols = list(_add_all(rows)) + pad
        sums = _add_all([cols[k::block] for k in range(block)])
        means.extend([t / (len(rows) * w) for t, w in zip(sums, widths)])
    return n, means


def _add_all(seqs: list) -> list[float]:
    """Element-wise sum of equally long sequences."""
    total = list(seqs[0])
    for seq in seqs[1:]:
        total = list(map(operator.add, total, seq))
    return total


def _downsample_with_nan(values: Sequence[float], size: int, block: int, n: int) -> list[float]:
    sums = [0.0] * (n * n)
    counts = [0] * (n * n)
    for a in range(size):
        base = (a // block) * n
        row = a * size
        for j in range(size):
            v = values[row + j]
            if v == v:  # not NaN
                k = base + j // block
                sums[k] += v
                counts[k] += 1
    return [s / c if c else math.nan for s, c in zip(sums, counts)]


# --- numbers and labels --------------------------------------------------------------------------


def format_value(v: float) -> str:
    if v != v:
        return "–"
    if abs(v) >= 1000:
        return f"{v:.3g}"
    return f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"


def cell_text(v: float, room: int) -> str:
    """A value in at most `room` characters (the readout below always has the exact value)."""
    if room >= 4:
        return f"{v:.2f}" if abs(v) < 10 else f"{v:.0f}"[:room]
    if room == 3:
        if 0 <= v < 1:
            return f"{v:.2f}"[1:]  # .41
        return f"{v:.1f}" if abs(v) < 10 else f"{v:.0f}"[:3]
    return ""


def abbreviate(labels: Sequence[str], width: int) -> list[str]:
    """Labels in at most `width` characters that still tell the classes apart.

    In order: the labels themselves; without the prefix and suffix they all share (`class_07` →
    `07`); cut to `width` when the cuts stay distinct; else the class indices (the readout under
    the heatmap names the class under the cursor in full).
    """
    labels = [str(s) for s in labels]
    if width <= 0:
        return [""] * len(labels)
    if all(len(s) <= width for s in labels):
        return labels
    candidates = [labels]
    if len(labels) > 1:
        head = len(_common_prefix(labels))
        tail = len(_common_prefix([s[head:][::-1] for s in labels]))
        stripped = [s[head:len(s) - tail].strip(" _-.") for s in labels]
        if all(stripped):
            candidates.insert(0, stripped)
    for names in candidates:
        cut = [s[:width] for s in names]
        if len(set(cut)) == len(cut):
            return cut
    return [str(i)[:width] for i in range(len(labels))]


def _common_prefix(words: Sequence[str]) -> str:
    first, last = min(words), max(words)
    k = 0
    while k < min(len(first), len(last)) and first[k] == last[k]:
        k += 1
    return first[:k]


# --- geometry ------------------------------------------------------------------------------------


def fit_block(size: int, cols: int, rows: int) -> int:
    """Smallest zoom whose whole size×size matrix fits in cols × rows cells (two matrix rows a cell)."""
    for b in ZOOMS:
        n = math.ceil(size / b)
        if n <= cols and math.ceil(n / 2) <= rows:
            return b
    return ZOOMS[-1]


def scroll_to_cursor(view: tuple[int, int], n: int, cols: int, term_rows: int, cursor: tuple[int, int]) -> tuple[int, int]:
    """The first shown (tile row, tile column) of an n×n tile grid after the cursor tile moved.

    The view moves only as far as needed to show the cursor; rows start on even tiles, since a
    terminal row holds two tile rows.
    """
    vr, vc = view
    cur_r, cur_c = cursor
    rows_shown = 2 * term_rows
    if cur_r < vr:
        vr = cur_r - cur_r % 2
    elif cur_r >= vr + rows_shown:
        vr = cur_r - rows_shown + 1 + (cur_r - rows_shown + 1) % 2
    if cur_c < vc:
        vc = cur_c
    elif cur_c >= vc + cols:
        vc = cur_c - cols + 1
    vr = max(0, min(vr, max(0, n - rows_shown + (n - rows_shown) % 2)))
    vc = max(0, min(vc, max(0, n - cols)))
    return vr, vc


def move_cursor(cursor: tuple[int, int], size: int, block: int, d_row: int, d_col: int) -> tuple[int, int]:
    """The cursor after a move of (d_row, d_col) tiles, on the first class of its tile, inside the matrix."""
    r, c = cursor
    r = max(0, min(size - 1, (r // block + d_row) * block))
    c = max(0, min(size - 1, (c // block + d_col) * block))
    return r, c


def cell_mode_cell_at(x: int, y: int, left: int, cell_w: int, cell_h: int, size: int) -> tuple[int, int] | None:
    """The class cell (row, col) under content offset (x, y) when each class has its own cell_w×cell_h
    cell, `left` columns of labels to the left and one header row above; None outside the matrix."""
    if y < 1 or x < left:
        return None
    row, col = (y - 1) // cell_h, (x - left) // cell_w
    return (row, col) if row < size and col < size else None


def halfblock_cell_at(x: int, y: int, left: int, term_rows: int, view: tuple[int, int], n: int, block: int, size: int,
                      cursor: tuple[int, int]) -> tuple[int, int] | None:
    """The first class (row, col) of the tile under (x, y) in the half-block drawing (two tile rows per
    terminal row, the view starting at tile `view`); None outside the matrix.

    A terminal cell holds two tile rows: the upper one, or the lower one when the cursor is
    already on the upper one (a second click on the same cell picks the lower row)."""
    if y < 1 or x < left or y - 1 >= term_rows:
        return None
    vr, vc = view
    drow, dcol = vr + 2 * (y - 1), vc + x - left
    if cursor[0] // block == drow and cursor[1] // block == dcol:
        drow += 1
    if drow < n and dcol < n:
        return min(drow * block, size - 1), min(dcol * block, size - 1)
    return None
