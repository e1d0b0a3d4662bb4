"""The sweep form (`S` on the presets): methods, seeds, executor and overrides for the marked presets.

Every check is the command line's: the fields become what `gdw sweep` would be given (--methods,
--seeds, --workers/--gpus/--per-gpu or --slurm-partition/--slurm-time, --set, --name) and go
through engine.sweep.spec and engine.sweep.start.check_sweep, so an error reads exactly as
`gdw sweep` says it, under the field it is about. Launch stays disabled while anything is wrong;
the app then creates the sweep and starts its scheduler detached (engine.sweep.start.start_sweep).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from engine.config import ConfigError
from engine.method_table import METHODS
from engine.sweep.executor import EXECUTORS, check_executor
from engine.sweep.spec import CONFIRM_ABOVE, PAPER_SEEDS, SweepSpec, parse_methods, parse_options, parse_seeds, parse_sets
from engine.sweep.start import CheckedSweep, DataMissing, check_sweep

from .formatting import plural
from .widgets.checkbox import Checkbox

METHODS_PER_ROW = 4
DEFAULT_SEEDS = ",".join(str(s) for s in PAPER_SEEDS)
# The executor options the form offers (the rest of them: a sweep file or the command line).
OPTION_FIELDS = {"local": ("workers", "gpus", "per_gpu"), "slurm": ("partition", "time")}
OPTION_LABELS = {"workers": "workers", "gpus": "gpus", "per_gpu": "per-gpu", "partition": "partition", "time": "time (min)"}
OPTION_HINTS = {"workers": "1", "gpus": "all", "per_gpu": "1", "partition": "default", "time": "default"}
# How the executor's pre-flight and the local slots' messages start (engine.sweep.executor, .slurm, .local).
EXECUTOR_MESSAGES = ("--executor", "--gpus", "--per-gpu", "--workers", "--slurm", "Slurm", "cannot ask Slurm")
ERROR_FIELDS = ("methods", "seeds", "executor", "sets", "data", "sweep")


@dataclass
class SweepFormResult:
    checked: CheckedSweep | None = None
    errors: dict[str, str] = field(default_factory=dict)  # ERROR_FIELDS -> the command line's message

    @property
    def ok(self) -> bool:
        return self.checked is not None and not self.errors

    def first_error(self) -> str:
        return next(iter(self.errors.values()), "")

    def count_line(self) -> str:
        """`24 runs: 2 presets × 4 methods × 3 seeds on 2 slots (cpu, cpu)`."""
        if self.checked is None:
            return ""
        spec, slots = self.checked.spec, self.checked.slots
        where = f"{plural(len(slots), 'slot')} ({', '.join(s.label() for s in slots)})" if slots else spec.executor
        return (f"{plural(len(self.checked.plans), 'run')}: {plural(len(spec.presets), 'preset')} × "
                f"{plural(len(spec.methods or []), 'method')} × {plural(len(spec.seeds), 'seed')} on {where}")


def parse_set_items(text: str) -> dict[str, Any]:
    """`more:`: `section.key=value` items separated by spaces (quotes allow spaces in a value), as --set."""
    try:
        items = shlex.split(text)
    except ValueError as e:
        raise ConfigError(f"--set: {e} (quote a value that has spaces)") from None
    return parse_sets(items)


def validate_sweep(presets: list[str], values: dict[str, Any], presets_dir: str | None) -> SweepFormResult:
    """Each field alone first (to point at the wrong one), then the whole sweep as `gdw sweep` checks it.

    values: methods (the ticked ones), seeds, executor, the executor's option fields, sets, name.
    """
    result = SweepFormResult()
    spec = SweepSpec(presets=list(presets))
    checks = (
        ("methods", lambda: setattr(spec, "methods", parse_methods(",".join(values.get("methods", []))))),
        ("seeds", lambda: setattr(spec, "seeds", parse_seeds(values.get("seeds", "")))),
        ("executor", lambda: _set_executor(spec, values)),
        ("sets", lambda: setattr(spec, "sets", parse_set_items(values.get("sets", "")))),
    )
    for name, check in checks:
        try:
            check()
        except ConfigError as e:
            result.errors[name] = str(e)
    if result.errors:
        return result
    spec.name = values.get("name", "").strip()  # empty: the first preset's name, as without --name
    if str(values.get("data_dir", "")).strip():  # as --data-dir and --download
        spec.sets["data.data_dir"] = values["data_dir"].strip()
    if values.get("download"):
        spec.sets["data.download"] = True
    try:
        result.checked = check_sweep(spec, presets_dir)
    except ConfigError as e:
        # The executor's pre-flight (e.g. no sbatch) belongs under the executor, missing dataset
        # files under the data fields; the rest to the sweep.
        message = str(e)
        name = "data" if isinstance(e, DataMissing) else "executor" if message.startswith(EXECUTOR_MESSAGES) else "sweep"
        result.errors[name] = message
        result.checked = None
    return result


def _set_executor(spec: SweepSpec, values: dict[str, Any]) -> None:
    executor = check_executor(values.get("executor", "local"))
    given = {k: values[k].strip() for k in OPTION_FIELDS[executor] if str(values.get(k, "")).strip()}
    spec.executor = executor
    spec.options = parse_options(executor, given, "command line")


class SweepForm(ModalScreen[CheckedSweep | None]):
    """Dismissed with the checked sweep to start, or None (Escape, Cancel)."""

    DEFAULT_CSS = """
    SweepForm { align: center middle; }
    #sweep-form {
        width: 96; max-width: 100%; height: auto; max-height: 100%;
        border: thick $accent; background: $surface; padding: 0 1;
    }
    #sweep-form .row { height: 1; }
    #sweep-form .label { width: 10; color: $text-muted; }
    #sweep-form .row > Input { width: 1fr; }
    #sweep-form .option-label { width: auto; color: $text-muted; margin: 0 1 0 1; }
    #sweep-form .row > .option { width: 1fr; }
    #sweep-form Checkbox { margin-right: 2; }
    #sweep-form Select { width: 12; }
    #sweep-form Input, #sweep-form SelectCurrent { background: $panel; }
    #sweep-form Input:focus, #sweep-form Checkbox:focus, #sweep-form Select:focus > SelectCurrent {
        background: $accent 50%; color: $text; text-style: bold;
    }
    #sweep-form .field-error { height: auto; color: $error; padding-left: 10; }
    #sweep-form #sweep-presets { height: auto; margin-bottom: 1; }
    #sweep-form #sweep-summary { height: auto; margin-top: 1; }
    #sweep-form #sweep-buttons { height: 1; margin-top: 1; align-horizontal: right; }
    #sweep-form #sweep-buttons Button { margin-left: 2; }
    """

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, presets: list[str], own_methods: list[str], presets_dir: str | None = None) -> None:
        """own_methods: the presets' own methods, ticked at first (what `gdw sweep` runs without --methods)."""
        super().__init__()
        self.presets = presets
        self.own_methods = own_methods
        self.presets_dir = presets_dir
        self.result = SweepFormResult()
        self.confirming: dict[str, Any] | None = None  # the values of a > CONFIRM_ABOVE-run sweep, Launch pressed once

    def compose(self) -> ComposeResult:
        with Vertical(id="sweep-form"):
            yield Static(Text.assemble((f"{plural(len(self.presets), 'preset')}: ", "dim"), ", ".join(self.presets)),
                         id="sweep-presets")
            # Four methods a row, so that every one fits in 80 columns.
            methods = list(METHODS)
            for start in range(0, len(methods), METHODS_PER_ROW):
                with Horizontal(classes="row"):
                    yield Label("methods" if start == 0 else "", classes="label")
                    for m in methods[start : start + METHODS_PER_ROW]:
                        yield Checkbox(m, m in self.own_methods, id=f"method-{m}", compact=True)
            yield Static("", id="methods-error", classes="field-error")
            with Horizontal(classes="row"):
                yield Label("seeds", classes="label")
                yield Input(DEFAULT_SEEDS, id="seeds", compact=True, placeholder="comma-separated, e.g. 1,10,100")
            yield Static("", id="seeds-error", classes="field-error")
            with Horizontal(classes="row"):
                yield Label("executor", classes="label")
                yield Select([(e, e) for e in EXECUTORS], value="local", allow_blank=False, id="executor", compact=True)
                for executor, names in OPTION_FIELDS.items():
                    for name in names:
                        yield Label(OPTION_LABELS[name], classes=f"option-label {executor}")
                        yield Input(id=name, compact=True, placeholder=OPTION_HINTS[name], classes=f"option {executor}")
            yield Static("", id="executor-error", classes="field-error")
            with Horizontal(classes="row"):
                yield Label("more", classes="label")
                yield Input(id="sets", compact=True, placeholder="section.key=value …  e.g. train.epochs=1 (as --set)")
            yield Static("", id="sets-error", classes="field-error")
            with Horizontal(classes="row"):
                yield Label("data", classes="label")
                yield Input(id="data_dir", compact=True, placeholder="data dir (default: the presets'), as --data-dir")
                yield Checkbox("download", False, id="download", compact=True)
            yield Static("", id="data-error", classes="field-error")
            with Horizontal(classes="row"):
                yield Label("name", classes="label")
                yield Input(id="name", compact=True, placeholder=f"default: {self.presets[0]}")
            yield Static("", id="sweep-summary")
            with Horizontal(id="sweep-buttons"):
                yield Button("Launch sweep ⏎", id="launch-sweep", variant="primary", compact=True)
                yield Button("Cancel (Esc)", id="cancel-sweep", compact=True)

    def on_mount(self) -> None:
        self.query_one("#sweep-form").border_title = "Sweep"
        self._show_executor_options()
        self._validate()
        self.query_one("#seeds", Input).focus()

    def form_values(self) -> dict[str, Any]:
        values: dict[str, Any] = {"methods": [m for m in METHODS if self.query_one(f"#method-{m}", Checkbox).value]}
        for name in ("seeds", "sets", "name", "data_dir", *OPTION_FIELDS["local"], *OPTION_FIELDS["slurm"]):
            values[name] = self.query_one(f"#{name}", Input).value
        values["download"] = self.query_one("#download", Checkbox).value
        executor = self.query_one("#executor", Select).value
        values["executor"] = executor if isinstance(executor, str) else "local"
        return values

    def _show_executor_options(self) -> None:
        executor = self.form_values()["executor"]
        for widget in self.query(".local, .slurm"):
            widget.display = widget.has_class(executor)

    @on(Select.Changed, "#executor")
    def _executor_changed(self) -> None:
        self._show_executor_options()
        self._validate()

    @on(Input.Changed)
    @on(Checkbox.Changed)
    def _changed(self) -> None:
        self._validate()

    def _validate(self) -> SweepFormResult:
        result = validate_sweep(self.presets, self.form_values(), self.presets_dir)
        self.result = result
        self.confirming = None  # any change asks again
        for name in ERROR_FIELDS[:-1]:
            error = self.query_one(f"#{name}-error", Static)
            error.update(result.errors.get(name, ""))
            error.display = name in result.errors
        for name in ("seeds", "sets"):
            self.query_one(f"#{name}", Input).set_class(name in result.errors, "-invalid")
        self.query_one("#data_dir", Input).set_class("data" in result.errors, "-invalid")
        summary = self.query_one("#sweep-summary", Static)
        if "sweep" in result.errors:
            summary.update(Text(result.errors["sweep"], style="bold #ff7b72"))
        elif result.ok:
            big = len(result.checked.plans) > CONFIRM_ABOVE
            action = f" · over {CONFIRM_ABOVE}: Enter twice" if big else " · Enter launches"
            summary.update(Text(result.count_line() + action, style="bold"))
        else:
            summary.update(Text("fix the field marked above to launch", style="dim"))
        launch = self.query_one("#launch-sweep", Button)
        launch.disabled = not result.ok
        launch.label = "Launch sweep ⏎"
        return result

    @on(Input.Submitted)
    @on(Button.Pressed, "#launch-sweep")
    def _launch(self) -> None:
        armed = self.confirming
        result = self._validate()
        if not result.ok:
            self.notify(result.first_error(), title="cannot launch the sweep", severity="error")
            return
        runs = len(result.checked.plans)
        if runs > CONFIRM_ABOVE and armed != self.form_values():
            # As `gdw sweep` asks y/N: the same press again creates them; a change (or Esc) asks again.
            self.confirming = self.form_values()
            self.query_one("#sweep-summary", Static).update(Text(
                f"Enter again creates {runs:,} runs (more than {CONFIRM_ABOVE}); a change asks again", style="bold #ffa657"))
            self.query_one("#launch-sweep", Button).label = f"Create {runs:,} runs ⏎"
            return
        self.dismiss(result.checked)

    @on(Button.Pressed, "#cancel-sweep")
    def action_cancel(self) -> None:
        self.dismiss(None)
