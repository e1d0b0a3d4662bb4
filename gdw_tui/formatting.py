"""Small text formatters shared by the screens: durations, timestamps, accuracies, status badges."""

from __future__ import annotations

import time

from engine.marks import STATUS_MARKS

# status -> colour (reads on dark and light themes); the marks are engine.marks'.
STATUS_COLOURS = {
    "running": "#3fb950", "created": "#8b949e", "starting": "#8b949e", "finished": "#58a6ff", "failed": "#ff7b72",
    "stopped": "#e3b341", "stopping": "#e3b341", "interrupted": "#f0883e", "queued": "#39c5cf", "missing": "#ff7b72",
}
STATUS_BADGES = {status: (STATUS_MARKS[status], colour) for status, colour in STATUS_COLOURS.items()}


def format_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "–"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_started(t: float | None) -> str:
    """Local month-day hour:minute, as a researcher reads a run list."""
    if not t:
        return "–"
    return time.strftime("%m-%d %H:%M", time.localtime(t))


def format_acc(value: float | None, digits: int = 2) -> str:
    if value is None or value != value:
        return "–"
    return f"{value:.{digits}f}"


def badge(status: str) -> tuple[str, str]:
    return STATUS_BADGES.get(status, ("?", "#8b949e"))


def plural(n: int, word: str) -> str:
    """`1 epoch`, `2 epochs`."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def format_speed(it_s: float | None) -> str:
    """Iterations per second, or seconds per iteration below one (a slow run never shows `0.0 it/s`)."""
    if it_s is None or it_s != it_s or it_s <= 0:
        return "– it/s"
    if it_s >= 1:
        return f"{it_s:.1f} it/s"
    return f"{1 / it_s:.1f} s/it"


def format_clock(t: float) -> str:
    """A local wall-clock time, hour:minute."""
    return time.strftime("%H:%M", time.localtime(t))


def format_bytes(n: int | None) -> str:
    """`512 MB`, `1.2 GB` (powers of 1024, as top and nvidia-smi count)."""
    if n is None:
        return "–"
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{n} B"


def format_usage(usage) -> str:
    """The engine's resources in one short line: `CPU 98% · RSS 1.2 GB · GPU 85% · 10.2/80.0 GB`."""
    bits = []
    if usage.cpu_percent is not None:
        bits.append(f"CPU {usage.cpu_percent:.0f}%")
    if usage.rss_bytes is not None:
        bits.append(f"RSS {format_bytes(usage.rss_bytes)}")
    if usage.gpu_percent is not None:
        bits.append(f"GPU {usage.gpu_percent:.0f}%")
    if usage.gpu_used_bytes is not None and usage.gpu_total_bytes:
        bits.append(f"{format_bytes(usage.gpu_used_bytes).split()[0]}/{format_bytes(usage.gpu_total_bytes)}")
    return " · ".join(bits)
