"""The dashboard's log pane: a RichLog that re-wraps its lines when its width changes.

RichLog wraps each line once, at the width it had when the line was written. This one keeps what
it was given (as many entries as lines it keeps), so after a resize or a maximise it writes them
again at the new width, and a view that was at the bottom stays at the bottom.
"""

from __future__ import annotations

from collections import deque

from rich.console import RenderableType
from textual.events import Resize
from textual.widgets import RichLog

from ..textual_compat import rich_log_size_known


class RunLog(RichLog):
    # The scrollbar's column is always reserved: lines wrapped before it appears still fit after.
    DEFAULT_CSS = """
    RunLog { scrollbar-gutter: stable; }
    """

    def __init__(self, *, max_lines: int = 2000, **kwargs) -> None:
        # min_width 1: RichLog's default (78) would keep lines 78 cells wide in a narrower pane.
        super().__init__(max_lines=max_lines, min_width=1, **kwargs)
        self._entries: deque[RenderableType] = deque(maxlen=max_lines)
        self._wrapped_at = 0  # the width the current lines were wrapped at

    def write(self, content: RenderableType | object, *args, **kwargs) -> "RunLog":
        # Writes before the size is known are deferred by RichLog and come back through here.
        if rich_log_size_known(self):
            self._entries.append(content)
            self._wrapped_at = self.scrollable_content_region.width
        return super().write(content, *args, **kwargs)

    def clear(self) -> "RunLog":
        self._entries.clear()
        return super().clear()

    def on_resize(self, event: Resize) -> None:  # RichLog's own handler runs after this one
        width = self.scrollable_content_region.width
        if not rich_log_size_known(self) or not self._entries or width == self._wrapped_at:
            return
        at_bottom = self.is_vertical_scroll_end
        top = self.scroll_y
        entries = list(self._entries)
        super().clear()
        self._entries.clear()
        for entry in entries:
            self.write(entry, scroll_end=False)
        if at_bottom:
            self.scroll_end(animate=False, immediate=True)
        else:
            self.scroll_to(y=top, animate=False, immediate=True)
