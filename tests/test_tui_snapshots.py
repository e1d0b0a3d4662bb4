"""Snapshot tests (pytest-textual-snapshot) of the screens, from the fixture runs.

Nothing on these screens depends on the clock: the runs are finished (elapsed comes from their
events), clock times are shown in UTC, and animations are off. Update after an intended change
with `pytest tests/test_tui_snapshots.py --snapshot-update` and look at snapshot_report.html.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.tui_support import FAILED, FINISHED_10, FINISHED_100, FINISHED_MWNET, make_runs, use_utc, wait_caught_up, wait_settled, wait_until
from gdw_tui.app import GdwApp


@pytest.fixture(scope="module")
def snapshot_root(tmp_path_factory) -> Path:
    use_utc()
    root = tmp_path_factory.mktemp("snap")
    make_runs(root)
    return root


@pytest.fixture
def runs(snapshot_root: Path, monkeypatch) -> Path:
    # A relative runs directory, so no temporary path appears on screen.
    monkeypatch.chdir(snapshot_root)
    return Path("runs")


async def caught_up(pilot) -> None:
    await wait_caught_up(pilot)
    await wait_settled(pilot)


class TestDashboard:
    @pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
    @pytest.mark.parametrize("run_id", [FINISHED_10, FINISHED_100], ids=["10-classes", "100-classes"])
    def test_dashboard(self, snap_compare, runs: Path, run_id: str, size: tuple[int, int]) -> None:
        assert snap_compare(GdwApp(runs, open_run=runs / run_id), terminal_size=size, run_before=caught_up)

    def test_heatmap_tab_80x24_10_classes(self, snap_compare, runs: Path) -> None:
        assert snap_compare(GdwApp(runs, open_run=runs / FINISHED_10), press=["2", "down", "right"], run_before=caught_up)

    def test_heatmap_zoomed_in_100_classes(self, snap_compare, runs: Path) -> None:
        async def zoom(pilot) -> None:
            await wait_caught_up(pilot)
            await pilot.press("plus", "pagedown", "pagedown", "right")
            await wait_settled(pilot)

        assert snap_compare(GdwApp(runs, open_run=runs / FINISHED_100), terminal_size=(160, 50), run_before=zoom)

    def test_increase_ratio_100_classes(self, snap_compare, runs: Path) -> None:
        async def ratio(pilot) -> None:
            await wait_caught_up(pilot)
            await pilot.press("h")
            await wait_settled(pilot)

        assert snap_compare(GdwApp(runs, open_run=runs / FINISHED_100), terminal_size=(160, 50), run_before=ratio)

    def test_no_color(self, snap_compare, runs: Path, monkeypatch) -> None:
        """NO_COLOR: Textual renders in monochrome; the heatmap's scale is monotonic in lightness, so it still reads."""
        monkeypatch.setenv("NO_COLOR", "1")
        app = GdwApp(runs, open_run=runs / FINISHED_10)
        assert app.no_color
        assert snap_compare(app, press=["2"], run_before=caught_up)

    def test_failed_run_80x24(self, snap_compare, runs: Path) -> None:
        assert snap_compare(GdwApp(runs, open_run=runs / FAILED), terminal_size=(80, 24), run_before=caught_up)


class TestRunsAndCompare:
    def test_runs_screen(self, snap_compare, runs: Path) -> None:
        async def listed(pilot) -> None:
            await pilot.press("r")
            await wait_until(pilot, lambda: getattr(pilot.app.screen, "loaded", False), what="the run list")
            await wait_settled(pilot)

        assert snap_compare(GdwApp(runs), terminal_size=(100, 16), run_before=listed)

    def test_compare(self, snap_compare, runs: Path) -> None:
        from gdw_tui.compare import CompareScreen

        async def compare(pilot) -> None:
            await pilot.app.push_screen(CompareScreen([runs / FINISHED_10, runs / FINISHED_MWNET]))
            await wait_until(pilot, lambda: getattr(pilot.app.screen, "loaded", False), what="the comparison")
            await wait_settled(pilot)

        assert snap_compare(GdwApp(runs), terminal_size=(120, 36), run_before=compare)
