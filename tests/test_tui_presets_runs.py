"""The presets screen, the launch form and the runs screen, driven through the real app (Pilot):
filtering, estimates, the form's conflicts and pre-flight checks, the messages the screens send
the app, the runs screen's changes, filter, archive and delete, and plain-text notifications."""

from __future__ import annotations

import io
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from rich.console import Console
from textual.color import Color
from textual.widgets import Checkbox, DataTable, Input, Select, Static

import gdw_tui.estimate
import gdw_tui.runs_screen
from engine.config import ConfigError, load_preset
from engine.launch import CIFAR_FILES, preflight
from engine.runs import ARCHIVE, archive_run, delete_run, list_runs
from fixtures.tui_support import (
    FINISHED_10, FINISHED_MWNET, INTERRUPTED, STOPPED, screen_text, wait_until,
)
from gdw_tui.app import GdwApp
from gdw_tui.estimate import NO_ESTIMATE, estimate_run_time, finished_runs
from gdw_tui.messages import LaunchRequested, ResumeRequested, StopRunRequested
from gdw_tui.presets_screen import OTHER_HEADER, QUICK_HEADER, PresetList, PresetsScreen
from gdw_tui.quit_screen import QuitScreen
from engine.changes import changes_from_preset
from gdw_tui.runs_screen import RunsScreen
from gdw_tui.textual_compat import notifications


@pytest.fixture(autouse=True)
def no_gpu(monkeypatch) -> None:
    """`auto` means the CPU in these tests, on any machine."""
    import engine.launch

    monkeypatch.setattr(engine.launch, "cuda_device_count", lambda: 0)
    monkeypatch.setattr(gdw_tui.estimate, "cuda_device_count", lambda: 0)


