"""The CLI against live engines and shared runs directories: `gdw stop`, a second signal, the
engine lock, several runs started at once, and readers of events.jsonl (show / resume).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import torch
from typer.testing import CliRunner

from engine.config import load_preset
from engine.events import SCHEMA_VERSION, read_events
from engine.launch import launch_detached
from engine.runs import create_run, list_runs, read_summary, run_status, write_summary
from gdw_cli.main import app
from lifecycle_helpers import ROOT, SMALL, child_env, events, gdw_popen, last_line, mid_epoch, wait_for

runner = CliRunner()


def cli(*args: str):
    return runner.invoke(app, list(args))


def long_run(runs_dir: Path, epochs: int = 2000) -> tuple[Path, subprocess.Popen]:
    """A detached engine (as the UI starts it) that is still running whenever a test looks."""
    cfg = load_preset("digits-unif60", {"train.epochs": epochs, "train.device": "cpu", "train.step_events_per_s": 10000})
    run_dir = create_run(runs_dir, cfg)
    return run_dir, launch_detached(run_dir, env={"OMP_NUM_THREADS": "1"})


def test_gdw_stop_on_a_detached_run(tmp_path):
    run_dir, proc = long_run(tmp_path)
    name, where = run_dir.name, ("--runs-dir", str(tmp_path))
    try:
        wait_for(lambda: mid_epoch(run_dir, 0, 2), proc=proc, what="the engine to train")
        shown = cli("show", name, *where)
        assert shown.exit_code == 0 and re.search(r"^status\s+running\s*$", shown.stdout, re.M), shown.stdout
        assert [r["status"] for r in list_runs(tmp_path)] == ["running"]

        # The lock keeps a second engine off a running run: one line, exit 2, the run untouched.
        second = subprocess.run([sys.executable, "-m", "engine", "resume", "--run-dir", str(run_dir)],
                                capture_output=True, text=True, env=child_env(), cwd=ROOT, timeout=120)
        assert second.returncode == 2
        assert second.stderr.splitlines() == [f"error: run {name} is already running (another engine holds its lock)"]
        assert "Traceback" not in second.stdout + second.stderr
        resumed = cli("resume", name, "--headless", *where)
        assert resumed.exit_code == 2
        assert resumed.stderr.strip() == f"error: run {name} is still running; stop it first with `gdw stop {name}`"
        assert proc.poll() is None and run_status(run_dir) == "running"

        stopped = cli("stop", name, *where)
    finally:
        if proc.poll() is None and run_status(run_dir) == "running":
            proc.kill()
    assert stopped.exit_code == 0, stopped.output
    assert stopped.stdout.strip() == f"{name}: stopped"  # `gdw stop` waits and prints the final status
    assert proc.wait(timeout=60) == 0
    ev = events(run_dir)
    assert [e["type"] for e in ev[-2:]] == ["checkpoint", "stopped"]
    stop = ev[-1]
    assert stop["reason"] == "SIGTERM" and stop["iter"] >= 1  # the iteration in progress was finished
    ckpt = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert (ckpt["epoch"], ckpt["iter"]) == (stop["epoch"], stop["iter"])
    s = read_summary(run_dir)
    assert s["status"] == "stopped" and run_status(run_dir) == "stopped"
    assert s["message"] == f"stopped (SIGTERM) at epoch {stop['epoch'] + 1}, after iteration {stop['iter']}"
    again = cli("stop", name, *where)
    assert again.exit_code == 2 and again.stderr.strip() == f"error: run {name} is not running (status: stopped)"


def test_a_second_signal_stops_at_once(tmp_path):
    """SIGTERM twice, quickly (an impatient `gdw stop; gdw stop`): the run ends at once, and its
    status is failed or stopped, never running. test_reliability has the deterministic version."""
    run_dir, proc = long_run(tmp_path)
    try:
        wait_for(lambda: mid_epoch(run_dir, 1, 2), proc=proc, what="the second epoch")
        os.kill(proc.pid, signal.SIGTERM)
        os.kill(proc.pid, signal.SIGTERM)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    s = read_summary(run_dir)
    status = run_status(run_dir)
    print(f"two SIGTERMs: {status} (engine exit {rc}): {s['message']}")
    assert status in ("failed", "stopped") and s["status"] == status
    if status == "failed":  # the second signal came while the iteration or the stop was under way
        assert rc == 1 and s["message"] == "interrupted by a second signal before a clean stop"
    else:
        # Delivered as one signal (a clean stop, exit 0), or the second came after the stop was
        # complete and the engine's handlers were gone (killed by it, but stopped and checkpointed).
        assert rc in (0, -signal.SIGTERM)
        assert events(run_dir)[-1]["type"] == "stopped"
    # Whatever was cut short, the last complete checkpoint loads and a resume would start from it.
    assert torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["epoch"] >= 1
    assert not [p for p in (run_dir / "checkpoints").iterdir() if p.name != "last.pt"]
    shown = cli("show", run_dir.name, "--runs-dir", str(tmp_path))
    assert re.search(rf"^status\s+{status}\s*$", shown.stdout, re.M)


def test_an_engine_killed_during_its_setup_is_interrupted_not_created(tmp_path):
    """Killed after taking the run's lock but before its first event (e.g. while loading data)."""
    cfg = load_preset("digits-unif60", {"train.epochs": 1, "train.device": "cpu"})
    run_dir = create_run(tmp_path, cfg)
    assert run_status(run_dir) == "created"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from engine.runs import acquire_lock; acquire_lock(Path(sys.argv[1])); "
                               "print('locked', flush=True); time.sleep(60)", str(run_dir)],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT, env=child_env())
    assert holder.stdout.readline().strip() == "locked"
    assert run_status(run_dir) == "running"
    holder.kill()
    holder.wait()
    assert read_summary(run_dir)["status"] == "created" and run_status(run_dir) == "interrupted"
    shown = cli("show", run_dir.name, "--runs-dir", str(tmp_path))
    assert "it has no checkpoint yet (it stopped before its first epoch ended); start it again with `gdw run`" in shown.stdout
    resumed = cli("resume", run_dir.name, "--headless", "--runs-dir", str(tmp_path))
    assert resumed.exit_code == 2 and "has no checkpoint yet" in resumed.stderr


