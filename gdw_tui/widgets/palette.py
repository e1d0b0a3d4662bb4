"""Colours shared by the widgets: curve colours and the heatmap's sequential scale (viridis)."""

from __future__ import annotations

from functools import lru_cache

from rich.color import Color
from rich.style import Style

from ..heatmap_math import LEVELS, level, levels  # noqa: F401 - the scale's steps, used with the colours here

# Distinct on dark and light backgrounds, and distinct in luminance, so NO_COLOR's monochrome
# rendering still tells the curves apart.
CURVE_COLORS = ("#58a6ff", "#f0883e", "#3fb950", "#d2a8ff", "#ff7b72", "#e3b341", "#79c0ff", "#a5d6ff")

AXIS = Style(color="#8b949e")
MUTED = Style(color="#8b949e")

# viridis at 9 evenly spaced points: perceptually uniform and monotonic in lightness.
VIRIDIS = (
    (0x44, 0x01, 0x54), (0x47, 0x2C, 0x7A), (0x3B, 0x51, 0x8B), (0x2C, 0x71, 0x8E), (0x21, 0x90, 0x8C),
    (0x27, 0xAD, 0x81), (0x5C, 0xC8, 0x63), (0xAA, 0xDC, 0x32), (0xFD, 0xE7, 0x25),
)
MISSING_RGB = (0x30, 0x30, 0x30)  # a label no sample carried: neutral, outside the scale


def curve_color(index: int) -> str:
    return CURVE_COLORS[index % len(CURVE_COLORS)]


@lru_cache(maxsize=LEVELS + 1)
def level_rgb(lvl: int) -> tuple[int, int, int]:
    if lvl < 0:
        return MISSING_RGB
    pos = lvl / (LEVELS - 1) * (len(VIRIDIS) - 1)
    i = min(int(pos), len(VIRIDIS) - 2)
    f = pos - i
    a, b = VIRIDIS[i], VIRIDIS[i + 1]
    return tuple(round(a[k] + (b[k] - a[k]) * f) for k in range(3))  # type: ignore[return-value]


def value_color(value: float, lo: float, hi: float) -> Color:
    """The scale's colour for a value (the heatmap's value → colour mapping)."""
    return Color.from_rgb(*level_rgb(level(value, lo, hi)))


def readable_on(rgb: tuple[int, int, int]) -> Color:
    """Black or white text, whichever reads better on this background."""
    r, g, b = rgb
    return Color.from_rgb(0, 0, 0) if (0.299 * r + 0.587 * g + 0.114 * b) > 140 else Color.from_rgb(255, 255, 255)


@lru_cache(maxsize=4096)
def cell_style(top: int, bottom: int) -> Style:
    """Half-block cell: the upper matrix row as foreground of '▀', the lower one as background."""
    return Style(color=Color.from_rgb(*level_rgb(top)), bgcolor=Color.from_rgb(*level_rgb(bottom)))


@lru_cache(maxsize=LEVELS + 1)
def block_style(lvl: int) -> Style:
    """A whole cell in the scale colour with readable text on it."""
    rgb = level_rgb(lvl)
    return Style(color=readable_on(rgb), bgcolor=Color.from_rgb(*rgb))
