"""The tables every screen shows: Textual's DataTable, repainted once its column widths are known.

Textual measures the rows a table was given (their column widths) on the next idle, but keeps the
lines it painted before that: a header painted between `add_row` and the idle stays at the old,
narrow widths above rows laid out wide, until something else repaints the table (measured:
a sweeps-screen snapshot in CI, and `tests/test_tui_data_table.py`). The sweeps and runs screens
no longer rebuild unchanged tables every 2 s, so such a header would stay misaligned for good.
This table drops its painted lines once the widths are measured.
"""

from __future__ import annotations

from typing import Iterable

from textual.widgets import DataTable as TextualDataTable
from textual.widgets.data_table import RowKey


class DataTable(TextualDataTable):
    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        super()._update_dimensions(new_rows)
        self._clear_caches()  # Textual's own cache reset (private, as is the method this extends)
        self.refresh()
