"""The checkbox of the forms: ✓ when ticked, empty when not.

Textual's Checkbox draws the same `X` in both states and tells them apart by colour only, which
a user over SSH (or under NO_COLOR) could not read.
"""

from __future__ import annotations

from textual.widgets import Checkbox as TextualCheckbox


class Checkbox(TextualCheckbox):
    @property
    def BUTTON_INNER(self) -> str:  # noqa: N802 - Textual's (public) name for the mark
        return "✓" if self.value else " "
