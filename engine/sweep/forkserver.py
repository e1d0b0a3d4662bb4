"""A fork server for the local executor: torch and the engine are imported once, each run still
gets a process of its own.

Starting a Python process that trains costs seconds of imports (torch above all); a sweep of short
runs paid them for every run. The scheduler starts one server (`python -m engine.sweep.forkserver`,
its own session) that imports what a run uses (`preload`), then forks one child per run: the child
leaves the server's session, writes to the run's engine.log, takes its slot's environment and
threads, and runs engine.sweep.task.run_task, exactly as a detached `python -m engine.sweep.task` would. A crash,
a leak or a SIGKILL takes that child only; the server reports each child's exit status.

CUDA is never initialised in the server: `preload` only imports, and nothing it imports touches a
device (tests/test_startup.py trips on every CUDA entry point while the preload runs), so each child
initialises CUDA itself, on the GPU its slot's CUDA_VISIBLE_DEVICES names. No torch operation runs
in the server either (an OpenMP thread pool created before a fork is not usable in the child).

Protocol (JSON lines): the scheduler writes {"run_dir", "log", "env", "threads"} on the server's
stdin; the server answers {"pid"} for each, and {"ended": pid, "rc": exit code, -N for signal N}
when a child ends. EOF on its stdin (the scheduler ended or was killed) ends the server; children
still running go on. The client side (ForkServer) is torch-free.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

LOST = 255  # poll() of a child whose exit code died with the server (as multiprocessing says it)
START_TIMEOUT_S = 600.0  # the first answer waits for the server's imports (seconds, or a minute loaded)


def preload() -> None:
    """What every run imports — numpy.ma, numpy.random and engine.methods.context only in its first
    epoch — loaded once in the server (imports only: no device, no torch op)."""
    import numpy.ma  # noqa: F401
    import numpy.random  # noqa: F401
    import torch  # noqa: F401  (not torch._dynamo nor sympy: a run never imports them, see engine/optim.py
    # and engine.methods.base.scalar_for_backward)

    import engine.__main__  # noqa: F401
    import engine.data  # noqa: F401
    import engine.lifecycle  # noqa: F401
    import engine.methods  # noqa: F401
    import engine.methods.context  # noqa: F401
    import engine.models  # noqa: F401
    import engine.sweep.task  # noqa: F401
    import engine.trainer  # noqa: F401


# --- the client (the scheduler's side) ---------------------------------------------------------------


class ForkServerGone(RuntimeError):
    """The server ended or never answered; the scheduler starts runs as separate processes instead."""


class ForkServer:
    def __init__(self) -> None:
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "engine.sweep.forkserver"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                start_new_session=True, close_fds=True, cwd=os.getcwd(), env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        except OSError as e:
            raise ForkServerGone(f"cannot start the fork server: {e}") from None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self._buffer = b""
        self._ended: dict[int, int] = {}
        self.lost: set[int] = set()  # children whose exit code died with the server

    def start(self, run_dir: Path, log: Path, env: dict[str, str], threads: int) -> "ForkedRun":
        request = {"run_dir": str(run_dir), "log": str(log), "env": {**os.environ, **env, "PYTHONUNBUFFERED": "1"},
                   "threads": threads}
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise ForkServerGone("the fork server has ended") from None
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            for reply in self._read(timeout=max(0.0, deadline - time.monotonic())):
                if "pid" in reply:
                    return ForkedRun(self, reply["pid"])
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise ForkServerGone("the fork server ended before it started the run")

    def returncode(self, pid: int) -> int | None:
        """The child's exit code once the server has reported it; None while it runs."""
        if pid not in self._ended:
            self._read(timeout=0)
        if pid not in self._ended and self.proc.poll() is not None and not _alive(pid):
            self._ended[pid] = LOST  # the server died: the child's status is lost (its run says how it ended)
            self.lost.add(pid)
        return self._ended.get(pid)

    def _read(self, timeout: float) -> list[dict[str, Any]]:
        """Replies available within `timeout`; exit reports are kept for returncode()."""
        fd = self.proc.stdout.fileno()
        if select.select([fd], [], [], timeout)[0]:
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    break
                if not chunk:  # the server ended
                    self.proc.wait()
                    break
                self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        replies = [json.loads(line) for line in lines if line.strip()]
        for reply in replies:
            if "ended" in reply:
                self._ended[reply["ended"]] = reply["rc"]
        return replies

    def close(self) -> None:
        """End the server (its running children go on)."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class ForkedRun:
    """A run's child process, as the scheduler sees it: pid and poll(), like subprocess.Popen."""

    def __init__(self, server: ForkServer, pid: int):
        self.server, self.pid = server, pid

    def poll(self) -> int | None:
        return self.server.returncode(self.pid)

    @property
    def status_lost(self) -> bool:
        """It ended after its server died: poll() says LOST, its real exit code is unknown."""
        return self.pid in self.server.lost


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (an orphan's init may be slow to reap it, or never)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- the server ------------------------------------------------------------------------------------------


def serve() -> int:
    replies = os.dup(1)
    os.dup2(2, 1)  # anything an import prints goes to stderr, never into the replies
    preload()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so SIGCHLD wakes the select below
    pending = b""
    while True:
        try:
            ready, _, _ = select.select([0, wake_r], [], [])
        except InterruptedError:  # pragma: no cover - Python retries select itself (PEP 475)
            continue
        if wake_r in ready:
            os.read(wake_r, 4096)
        _report_ended(replies)
        if 0 in ready:
            chunk = os.read(0, 65536)
            if not chunk:
                return 0  # the scheduler is gone: children still running go on
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    pid = os.fork()
                    if pid == 0:
                        _child(json.loads(line), (replies, wake_r, wake_w))
                    os.write(replies, (json.dumps({"pid": pid}) + "\n").encode())


def _report_ended(replies: int) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        os.write(replies, (json.dumps({"ended": pid, "rc": os.waitstatus_to_exitcode(status)}) + "\n").encode())


def _child(request: dict[str, Any], server_fds: tuple[int, ...]) -> None:
    """In the forked child: become the run's own process, run its task, exit with its code."""
    rc = 1
    try:
        os.setsid()  # like a detached launch: no signal to the server's session reaches the run
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in server_fds:
            os.close(fd)
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        os.environ.clear()
        os.environ.update(request["env"])
        import torch

        torch.set_num_threads(request["threads"])  # OMP_NUM_THREADS was read when the server imported torch
        from .task import run_task

        rc = run_task(Path(request["run_dir"]))
    except BaseException:  # noqa: BLE001 - whatever happens, this process must not return into the server
        import traceback

        traceback.print_exc()
    finally:
        try:
            from ..fast_exit import exit_process

            exit_process(rc)
        finally:
            os._exit(rc)  # never back into the server's loop


if __name__ == "__main__":
    from ..fast_exit import exit_process

    exit_process(serve())  # torch's teardown cost seconds after a sweep's last run
