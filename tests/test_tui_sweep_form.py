"""The sweep form: presets marked with space in the preset browser, `S`, methods/seeds/executor,
validated with the command line's own checks, and a real launch of a tiny digits sweep.

Pilot tests on the real app, snapshots of the form at 80×24 and 160×50.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from textual.widgets import Button, Checkbox, Input, Select, Static
from typer.testing import CliRunner

from engine.runs import read_summary
from engine.sweep.local import stop_runs
from engine.sweep.store import list_sweeps, scheduler_alive
from engine.sweep.task import busy
from fixtures.tui_support import screen_text, wait_settled, wait_until
from gdw_cli.main import app as cli
from gdw_tui.app import GdwApp
from gdw_tui.presets_screen import MARK, PresetList, PresetsScreen
from gdw_tui.sweep_form import SweepForm
from gdw_tui.sweeps_screen import SweepsScreen

runner = CliRunner()


@pytest.fixture
def runs(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)  # a relative runs directory: no temporary path on screen
    return Path("runs")


async def presets_ready(pilot) -> PresetsScreen:
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, PresetsScreen), what="the presets")
    await pilot.pause()
    return pilot.app.screen


async def mark(pilot, filter_text: str) -> None:
    """Filter to a preset (its first match is highlighted), back to the list, space."""
    await pilot.press(*filter_text, "enter", "space")
    await pilot.pause()


async def open_form(pilot, *filters: str) -> SweepForm:
    screen = await presets_ready(pilot)
    for text in filters:
        await mark(pilot, text)
        await pilot.press("escape")  # clear the filter; the marks stay
    screen.query_one(PresetList).focus()
    await pilot.press("S")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, SweepForm), what="the sweep form")
    return pilot.app.screen


def form_error(form: SweepForm, name: str) -> str:
    widget = form.query_one(f"#{name}-error", Static)
    return str(widget.render()) if widget.display else ""


def cli_error(*args: str) -> str:
    """What `gdw sweep` says for the same input (its one line, without `error: `)."""
    result = runner.invoke(cli, ["sweep", *args, "--runs-dir", "cli-runs"])
    assert result.exit_code == 2, result.output
    assert not Path("cli-runs").exists()
    return result.output.strip().removeprefix("error: ")


async def set_input(pilot, form: SweepForm, name: str, value: str) -> None:
    form.query_one(f"#{name}", Input).value = value
    await pilot.pause()


async def test_space_marks_presets_and_the_marks_survive_the_filter(runs):
    app = GdwApp(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await presets_ready(pilot)
        await mark(pilot, "clean")
        assert list(screen.marked) == ["digits-clean"]
        assert screen.query_one("#filter", Input).value == "clean"  # space marked; it was not typed into the filter
        await pilot.press("escape")
        await mark(pilot, "imb")
        await pilot.press("escape")
        await pilot.pause()
        text = screen_text(app)
        assert f"{MARK}digits-clean" in text and f"{MARK}digits-imb" in text and f"{MARK}digits-unif60" not in text
        assert "2 marked · S sweep" in text
        await mark(pilot, "clean")  # space again unmarks
        assert list(screen.marked) == ["digits-imb"]
        await pilot.press("escape")
        await pilot.pause()
        assert "1 marked · S sweep" in screen_text(app) and f"{MARK}digits-clean" not in screen_text(app)


async def test_S_without_marks_opens_the_form_for_the_highlighted_preset(runs):
    app = GdwApp(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        form = await open_form(pilot)
        assert form.presets == ["digits-unif60"]
        # The preset's own method is ticked (what `gdw sweep` runs without --methods), the paper's seeds filled in.
        assert [m for m in ("erm", "l2rw", "mwnet", "gdw", "gdw-nozm") if form.query_one(f"#method-{m}", Checkbox).value] == ["gdw"]
        assert form.query_one("#seeds", Input).value == "1,10,100,1000,10000"
        assert "5 runs: 1 preset × 1 method × 5 seeds on" in screen_text(app)
        await pilot.press("escape")
        assert isinstance(app.screen, PresetsScreen)
    assert not runs.exists()


async def test_form_errors_are_the_command_lines_and_launch_is_refused(runs):
    app = GdwApp(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        form = await open_form(pilot, "clean", "imb")
        assert form.presets == ["digits-clean", "digits-imb"]
        launch = form.query_one("#launch-sweep", Button)
        form.query_one("#method-erm", Checkbox).value = True
        await set_input(pilot, form, "seeds", "1,10,100")
        assert not launch.disabled
        assert "12 runs: 2 presets × 2 methods × 3 seeds" in screen_text(app)

        await set_input(pilot, form, "seeds", "1,10,1")
        assert form_error(form, "seeds") == cli_error("digits-clean", "--seeds", "1,10,1") == "--seeds lists 1 twice"
        assert launch.disabled
        await set_input(pilot, form, "seeds", "1,x")
        assert form_error(form, "seeds") == cli_error("digits-clean", "--seeds", "1,x")
        await set_input(pilot, form, "seeds", "1")

        form.query_one("#method-erm", Checkbox).value = False
        form.query_one("#method-gdw", Checkbox).value = False
        await pilot.pause()
        assert form_error(form, "methods") == cli_error("digits-clean", "--methods", "")
        assert launch.disabled
        form.query_one("#method-mwnet", Checkbox).value = True
        await pilot.pause()
        assert form_error(form, "methods") == "" and not launch.disabled

        await set_input(pilot, form, "workers", "0")
        assert form_error(form, "executor") == cli_error("digits-clean", "--workers", "0") == "--workers must be at least 1 (got 0)"
        await set_input(pilot, form, "workers", "")
        await set_input(pilot, form, "sets", "train.epochs=zero")
        assert form_error(form, "sets") == cli_error("digits-clean", "--set", "train.epochs=zero")
        await set_input(pilot, form, "sets", "train.seed=3")
        assert form_error(form, "sets") == cli_error("digits-clean", "--set", "train.seed=3")
        assert launch.disabled
        # Enter with an error: a notification, the form stays, nothing is created.
        form.query_one("#sets", Input).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SweepForm)
    assert not runs.exists()


async def test_more_than_500_runs_are_created_only_when_launch_is_pressed_again(runs):
    app = GdwApp(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        form = await open_form(pilot, "clean")
        dismissed: list = []
        form.dismiss = dismissed.append  # what the app would create: recorded, not made
        form.query_one("#method-erm", Checkbox).value = True
        await set_input(pilot, form, "seeds", ",".join(str(s) for s in range(1, 301)))
        summary = form.query_one("#sweep-summary", Static)
        assert str(summary.render()).startswith("600 runs: 1 preset × 2 methods × 300 seeds")
        assert str(summary.render()).endswith(" · over 500: Enter twice")
        form.query_one("#seeds", Input).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert dismissed == [] and str(summary.render()).startswith("Enter again creates 600 runs (more than 500)")
        assert str(form.query_one("#launch-sweep", Button).label) == "Create 600 runs ⏎"
        # A change asks again, for the new count.
        await set_input(pilot, form, "seeds", ",".join(str(s) for s in range(1, 302)))
        assert str(form.query_one("#launch-sweep", Button).label) == "Launch sweep ⏎"
        await pilot.press("enter")
        await pilot.pause()
        assert dismissed == [] and str(summary.render()).startswith("Enter again creates 602 runs")
        await pilot.press("enter")
        await pilot.pause()
        assert len(dismissed) == 1 and len(dismissed[0].plans) == 602
        # 500 runs or fewer: one press, as before.
        dismissed.clear()
        await set_input(pilot, form, "seeds", ",".join(str(s) for s in range(1, 251)))
        await pilot.press("enter")
        await pilot.pause()
        assert len(dismissed) == 1 and len(dismissed[0].plans) == 500
    assert not runs.exists()


async def test_slurm_without_sbatch_is_refused(runs, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no sbatch anywhere
    app = GdwApp(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        form = await open_form(pilot)
        await set_input(pilot, form, "seeds", "1")
        assert not form.query_one("#launch-sweep", Button).disabled
        form.query_one("#executor", Select).value = "slurm"
        await pilot.pause()
        expected = cli_error("digits-unif60", "--executor", "slurm")
        assert expected.startswith("--executor slurm: no `sbatch` on PATH")
        assert form_error(form, "executor") == expected
        assert form.query_one("#launch-sweep", Button).disabled
        assert not form.query_one("#workers", Input).display and form.query_one("#partition", Input).display
        form.query_one("#launch-sweep", Button).press()  # disabled: nothing happens
        form.query_one("#seeds", Input).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SweepForm)
    assert not runs.exists()


async def test_missing_dataset_files_are_said_under_the_data_fields(runs):
    """The form makes `gdw run`'s dataset check (as `gdw sweep` does): no CIFAR files, no launch."""
    from cifar_fixture import write_tiny_cifar

    app = GdwApp(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        form = await open_form(pilot, "cifar10-unif40")
        await set_input(pilot, form, "seeds", "1,10")
        expected = cli_error("cifar10-unif40", "--seeds", "1,10")
        assert expected.startswith("cifar10 files not found: expected data_batch_1") and "pass --download" in expected
        assert form_error(form, "data") == expected
        assert form.query_one("#launch-sweep", Button).disabled
        write_tiny_cifar("cifar-here")
        await set_input(pilot, form, "data_dir", "cifar-here")
        assert form_error(form, "data") == "" and not form.query_one("#launch-sweep", Button).disabled
        assert form.result.checked.plans[0].config["data"]["data_dir"] == "cifar-here"
        await set_input(pilot, form, "data_dir", "nowhere")
        assert "nowhere/cifar-10-batches-py" in form_error(form, "data")
        form.query_one("#download", Checkbox).value = True  # each run fetches them
        await pilot.pause()
        assert form_error(form, "data") == "" and form.result.checked.plans[0].config["data"]["download"] is True
    assert not runs.exists()


def _stop_everything(runs: Path) -> None:
    """Teardown: no scheduler or engine of the test is left running."""
    for sweep in list_sweeps(runs) if runs.exists() else []:
        sweep.set_stopped(True)
        stop_runs([d for d in sweep.run_dirs() if busy(d)])
        lock = sweep.dir / "scheduler.lock"
        if scheduler_alive(sweep) and lock.exists():
            try:
                os.kill(int(lock.read_text().strip()), signal.SIGTERM)
            except (ValueError, ProcessLookupError):
                pass
        deadline = time.monotonic() + 30
        while (scheduler_alive(sweep) or any(busy(d) for d in sweep.run_dirs())) and time.monotonic() < deadline:
            time.sleep(0.2)


@pytest.fixture
def launched_runs(runs):
    yield runs
    _stop_everything(runs)


async def test_a_valid_sweep_is_created_started_detached_and_shown(launched_runs):
    runs = launched_runs
    app = GdwApp(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        form = await open_form(pilot, "clean")
        form.query_one("#method-gdw", Checkbox).value = False
        form.query_one("#method-erm", Checkbox).value = True
        await set_input(pilot, form, "seeds", "7")
        await set_input(pilot, form, "sets", "train.epochs=1 train.device=cpu")
        await set_input(pilot, form, "name", "tiny")
        assert "1 run: 1 preset × 1 method × 1 seed on 1 slot (cpu)" in screen_text(app)
        form.query_one("#seeds", Input).focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SweepsScreen) and app.screen.loaded, what="the sweeps screen")
        sweeps = list_sweeps(runs)
        assert len(sweeps) == 1
        sweep = sweeps[0]
        assert app.screen.sweep_id == sweep.id and sweep.name == "tiny" and sweep.executor == "local"
        assert [(e["preset"], e["method"], e["seed"]) for e in sweep.runs] == [("digits-clean", "erm", 7)]
        assert sweep.data["set"] == {"train.epochs": "1", "train.device": "cpu"}
        run_dir = sweep.run_dirs()[0]
        assert run_dir.parent == runs and (run_dir / "config.toml").is_file()
        assert (sweep.dir / "scheduler.log").exists()  # the detached scheduler's log, as with --detach
    # The detached scheduler trains the run to the end without the UI.
    deadline = time.monotonic() + 300
    while read_summary(run_dir).get("status") != "finished" and time.monotonic() < deadline:
        time.sleep(0.5)
    summary = read_summary(run_dir)
    assert summary.get("status") == "finished" and summary.get("epochs") == 1 and summary.get("sweep") == sweep.id
    assert 0 < summary["final_acc"] <= 100


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
def test_sweep_form_snapshot(snap_compare, runs, size):
    async def form_with_an_error(pilot) -> None:
        form = await open_form(pilot, "clean", "imb")
        form.query_one("#method-erm", Checkbox).value = True
        await set_input(pilot, form, "seeds", "1,10,10")
        form.query_one("#seeds", Input).cursor_blink = False  # the cursor stays drawn: no blink phase in the picture
        await wait_settled(pilot)

    assert snap_compare(GdwApp(runs), terminal_size=size, run_before=form_with_an_error)


async def test_ticked_and_unticked_checkboxes_differ_without_colour() -> None:
    from textual.app import App

    from gdw_tui.textual_compat import screen_strips
    from gdw_tui.widgets.checkbox import Checkbox

    class Two(App):
        def compose(self):
            yield Checkbox("erm", True, compact=True)
            yield Checkbox("gdw", False, compact=True)

    app = Two()
    async with app.run_test(size=(20, 3)) as pilot:
        await pilot.pause()
        lines = [strip.text for strip in screen_strips(app.screen)]
        assert lines[0].startswith("▐✓▌ erm") and lines[1].startswith("▐ ▌ gdw")  # Textual's: `▐X▌` for both
        app.query(Checkbox).last().toggle()
        await pilot.pause()
        assert [strip.text for strip in screen_strips(app.screen)][1].startswith("▐✓▌ gdw")
