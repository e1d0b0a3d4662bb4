"""The `c` screen of the dashboard: the run's resolved config.toml, scrollable; Escape closes."""

from __future__ import annotations

from pathlib import Path

from rich.syntax import Syntax
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from engine.runs import CONFIG


class ConfigScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,c", "app.pop_screen", "close")]

    DEFAULT_CSS = """
    ConfigScreen { align: center middle; }
    #config-scroll { width: 100; max-width: 95%; height: auto; max-height: 90%; border: thick $accent; background: $surface; padding: 0 1; }
    """

    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.run_dir = run_dir
        try:
            self.text = (run_dir / CONFIG).read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            self.text = f"# cannot read {CONFIG}: {e.strerror}\n"

    def compose(self) -> ComposeResult:
        scroll = VerticalScroll(id="config-scroll")
        scroll.border_title = f"{self.run_dir.name} · {CONFIG}"
        scroll.border_subtitle = "↑↓ scroll · Esc close"
        with scroll:
            yield Static(Syntax(self.text, "toml", theme="ansi_dark", background_color="default", word_wrap=True), id="config-text")

    def on_mount(self) -> None:
        self.query_one("#config-scroll").focus()