class RecordingApp(GdwApp):
    """The real app, except that it records the requests the screens send instead of acting on them."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.requests: list = []

    def record(self, message) -> None:
        message.prevent_default()  # Textual would call GdwApp's handler next: it would really act
        self.requests.append(message)

    on_launch_requested = on_stop_run_requested = on_resume_requested = record


def flat(text: str) -> str:
    """Screen text with borders and wrapping removed, for phrases that may wrap."""
    return " ".join(text.replace("│", " ").split())


def details(screen: PresetsScreen) -> str:
    """The preset details as plain text (the list beside them would interleave in the screen text)."""
    console = Console(width=200, file=io.StringIO(), record=True)
    console.print(screen.query_one("#details", Static).content)
    return flat(console.export_text())


def option_ids(screen: PresetsScreen) -> list[str | None]:
    options = screen.query_one(PresetList)
    return [options.get_option_at_index(i).id for i in range(options.option_count)]


def notes(app) -> list[str]:
    return [n.message for n in notifications(app)]


# --- the preset list -------------------------------------------------------------------------------


async def test_typing_filters_from_the_first_character_and_shows_the_first_match(fixture_runs: Path) -> None:
    app = GdwApp(fixture_runs)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        # Start from a preset that the filter below also matches, but is not its first match.
        screen.query_one(PresetList).highlighted = option_ids(screen).index("cifar10-imb10")
        await pilot.pause()
        assert screen.selected == "cifar10-imb10"
        await pilot.press(*"imb")
        assert screen.query_one("#filter", Input).value == "imb"  # was `mb`: the first key was lost
        # The first match (a quick preset) is highlighted, and its details show.
        assert option_ids(screen)[:2] == ["digits-imb", "cifar10-imb10"]
        assert screen.selected == "digits-imb"
        assert screen.query_one(PresetList).highlighted_option.id == "digits-imb"
        assert "Digits, imbalance 10" in screen_text(app)
        await pilot.press(*"100")
        assert screen.query_one("#filter", Input).value == "imb100"
        assert screen.selected == option_ids(screen)[0] == "cifar10-imb100"


async def test_slash_in_the_preset_list_opens_the_filter_as_the_footer_says(fixture_runs: Path) -> None:
    app = GdwApp(fixture_runs)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        await pilot.press("slash", *"imb")
        assert screen.query_one("#filter", Input).value == "imb"  # was `/imb`: no preset matched
        assert option_ids(screen)[0] == "digits-imb"


async def test_quick_presets_come_first_under_their_own_header(fixture_runs: Path) -> None:
    app = GdwApp(fixture_runs)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = app.screen
        ids = option_ids(screen)
        assert ids[:5] == [None, "digits-clean", "digits-imb", "digits-unif60", "synthetic-smoke"]
        assert ids[5] is None and ids[6].startswith("cifar10")
        text = screen_text(app)
        assert QUICK_HEADER in text and OTHER_HEADER in text
        assert screen.selected == "digits-unif60"
        await pilot.press("up", "up")
        assert screen.selected == "digits-clean"
        await pilot.press("up")  # the header cannot be highlighted: up goes round to the last preset
        assert screen.selected == ids[-1] and ids[-1] is not None


async def test_brackets_in_the_filter_are_text_not_markup(fixture_runs: Path) -> None:
    app = GdwApp(fixture_runs)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press(*"[/x]")
        await pilot.pause()
        assert app.is_running and "no preset matches '[/x]'" in flat(screen_text(app))


# --- estimates -------------------------------------------------------------------------------------


def test_estimate_only_from_runs_doing_the_same_work(fixture_runs: Path) -> None:
    finished = finished_runs(list_runs(fixture_runs))
    gdw_run = next(r for r in list_runs(fixture_runs) if r["run_id"] == FINISHED_10)
    mwnet_run = next(r for r in list_runs(fixture_runs) if r["run_id"] == FINISHED_MWNET)
    # digits-unif60 resolves to the fixture runs' model, data, batch and device (auto = cpu here).
    est = estimate_run_time(finished, load_preset("digits-unif60", {"train.epochs": 12}))
    assert est is not None and est.runs == 1 and est.device == "cpu"
    assert est.seconds == pytest.approx(gdw_run["wall_s"] / gdw_run["epochs"] * 12)
    mwnet = estimate_run_time(finished, load_preset("digits-unif60", {"train.method": "mwnet"}))
    assert mwnet.seconds == pytest.approx(mwnet_run["wall_s"] / mwnet_run["epochs"] * 40)
    # Noise and seed change the numbers, not the time.
    assert estimate_run_time(finished, load_preset("digits-unif60", {"data.noise_rate": 0.2, "train.seed": 9})) is not None
    # Anything that changes the work does not borrow another setting's time.
    for overrides in ({"train.batch_size": 50}, {"train.device": "cuda"}, {"data.imbalance": 10.0},
                      {"data.meta_per_class": 5}, {"model.arch": "resnet32"}, {"train.method": "l2rw"}):
        assert estimate_run_time(finished, load_preset("digits-unif60", overrides)) is None, overrides
    assert estimate_run_time(finished, load_preset("cifar10-unif40")) is None  # no finished CIFAR-10 run
    assert estimate_run_time(finished, load_preset("cifar100-unif40")).runs == 1  # the fixture's CIFAR-100 run


async def test_estimate_follows_the_form_and_its_overrides(fixture_runs: Path) -> None:
    app = GdwApp(fixture_runs)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await wait_until(pilot, lambda: bool(screen.finished_runs), what="finished runs")
        assert "~" in details(screen) and "for 40 epochs (from 1 finished run" in details(screen)
        screen.query_one("#more", Input).value = "train.batch_size=50"
        await pilot.pause()
        assert NO_ESTIMATE in details(screen)
        screen.query_one("#more", Input).value = "data.noise_rate=0.2"
        await pilot.pause()
        assert "for 40 epochs (from 1 finished run" in details(screen)


# --- the form: conflicts, data and pre-flight -------------------------------------------------------


async def test_more_cannot_silently_override_a_field(fixture_runs: Path) -> None:
    app = RecordingApp(fixture_runs)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert screen.query_one("#epochs", Input).value == "40"
        screen.query_one("#more", Input).value = "train.epochs=3"
        await pilot.pause()
        error = str(screen.query_one("#form-error").render())
        assert "train.epochs is set twice: the epochs field says 40, more: says 3" in error
        assert screen.query_one("#more").has_class("-invalid") and screen.query_one("#launch").disabled
        await pilot.press("ctrl+l")
        assert app.requests == []  # nothing launched
        # The same value twice is no conflict.
        screen.query_one("#more", Input).value = "train.epochs=40 train.lr=0.05"
        await pilot.pause()
        await pilot.press("ctrl+l")
        assert len(app.requests) == 1 and isinstance(app.requests[0], LaunchRequested)
        cfg = app.requests[0].cfg
        assert cfg["train"]["epochs"] == 40 and cfg["train"]["lr"] == 0.05


def fake_cifar10(data_dir: Path) -> Path:
    folder, files = CIFAR_FILES["cifar10"]
    (data_dir / folder).mkdir(parents=True)
    for f in files:
        (data_dir / folder / f).write_bytes(b"x")
    return data_dir


def test_preflight_refuses_missing_data_and_devices(tmp_path: Path) -> None:
    cfg = load_preset("cifar10-unif40", {"data.data_dir": str(tmp_path)})
    with pytest.raises(ConfigError, match=r"cifar10 files not found: expected data_batch_1, .* in .*cifar-10-batches-py; pass --download"):
        preflight(cfg)
    preflight(load_preset("cifar10-unif40", {"data.data_dir": str(tmp_path), "data.download": True}))
    preflight(load_preset("cifar10-unif40", {"data.data_dir": str(fake_cifar10(tmp_path / "d"))}))
    with pytest.raises(ConfigError, match="imagefolder data needs"):
        preflight(load_preset("places-lt", {"data.data_dir": str(tmp_path)}))
    with pytest.raises(ConfigError, match="cuda"):
        preflight(load_preset("digits-unif60", {"train.device": "cuda:0"}))
    preflight(load_preset("digits-unif60"))


async def test_form_refuses_missing_data_and_offers_data_dir_and_download(runs: Path, tmp_path: Path) -> None:
    app = RecordingApp(runs)
    before = sorted(p.name for p in runs.iterdir())
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await pilot.press(*"cifar10-unif40")
        assert screen.selected == "cifar10-unif40"
        data_dir = screen.query_one("#data_dir", Input)
        assert data_dir.value == load_preset("cifar10-unif40")["data"]["data_dir"]  # the preset's (CLI) default
        data_dir.value = str(tmp_path / "empty")
        await pilot.pause()
        error = str(screen.query_one("#form-error").render())
        assert "cifar10 files not found: expected" in error and data_dir.has_class("-invalid")
        await pilot.press("ctrl+l")
        assert app.requests == []
        screen.query_one("#download", Checkbox).value = True
        await pilot.pause()
        assert str(screen.query_one("#form-error").render()) == "Enter launches"
        await pilot.press("ctrl+l")
        assert app.requests[-1].cfg["data"]["download"] is True
        screen.query_one("#download", Checkbox).value = False
        data_dir.value = str(fake_cifar10(tmp_path / "cifar"))
        await pilot.pause()
        assert str(screen.query_one("#form-error").render()) == "Enter launches"
        await pilot.press("ctrl+l")
        assert len(app.requests) == 2, app.requests
        assert app.requests[-1].cfg["data"]["data_dir"] == str(tmp_path / "cifar")
    assert sorted(p.name for p in runs.iterdir()) == before


async def test_form_log_field_launches_with_live_logging_and_names_a_missing_extra(runs: Path, monkeypatch) -> None:
    app = RecordingApp(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await pilot.press(*"digits-unif60")
        log = screen.query_one("#log", Select)
        assert log.value == "none"  # the preset's train.log
        log.value = "tensorboard"
        await pilot.pause()
        assert str(screen.query_one("#form-error").render()) == "Enter launches"
        await pilot.press("ctrl+l")
        assert app.requests[-1].cfg["train"]["log"] == "tensorboard"
        monkeypatch.setitem(sys.modules, "wandb", None)  # as if the wandb extra were not installed
        log.value = "wandb"
        await pilot.pause()
        error = str(screen.query_one("#form-error").render())
        assert "needs the 'wandb' extra" in error and log.has_class("-invalid")
        await pilot.press("ctrl+l")
        assert len(app.requests) == 1


async def test_launch_refuses_what_the_engine_would_refuse_before_making_a_run(runs: Path, tmp_path: Path) -> None:
    """The app's launch (whatever asks for it) runs the pre-flight first: no run directory, no engine."""
    app = GdwApp(runs)
    before = sorted(p.name for p in runs.iterdir())
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        cfg = load_preset("cifar10-unif40", {"data.data_dir": str(tmp_path / "nothing")})
        app.post_message(LaunchRequested(cfg))
        await pilot.pause()
        assert isinstance(app.screen, PresetsScreen) and app.launched == {}
        assert any("cifar10 files not found" in n for n in notes(app))
    assert sorted(p.name for p in runs.iterdir()) == before


