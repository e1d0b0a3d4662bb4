"""Stop requests by signal: the first SIGTERM/SIGINT asks for a clean stop, a second one stops at once.

Torch-free and installed first thing by `python -m engine`, so a stop that arrives while the
engine is still importing torch or loading data is remembered, not fatal.
"""

from __future__ import annotations

import signal
import threading


class StopRequest:
    def __init__(self) -> None:
        self.reason: str | None = None
        self._previous: dict | None = None

    def install(self) -> bool:
        """Take over SIGTERM and SIGINT (main thread only). False if already installed or not possible."""
        if self._previous is not None or threading.current_thread() is not threading.main_thread():
            return False
        self.reason = None
        self._previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
        for s in self._previous:
            signal.signal(s, self._handle)
        return True

    def uninstall(self) -> None:
        for s, handler in (self._previous or {}).items():
            signal.signal(s, handler)
        self._previous = None

    def _handle(self, signum, frame) -> None:
        if self.reason is not None:
            raise KeyboardInterrupt  # the second signal: stop now
        self.reason = signal.Signals(signum).name


STOP = StopRequest()
