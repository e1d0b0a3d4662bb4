"""A curve that keeps a bounded number of points however long the run: old points merge in pairs."""

from __future__ import annotations

import math
from array import array


class BoundedSeries:
    """(x, y) points appended in x order, at most `max_points` of them kept, each with its wall time.

    When the limit is reached, neighbouring points are merged in pairs (their means), and from
    then on each stored point is the mean of `stride` incoming points. Memory stays bounded for
    a run of any length while the curve keeps its shape at chart resolution. The time of a point
    (Unix seconds, NaN when unknown) is merged the same way, so charts can plot against wall time.
    """

    def __init__(self, max_points: int = 2048) -> None:
        if max_points < 2 or max_points % 2:
            raise ValueError("max_points must be an even number ≥ 2")
        self.max_points = max_points
        self.xs = array("d")
        self.ys = array("d")
        self.ts = array("d")
        self.stride = 1  # incoming points per stored point
        self._pending_x = 0.0
        self._pending_y = 0.0
        self._pending_t = 0.0
        self._pending_n = 0
        self.count = 0  # points appended in total

    def __len__(self) -> int:
        return len(self.xs) + (1 if self._pending_n else 0)

    def append(self, x: float, y: float, t: float | None = None) -> None:
        self.count += 1
        self._pending_x += x
        self._pending_y += y
        self._pending_t += t if isinstance(t, (int, float)) else math.nan  # a malformed time is only unknown
        self._pending_n += 1
        if self._pending_n < self.stride:
            return
        n = self._pending_n
        self.xs.append(self._pending_x / n)
        self.ys.append(self._pending_y / n)
        self.ts.append(self._pending_t / n)
        self._pending_x = self._pending_y = self._pending_t = 0.0
        self._pending_n = 0
        if len(self.xs) >= self.max_points:
            self._halve()

    def _halve(self) -> None:
        self.xs, self.ys, self.ts = (array("d", ((a[i] + a[i + 1]) / 2 for i in range(0, len(a) - 1, 2)))
                                     for a in (self.xs, self.ys, self.ts))
        self.stride *= 2

    def points(self) -> list[tuple[float, float]]:
        """Stored points plus the partly filled last one, so the newest value is always shown."""
        pts = list(zip(self.xs, self.ys))
        if self._pending_n:
            pts.append((self._pending_x / self._pending_n, self._pending_y / self._pending_n))
        return pts

    def times(self) -> list[float]:
        """The wall time of each of `points()` (NaN where the events carried none)."""
        ts = list(self.ts)
        if self._pending_n:
            ts.append(self._pending_t / self._pending_n)
        return ts

    def last(self) -> tuple[float, float] | None:
        pts_n = len(self)
        if not pts_n:
            return None
        if self._pending_n:
            return self._pending_x / self._pending_n, self._pending_y / self._pending_n
        return self.xs[-1], self.ys[-1]

    def clear(self) -> None:
        self.__init__(self.max_points)  # type: ignore[misc]
