"""Soak test of the UI: the real `gdw-tui` in a pseudo-terminal for many minutes, following live runs,
with keys, screens and terminal sizes cycling. Catches what a one-minute test cannot (a timer that
fires once a minute, memory that grows, a screen that stops answering).

    python scripts/ui_soak.py --duration 300          # five minutes, a readable report
    python scripts/ui_soak.py --duration 1800 --json  # thirty minutes, the figures as JSON

What runs meanwhile, in a fresh runs directory (a temporary one unless --runs-dir):
  * a replayed run (scripts/replay_run.py): 2,000 step events a second plus a 100×100 ω snapshot
    a second, long enough for the whole soak;
  * a real digits engine (`gdw run --headless digits-unif60`), restarted whenever it finishes.
The UI opens the replayed run's dashboard (on the command line) and keeps it open underneath,
cycling over it: tab keys 1-6, h, [ ], m; ? help; r for the runs list; the real run's dashboard
with the same keys; back; `w` for the sweeps screen (a 2×2×2 sweep made at the start, one of
whose runs the soak marks finished with a new accuracy each cycle, so the grid changes), a cell,
p for its report; back. In the last PRESETS_PHASE_S seconds it goes to the presets (that closes
the replay's dashboard: re-opening it would re-read ~30 MB a minute of replay) and types in their
filter, then help and the runs list again. The terminal is resized (160×50, 100×30, 80×24) every
RESIZE_EVERY_S seconds (TIOCSWINSZ, then SIGWINCH to the UI's process group). At the end it
quits with `q` and expects exit code 0.

Figures: RSS of the UI process (VmRSS) every second (every minute in the JSON), its CPU (user+system
over wall, 100% = one core), key latency (key written to the screen's answer: the marker text
the key brings up when it has one, otherwise the next output), tracebacks in the output.

Exit status 1 when the UI died, printed a traceback, exited non-zero, or its memory grew: from the
5-minute mark to the end by more than 10% (judged only for --duration ≥ 360), or for shorter
soaks from the 20-second mark to the end by more than SHORT_GROWTH_LIMIT (150%: much looser, as
RSS roughly doubles in the first minute — 77 to 152 MB measured — while the dashboards fill their
bounded histories and garbage waits for the once-a-minute full collection; it then stays flat, so
a short soak only catches a gross leak).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import math
import os
import re
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ui_bench import Terminal  # noqa: E402  (the pseudo-terminal both measurements use)

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the console scripts of the environment this runs in
SIZES = ((160, 50), (100, 30), (80, 24))
RESIZE_EVERY_S = 15.0
KEY_PAUSE_S = 0.4  # between keys: a lone Escape needs a moment to be told from an escape sequence
KEY_TIMEOUT_S = 5.0  # a key whose answer takes longer counts as unanswered
PRESETS_PHASE_S = 25.0  # the last seconds: the presets screen
CYCLE_S = 42.0  # about one cycle of screens (no new cycle starts that would run into the presets phase)
LONG_GROWTH_FROM_S, LONG_GROWTH_LIMIT = 300.0, 0.10
SHORT_GROWTH_FROM_S, SHORT_GROWTH_LIMIT = 20.0, 1.50
REPLAY_STEPS_PER_S = 2000.0
REPLAY_ITERS_PER_EPOCH = 490
ANSI = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)")

KEYS = {"escape": "\x1b", "enter": "\r", "up": "\x1b[A", "down": "\x1b[B", "right": "\x1b[C", "left": "\x1b[D", "ctrl+home": "\x1b[1;5H",
        "ctrl+end": "\x1b[1;5F"}


@dataclass
class Soak:
    term: Terminal
    duration: float
    started: float = field(default_factory=time.time)
    latencies: list[float] = field(default_factory=list)  # seconds, answered keys
    slowest: tuple[float, str] = (0.0, "")  # the slowest answered key: latency, which key when
    unanswered: list[str] = field(default_factory=list)
    rss: list[tuple[float, float]] = field(default_factory=list)  # (seconds since start, MB)
    cpu: list[tuple[float, float]] = field(default_factory=list)  # (seconds since start, CPU seconds)
    keys_sent: int = 0
    resizes: int = 0
    cycles: int = 0
    real_dashboard_opened: int = 0
    size_index: int = 0
    next_resize: float = 0.0
    next_sample: float = 0.0
    died_at: float | None = None
    first_frame_s: float | None = None  # start to the replay's dashboard on the terminal
    sweep_runs: list[Path] = field(default_factory=list)  # the soak's sweep's run directories
    torch_loaded: list[str] | None = None  # torch's libraries in the UI process at the end (None: not seen)

    def elapsed(self) -> float:
        return time.time() - self.started

    def done(self) -> bool:
        """The UI process has exited (on its own: the soak only quits it after this says False)."""
        if self.term.proc.poll() is None:
            return False
        if self.died_at is None:
            self.died_at = self.elapsed()
        return True

    def sample(self) -> None:
        """RSS and CPU once a second; the terminal size every RESIZE_EVERY_S. Called between keys."""
        now = self.elapsed()
        if self.done():
            return
        if now >= self.next_sample:
            try:
                self.rss.append((now, self.term.memory_mb()[0]))
                self.cpu.append((now, self.term.cpu_seconds()))
            except (OSError, KeyError):
                pass  # exited between poll and read
            self.next_sample = now + 1.0
        if now >= self.next_resize:
            self.size_index = (self.size_index + 1) % len(SIZES)
            resize(self.term, SIZES[self.size_index])
            self.resizes += 1
            self.next_resize = now + RESIZE_EVERY_S

    def wait(self, seconds: float) -> None:
        end = time.time() + seconds
        while time.time() < end and not self.done():
            self.sample()
            time.sleep(min(0.1, max(0.0, end - time.time())))

    def key(self, name: str, marker: str | None = None) -> bool:
        """Send one key (a name in KEYS or one character); the latency is the time to `marker` in the output, or to the next output."""
        if len(name) > 1 and name not in KEYS:
            raise ValueError(f"no escape sequence for key {name!r} (add it to KEYS)")
        if self.done():
            return False
        since = self.term.size()
        sent = time.time()
        self.term.send(KEYS.get(name, name))
        self.keys_sent += 1
        if marker is not None:
            at = self.term.wait_for(marker, since, timeout=KEY_TIMEOUT_S)
        else:
            at = wait_for_output(self.term, since, KEY_TIMEOUT_S)
        if at is None:
            self.unanswered.append(f"{name} at {self.elapsed():.0f} s" + (f" (waiting for {marker!r})" if marker else ""))
        else:
            self.latencies.append(at - sent)
            if at - sent > self.slowest[0]:
                self.slowest = (at - sent, f"{name} at {self.elapsed():.0f} s")
        self.wait(KEY_PAUSE_S)
        return at is not None

    def dashboard_keys(self) -> None:
        for tab in "123456":
            self.key(tab)
        self.key("2")  # the ω pane (a tab of its own in a narrow terminal) for h and the scrub keys
        self.key("h", "Increase ratio")
        self.key("h", "ω · snapshot")  # the ω pane's title once a snapshot is in ("ω heatmap" only before)
        self.key("[")
        self.key("[")
        self.key("]")
        # Maximise the focused pane and restore it. Twice `m`, not `m` then Escape: when the focused
        # widget cannot be maximised, Escape would leave the dashboard.
        self.key("m")
        self.key("m")
        self.key("1")

    def cycle(self) -> None:
        """One round of screens over the replayed run's dashboard, which stays open underneath."""
        self.dashboard_keys()
        self.key("?", "gdw-tui keys")
        self.key("escape")
        self.key("r", "Runs ·")
        self.key("ctrl+home")  # newest first: the real engine's run (started after the replay)
        if self.key("enter", "Accuracy %"):
            self.real_dashboard_opened += 1
        self.wait(2.0)
        self.dashboard_keys()
        self.key("?", "gdw-tui keys")
        self.key("escape")
        self.key("escape")  # back to the runs list
        self.key("escape")  # back to the replayed run's dashboard
        self.sweeps()
        self.cycles += 1

    def sweeps(self) -> None:
        """The sweeps screen over the replay's dashboard, while one of its runs "finishes" anew."""
        if self.sweep_runs:
            finish_run(self.sweep_runs[self.cycles % len(self.sweep_runs)], 90.0 + self.cycles % 10)
        self.key("w", "Sweeps ·")
        self.key("enter")  # the grid
        self.key("down")
        self.key("right")
        self.wait(2.5)  # a refresh tick (every 2 s) with the screen open
        self.key("p", "Report")  # not "Report ·": the "·" sits where the sweeps title had it, so it is not redrawn
        self.key("escape")
        self.key("escape")  # back to the replayed run's dashboard

    def presets(self) -> None:
        """The presets, last: leaving the replay's dashboard for them closes it (re-opening would re-read
        ~30 MB a minute of replay). Typing in the filter, help, the runs list over them."""
        self.key("escape")  # the dashboard opened on the command line goes to the presets
        self.key("/")
        for ch in "digits":
            self.key(ch)
        self.key("escape")  # clears the filter; focus back on the list
        self.key("down")
        self.key("up")
        self.key("?", "gdw-tui keys")
        self.key("escape")
        self.key("r", "Runs ·")
        self.key("escape")


