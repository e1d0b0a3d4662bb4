"""The footer's rebuilds must not keep old keys alive (a Textual leak our Footer works around)."""

from __future__ import annotations

import gc
from pathlib import Path

from textual.widgets import Footer as TextualFooter

from fixtures.tui_support import FINISHED_10, wait_caught_up
from gdw_tui.app import GdwApp
from gdw_tui.widgets.footer import Footer
from gdw_tui.textual_compat import FooterKey


async def live_footer_keys(app: GdwApp, pilot, presses: int) -> tuple[int, int]:
    """Footer keys alive after `presses` focus changes (each rebuilds the footer), and how many are shown."""
    for i in range(presses):
        await pilot.press(str(i % 6 + 1))
        await pilot.pause(0.05)
    await pilot.pause(0.3)
    gc.collect()
    alive = [o for o in gc.get_objects() if isinstance(o, FooterKey)]
    return len(alive), sum(1 for k in alive if k.is_attached)


async def test_footer_rebuilds_do_not_accumulate_old_keys(fixture_runs: Path) -> None:
    app = GdwApp(fixture_runs, open_run=fixture_runs / FINISHED_10)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_caught_up(pilot)
        assert isinstance(app.screen.query_one(TextualFooter), Footer)
        alive, shown = await live_footer_keys(app, pilot, 36)
        # Textual's own footer kept every rebuild's keys: ~36 × 15 alive here.
        assert shown > 0 and alive <= 3 * shown, f"{alive} footer keys alive for {shown} shown"
