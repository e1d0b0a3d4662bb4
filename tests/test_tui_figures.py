"""`e` on the dashboard and on the sweeps screen writes the run's or the sweep's paper figures: the
very files `gdw plot` writes (a child `gdw plot`), said in a notification and the log pane; a missing
`plot` extra is said in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.make_fixtures import write_sweep
from fixtures.tui_support import FINISHED_10, wait_caught_up, wait_until
from gdw_cli.plot_command import plot_files
from gdw_tui.app import GdwApp
from gdw_tui.markup import plain_to_markup
from gdw_tui.sweeps_screen import SweepsScreen
from gdw_tui.textual_compat import notifications

pytest.importorskip("matplotlib")  # the `plot` extra (.[test] installs it)

DRAWING_S = 180.0  # a child Python importing matplotlib and drawing four figures, on a loaded CI machine


def figure_notes(app) -> list:
    return [n for n in notifications(app) if n.title in ("figures", "figures not written") and "…" not in str(n.message)]


async def test_e_on_the_dashboard_writes_the_runs_figures(runs: Path, tmp_path: Path) -> None:
    app = GdwApp(runs, open_run=runs / FINISHED_10)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_caught_up(pilot)
        await pilot.press("e")
        await wait_until(pilot, lambda: figure_notes(app), timeout=DRAWING_S, what="the figures")
        out = runs / FINISHED_10 / "exports" / "figures"
        (note,) = figure_notes(app)
        assert note.severity == "information" and str(note.message) == f"4 figures (pdf + csv) in {out}"
        log = "\n".join(line.text for line in app.screen.query_one("#log").lines)
        assert "figures: 4 figures" in log
    names = sorted(p.name.removeprefix(FINISHED_10 + "_") for p in out.iterdir())
    assert names == sorted(f"{k}.{ext}" for k in ("curves", "omega", "table6", "weights")
                           for ext in ("csv", "pdf"))
    # the same numbers as `gdw plot` draws
    written, _ = plot_files(runs, [str(runs / FINISHED_10)], None, tmp_path, "pdf", "double", None)
    for path in written:
        if path.suffix == ".csv":
            assert (out / path.name).read_bytes() == path.read_bytes()


async def test_e_on_the_sweeps_screen_writes_the_sweeps_figures(runs: Path) -> None:
    sweep = write_sweep(runs, "figs", ["digits-unif60"], ["erm", "gdw"], [1, 2], epochs=3, iters_per_epoch=10)
    app = GdwApp(runs)
    async with app.run_test(size=(160, 50)) as pilot:
        app.push_screen(SweepsScreen(runs, sweep.id))
        await wait_until(pilot, lambda: getattr(app.screen, "loaded", False), what="the sweeps")
        await pilot.press("e")
        await wait_until(pilot, lambda: figure_notes(app), timeout=DRAWING_S, what="the figures")
        (note,) = figure_notes(app)
        assert note.severity == "information", note.message
    out = runs / "exports" / "figures"
    assert (out / f"{sweep.id}_curves.pdf").read_bytes().startswith(b"%PDF-")
    assert (out / f"{sweep.id}_table6_digits-unif60_gdw.csv").is_file()


async def test_a_missing_plot_extra_is_said_in_one_line(runs: Path, tmp_path: Path, monkeypatch) -> None:
    shadow = tmp_path / "no-matplotlib" / "matplotlib"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ModuleNotFoundError("No module named \'matplotlib\'", name="matplotlib")\n')
    monkeypatch.setenv("PYTHONPATH", str(shadow.parent))  # the child `gdw plot` finds no matplotlib
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    app = GdwApp(runs, open_run=runs / FINISHED_10)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_caught_up(pilot)
        await pilot.press("e")
        await wait_until(pilot, lambda: figure_notes(app), timeout=DRAWING_S, what="the answer")
        (note,) = figure_notes(app)
        assert note.severity == "error"
        # (notifications hold markup: the brackets are escaped to be shown as typed)
        assert str(note.message) == plain_to_markup(
            "gdw plot needs the 'plot' extra (matplotlib is not installed): pip install -e '.[plot]'")
    assert not (runs / FINISHED_10 / "exports" / "figures").exists()