def make_sweep(runs_dir: Path) -> list[Path]:
    """A sweep with no scheduler: its runs stay `created` until finish_run marks one finished."""
    from engine.sweep.spec import SweepSpec, expand
    from engine.sweep.store import create_sweep

    spec = SweepSpec(presets=["digits-clean", "digits-imb"], methods=["erm", "gdw"], seeds=[1, 2], name="soak")
    sweep = create_sweep(runs_dir, spec, expand(spec))
    return [runs_dir / e["run_id"] for e in sweep.runs]


def finish_run(run_dir: Path, acc: float) -> None:
    from engine.runs import read_summary, write_summary

    summary = read_summary(run_dir)
    summary.update(status="finished", final_acc=acc, epoch=summary.get("epochs", 1))
    write_summary(run_dir, summary)


def wait_for_output(term: Terminal, since: int, timeout: float) -> float | None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if term.size() > since:
            return time.time()
        time.sleep(0.002)
    return None


def resize(term: Terminal, size: tuple[int, int]) -> None:
    cols, rows = size
    fcntl.ioctl(term.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    try:
        os.killpg(term.proc.pid, signal.SIGWINCH)  # the UI has no controlling terminal to get it from
    except ProcessLookupError:
        pass


class RealEngine:
    """`gdw run --headless digits-unif60` in the background, started again whenever it ends."""

    def __init__(self, runs_dir: Path, epochs: int, log: Path) -> None:
        self.argv = [str(BIN / "gdw"), "run", "--headless", "digits-unif60", "--set", f"train.epochs={epochs}",
                     "--runs-dir", str(runs_dir)]
        self.log = open(log, "ab")
        # One thread: the engine shares the machine with the UI being measured.
        self.env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self.runs = 0
        self.proc = self._start()

    def _start(self) -> subprocess.Popen:
        self.runs += 1
        return subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=self.env, cwd=ROOT)

    def keep_going(self) -> None:
        if self.proc.poll() is not None:
            self.proc = self._start()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # the engine checkpoints and exits
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def start_replay(runs_dir: Path, duration: float, log: Path) -> tuple[subprocess.Popen, Path]:
    epochs = math.ceil((duration + 300) * REPLAY_STEPS_PER_S / REPLAY_ITERS_PER_EPOCH)  # outlasts the soak
    replay = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "replay_run.py"), str(runs_dir), "--steps-per-s", str(REPLAY_STEPS_PER_S),
         "--weights-every-s", "1", "--classes", "100", "--epochs", str(epochs),
         "--iters-per-epoch", str(REPLAY_ITERS_PER_EPOCH)],
        stdout=subprocess.PIPE, stderr=open(log, "ab"), text=True, cwd=ROOT)
    return replay, Path(replay.stdout.readline().strip())


