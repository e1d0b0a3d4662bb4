"""One skew-tolerant heartbeat rule, the same answer from every command: a beat from far in the
future (a forged `time: 9e12`, a node whose clock is hours ahead) is not believed, so the run is
interrupted for gdw runs, show, stop, resume RUN and resume SWEEP alike; a fresh beat from another
host is running for all of them (stop says it cannot reach it, resume SWEEP adopts it, not starts
it); a beat a little ahead (clocks that disagree by seconds) still counts.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from typer.testing import CliRunner

from engine.heartbeat import HEARTBEAT, MAX_SKEW_S, heartbeat_fresh
from engine.runs import EVENTS, read_summary, run_status, write_summary
from engine.sweep.task import busy
from engine.sweep.spec import SweepSpec, expand
from engine.sweep.store import create_sweep, scheduler_alive
from gdw_cli.main import app
from lifecycle_helpers import ROOT, gdw, wait_for

runner = CliRunner()


def running_sweep_run(tmp_path: Path):
    """A one-run sweep whose run says running; its engine (if any) is on another host."""
    spec = SweepSpec(presets=["digits-clean"], methods=["erm"], seeds=[1], sets={"train.device": "cpu", "train.epochs": 1})
    sweep = create_sweep(tmp_path, spec, expand(spec, ROOT / "presets"))
    (run_dir,) = sweep.run_dirs()
    write_summary(run_dir, {**read_summary(run_dir), "status": "running", "started": time.time()})
    (run_dir / "engine.lock").write_text("4242\n")  # taken once, on its node
    return sweep, run_dir


def beat(run_dir: Path, at: float) -> None:
    (run_dir / HEARTBEAT).write_text(json.dumps({"host": "node-7", "pid": 4242, "time": at}))


def cli(root: Path, *args: str):
    return runner.invoke(app, [*args, "--runs-dir", str(root)])


def test_clocks_that_disagree_a_little_are_tolerated_a_beat_from_far_ahead_is_not(tmp_path):
    now = 1_000_000.0
    beat(tmp_path, now + 30)  # the writer's clock is 30 s ahead
    assert heartbeat_fresh(tmp_path, now=now)
    beat(tmp_path, now + MAX_SKEW_S + 1)
    assert not heartbeat_fresh(tmp_path, now=now)
    beat(tmp_path, 9e12)
    assert not heartbeat_fresh(tmp_path, now=now)
    beat(tmp_path, now - 60)  # 60 s old (or a clock a minute behind): still within three beats
    assert heartbeat_fresh(tmp_path, now=now)


def test_a_heartbeat_from_the_future_is_interrupted_for_every_command(tmp_path):
    sweep, run_dir = running_sweep_run(tmp_path)
    beat(run_dir, 9e12)
    name = run_dir.name
    assert run_status(run_dir) == "interrupted" and not busy(run_dir)
    runs = cli(tmp_path, "runs")
    assert any(line.startswith(name) and line.split()[1] == "interrupted" for line in runs.stdout.splitlines()), runs.stdout
    shown = cli(tmp_path, "show", name)
    assert "status         interrupted" in shown.stdout
    assert "heartbeat      host node-7, " in shown.stdout and "ahead of this machine's clock: not believed" in shown.stdout
    stopped = cli(tmp_path, "stop", name)
    assert stopped.exit_code == 2 and stopped.stderr.strip() == f"error: run {name} is not running (status: interrupted)"
    resumed = cli(tmp_path, "resume", name, "--headless")  # not "still running": no checkpoint, so start again
    assert resumed.exit_code == 2 and "has no checkpoint yet" in resumed.stderr, resumed.stderr
    # resume SWEEP starts it (as every other command says, nothing runs it) and it finishes.
    r = gdw("resume", sweep.id, "--wait", "--runs-dir", str(tmp_path), timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert read_summary(run_dir)["status"] == "finished"


def test_a_fresh_heartbeat_from_another_host_is_running_for_every_command(tmp_path):
    sweep, run_dir = running_sweep_run(tmp_path)
    beat(run_dir, time.time() + 20)  # alive on node-7, whose clock is 20 s ahead
    name = run_dir.name
    assert run_status(run_dir) == "running" and busy(run_dir)
    shown = cli(tmp_path, "show", name)
    assert "status         running" in shown.stdout and "heartbeat      host node-7, " in shown.stdout
    stopped = cli(tmp_path, "stop", name)
    assert stopped.exit_code == 2
    assert stopped.stderr.strip().startswith(f"error: run {name} is running on host node-7 (its heartbeat is fresh), "
                                             "out of reach of signals from here")
    resumed = cli(tmp_path, "resume", name, "--headless")
    assert resumed.exit_code == 2 and "is still running" in resumed.stderr
    # resume SWEEP adopts it (waits for it) instead of starting a second engine on it.
    r = gdw("resume", sweep.id, "--detach", "--runs-dir", str(tmp_path), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    wait_for(lambda: scheduler_alive(sweep), what="the scheduler")
    time.sleep(3)
    assert not (run_dir / EVENTS).exists() and read_summary(run_dir)["status"] == "running"  # no engine here
    beat(run_dir, time.time() - 3600)  # node-7 stops beating: the scheduler sees it end
    wait_for(lambda: not scheduler_alive(sweep), timeout=60, what="the scheduler to see the run end")
    assert not (run_dir / EVENTS).exists()
    assert "(adopted)" in (sweep.dir / "scheduler.log").read_text()
