"""The real `gdw-tui` process over minutes and when something inside it fails.

The soak runs scripts/ui_soak.py (the UI in a pseudo-terminal following a 2,000 step/s replay
and a real digits engine, keys, screens and sizes cycling) long enough to cross a once-a-minute
timer: the first release crashed 60 s after every start and no shorter test saw it. The crash
tests start the console script's own entry point with one method patched to raise, in a
pseudo-terminal, and check what a user gets: the traceback on the terminal and a non-zero exit.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from ui_bench import Terminal  # noqa: E402
from ui_soak import plain_text  # noqa: E402

SOAK_S = 75  # more than a minute: every once-a-minute timer fires at least once


@pytest.mark.soak
def test_the_ui_survives_a_soak_past_its_once_a_minute_timers(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "ui_soak.py"), "--duration", str(SOAK_S), "--json",
         "--runs-dir", str(tmp_path / "runs")],
        capture_output=True, text=True, cwd=ROOT, timeout=SOAK_S + 240,
    )
    assert out.stdout.strip(), out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert result["traceback"] is None, f"the UI printed a traceback:\n{result['traceback']}"
    assert result["alive_at_end"], result["problems"]
    assert result["exit_code"] == 0, result["problems"]
    assert result["duration_s"] >= SOAK_S
    # It really followed and answered: keys got their screens' answers, the real run's dashboard
    # was opened, memory was sampled about once a second.
    assert result["key_latency_ms"]["answered"] >= 40 and result["key_latency_ms"]["median"] is not None
    assert len(result["unanswered_keys"]) <= result["keys_sent"] // 10, result["unanswered_keys"]
    assert result["real_dashboard_opened"] >= 1
    assert result["resizes"] >= 3
    assert len(result["rss_mb_every_10s"]) >= SOAK_S // 10 and result["rss_mb"]["end"] > 0
    assert result["replay_still_running_at_end"]
    assert result["torch_in_ui"] == [], result["torch_in_ui"]  # after every screen, in the real process


# --- a failure inside the app: the real entry point with one method patched to raise -------------

ENTRY = textwrap.dedent("""
    import gc, sys
    from importlib.metadata import entry_points
    import gdw_tui.app as app_module
    {patch}
    main = next(iter(entry_points(group="console_scripts", name="gdw-tui"))).load()
    main()
""")


def run_patched(patch: str, runs_dir: Path, keys: str = "", delay: float = 0.5,
                timeout: float = 60.0) -> tuple[int | None, str]:
    """gdw-tui on a pseudo-terminal with `patch` applied first; its exit code and its output as text."""
    runs_dir.mkdir(exist_ok=True)
    term = Terminal([sys.executable, "-c", ENTRY.format(patch=textwrap.dedent(patch)), "--runs-dir", str(runs_dir)],
                    (100, 30))
    try:
        assert term.wait_for("Presets", timeout=60) is not None, "no first frame"
        time.sleep(delay)
        term.send(keys)
        try:
            code = term.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
    finally:
        term.close()
        term.reader.join(timeout=5)
    with term.lock:
        return code, plain_text(bytes(term.output))


def test_an_exception_in_a_timer_ends_the_process_non_zero_with_its_traceback(tmp_path):
    code, output = run_patched("""
        app_module.FULL_GC_EVERY_S = 0.3
        def collect_now():
            raise RuntimeError("injected failure in the collection timer")
        app_module.QuietCollector.collect_now = staticmethod(collect_now)
    """, tmp_path / "runs")
    assert code not in (0, None), f"exit code {code}"
    assert "Traceback" in output and "injected failure in the collection timer" in output


def test_a_builtin_timer_callback_is_the_crash_the_soak_exists_for(tmp_path):
    """The original bug (the timer given gc.collect itself) ends the process non-zero, visibly."""
    code, output = run_patched("""
        app_module.FULL_GC_EVERY_S = 0.3
        app_module.QuietCollector.collect_now = staticmethod(gc.collect)
    """, tmp_path / "runs")
    assert code not in (0, None), f"exit code {code}"
    assert "Traceback" in output


def test_an_exception_in_a_key_handler_ends_the_process_non_zero_with_its_traceback(tmp_path):
    code, output = run_patched("""
        from gdw_tui.presets_screen import PresetList
        def on_key(self, event):
            raise RuntimeError(f"injected failure handling {event.key!r}")
        PresetList.on_key = on_key
    """, tmp_path / "runs", keys="x")
    assert code not in (0, None), f"exit code {code}"
    assert "Traceback" in output and "injected failure handling 'x'" in output



def test_an_exception_in_a_worker_is_reported_and_the_process_exits_non_zero(tmp_path):
    code, output = run_patched("""
        import gdw_tui.presets_screen as presets_screen
        def list_runs(*args, **kwargs):
            raise RuntimeError("injected failure in a worker")
        presets_screen.list_runs = list_runs  # the presets screen's worker reads the finished runs with it
    """, tmp_path / "runs", keys="q", delay=3.0)  # q: a worker error that does not end the app must not pass unseen
    assert code not in (0, None), f"exit code {code}"
    assert "injected failure in a worker" in output
