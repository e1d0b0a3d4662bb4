"""End a process that imported torch without the interpreter's teardown.

Torch-free. Once torch is imported, Python's normal exit frees every module's objects one by one:
on this project's 2-core machine that took 1.4 s after an engine's last event (2 s loaded). The
engine has written and closed its files by then, so the entry points (`python -m engine`,
`python -m engine.sweep.task`, `gdw`) end with `exit_process`: what a normal exit does that
matters still happens (non-daemon threads finish, atexit handlers run, stdout and stderr are
flushed), then os._exit skips the rest. A process that never imported torch exits normally.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn


def exit_process(code: object) -> NoReturn:
    """sys.exit(code), skipping the interpreter's teardown when torch is loaded."""
    if "torch" not in sys.modules or not (code is None or isinstance(code, int)):
        sys.exit(code)
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # closed or replaced streams
            pass
    os._exit(code or 0)