# --- the runs screen -------------------------------------------------------------------------------


async def open_runs(app, pilot) -> RunsScreen:
    await pilot.press("r")
    screen = app.screen
    assert isinstance(screen, RunsScreen)
    await wait_until(pilot, lambda: screen.loaded, what="the run list")
    return screen


def row_ids(screen: RunsScreen) -> list[str]:
    return [Path(str(k.value)).name for k in screen.query_one(DataTable).rows]


def move_to(screen: RunsScreen, run_id: str) -> None:
    screen.query_one(DataTable).move_cursor(row=row_ids(screen).index(run_id))


@contextmanager
def engine_holding_the_lock(run_dir: Path):
    """A process that holds the run's lock as an engine does: the run is running until it ends."""
    code = "import sys, time; from pathlib import Path; from engine.runs import acquire_lock; " \
           "acquire_lock(Path(sys.argv[1])); print('locked', flush=True); time.sleep(120)"
    holder = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        holder.kill()
        holder.wait()


def test_changes_from_the_preset() -> None:
    preset = load_preset("digits-unif60")
    cfg = load_preset("digits-unif60", {"train.epochs": 3, "train.seed": 10, "data.noise_rate": 0.4, "model.arch": "auto"})
    # seed has its own column; `auto` is the preset's digits_mlp.
    assert changes_from_preset(cfg, preset) == "noise_rate=0.4 epochs=3"


