"""The `?` screen: every key, from help.md beside this file."""

from __future__ import annotations

from importlib import resources

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown


def help_text() -> str:
    return resources.files("gdw_tui").joinpath("help.md").read_text(encoding="utf-8")


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-scroll", classes="dialog"):
            yield Markdown(help_text(), id="help")

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()
