"""`python -m engine run|resume --run-dir DIR`: the engine process the CLI and the UI launch.

Exit codes: 0 finished or stopped cleanly, 1 failed (see events.jsonl / summary.json),
2 bad input (one line on stderr; nothing marked running).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import ConfigError
from .console import plain_line
from .hold import hold_at
from .signals import STOP


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["run", "resume"])
    parser.add_argument("--run-dir", required=True, type=Path)
    args = parser.parse_args(argv)
    STOP.install()  # before torch is imported: an early `gdw stop` becomes a clean stop
    hold_at("startup")  # tests only (GDW_TEST_HOLD)

    def show(event: dict) -> None:
        line = plain_line(event)
        if line:
            print(line, flush=True)
        hold_at(event["type"], event)

    try:
        from .lifecycle import train_run

        summary = train_run(args.run_dir, resume=args.action == "resume", on_event=show)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        if args.action == "run":
            _mark_unstartable(args.run_dir, str(e))
        return 2
    except BaseException:
        return 1  # already reported as a failure event with its traceback
    if summary.get("status") == "finished":
        print(f"final_acc={summary['final_acc']:.2f}", flush=True)
    return 0


def _mark_unstartable(run_dir: Path, message: str) -> None:
    """A detached launch that could not start (e.g. missing dataset files): say so in its summary,
    so the UI shows the reason instead of a run that never moves. Never touches a run that ran."""
    from .runs import EVENTS, read_summary, write_summary

    if (run_dir / EVENTS).exists():
        return
    summary = read_summary(run_dir)
    if summary.get("status") == "created":
        summary.update(status="failed", message=message)
        try:
            write_summary(run_dir, summary)
        except OSError:
            pass


if __name__ == "__main__":
    from .fast_exit import exit_process

    exit_process(main())