def test_runs_started_at_once_never_share_a_directory(tmp_path):
    n = 6
    procs = [gdw_popen("run", "--headless", "digits-unif60", "--method", "erm", "--epochs", "1", *SMALL,
                       "--runs-dir", str(tmp_path)) for _ in range(n)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0] * n, [e for _, e in outs]
    dirs = sorted(d for d in tmp_path.iterdir())
    assert len(dirs) == n
    # Each process reports its own directory, and each directory holds exactly its own run.
    reported = sorted(Path(re.search(r"^run directory: (.+)$", o, re.M).group(1)) for o, _ in outs)
    assert reported == dirs
    finals = {float(last_line(o).split("=")[1]) for o, _ in outs}
    for d in dirs:
        ev = read_events(d / "events.jsonl")
        starts = [e for e in ev if e["type"] == "run_start"]
        assert len(starts) == 1 and starts[0]["run_id"] == d.name
        assert len({e["pid"] for e in starts}) == 1
        assert [e["type"] for e in ev].count("run_end") == 1
        s = read_summary(d)
        assert s["status"] == "finished" and s["run_id"] == d.name
    # Same config and seed, so the same result: nobody wrote into anybody else's run.
    summary_finals = {read_summary(d)["final_acc"] for d in dirs}
    assert len(finals) == 1 and len(summary_finals) == 1
    assert round(summary_finals.pop(), 2) == finals.pop()
    assert len({(d / "config.toml").read_text() for d in dirs}) == 1


# --- readers of events.jsonl -------------------------------------------------------------------------


def fake_run(runs_dir: Path, status: str, lines: list[str]) -> Path:
    """A run directory with a hand-written events.jsonl (no engine)."""
    cfg = load_preset("digits-unif60", {"train.epochs": 3, "train.device": "cpu"})
    run_dir = create_run(runs_dir, cfg)
    s = read_summary(run_dir)
    s.update(status=status, message="RuntimeError: boom" if status == "failed" else "")
    write_summary(run_dir, s)
    (run_dir / "events.jsonl").write_text("".join(lines))
    return run_dir


def line(**event) -> str:
    return json.dumps({"v": SCHEMA_VERSION, "t": 1.0, **event}) + "\n"


def test_readers_tolerate_truncated_lines_and_unknown_events(tmp_path):
    tb = "Traceback (most recent call last):\n  File \"x.py\", line 1\nRuntimeError: boom"
    run_dir = fake_run(tmp_path, "failed", [
        line(type="run_start", run_id="x", epochs=3, iters_per_epoch=14, start_epoch=0),
        line(type="telemetry_from_the_future", payload=[1, 2, 3]),  # an unknown type
        line(type="failure", kind="error", message="RuntimeError: boom", traceback=tb, epoch=0, iter=3,
             gpu_temperature=71),  # an unknown field
        '{"type": "step", "v": 1, "t": 2.0, "epo',  # the last line, cut off by a kill
    ])
    ev = read_events(run_dir / "events.jsonl")
    assert [e["type"] for e in ev] == ["run_start", "telemetry_from_the_future", "failure"]
    shown = cli("show", run_dir.name, "--runs-dir", str(tmp_path))
    assert shown.exit_code == 0
    assert "RuntimeError: boom" in shown.stdout and tb in shown.stdout


def test_a_newer_schema_is_refused_with_one_line(tmp_path):
    newer = SCHEMA_VERSION + 1
    run_dir = fake_run(tmp_path, "stopped", [line(type="run_start", run_id="x", v=newer)])
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "last.pt").write_bytes(b"not read: refused before")
    expected = (f"error: run {run_dir.name}: events written with schema v{newer}; this gdw-tui reads up to "
                f"v{SCHEMA_VERSION} — upgrade gdw-tui")
    for args in (["show", run_dir.name], ["resume", run_dir.name, "--headless"]):
        result = cli(*args, "--runs-dir", str(tmp_path))
        assert result.exit_code == 2, result.output
        assert result.stderr.splitlines() == [expected]
        assert "Traceback" not in result.output
    # A newer major version appended later (a newer gdw-tui resumed the run) is refused as well.
    run_dir.joinpath("events.jsonl").write_text(line(type="run_start", run_id="x") + line(type="resume", v=newer))
    assert cli("show", run_dir.name, "--runs-dir", str(tmp_path)).exit_code == 2
    # Listing still works: the summary is enough.
    listed = cli("runs", "--runs-dir", str(tmp_path))
    assert listed.exit_code == 0 and run_dir.name in listed.stdout


def test_tui_serve_without_textual_serve_is_one_line(monkeypatch, tmp_path):
    import sys

    from typer.testing import CliRunner

    from gdw_cli.main import app

    monkeypatch.setitem(sys.modules, "textual_serve", None)  # as if not installed: importing it fails
    monkeypatch.setitem(sys.modules, "textual_serve.server", None)
    result = CliRunner().invoke(app, ["tui", "--serve", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: --serve needs the 'serve' extra (textual_serve is not installed): pip install -e '.[serve]'"
