"""How every figure looks: one colour per method, column widths, 8–9 pt text, fonts that stay text.

Colours are Okabe & Ito's colour-blind-safe palette (Color Universal Design, 2008); each method keeps
its colour in every figure. Widths are a two-column paper's: single column 3.25 in, double 6.75 in;
figures keep that width exactly (constrained layout, never a tight bounding box that would resize
them). PDFs embed TrueType (Type 42) fonts, never Type 3; SVGs keep text as text.
"""

from __future__ import annotations

from typing import Any

from ..method_table import METHODS

OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7",
}
# GDW stands out in vermillion, its ablation beside it in purple, the baselines in black and blues.
PREFERRED = {
    "erm": "black", "l2rw": "sky blue", "mwnet": "blue", "gdw": "vermillion", "gdw-nozm": "reddish purple",
    "glc": "bluish green", "coteach": "orange", "insw": "yellow",
}
OTHER = "#999999"  # a method this version does not know (a newer run's)

WIDTHS_IN = {"single": 3.25, "double": 6.75}
FORMATS = ("pdf", "png", "svg")
PNG_DPI = 300

RC: dict[str, Any] = {
    "font.family": "DejaVu Sans",  # ships with matplotlib: the same glyphs on every machine
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "figure.titlesize": 9,
    "axes.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "lines.linewidth": 1.2,
    "legend.frameon": False,
    "pdf.fonttype": 42,  # TrueType, not Type 3
    "ps.fonttype": 42,
    "svg.fonttype": "none",  # text stays text
    "svg.hashsalt": "gdw",  # the same figure gives the same file
    "savefig.dpi": PNG_DPI,
}


def method_colours() -> dict[str, str]:
    """Every known method's colour, all distinct: its preferred one, else the first one left over."""
    taken = {PREFERRED[m] for m in METHODS if m in PREFERRED}
    spare = [c for c in OKABE_ITO if c not in taken]
    out = {}
    for m in METHODS:
        name = PREFERRED.get(m) or (spare.pop(0) if spare else None)
        out[m] = OKABE_ITO[name] if name else OTHER
    return out


def colour(method: str) -> str:
    known = method_colours()
    if method in known:
        return known[method]
    return OKABE_ITO[PREFERRED[method]] if method in PREFERRED else OTHER
