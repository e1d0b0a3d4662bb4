"""`gdw` and `gdw-tui`: the command line, above both the engine and the UI.

The CLI is the one place that may reach both sides: it trains in its own process (engine.trainer,
with torch) or opens the Textual app (gdw_tui, torch-free). Keeping it out of gdw_tui is what lets
the UI package promise never to import torch.
"""
