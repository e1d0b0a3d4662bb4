"""A matrix as a PNG heatmap, with numpy and zlib only (no plotting library needed to export).

Cells are drawn as squares on a fixed colour scale (lo..hi, so epochs compare at a glance);
cells without a value (a label not seen in the window) are grey.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

# viridis at 9 stops (matplotlib's colour-blind-safe default), interpolated linearly
_STOPS = np.array([
    [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
    [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
], dtype=float)
MISSING = (128, 128, 128)
TARGET_PIXELS = 320  # about this many pixels a side, whatever the number of classes


def colours(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """RGB uint8 for each value (NaN: grey)."""
    x = np.clip((np.nan_to_num(values, nan=lo) - lo) / (hi - lo), 0.0, 1.0) * (len(_STOPS) - 1)
    i = np.minimum(x.astype(int), len(_STOPS) - 2)
    f = (x - i)[..., None]
    rgb = _STOPS[i] * (1 - f) + _STOPS[i + 1] * f
    rgb[np.isnan(values)] = MISSING
    return rgb.round().astype(np.uint8)


def heatmap_rgb(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """A C×C float array (NaN: no value) as pixels, about TARGET_PIXELS a side."""
    cell = max(1, TARGET_PIXELS // max(values.shape))
    return np.repeat(np.repeat(colours(values, lo, hi), cell, axis=0), cell, axis=1)



def encode_png(rgb: np.ndarray) -> bytes:
    """An H×W×3 uint8 array as an 8-bit RGB PNG."""
    h, w, _ = rgb.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, w * 3)], axis=1).tobytes()  # filter 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))
