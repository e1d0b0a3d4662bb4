"""A test hook: the engine waits at a named point until a file exists. Off unless GDW_TEST_HOLD is set.

    GDW_TEST_HOLD=POINT:PATH

At POINT the engine (`python -m engine`) creates PATH.held, then waits until PATH exists. POINT is
`startup` (signal handlers installed, torch not yet imported) or an event type (just after the
first event of that type is written, e.g. `epoch`). Tests use it to act while the engine is
provably at that point instead of guessing from the clock; once PATH exists, later points pass.
"""

from __future__ import annotations

import os
import time


def hold_at(point: str) -> None:
    spec = os.environ.get("GDW_TEST_HOLD")
    if not spec:
        return
    want, _, path = spec.partition(":")
    if want != point or os.path.exists(path):
        return
    open(path + ".held", "w").close()
    while not os.path.exists(path):
        time.sleep(0.02)
