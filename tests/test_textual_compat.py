"""gdw_tui.textual_compat: the private parts of Textual it reaches into still exist.

On a Textual upgrade these fail first, naming what moved, instead of a leak or a misaligned
table showing up in a soak or a snapshot later.
"""

from __future__ import annotations

import inspect

import textual
import textual.reactive
from textual.app import App
from textual.widget import Widget
from textual.widgets import DataTable, Label, RichLog

from gdw_tui import textual_compat
from gdw_tui.textual_compat import drop_closed_watchers, notifications, screen_strips


def test_the_private_methods_extended_are_still_there() -> None:
    for name in ("_update_dimensions", "_clear_caches"):
        assert callable(getattr(DataTable, name, None)), f"DataTable.{name} is gone (textual {textual.__version__})"
    assert textual_compat.WATCHERS in inspect.getsource(textual.reactive), "reactive watchers are no longer in __watchers"
    # widths_measured needs no refresh of its own: _update_dimensions ends by setting virtual_size, a
    # reactive that repaints the table when it changes, and it changes whenever a column widened.
    assert "self.virtual_size = Size(" in inspect.getsource(DataTable._update_dimensions), \
        "DataTable._update_dimensions no longer sets virtual_size: widths_measured must refresh the table itself"
    virtual_size = Widget.__dict__["virtual_size"]
    assert virtual_size._repaint and virtual_size._layout, "virtual_size no longer repaints: see widths_measured"


async def test_the_private_attributes_read_are_still_there() -> None:
    class One(App):
        def compose(self):
            yield RichLog()
            yield Label("hello")

    app = One()
    async with app.run_test(size=(20, 4)) as pilot:
        await pilot.pause()
        assert textual_compat.rich_log_size_known(app.query_one(RichLog)) is True
        app.notify("said")
        await pilot.pause()
        assert [n.message for n in notifications(app)] == ["said"]
        assert any("hello" in strip.text for strip in screen_strips(app.screen))
        label, log = app.query_one(Label), app.query_one(RichLog)
        label.watch(log, "scroll_y", lambda: None)  # a watcher on the log, owned by the label
        assert drop_closed_watchers(log) == 0
        await label.remove()
        assert drop_closed_watchers(log) == 1
