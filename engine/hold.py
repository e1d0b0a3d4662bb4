"""A test hook: the engine waits at a named point until a file exists. Off unless GDW_TEST_HOLD is set.

    GDW_TEST_HOLD=POINT:PATH

At POINT the engine (`python -m engine`) creates PATH.held, then waits until PATH exists. POINT is
`startup` (signal handlers installed, torch not yet imported, unless the run was forked from a sweep's fork server) or an event type (just after the
first event of that type is written, e.g. `epoch`), or `step@E.I`: the first step event of epoch E
(0-based) at iteration I or later — inside an epoch, where polling the events file races a fast
engine. Tests use it to act while the engine is
provably at that point instead of guessing from the clock; once PATH exists, later points pass.
"""

from __future__ import annotations

import os
import time


def hold_at(point: str, event: dict | None = None) -> None:
    spec = os.environ.get("GDW_TEST_HOLD")
    if not spec:
        return
    want, _, path = spec.partition(":")
    if not _matches(want, point, event) or os.path.exists(path):
        return
    open(path + ".held", "w").close()
    while not os.path.exists(path):
        time.sleep(0.02)


def _matches(want: str, point: str, event: dict | None) -> bool:
    kind, _, where = want.partition("@")
    if kind != point:
        return False
    if not where:
        return True
    epoch, _, iteration = where.partition(".")
    return event is not None and event.get("epoch") == int(epoch) and event.get("iter", -1) >= int(iteration or 0)
