"""The engine process's own resources, for the dashboard header.

CPU % and resident memory come from /proc/PID/stat and /proc/PID/status (Linux; the pid is the
one in the run's engine.lock). On CUDA runs the GPU's utilisation and memory come from NVML
(`nvidia-ml-py`), imported only then; without the package, the driver or /proc a figure is simply
absent. The dashboard samples once a second in a worker thread.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Callable

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Usage:
    cpu_percent: float | None = None  # 100 = one core
    rss_bytes: int | None = None
    gpu_percent: float | None = None
    gpu_used_bytes: int | None = None
    gpu_total_bytes: int | None = None


def cpu_ticks(pid: int, proc: str = "/proc") -> int | None:
    """User + system CPU time of a process, in clock ticks."""
    try:
        with open(f"{proc}/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
        fields = stat[stat.rindex(")") + 2:].split()  # the name in parentheses may hold spaces
        return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    except (OSError, ValueError, IndexError):
        return None


def rss_bytes(pid: int, proc: str = "/proc") -> int | None:
    try:
        with open(f"{proc}/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


class ProcessMeter:
    """CPU % of a process between two samples, and its resident memory."""

    def __init__(self, pid: int, proc: str = "/proc", clock: Callable[[], float] = time.monotonic) -> None:
        self.pid, self.proc, self.clock = pid, proc, clock
        self._last: tuple[float, int] | None = None

    def sample(self) -> tuple[float | None, int | None]:
        now, ticks = self.clock(), cpu_ticks(self.pid, self.proc)
        cpu = None
        if ticks is not None:
            if self._last is not None and now > self._last[0]:
                cpu = max(0.0, (ticks - self._last[1]) / CLK_TCK / (now - self._last[0]) * 100)
            self._last = (now, ticks)
        return cpu, rss_bytes(self.pid, self.proc)


class GpuMeter:
    """Utilisation and memory of the GPU a CUDA run uses, through NVML; unavailable → sample() is None."""

    def __init__(self, device: str, pid: int | None = None, proc: str = "/proc") -> None:
        self.handle: Any = None
        self.nvml: Any = None
        try:
            import pynvml  # nvidia-ml-py: only CUDA runs need it

            pynvml.nvmlInit()
            self.nvml = pynvml
            self.handle = _device_handle(pynvml, device, pid, proc)
        except Exception:  # no package, no driver, no such device: no GPU figures
            self.handle = None

    def sample(self) -> tuple[float, int, int] | None:
        if self.handle is None:
            return None
        try:
            util = self.nvml.nvmlDeviceGetUtilizationRates(self.handle)
            mem = self.nvml.nvmlDeviceGetMemoryInfo(self.handle)
            return float(util.gpu), int(mem.used), int(mem.total)
        except Exception:
            return None


def _device_handle(nvml: Any, device: str, pid: int | None, proc: str) -> Any:
    """NVML's handle for the engine's `cuda[:N]`: N counts the devices the engine could see."""
    index = int(device.split(":")[1]) if ":" in device else 0
    visible = _engine_env(pid, proc).get("CUDA_VISIBLE_DEVICES") if pid else None
    if visible is None:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        ids = [v.strip() for v in visible.split(",") if v.strip()]
        if index < len(ids):
            ref = ids[index]
            if ref.isdigit():
                return nvml.nvmlDeviceGetHandleByIndex(int(ref))
            return nvml.nvmlDeviceGetHandleByUUID(ref)
    return nvml.nvmlDeviceGetHandleByIndex(index)


def _engine_env(pid: int, proc: str) -> dict[str, str]:
    try:
        with open(f"{proc}/{pid}/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


class EngineMeter:
    """Everything the header shows about one engine process."""

    def __init__(self, pid: int, device: str = "", proc: str = "/proc", clock: Callable[[], float] = time.monotonic) -> None:
        self.pid = pid
        self.process = ProcessMeter(pid, proc, clock)
        self.gpu = GpuMeter(device, pid, proc) if device.startswith("cuda") else None

    def sample(self) -> Usage:
        cpu, rss = self.process.sample()
        gpu = self.gpu.sample() if self.gpu is not None else None
        if gpu is None:
            return Usage(cpu, rss)
        return Usage(cpu, rss, *gpu)
