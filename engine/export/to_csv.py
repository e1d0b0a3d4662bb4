"""Records to one tidy long table for notebooks: run, preset, method, seed, epoch, iteration, metric, value.

One row per scalar (iteration-keyed and epoch-keyed alike; an epoch row's iteration is the last
iteration of that epoch), plus the summary's figures as metrics `summary/…` with the last epoch.
"""

from __future__ import annotations

import csv
import io

from .records import Record, RunInfo, Scalar

COLUMNS = ("run", "preset", "method", "seed", "epoch", "iteration", "metric", "value")


def header() -> str:
    return ",".join(COLUMNS) + "\r\n"


def rows(info: RunInfo, records: list[Record]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    ident = (info.run_id, info.preset, info.method, info.seed)
    for r in records:
        if isinstance(r, Scalar):
            w.writerow((*ident, r.epoch, "" if r.iteration is None else r.iteration, r.tag, repr(r.value)))
    last_epoch = info.epochs_done() - 1 if info.epochs_done() else ""
    for key, value in info.figures().items():
        w.writerow((*ident, last_epoch, "", f"summary/{key}", repr(value)))
    return out.getvalue()
