"""The footer every screen shows: Textual's own, without its leak.

Textual's Footer rebuilds its keys whenever the bindings change (a focus change, a screen
switch, a key that becomes available) and data-binds each new key to the footer's `compact`
reactive. That binding is a watcher kept on the footer, and Textual prunes watchers of removed
widgets only when `compact` itself changes — which never happens here. So every rebuild kept
the previous keys alive: measured with scripts/ui_soak.py, the UI grew from 276 MB at minute 5
to 716 MB at minute 30 (the keys with their styles, about 20 widgets a focus change). This
footer drops the watchers of removed keys before each rebuild (through gdw_tui.textual_compat),
so at most one generation of old keys waits for the garbage collector.
"""

from __future__ import annotations

from textual.widgets import Footer as TextualFooter

from ..textual_compat import drop_closed_watchers


class Footer(TextualFooter):
    async def recompose(self) -> None:
        drop_closed_watchers(self)
        await super().recompose()