def quit_ui(term: Terminal) -> int | None:
    """Escape to the presets (no text field focused), `q`, answer the quit dialog if one asks."""
    for _ in range(3):
        term.send("\x1b")
        time.sleep(KEY_PAUSE_S)
    since = term.size()
    term.send("q")
    if term.wait_for("still running", since, timeout=3) is not None:
        term.send("l")  # leave them running: they are not ours to stop
    try:
        return term.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        return None


def torch_loaded(pid: int) -> list[str] | None:
    """torch's own libraries mapped into the UI process (the UI never imports torch): from
    /proc/PID/maps, seen from outside, so nothing in the UI has to report on itself. None if
    the process is gone."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return None
    names = {line.split()[-1] for line in maps.splitlines() if len(line.split()) >= 6}
    return sorted(n for n in names if ("/torch/" in n and ".so" in n) or "libtorch" in Path(n).name)


def plain_text(raw: bytes) -> str:
    return ANSI.sub(b"", raw).decode("utf-8", "replace").replace("\r", "")


def traceback_excerpt(raw: bytes) -> str | None:
    """The crash report Textual prints after leaving the alternate screen, if any (last 40 lines)."""
    at = raw.find(b"Traceback")
    if at < 0:
        return None
    lines = [line.rstrip() for line in plain_text(raw[raw.rfind(b"\n", 0, at) + 1:]).splitlines() if line.strip()]
    return "\n".join(lines[-40:])


def at_mark(samples: list[tuple[float, float]], seconds: float) -> float | None:
    """The first sample at or after `seconds`."""
    return next((v for t, v in samples if t >= seconds), None)


def report(soak: Soak, exit_code: int | None, raw: bytes, engine: RealEngine, replay_alive: bool) -> dict:
    rss, cpu = soak.rss, soak.cpu
    wall = (cpu[-1][0] - cpu[0][0]) if len(cpu) > 1 else 0.0
    per_minute = []
    for minute in range(int(soak.duration // 60) + 1):
        t = minute * 60.0
        window = [(s, c) for s, c in cpu if t <= s <= t + 60]
        per_minute.append({
            "minute": minute, "rss_mb": at_mark(rss, t),
            "cpu_percent": round(100 * (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0]), 1)
            if len(window) > 1 and window[-1][0] > window[0][0] else None,
        })
    long_soak = soak.duration >= 360
    growth_from, limit = (LONG_GROWTH_FROM_S, LONG_GROWTH_LIMIT) if long_soak else (SHORT_GROWTH_FROM_S, SHORT_GROWTH_LIMIT)
    base, end = at_mark(rss, growth_from), (rss[-1][1] if rss else None)
    growth = (end - base) / base if base and end else None
    tb = traceback_excerpt(bytes(raw))
    alive = soak.died_at is None
    problems = []
    if not alive:
        problems.append(f"the UI exited on its own after {soak.died_at:.0f} s")
    if soak.first_frame_s is None:
        problems.append("the replay's dashboard never appeared")
    if tb:
        problems.append("a traceback in the output")
    if exit_code != 0:
        problems.append(f"exit code {exit_code} after q" if exit_code is not None else "did not exit within 30 s of q")
    if soak.torch_loaded:
        problems.append(f"the UI process loaded torch ({', '.join(soak.torch_loaded[:3])})")
    elif soak.torch_loaded is None:
        problems.append("the UI process was gone before torch could be looked for")
    if growth is None:
        problems.append(f"no RSS sample at the {growth_from:.0f} s mark to judge memory by")
    elif growth > limit:
        problems.append(f"RSS grew {100 * growth:.1f}% from the {growth_from:.0f} s mark (limit {100 * limit:.0f}%)")
    lat = sorted(soak.latencies)
    return {
        "duration_s": round(soak.elapsed(), 1), "first_frame_s": soak.first_frame_s, "alive_at_end": alive, "exit_code": exit_code,
        "traceback": tb, "ok": not problems, "problems": problems,
        "rss_mb": {"start": rss[0][1] if rss else None, "at_20s": at_mark(rss, 20.0),
                   "at_5min": at_mark(rss, 300.0), "middle": at_mark(rss, soak.duration / 2), "end": end,
                   "max": max((v for _, v in rss), default=None)},
        "memory_judged": {"from_s": growth_from, "limit_percent": 100 * limit, "growth_percent":
                          round(100 * growth, 2) if growth is not None else None,
                          "rule": "5-minute mark to end, 10%" if long_soak else
                          f"short soak (< 6 min): 20 s mark to end, {100 * limit:.0f}% (looser)"},
        "cpu_percent_of_one_core": round(100 * (cpu[-1][1] - cpu[0][1]) / wall, 1) if wall > 0 else None,
        "per_minute": per_minute,
        "rss_mb_every_10s": [round(v, 1) for v in (at_mark(rss, t) for t in range(0, int(soak.duration) + 1, 10))
                             if v is not None],
        "key_latency_ms": {"median": round(1000 * statistics.median(lat), 1) if lat else None,
                           "p90": round(1000 * lat[int(0.9 * (len(lat) - 1))], 1) if lat else None,
                           "worst": round(1000 * lat[-1], 1) if lat else None, "worst_key": soak.slowest[1],
                           "answered": len(lat)},
        "keys_sent": soak.keys_sent, "unanswered_keys": soak.unanswered, "resizes": soak.resizes,
        "cycles": soak.cycles, "real_dashboard_opened": soak.real_dashboard_opened,
        "engine_runs_started": engine.runs, "replay_still_running_at_end": replay_alive,
        "terminal_kb_per_s": round(len(raw) / 1024 / max(1.0, soak.elapsed()), 1),
        "cpus": os.cpu_count(), "torch_in_ui": soak.torch_loaded,
    }


def print_report(r: dict) -> None:
    m, k = r["rss_mb"], r["key_latency_ms"]

    def mb(v: float | None) -> str:
        return f"{v:.0f}" if v is not None else "?"

    print(f"gdw-tui soak: {r['duration_s']:.0f} s, {r['cycles']} screen cycles, {r['keys_sent']} keys, "
          f"{r['resizes']} resizes, real run's dashboard opened {r['real_dashboard_opened']}×, "
          f"{r['engine_runs_started']} engine run(s), {r['cpus']} CPUs")
    print(f"alive at the end: {'yes' if r['alive_at_end'] else 'NO'}; exit code after q: {r['exit_code']}")
    print(f"RSS MB: start {mb(m['start'])}, 20 s {mb(m['at_20s'])}, 5 min {mb(m['at_5min'])}, "
          f"middle {mb(m['middle'])}, end {mb(m['end'])}, max {mb(m['max'])}")
    j = r["memory_judged"]
    growth = f"{j['growth_percent']:+.1f}%" if j["growth_percent"] is not None else "?"
    print(f"memory: {growth} ({j['rule']})")
    print(f"CPU: {r['cpu_percent_of_one_core']}% of one core on average (UI process; the machine is shared, so noisy)")
    print(f"key latency: {k['median']} ms median, {k['p90']} ms p90, {k['worst']} ms worst ({k['worst_key']}) over {k['answered']} "
          f"answered keys; unanswered within {KEY_TIMEOUT_S:.0f} s: {len(r['unanswered_keys'])}"
          + (f" ({', '.join(r['unanswered_keys'][:5])})" if r["unanswered_keys"] else ""))
    print(f"terminal output: {r['terminal_kb_per_s']} kB/s")
    if r["traceback"]:
        print("traceback in the output:\n" + r["traceback"])
    print("OK" if r["ok"] else "FAILED: " + "; ".join(r["problems"]))


def soak(duration: float, runs_dir: Path) -> dict:
    runs_dir.mkdir(parents=True, exist_ok=True)
    replay, replay_dir = start_replay(runs_dir, duration, runs_dir / "replay.log")
    engine = RealEngine(runs_dir, epochs=40 + 3 * int(duration), log=runs_dir / "engine.log")
    cols, rows = SIZES[0]
    term = Terminal([str(BIN / "gdw-tui"), "--runs-dir", str(runs_dir), str(replay_dir)], (cols, rows))
    run = Soak(term, duration, sweep_runs=make_sweep(runs_dir))
    exit_code = None
    try:
        painted = term.wait_for("Accuracy %", timeout=60)
        run.first_frame_s = painted - term.started if painted else None
        run.next_resize = RESIZE_EVERY_S
        run.wait(2.0)
        presets_at = max(0.0, duration - PRESETS_PHASE_S)
        while run.elapsed() + CYCLE_S < presets_at and not run.done():
            engine.keep_going()
            run.cycle()
        while run.elapsed() < presets_at and not run.done():  # the replay's dashboard, followed, keys now and then
            run.key("h")
            run.wait(2.0)
        run.presets()
        run.wait(duration - run.elapsed())
        run.sample()
        replay_alive = replay.poll() is None
        run.torch_loaded = torch_loaded(term.proc.pid)  # after every screen, before q
        if not run.done():
            exit_code = quit_ui(term)
        else:
            exit_code = term.proc.wait()
    finally:
        term.close()
        replay.terminate()
        replay.wait()
        engine.stop()
    with term.lock:
        raw = bytes(term.output)
    return report(run, exit_code, raw, engine, replay_alive)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=300.0, help="seconds to soak (default 300)")
    parser.add_argument("--runs-dir", help="where the replayed and real runs go (default: a temporary directory, "
                        "removed after; the replay writes about 0.5 MB a second: 0.9 GB in 30 minutes)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.runs_dir:
        result = soak(args.duration, Path(args.runs_dir))
    else:
        with tempfile.TemporaryDirectory(prefix="gdw-ui-soak-") as tmp:
            result = soak(args.duration, Path(tmp) / "runs")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_report(result)
    raise SystemExit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
