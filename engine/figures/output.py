"""Render the figures and write them with their sidecar CSVs: every file whole, or none of them.

Everything is drawn and encoded in memory first; only then is --out created and each file written
to a temporary name and renamed into place. A failure part-way removes what this call wrote.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from ..config import ConfigError
from .data import Selection
from .kinds import KINDS, Drawn, Options
from .style import FORMATS, RC

METADATA = {  # no dates: the same runs give the same files
    "pdf": {"Creator": "gdw plot", "CreationDate": None},
    "svg": {"Creator": "gdw plot", "Date": None},
    "png": {"Software": "gdw plot"},
}


def draw(sel: Selection, kinds: list[str], opt: Options) -> list[Drawn]:
    import matplotlib

    with matplotlib.rc_context(RC):
        return [d for kind in kinds for d in KINDS[kind](sel, opt)]


def encode(drawn: Drawn, fmt: str) -> bytes:
    import matplotlib

    with matplotlib.rc_context(RC):
        buf = io.BytesIO()
        drawn.figure.savefig(buf, format=fmt, metadata=METADATA[fmt])
        return buf.getvalue()


def sidecar(drawn: Drawn) -> bytes:
    """The numbers drawn, exactly: floats in full precision (repr), absent values empty."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(drawn.columns)
    w.writerows([_cell(v) for v in row] for row in drawn.rows)
    return buf.getvalue().encode()


def _cell(v: Any) -> Any:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    return repr(v) if isinstance(v, float) else v


def check_out_dir(out: Path) -> None:
    """--out must be a directory this process can create or write into (checked before drawing)."""
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"--out {out}: {probe} is a file, not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out}: {probe} is not writable")


def write(sel: Selection, drawn: list[Drawn], out: Path, fmt: str) -> list[Path]:
    """Write each figure and its CSV as `<stem>_<name>.<fmt>` / `.csv` in `out`; the paths written."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    files = {}
    for d in drawn:
        stem = f"{sel.name}_{d.name}"
        files[out / f"{stem}.{fmt}"] = encode(d, fmt)
        files[out / f"{stem}.csv"] = sidecar(d)
    created = [p for p in [out, *out.parents] if not p.exists()]  # removed again if writing fails
    temps = [(path.with_name(f".{path.name}.tmp"), path) for path in files]
    try:
        out.mkdir(parents=True, exist_ok=True)
        for tmp, path in temps:
            tmp.write_bytes(files[path])
    except OSError as e:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
        for d in created:
            _remove_empty(d)
        raise ConfigError(f"cannot write figures to {out}: {e.strerror or e}") from None
    for tmp, path in temps:  # every file is whole on disk before any takes its name
        os.replace(tmp, path)
    return [path for _, path in temps]


def _remove_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass
