"""One mark per run status, the same in the UI, `gdw show SWEEP` and the live sweep grid: the mark
alone tells finished from running (logs and pipes have no colour)."""

STATUS_MARKS = {
    "running": "●",
    "created": "…",
    "starting": "…",
    "finished": "✓",
    "failed": "✗",
    "stopped": "■",
    "stopping": "■",
    "interrupted": "⏸",
    "queued": "○",  # a sweep run Slurm has queued
    "missing": "?",  # a sweep run whose directory is gone
}
