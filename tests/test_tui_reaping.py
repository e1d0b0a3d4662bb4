"""Engines and sweep schedulers started from the UI are reaped when they end: none stays
<defunct> under gdw-tui until the UI exits. The real app, real engines on digits."""

from __future__ import annotations

from pathlib import Path

from engine.config import load_preset
from engine.runs import read_summary
from engine.sweep.spec import SweepSpec
from engine.sweep.start import check_sweep
from engine.sweep.store import list_sweeps, scheduler_alive
from fixtures.tui_support import wait_until
from gdw_tui.app import GdwApp


def state(pid: int) -> str | None:
    """The process's state letter in /proc (Z: a zombie), None once it is gone (reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return None


async def test_a_launched_engine_and_a_sweep_scheduler_are_reaped(tmp_path):
    app = GdwApp(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        run_dir = app.launch(load_preset("digits-clean", {"train.epochs": 1, "train.device": "cpu"}))
        engine = app.launched[run_dir]
        assert app.start_sweep(check_sweep(SweepSpec(presets=["digits-clean"], methods=["erm"], seeds=[1],
                                                     sets={"train.epochs": 1, "train.device": "cpu"})))
        (sweep,) = list_sweeps(tmp_path)
        (scheduler,) = app.schedulers
        await wait_until(pilot, lambda: read_summary(run_dir)["status"] == "finished", timeout=300, what="the run to finish")
        await wait_until(pilot, lambda: read_summary(sweep.run_dirs()[0])["status"] == "finished" and not scheduler_alive(sweep),
                         timeout=300, what="the sweep to finish")
        # Both processes have exited; within a few seconds the UI has collected them (no "Z").
        await wait_until(pilot, lambda: state(engine.pid) is None and state(scheduler.pid) is None, timeout=30,
                         what="the engine and the scheduler to be reaped (not left <defunct>)")
        assert engine.returncode == 0 and scheduler.returncode == 0