async def test_runs_list_at_120_columns_shows_whole_ids_and_the_sweep(fixture_runs: Path, tmp_path: Path) -> None:
    from engine.sweep.spec import SweepSpec, expand
    from engine.sweep.store import create_sweep

    sweep = create_sweep(fixture_runs, SweepSpec(presets=["digits-clean"], methods=["erm"], seeds=[1], name="tiny"),
                         expand(SweepSpec(presets=["digits-clean"], methods=["erm"], seeds=[1], name="tiny")))
    try:
        app = GdwApp(fixture_runs)
        async with app.run_test(size=(120, 30)) as pilot:
            screen = await open_runs(app, pilot)
            table = screen.query_one(DataTable)
            assert "sweep" in [str(c.label) for c in table.ordered_columns]
            text = screen_text(app)
            assert FINISHED_10 in text and STOPPED in text  # whole, not `20251124…`
            await pilot.press("slash", *sweep.id)  # the filter finds a sweep's runs
            assert row_ids(screen) == [sweep.runs[0]["run_id"]]
    finally:
        from engine.runs import delete_run

        for entry in sweep.runs:
            delete_run(fixture_runs / entry["run_id"])
        import shutil

        shutil.rmtree(sweep.dir)


async def test_runs_show_their_changes_and_filter(fixture_runs: Path) -> None:
    app = GdwApp(fixture_runs)
    async with app.run_test(size=(200, 30)) as pilot:
        screen = await open_runs(app, pilot)
        table = screen.query_one(DataTable)
        changes = table.ordered_columns.index(next(c for c in table.ordered_columns if str(c.label) == "changes"))
        row = table.get_row(str(fixture_runs / FINISHED_10))
        assert str(row[changes]).startswith("epochs=6 device=cpu")  # the recorded runs were made with these (and more)
        assert len(row_ids(screen)) == 6
        await pilot.press("slash", *"mwnet")
        assert row_ids(screen) == [FINISHED_MWNET]
        await pilot.press("escape")
        assert len(row_ids(screen)) == 6 and app.focused is table
        await pilot.press("slash", *"digits stopped")  # every word must match
        assert row_ids(screen) == [STOPPED]
        await pilot.press("enter")  # back to the table
        assert app.focused is table
        await pilot.press("escape", "slash", *"nothing-like-this")
        assert row_ids(screen) == [] and "No run matches 'nothing-like-this'" in screen_text(app)


