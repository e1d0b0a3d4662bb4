"""Measures the UI as a user's terminal sees it: time to first frame, CPU and memory while following a
fast run, key latency, and memory after opening a whole 80-epoch CIFAR-100 run.

    python scripts/ui_bench.py            # everything (about a minute)
    python scripts/ui_bench.py --json     # the figures as JSON

The UI runs as `python -m gdw_cli tui` in a pseudo-terminal (160×50 unless --size), exactly as
over SSH; scripts/replay_run.py writes the run it follows. CPU is the UI process's user+system
time over wall time (100% = one core); memory is its resident set (VmRSS; peak VmHWM).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
FIRST_FRAME_ENV = "GDW_TUI_FIRST_FRAME_FILE"  # gdw_tui.app writes the time of its first frame there and exits


class Terminal:
    """A UI process on a pseudo-terminal, with everything it prints collected (and timestamped)."""

    def __init__(self, argv: list[str], size: tuple[int, int], env: dict[str, str] | None = None) -> None:
        cols, rows = size
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        full_env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor", **(env or {})}
        self.started = time.time()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=full_env,
                                     cwd=ROOT, start_new_session=True)
        os.close(slave)
        self.master = master
        self.output = bytearray()
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.output += data

    def size(self) -> int:
        with self.lock:
            return len(self.output)

    def wait_for(self, text: str, since: int = 0, timeout: float = 30.0) -> float | None:
        """Wall time when `text` first appears in the output after byte `since`, or None."""
        needle = text.encode()
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if self.output.find(needle, since) >= 0:
                    return time.time()
            time.sleep(0.002)
        return None

    def send(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime

    def memory_mb(self) -> tuple[float, float]:
        status = dict(line.split(":", 1) for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines() if ":" in line)
        return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            os.close(self.master)
        except OSError:
            pass


def ui_argv(runs_dir: Path, run: Path | None = None) -> list[str]:
    argv = [sys.executable, "-m", "gdw_cli", "tui", "--runs-dir", str(runs_dir)]
    return argv + ([str(run)] if run else [])


def first_frame(runs_dir: Path, size: tuple[int, int], repeats: int, run: Path | None = None) -> dict[str, float]:
    """Process start to the first frame, as the app reports it and as the terminal receives it."""
    reported, seen = [], []
    marker = "Accuracy %" if run else "Presets"
    for _ in range(repeats):
        with tempfile.NamedTemporaryFile(suffix=".first-frame") as f:
            term = Terminal(ui_argv(runs_dir, run), size, {FIRST_FRAME_ENV: f.name})
            at = term.wait_for(marker, timeout=30)
            term.proc.wait(timeout=30)
            text = Path(f.name).read_text().strip()
            term.close()
        if at is None or not text:
            raise RuntimeError("the UI did not paint its first frame")
        seen.append(at - term.started)
        reported.append(float(text) - term.started)
    return {"terminal_s_median": statistics.median(seen), "terminal_s_max": max(seen),
            "app_s_median": statistics.median(reported)}


def follow(runs_dir: Path, size: tuple[int, int], steps_per_s: float, seconds: float) -> dict[str, float]:
    """Follow a replay of 2,000 step events/s plus a 100×100 ω snapshot a second; press keys meanwhile."""
    replay = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "replay_run.py"), str(runs_dir),
                               "--steps-per-s", str(steps_per_s)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    run_dir = Path(replay.stdout.readline().strip())
    term = Terminal(ui_argv(runs_dir, run_dir), size)
    try:
        if term.wait_for("RUNNING", timeout=30) is None:
            raise RuntimeError("the dashboard did not show the running run")
        time.sleep(1.0)  # settle: the catch-up of what was written before the UI started
        cpu0, wall0, bytes0 = term.cpu_seconds(), time.time(), term.size()
        rss_samples, latencies = [], []
        showing_ratio = False
        next_key = time.time() + 0.5
        while time.time() - wall0 < seconds and replay.poll() is None:
            if time.time() >= next_key:
                # `h` toggles the heatmap between ω and the increase ratio; the pane title says which.
                since = term.size()
                sent = time.time()
                term.send("h")
                showing_ratio = not showing_ratio
                at = term.wait_for("Increase ratio" if showing_ratio else "ω heatmap ·", since, timeout=5)
                latencies.append((at - sent) if at else float("inf"))
                next_key = time.time() + 1.0
            rss_samples.append(term.memory_mb()[0])
            time.sleep(0.1)
        wall = time.time() - wall0
        cpu = term.cpu_seconds() - cpu0
        rss, peak = term.memory_mb()
        sent_bytes = term.size() - bytes0
    finally:
        term.close()
        replay.terminate()
        replay.wait()
    return {
        "seconds": wall, "cpu_percent_of_one_core": 100 * cpu / wall,
        "rss_mb_max": max(rss_samples + [rss]), "rss_mb_peak_hwm": peak,
        "key_latency_ms_median": 1000 * statistics.median(latencies),
        "key_latency_ms_max": 1000 * max(latencies), "keys": len(latencies),
        "key_latencies_ms": [round(1000 * v, 1) for v in latencies],
        "terminal_kb_per_s": sent_bytes / 1024 / wall,
    }


def open_long_run(runs_dir: Path, size: tuple[int, int]) -> dict[str, float]:
    """Open a finished 80-epoch CIFAR-100 run (every iteration a step event, 4 ω snapshots an epoch)."""
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "replay_run.py"), str(runs_dir), "--instant",
                          "--weights-per-epoch", "4"], capture_output=True, text=True, cwd=ROOT, check=True)
    run_dir = Path(out.stdout.splitlines()[0])
    size_mb = (run_dir / "events.jsonl").stat().st_size / 1e6
    term = Terminal(ui_argv(runs_dir, run_dir), size)
    try:
        at = term.wait_for("· final ", timeout=120)  # the header shows the final accuracy once run_end is read
        if at is None:
            raise RuntimeError("the dashboard did not finish reading the run")
        time.sleep(2.0)
        rss, peak = term.memory_mb()
        since = term.size()
        sent = time.time()
        term.send("h")
        key_at = term.wait_for("Increase ratio", since, timeout=5)
    finally:
        term.close()
    return {"events_mb": size_mb, "open_to_finished_s": at - term.started, "rss_mb": rss, "rss_mb_peak_hwm": peak,
            "key_latency_ms_after_load": 1000 * (key_at - sent) if key_at else float("inf")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="160x50", help="terminal columns x rows (default 160x50)")
    parser.add_argument("--repeats", type=int, default=5, help="first-frame measurements (median reported)")
    parser.add_argument("--steps-per-s", type=float, default=2000.0)
    parser.add_argument("--seconds", type=float, default=15.0, help="how long to measure while following")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cols, rows = (int(v) for v in args.size.split("x"))
    size = (cols, rows)
    with tempfile.TemporaryDirectory(prefix="gdw-ui-bench-") as tmp:
        runs_dir = Path(tmp) / "runs"
        runs_dir.mkdir()
        results = {
            "cpu": os.cpu_count(), "size": args.size,
            "first_frame_presets": first_frame(runs_dir, size, args.repeats),
            "following": follow(runs_dir, size, args.steps_per_s, args.seconds),
            "open_80_epoch_cifar100": open_long_run(runs_dir, size),
        }
        finished = next(p for p in runs_dir.iterdir() if (p / "summary.json").exists())
        results["first_frame_dashboard"] = first_frame(runs_dir, size, args.repeats, finished)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    ff, fd, fo, lo = (results["first_frame_presets"], results["first_frame_dashboard"], results["following"],
                      results["open_80_epoch_cifar100"])
    print(f"terminal {args.size}, {results['cpu']} CPUs")
    print(f"first frame (presets):     {ff['terminal_s_median']:.2f} s median, {ff['terminal_s_max']:.2f} s max (app reports {ff['app_s_median']:.2f} s)")
    print(f"first frame (a run open):  {fd['terminal_s_median']:.2f} s median, {fd['terminal_s_max']:.2f} s max")
    print(f"following {args.steps_per_s:.0f} steps/s + ω 100×100 every 1 s for {fo['seconds']:.0f} s: "
          f"CPU {fo['cpu_percent_of_one_core']:.1f}% of one core, RSS {fo['rss_mb_max']:.0f} MB (peak {fo['rss_mb_peak_hwm']:.0f}), "
          f"key latency {fo['key_latency_ms_median']:.0f} ms median / {fo['key_latency_ms_max']:.0f} ms max over {fo['keys']} keys, "
          f"{fo['terminal_kb_per_s']:.0f} kB/s to the terminal")
    print(f"open an 80-epoch CIFAR-100 run ({lo['events_mb']:.0f} MB of events): finished drawing after {lo['open_to_finished_s']:.1f} s, "
          f"RSS {lo['rss_mb']:.0f} MB (peak {lo['rss_mb_peak_hwm']:.0f}), then a key in {lo['key_latency_ms_after_load']:.0f} ms")


if __name__ == "__main__":
    main()
