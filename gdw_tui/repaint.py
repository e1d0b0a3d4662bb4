"""When the dashboard repaints: the facets a batch of events changed, at bounded rates.

The header and log follow closely (FAST_HZ); charts, heatmap and bars redraw at most SLOW_HZ
(they cost more, and a training curve needs no more). The heavy facets (heatmap, weights, bars)
are painted a frame after the charts, so no single frame is long enough to delay a key.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Callable

from textual.dom import DOMNode

from .run_model import CLASSES, INFO, LOG, PROGRESS, WEIGHTS, RunModel

FAST_HZ = 10
SLOW_HZ = 2
FAST_FACETS = frozenset({INFO, PROGRESS, LOG})
HEAVY_FACETS = frozenset({WEIGHTS, CLASSES})  # painted in a frame of their own,
HEAVY_AFTER_S = 0.1  # this long after the charts


class RepaintScheduler:
    def __init__(self, node: DOMNode, model: Callable[[], RunModel], paint: Callable[[set[str]], None]) -> None:
        """`node` owns the timers; `model()` is the model whose dirty facets `paint(facets)` shows."""
        self.node, self.model, self.paint = node, model, paint
        self._pending = {"fast": False, "slow": False}
        self._last_paint = {"fast": 0.0, "slow": 0.0}

    def schedule(self) -> None:
        """Paint what the model marked dirty, each kind no more often than its rate allows."""
        dirty = self.model().dirty
        if dirty & FAST_FACETS:
            self._schedule("fast", FAST_HZ)
        if dirty - FAST_FACETS:
            self._schedule("slow", SLOW_HZ)

    def now(self) -> None:
        """Paint everything dirty at once (the first complete picture, without waiting for a timer)."""
        for kind in self._last_paint:
            self._last_paint[kind] = time.monotonic()
        self.paint(self.model().take_dirty())

    def _schedule(self, kind: str, hz: float) -> None:
        if self._pending[kind]:
            return
        self._pending[kind] = True
        delay = self._last_paint[kind] + 1.0 / hz - time.monotonic()
        paint = partial(self._paint_kind, kind)
        if delay > 0:
            self.node.set_timer(delay, paint)
        else:
            self.node.call_later(paint)  # (a zero-delay Timer divides by zero in Textual 8)

    def _paint_kind(self, kind: str) -> None:
        self._pending[kind] = False
        self._last_paint[kind] = time.monotonic()
        model = self.model()
        facets = model.take_dirty(FAST_FACETS if kind == "fast" else None, exclude=FAST_FACETS if kind == "slow" else None)
        light, heavy = facets - HEAVY_FACETS, facets & HEAVY_FACETS
        if light and heavy:
            self.paint(light)
            self.node.set_timer(HEAVY_AFTER_S, partial(self.paint, heavy))  # its own frame: keys get in between
        else:
            self.paint(facets)
