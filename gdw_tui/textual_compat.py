"""Every use gdw_tui (and its tests) makes of Textual's private API, in one place.

Each entry names what it reaches into, why there is no public way, and what to look at when
Textual is upgraded. All were checked on Textual TEXTUAL_CHECKED; tests/test_textual_compat.py
fails when one of the private names is gone, so an upgrade shows here first.
"""

from __future__ import annotations

from typing import Iterable

from textual.app import App
from textual.dom import DOMNode
from textual.screen import Screen
from textual.strip import Strip
from textual.widgets import DataTable, RichLog
from textual.widgets._footer import FooterKey  # noqa: F401  (the footer's key widget: the leak test counts them)
from textual.widgets.data_table import RowKey

TEXTUAL_CHECKED = "8.2.8"

# --- 1. The footer's watchers (gdw_tui/widgets/footer.py) ------------------------------------------
# Textual's Footer data-binds each key it builds to its `compact` reactive: a watcher kept on the
# footer, pruned only when `compact` changes (never, here). Every rebuild kept the old keys alive
# (the soak measured 276 MB → 716 MB in 25 minutes). No public API removes a watcher; they live in
# the node's `__watchers` dict (textual/reactive.py), each entry (owner, callback), and a removed
# owner is `_closing`.

WATCHERS = "__watchers"


def drop_closed_watchers(node: DOMNode) -> int:
    """Forget the watchers that belong to widgets already removed; how many were dropped."""
    dropped = 0
    for entries in (getattr(node, WATCHERS, None) or {}).values():
        kept = [(owner, callback) for owner, callback in entries if not owner._closing]
        dropped += len(entries) - len(kept)
        entries[:] = kept
    return dropped


# --- 2. DataTable's measured widths (gdw_tui/widgets/data_table.py) ------------------------------
# Textual measures new rows' column widths on the next idle (`_update_dimensions`) but keeps the
# lines it painted before (`_clear_caches` drops them). Neither has a public counterpart.
# The hook needs no refresh of its own: `_update_dimensions` ends by setting `virtual_size` (a reactive
# that repaints the table when it changes), and the total width changes whenever a column widened.


class MeasuringDataTable(DataTable):
    """Textual's DataTable with a public hook: `widths_measured()` runs once new rows are measured."""

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        super()._update_dimensions(new_rows)
        self.widths_measured()

    def widths_measured(self) -> None:
        """Override: called after the column widths were measured for new rows."""

    def forget_painted_lines(self) -> None:
        self._clear_caches()


# --- 3. RichLog's deferred writes (gdw_tui/widgets/run_log.py) -----------------------------------
# RichLog defers writes until it knows its size and replays them through `write`; only the private
# `_size_known` tells a deferred call from a real one.


def rich_log_size_known(log: RichLog) -> bool:
    return log._size_known


# --- 4. Tests: what is on the screen, and what was notified ---------------------------------------
# Pilot has no public way to read the composed screen as text, nor the app its notifications.


def screen_strips(screen: Screen) -> list[Strip]:
    """The screen as composed now (one Strip a line)."""
    return screen._compositor.render_strips()


def notifications(app: App) -> list:
    """The notifications the app shows now (each has .message, .title, .severity)."""
    return list(app._notifications)
