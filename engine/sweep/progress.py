"""A sweep filling in, for a terminal (a Rich live table) or a log (plain lines). Torch-free."""

from __future__ import annotations

import time
from typing import Any

from ..config import METHODS
from ..runs import read_summary
from ..marks import STATUS_MARKS
from .store import Sweep, counts, run_states

_COLOURS = {"finished": "green", "running": "yellow", "failed": "red", "created": "dim", "queued": "cyan",
            "stopped": "magenta", "interrupted": "red", "missing": "red"}
MARKS = {status: (STATUS_MARKS[status], colour) for status, colour in _COLOURS.items()}
PLAIN_EVERY_S = 30.0


def counts_line(sweep: Sweep, states: dict[str, str]) -> str:
    c = counts(states)
    missing = f" · {c['missing']} missing (deleted)" if c["missing"] else ""
    return (f"sweep {sweep.id}: {len(states)} runs · {c['done']} done · {c['running']} running · "
            f"{c['failed']} failed · {c['pending']} pending{missing}")


def grid_table(sweep: Sweep, states: dict[str, str]) -> Any:
    """Settings × methods; a mark per seed coloured by status, the mean ± std of the finished seeds.

    Within one sweep a setting is one config (the sweep planned it), so its entries are its cells;
    `gdw report` keys runs by their configs, across sweeps.
    """
    import statistics

    from rich.table import Table
    from rich.text import Text

    by_cell: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for entry in sweep.runs:
        by_cell.setdefault((entry["setting"], entry["method"]), []).append(entry)
    methods = [m for m in METHODS if any(m == k[1] for k in by_cell)]
    table = Table("setting", *methods)
    for setting in dict.fromkeys(e["setting"] for e in sweep.runs):
        cells = []
        for m in methods:
            text = Text()
            accs = []
            for entry in by_cell.get((setting, m), []):
                status = states.get(entry["run_id"], "created")
                mark, style = MARKS.get(status, ("?", "red"))
                text.append(mark, style=style)
                acc = read_summary(sweep.runs_dir / entry["run_id"]).get("final_acc") if status == "finished" else None
                if isinstance(acc, (int, float)) and not isinstance(acc, bool):
                    accs.append(float(acc))
            if accs:
                text.append(f" {statistics.fmean(accs):.2f}" + (f" ± {statistics.stdev(accs):.2f}" if len(accs) > 1 else ""))
            cells.append(text)
        table.add_row(setting, *cells)
    return table


class SweepProgress:
    """The foreground display of `gdw sweep`, `gdw resume SWEEP` and `--wait`."""

    def __init__(self, console: Any, live: bool):
        self.console, self.live_mode = console, live
        self.live = None
        self.last_plain = 0.0
        self.last_line = ""

    def __enter__(self) -> "SweepProgress":
        if self.live_mode:
            from rich.live import Live

            self.live = Live(console=self.console, auto_refresh=False, transient=False)
            self.live.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.stop()

    def say(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def refresh(self, sweep: Sweep, job_states: dict[str, str] | None = None) -> dict[str, str]:
        states = run_states(sweep, job_states)
        if self.live is not None:
            from rich.console import Group
            from rich.text import Text

            self.live.update(Group(Text(counts_line(sweep, states)), grid_table(sweep, states)), refresh=True)
        else:
            # Plain output (a log): the counts when a run ends (starts have their own lines), and
            # every PLAIN_EVERY_S as a sign of life.
            c = counts(states)
            ended_now = f"{c['done']}/{c['failed']}/{c['missing']}"
            if ended_now != self.last_line or time.monotonic() - self.last_plain >= PLAIN_EVERY_S:
                self.say(f"{time.strftime('%H:%M:%S')} {counts_line(sweep, states)}")
                self.last_line, self.last_plain = ended_now, time.monotonic()
        return states


def ended(states: dict[str, str]) -> bool:
    return all(s in ("finished", "failed", "stopped", "interrupted", "missing") for s in states.values())

