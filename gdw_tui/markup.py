"""Plain messages (engine errors, names, what the user typed) made safe for Textual's markup.

Textual reads `[...]` in a notification or a Static as markup: a message that quotes `[data]` or
a typed `[/x]` lost its brackets or crashed the app. Everything is escaped here, and a `command`
in backticks (the engine's messages quote commands that way) is shown in bold instead of with
stray backticks.
"""

from __future__ import annotations

import re

from textual.markup import escape

_CODE = re.compile(r"`([^`\n]+)`")


def plain_to_markup(text: str) -> str:
    return _CODE.sub(lambda m: f"[b]{m.group(1)}[/b]", escape(text))
