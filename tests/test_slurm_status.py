"""Honest status of runs whose engine runs on another host (a Slurm node): heartbeats and job states.

No Slurm needed: the other host's heartbeat is written by hand, the scheduler's states are given.
The last test runs the real engine and reads the heartbeat it writes.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

from engine.heartbeat import HEARTBEAT, Heartbeat, heartbeat_fresh, read_heartbeat, status_with_job
from engine.runs import create_run, read_summary, run_status, write_summary
from engine.sweep.spec import SweepSpec, expand
from engine.sweep.store import create_sweep, run_states
from lifecycle_helpers import ROOT, engine_popen, events, wait_for


def _spec(**kw) -> SweepSpec:
    return SweepSpec(presets=["digits-clean"], methods=["erm"], seeds=[1], sets={"train.device": "cpu"}, **kw)


def _running_run(tmp_path: Path) -> Path:
    """A run whose summary says running and whose engine this host cannot see (no lock held)."""
    (plan,) = expand(_spec(), ROOT / "presets")
    run_dir = create_run(tmp_path, plan.config)
    summary = read_summary(run_dir)
    summary.update(status="running", started=time.time())
    write_summary(run_dir, summary)
    (run_dir / "engine.lock").write_text("4242\n")  # the engine took the lock once, on its node
    return run_dir


def _beat(run_dir: Path, host: str, age_s: float) -> None:
    (run_dir / HEARTBEAT).write_text(json.dumps({"host": host, "pid": 4242, "time": time.time() - age_s}))


def test_heartbeat_fresh_by_age(tmp_path):
    assert not heartbeat_fresh(tmp_path)  # none written
    _beat(tmp_path, "node-7", age_s=0)
    now = read_heartbeat(tmp_path)["time"]
    assert heartbeat_fresh(tmp_path, max_age_s=60, now=now + 59)
    assert not heartbeat_fresh(tmp_path, max_age_s=60, now=now + 61)
    (tmp_path / HEARTBEAT).write_text("{half a fi")  # unreadable: not fresh
    assert not heartbeat_fresh(tmp_path)


def test_a_fresh_heartbeat_from_another_host_is_running_a_stale_one_interrupted(tmp_path):
    run_dir = _running_run(tmp_path)
    assert run_status(run_dir) == "interrupted"  # no lock held here, no heartbeat
    _beat(run_dir, "node-7", age_s=5)
    assert run_status(run_dir) == "running"  # the engine on node-7 is alive
    _beat(run_dir, "node-7", age_s=10 * 60)
    assert run_status(run_dir) == "interrupted"  # it stopped beating: never "running" forever


def test_on_its_own_host_the_lock_decides_not_the_heartbeat(tmp_path):
    # An engine killed here a second ago left a fresh heartbeat; its lock is free, so it is interrupted at once.
    run_dir = _running_run(tmp_path)
    _beat(run_dir, socket.gethostname(), age_s=1)
    assert run_status(run_dir) == "interrupted"


def test_job_state_overrides_a_fresh_heartbeat_once_the_job_is_gone():
    assert status_with_job("running", "RUNNING") == "running"
    assert status_with_job("running", "COMPLETING") == "running"
    assert status_with_job("running", None) == "running"  # unknown job: the heartbeat decides
    for gone in ("COMPLETED", "FAILED", "CANCELLED by 0", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY"):
        assert status_with_job("running", gone) == "interrupted", gone
    assert status_with_job("finished", "COMPLETED") == "finished"


def test_sweep_run_states_combine_heartbeat_and_scheduler(tmp_path):
    sweep = create_sweep(tmp_path, _spec(executor="slurm"), expand(_spec(), ROOT / "presets"))
    (run_dir,) = sweep.run_dirs()
    run_id = run_dir.name
    assert run_states(sweep, {run_id: "PENDING"}) == {run_id: "queued"}
    assert run_states(sweep, {run_id: "RUNNING"}) == {run_id: "running"}  # its engine is still starting

    summary = read_summary(run_dir)
    summary.update(status="running")
    write_summary(run_dir, summary)
    _beat(run_dir, "node-7", age_s=5)
    assert run_states(sweep, {run_id: "RUNNING"}) == {run_id: "running"}
    assert run_states(sweep, {}) == {run_id: "running"}  # Slurm forgot the job; the heartbeat is fresh
    assert run_states(sweep, {run_id: "CANCELLED"}) == {run_id: "interrupted"}  # the job is gone: so is the engine
    _beat(run_dir, "node-7", age_s=10 * 60)
    assert run_states(sweep, {}) == {run_id: "interrupted"}  # no job known, heartbeat stale

    # A task requeued after a clean stop: queued, then running while its engine starts again.
    summary.update(status="stopped")
    write_summary(run_dir, summary)
    assert run_states(sweep, {run_id: "PENDING"}) == {run_id: "queued"}
    assert run_states(sweep, {run_id: "RUNNING"}) == {run_id: "running"}
    assert run_states(sweep, {run_id: "COMPLETED"}) == {run_id: "stopped"}


def test_heartbeat_thread_beats_and_cleans_up(tmp_path):
    beat = Heartbeat(tmp_path, interval_s=0.05).start()
    first = read_heartbeat(tmp_path)
    assert first["host"] == socket.gethostname() and first["pid"] > 0
    wait_for(lambda: (read_heartbeat(tmp_path) or first)["time"] > first["time"], timeout=10, what="a second beat")
    beat.stop()
    assert not (tmp_path / HEARTBEAT).exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no temporary file left either


def test_the_engine_writes_its_heartbeat_while_it_runs(tmp_path):
    (plan,) = expand(SweepSpec(presets=["digits-clean"], methods=["gdw"], seeds=[1],
                               sets={"train.device": "cpu", "train.epochs": 200}), ROOT / "presets")
    run_dir = create_run(tmp_path, plan.config)
    proc = engine_popen("run", run_dir)
    try:
        wait_for(lambda: any(e["type"] == "epoch" for e in events(run_dir)), timeout=180, what="a first epoch", proc=proc)
        beat = read_heartbeat(run_dir)
        assert beat["pid"] == proc.pid and beat["host"] == socket.gethostname()
        assert abs(beat["time"] - time.time()) < 120
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
    assert read_summary(run_dir)["status"] == "stopped"
    assert not (run_dir / HEARTBEAT).exists()  # a clean exit takes its heartbeat along