async def test_archive_and_delete_ask_first_and_refuse_a_running_run(runs: Path) -> None:
    with engine_holding_the_lock(runs / INTERRUPTED):
        app = GdwApp(runs)
        async with app.run_test(size=(200, 30), notifications=True) as pilot:
            screen = await open_runs(app, pilot)
            move_to(screen, INTERRUPTED)
            for key in ("d", "a"):
                await pilot.press(key)
                assert app.screen is screen  # refused at once, nothing asked
            assert sum(f"{INTERRUPTED}: it is running" in n for n in notes(app)) == 2
            assert (runs / INTERRUPTED / "config.toml").exists()

            move_to(screen, STOPPED)
            await pilot.press("d", "n")  # cancelled
            assert (runs / STOPPED).is_dir()
            await pilot.press("d", "y")
            await wait_until(pilot, lambda: STOPPED not in row_ids(screen), what="the deleted run to leave the list")
            assert not (runs / STOPPED).exists()

            move_to(screen, FINISHED_MWNET)
            await pilot.press("a", "y")
            await wait_until(pilot, lambda: FINISHED_MWNET not in row_ids(screen), what="the archived run to leave the list")
            assert not (runs / FINISHED_MWNET).exists()
            assert (runs / ARCHIVE / FINISHED_MWNET / "events.jsonl").exists()  # nothing lost
            assert FINISHED_MWNET not in {r["run_id"] for r in list_runs(runs)}


async def test_runs_screen_asks_the_app_to_stop_and_resume_by_message(runs: Path) -> None:
    with engine_holding_the_lock(runs / INTERRUPTED) as engine:
        app = RecordingApp(runs)
        async with app.run_test(size=(200, 30)) as pilot:
            screen = await open_runs(app, pilot)
            move_to(screen, INTERRUPTED)
            await pilot.press("s", "y")
            await wait_until(pilot, lambda: bool(app.requests), what="the stop request")
            assert app.requests == [StopRunRequested(runs / INTERRUPTED)]
            move_to(screen, STOPPED)
            await pilot.press("R")
            await wait_until(pilot, lambda: len(app.requests) == 2, what="the resume request")
            assert app.requests[1] == ResumeRequested(runs / STOPPED, open_dashboard=True)
        assert engine.poll() is None  # the screen itself stopped nothing


@pytest.mark.background_errors
async def test_a_failing_run_listing_is_reported_and_the_screen_stays(fixture_runs: Path, monkeypatch) -> None:
    real = gdw_tui.runs_screen.list_runs

    def unreadable(runs_dir: Path):
        raise PermissionError(13, "Permission denied", str(runs_dir))

    monkeypatch.setattr(gdw_tui.runs_screen, "list_runs", unreadable)
    app = GdwApp(fixture_runs)
    async with app.run_test(size=(160, 30), notifications=True) as pilot:
        await pilot.press("r")
        screen = app.screen
        await wait_until(pilot, lambda: any("cannot list the runs" in n for n in notes(app)), what="the error notice")
        assert "Permission denied" in next(n for n in notes(app) if "cannot list the runs" in n)
        monkeypatch.setattr(gdw_tui.runs_screen, "list_runs", real)
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: screen.loaded, what="the run list")
        assert app.screen is screen and len(row_ids(screen)) == 6


