"""The engine's split: the loop (engine.trainer), the run around it (engine.lifecycle), the
checkpoint (engine.checkpoint) and the device (engine.device) — and the one switch for events."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from engine.events import read_events
from gdw_cli.main import app
from lifecycle_helpers import SMALL


def test_bench_needs_only_the_device_module_not_the_training_loop():
    code = ("import sys, engine.bench\n"
            "print([m for m in ('engine.trainer', 'engine.lifecycle', 'engine.checkpoint') if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_events_off_leaves_out_only_step_and_weights(tmp_path):
    """`train.events = false` (for benchmarking) is one switch, checked by the loop: no step or weights
    events, every other event as usual, and the same accuracy as with events on."""
    results = {}
    for events in ("true", "false"):
        runs = tmp_path / events
        result = CliRunner().invoke(app, ["run", "--headless", "digits-unif60", "--epochs", "1", *SMALL,
                                          "--set", f"train.events={events}", "--runs-dir", str(runs)])
        assert result.exit_code == 0, result.output
        (run_dir,) = runs.iterdir()
        results[events] = ([e["type"] for e in read_events(run_dir / "events.jsonl")], result.stdout.splitlines()[-1])
    on, off = results["true"][0], results["false"][0]
    assert "step" in on and "weights" in on
    assert [t for t in on if t not in ("step", "weights")] == off
    assert results["true"][1] == results["false"][1] and results["false"][1].startswith("final_acc=")
