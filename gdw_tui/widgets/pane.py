"""A bordered, titled region of the dashboard; `m` maximises the one holding focus."""

from __future__ import annotations

from textual.containers import Vertical


class Pane(Vertical):
    """A dashboard pane. `group` names the tab it belongs to on narrow terminals."""

    ALLOW_MAXIMIZE = True

    DEFAULT_CSS = """
    Pane {
        border: round $panel-lighten-2;
        border-title-color: $text;
        border-subtitle-color: $text-muted;
        padding: 0 1;
        height: 1fr;
    }
    Pane:focus-within { border: round $accent; }
    """

    def __init__(self, *children, title: str, group: str, **kwargs) -> None:
        super().__init__(*children, **kwargs)
        self.border_title = title
        self.group = group
