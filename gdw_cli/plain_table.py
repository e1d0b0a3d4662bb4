"""Long listings as plain aligned text: `gdw runs` and the runs of `gdw show SWEEP`.

Rich measures and wraps every cell, which took most of a minute for 10,000 runs; a listing needs
neither (its cells are short, and run ids must never be shortened). Columns are left-aligned and
two spaces apart, as Rich's `box=None` tables print them; the header comes first.
"""

from __future__ import annotations

import sys
from typing import Iterable


def print_table(header: list[str], rows: Iterable[list[str]]) -> None:
    rows = [header, *rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    sys.stdout.write("".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n" for r in rows))
    sys.stdout.flush()
