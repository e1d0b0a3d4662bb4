"""The tables every screen shows: Textual's DataTable, repainted once its column widths are known.

Textual measures the rows a table was given (their column widths) on the next idle, but keeps the
lines it painted before that: a header painted between `add_row` and the idle stays at the old,
narrow widths above rows laid out wide, until something else repaints the table (measured:
a sweeps-screen snapshot in CI, and `tests/test_tui_data_table.py`). The sweeps and runs screens
no longer rebuild unchanged tables every 2 s, so such a header would stay misaligned for good.
This table drops its painted lines once the widths are measured (the hooks into Textual's private
API are in gdw_tui/textual_compat.py).
"""

from __future__ import annotations

from ..textual_compat import MeasuringDataTable


class DataTable(MeasuringDataTable):
    def widths_measured(self) -> None:
        # No refresh of our own: when a column widened, Textual's _update_dimensions has just set a
        # new virtual_size, which marks the whole table for repaint (it repaints from emptied caches).
        self.forget_painted_lines()
