"""The run states and the one resume rule (engine.rundir), seen from both sides: `gdw resume`
and the UI's R (runs screen and dashboard) accept and refuse the same runs, for the same reason.

The runs are real: headless digits runs that fail on purpose, one after its first checkpoint and
one before it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable
from typer.testing import CliRunner

from engine.config import ConfigError
from engine.rundir import CHECKPOINT, STATUSES, can_stop, checkpoint_path, resume_refusal
from engine.runs import create_run, read_summary, run_status
from fixtures.tui_support import wait_caught_up, wait_until
from gdw_cli.main import app as cli_app
from gdw_tui.app import GdwApp
from gdw_tui.dashboard import DashboardScreen
from gdw_tui.runs_screen import RunsScreen
from lifecycle_helpers import SMALL

NO_CHECKPOINT = "has no checkpoint yet (it stopped before its first epoch ended); start it again"


def cli(*args: str):
    return CliRunner().invoke(cli_app, list(args))


def test_the_rule_for_every_status(tmp_path: Path) -> None:
    with_ckpt, without = tmp_path / "a", tmp_path / "b"
    (with_ckpt / "checkpoints").mkdir(parents=True)
    checkpoint_path(with_ckpt).write_bytes(b"x")
    without.mkdir()
    assert CHECKPOINT == "checkpoints/last.pt"
    assert set(STATUSES) == {"created", "running", "finished", "failed", "stopped", "interrupted"}
    assert resume_refusal(with_ckpt, "running") == resume_refusal(without, "running") == "is still running; stop it first"
    assert resume_refusal(with_ckpt, "finished") == "already finished; nothing to resume"
    for status in ("stopped", "interrupted", "failed"):
        assert resume_refusal(with_ckpt, status) is None, status
        assert resume_refusal(without, status) == NO_CHECKPOINT, status
    assert resume_refusal(without, "created") == NO_CHECKPOINT
    assert [s for s in STATUSES if can_stop(s)] == ["running"]


def fail_on_call(n: int):
    """A replacement for Method.step that raises on its n-th call (1-based)."""
    from engine.methods.base import Method

    real, calls = Method.step, {"n": 0}

    def step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            raise RuntimeError("injected fault")
        return real(self, *args, **kwargs)

    return step


@pytest.fixture(scope="module")
def failed_runs(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(runs dir, a failed run with a checkpoint, a failed run without one)."""
    from engine.methods.base import Method

    root = tmp_path_factory.mktemp("states") / "runs"
    made = []
    # digits-unif60 has 14 iterations an epoch: call 20 is in the second epoch, call 3 in the first.
    for call in (20, 3):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(Method, "step", fail_on_call(call))
            result = cli("run", "--headless", "digits-unif60", "--epochs", "2", *SMALL, "--runs-dir", str(root))
        assert result.exit_code == 1, result.output
        made.append(next(d for d in root.iterdir() if d not in made))
    with_ckpt, without = made
    assert run_status(with_ckpt) == run_status(without) == "failed"
    assert checkpoint_path(with_ckpt).exists() and not checkpoint_path(without).exists()
    return root, with_ckpt, without


def record_notifications(app: GdwApp) -> list[str]:
    said: list[str] = []
    real = app.notify

    def notify(message, *args, **kwargs):
        said.append(str(message))
        return real(message, *args, **kwargs)

    app.notify = notify
    return said


async def test_the_ui_resumes_a_failed_run_with_a_checkpoint_and_says_why_not_without(failed_runs, monkeypatch) -> None:
    root, with_ckpt, without = failed_runs
    resumed: list[Path] = []
    monkeypatch.setattr(GdwApp, "resume_run", lambda self, run_dir: resumed.append(run_dir) or True)  # started
    app = GdwApp(root)
    said = record_notifications(app)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.press("r")
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        await wait_until(pilot, lambda: screen.loaded, what="the run list")
        table = screen.query_one(DataTable)
        keys = [str(k.value) for k in table.rows]

        table.move_cursor(row=keys.index(str(without)))
        await pilot.press("R")
        assert said[-1] == f"run {without.name} {NO_CHECKPOINT}"
        assert resumed == [] and app.screen is screen

        table.move_cursor(row=keys.index(str(with_ckpt)))
        await pilot.press("R")
        assert resumed == [with_ckpt]  # and the dashboard opens on it
        assert isinstance(app.screen, DashboardScreen) and app.screen.run_dir == with_ckpt

    app = GdwApp(root, open_run=without)
    said = record_notifications(app)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_caught_up(pilot)
        await pilot.press("R")
        assert said[-1] == f"run {without.name} {NO_CHECKPOINT}"
    assert resumed == [with_ckpt]


def test_the_cli_gives_the_same_reason_and_resumes_the_failed_run(failed_runs) -> None:
    root, with_ckpt, without = failed_runs
    refused = cli("resume", without.name, "--headless", "--runs-dir", str(root))
    assert refused.exit_code == 2
    ui_says = f"run {without.name} {NO_CHECKPOINT}"
    assert refused.stderr.strip() == f"error: {ui_says} with `gdw run`"
    shown = cli("show", without.name, "--runs-dir", str(root))
    assert f"it {NO_CHECKPOINT} with `gdw run`" in shown.stdout

    # The engine applies the same rule when started on its own.
    from engine.lifecycle import train_run

    with pytest.raises(ConfigError) as info:
        train_run(without, resume=True)
    assert str(info.value) == ui_says

    shown = cli("show", with_ckpt.name, "--runs-dir", str(root))
    assert f"`gdw resume {with_ckpt.name}` continues from the last checkpoint" in shown.stdout
    resumed = cli("resume", with_ckpt.name, "--headless", "--runs-dir", str(root))
    assert resumed.exit_code == 0, resumed.output
    assert resumed.stdout.strip().splitlines()[-1].startswith("final_acc=")
    assert read_summary(with_ckpt)["status"] == "finished"
    again = cli("resume", with_ckpt.name, "--headless", "--runs-dir", str(root))
    assert again.exit_code == 2 and again.stderr.strip() == f"error: run {with_ckpt.name} already finished; nothing to resume"


def test_a_run_no_engine_touched_cannot_be_resumed(tmp_path: Path) -> None:
    from engine.config import load_preset

    run_dir = create_run(tmp_path, load_preset("digits-unif60"))
    result = cli("resume", run_dir.name, "--headless", "--runs-dir", str(tmp_path))
    assert result.exit_code == 2 and result.stderr.strip() == f"error: run {run_dir.name} {NO_CHECKPOINT} with `gdw run`"
    assert run_status(run_dir) == "created"  # refused before anything was touched