# --- dialogs, notifications and focus --------------------------------------------------------------


async def test_notifications_and_the_quit_dialog_are_plain_text(fixture_runs: Path, tmp_path: Path) -> None:
    app = GdwApp(fixture_runs)
    engine = subprocess.Popen(["sleep", "60"])
    app.launched[tmp_path] = engine
    try:
        async with app.run_test(size=(120, 30), notifications=True) as pilot:
            app.notify("no run '[/x]' here; see `gdw runs`", severity="error")  # was a MarkupError: the app died
            await pilot.pause(0.2)
            assert app.is_running
            toast = app.screen.query_one("Toast").render()
            assert toast.plain.endswith("no run '[/x]' here; see gdw runs")  # the command in bold, no backticks
            await pilot.press("q")
            assert isinstance(app.screen, QuitScreen)
            question = app.screen.query_one(".question").render()
            assert "and gdw-tui or gdw runs finds it again" in question.plain and "`" not in question.plain
            assert "`" not in screen_text(app)
            await pilot.press("escape")
    finally:
        engine.kill()
        engine.wait()


def distance(a: Color, b: Color) -> float:
    return sum((x - y) ** 2 for x, y in zip(a.rgb, b.rgb)) ** 0.5


async def test_focus_in_the_form_is_obvious_and_the_dropdown_is_framed(fixture_runs: Path) -> None:
    app = GdwApp(fixture_runs)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        seed, epochs = screen.query_one("#seed", Input), screen.query_one("#epochs", Input)
        seed.focus()
        await pilot.pause()
        # Was one shade apart (39 vs 30 grey): invisible on most terminals.
        assert distance(seed.background_colors[1], epochs.background_colors[1]) > 60
        method = screen.query_one("#method", Select)
        method.focus()
        await pilot.press("enter")
        await pilot.pause()
        overlay = method.query_one("SelectOverlay")
        assert overlay.display and overlay.styles.border.top[0] == "round"


async def test_the_app_acts_on_a_stop_request(runs: Path) -> None:
    with engine_holding_the_lock(runs / INTERRUPTED) as engine:
        app = GdwApp(runs)
        async with app.run_test(size=(120, 30)) as pilot:
            app.post_message(StopRunRequested(runs / INTERRUPTED))
            await pilot.pause()
        assert engine.wait(timeout=10) == -15  # SIGTERM, sent through the run's lock


def test_a_running_run_is_never_archived_or_deleted(runs: Path) -> None:
    with engine_holding_the_lock(runs / INTERRUPTED):
        for remove in (archive_run, delete_run):
            with pytest.raises(ConfigError, match=f"run {INTERRUPTED} is running: stop it first"):
                remove(runs / INTERRUPTED)
    assert (runs / INTERRUPTED / "events.jsonl").exists()
    archived = archive_run(runs / INTERRUPTED)
    assert archived == runs / ARCHIVE / INTERRUPTED and (archived / "events.jsonl").exists()


@pytest.mark.background_errors
async def test_unreadable_runs_leave_the_presets_usable_without_estimates(fixture_runs: Path, monkeypatch) -> None:
    import gdw_tui.presets_screen

    def unreadable(runs_dir: Path):
        raise PermissionError(13, "Permission denied", str(runs_dir))

    monkeypatch.setattr(gdw_tui.presets_screen, "list_runs", unreadable)
    app = RecordingApp(fixture_runs)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await wait_until(pilot, lambda: any("no run-time estimates" in n for n in notes(app)), what="the notice")
        assert NO_ESTIMATE in details(app.screen)
        await pilot.press("ctrl+l")
        assert len(app.requests) == 1  # still launches
