"""Asked on `q` while runs started from this UI are still going: leave them running (default) or stop them."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from .markup import plain_to_markup

LEAVE, STOP = "leave", "stop"


class QuitScreen(ModalScreen[str | None]):
    """Dismisses with LEAVE, STOP or None (cancel)."""

    BINDINGS = [
        Binding("escape", "cancel", "cancel"),
        Binding("l", "choose('leave')", "leave running"),
        Binding("s", "choose('stop')", "stop them"),
    ]

    def __init__(self, running: list[Path]) -> None:
        super().__init__()
        self.running = running

    def compose(self) -> ComposeResult:
        names = "\n".join(f"  • {p.name}" for p in self.running[:6])
        more = f"\n  … and {len(self.running) - 6} more" if len(self.running) > 6 else ""
        n = len(self.running)
        text = (
            f"{n} run{'s' if n > 1 else ''} started here {'are' if n > 1 else 'is'} still running:\n{names}{more}\n\n"
            "The engine runs detached: leaving keeps it going, and `gdw-tui` or `gdw runs` finds it again."
        )
        with Vertical(classes="dialog"):
            yield Static(plain_to_markup(text), classes="question")
            with Horizontal(classes="buttons"):
                yield Button("Quit, leave running (l)", id="leave", variant="primary")
                yield Button("Stop and quit (s)", id="stop", variant="error")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#leave").focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id if event.button.id in (LEAVE, STOP) else None)

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)

    def action_cancel(self) -> None:
        self.dismiss(None)
