"""The start screen: presets with type-to-filter, the selected one's details, and the launch form."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.events import Key
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from engine.config import LOG_BACKENDS, ConfigError, available_presets, load_preset, resolved_arch
from engine.method_table import METHODS, method_info
from engine.runs import list_runs

from .widgets.checkbox import Checkbox
from .widgets.footer import Footer
from .estimate import NO_ESTIMATE, Estimate, FinishedRun, estimate_run_time, finished_runs
from .formatting import format_duration, plural
from .launch_form import FORM_FIELDS, validate
from .messages import LaunchRequested, SweepRequested

DEFAULT_PRESET = "digits-unif60"  # the embedded quick default: no download, a minute on a CPU
KEYS_NOT_FILTERED = {"q", "r", "w", "question_mark", "S", "slash"}  # global keys (S: sweep, /: filter) keep their meaning in the list
MARK = "● "  # before a preset marked for a sweep (space)
# Presets that train in a minute or two on a CPU with no download: listed first, to try things out.
QUICK_PREFIXES = ("digits-", "synthetic-")
QUICK_HEADER, OTHER_HEADER = "quick · CPU, no download", "papers' settings · GPU, data"
TEXT_FIELDS = ("seed", "epochs", "device", "data_dir")


def is_quick(name: str) -> bool:
    return name.startswith(QUICK_PREFIXES)


def ordered_names(names: list[str]) -> list[str]:
    """The quick presets first, then the rest, each group in name order."""
    return sorted(names, key=lambda n: (not is_quick(n), n))


class PresetList(OptionList):
    """The preset names. Typing a character starts the filter (Enter still launches)."""

    class FilterTyped(Message):
        def __init__(self, character: str) -> None:
            super().__init__()
            self.character = character

    def on_key(self, event: Key) -> None:
        if event.is_printable and event.character and event.key not in KEYS_NOT_FILTERED and event.key != "space":
            event.stop()
            event.prevent_default()
            self.post_message(self.FilterTyped(event.character))


def details_text(name: str, cfg: dict[str, Any], estimate: Estimate | None, form_ok: bool = True) -> Group:
    d, t = cfg["data"], cfg["train"]
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column()
    corruption = "none" if d["noise"] == "none" else f"{d['noise']} {d['noise_rate']:.2f}"
    imbalance = "1 (balanced)" if d["imbalance"] == 1 else f"{d['imbalance']:g}"
    grid.add_row("dataset", f"{d['dataset']} · {d['meta_per_class']} clean meta images per class")
    grid.add_row("corruption", f"{corruption} · imbalance {imbalance}")
    grid.add_row("model", resolved_arch(cfg))
    grid.add_row("method", f"{t['method']}: {getattr(method_info(t['method']), 'description', '')}")
    grid.add_row("training", f"{plural(t['epochs'], 'epoch')} · batch {t['batch_size']} · lr {t['lr']:g} cosine · outer lr {t['outer_lr']:g}")
    if not form_ok:
        grid.add_row("estimate", "no estimate until the form below is valid")
    elif estimate is None:
        grid.add_row("estimate", NO_ESTIMATE)
    else:
        basis = f"{estimate.runs} finished {'run' if estimate.runs == 1 else 'runs'}"
        grid.add_row("estimate", f"~{format_duration(estimate.seconds)} for {plural(t['epochs'], 'epoch')}"
                                 f" (from {basis} with this method, model, data and batch on {estimate.device})")
    parts: list[Any] = [Text(cfg.get("title") or name, style="bold"), Text(""), grid]
    if cfg.get("description"):
        parts += [Text(""), Text(" ".join(cfg["description"].split()), style="italic")]
    return Group(*parts)


class PresetsScreen(Screen):
    BINDINGS = [
        Binding("slash", "focus_filter", "filter"),
        Binding("escape", "clear_filter", "clear filter", show=False),
        Binding("ctrl+l", "launch", "launch", show=False),
        # Not in the footer (it is full at 80 columns): the list's subtitle says "N marked · S sweep".
        Binding("space", "mark", "mark for a sweep", show=False),
        Binding("S", "sweep", "sweep", show=False),
    ]

    def __init__(self, runs_dir: Path, presets_dir: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.runs_dir = runs_dir
        self.presets_dir = presets_dir
        self.presets: dict[str, Path] = {}
        self.preset_cfg: dict[str, Any] | None = None
        self.selected: str | None = None
        self.finished_runs: list[FinishedRun] = []
        self.form_result = None
        self.marked: dict[str, None] = {}  # presets marked for a sweep, in the order marked
        self.shown_count = 0  # presets the filter lets through

    def compose(self) -> ComposeResult:
        with Horizontal(id="presets-body"):
            with Vertical(id="presets-side"):
                # select_on_focus off: the first typed character is inserted as the filter takes the
                # focus; selecting it on focus let the second character replace it (`digits` → `igits`).
                yield Input(placeholder="/ type to filter", id="filter", compact=True, select_on_focus=False)
                yield PresetList(id="preset-list")
            with Vertical(id="presets-main"):
                with VerticalScroll(id="details-scroll"):
                    yield Static("", id="details")
                with Grid(id="launch-form"):
                    yield Label("method")
                    yield Select([(m, m) for m in METHODS], allow_blank=False, id="method", compact=True)
                    yield Label("seed")
                    yield Input(id="seed", compact=True)
                    yield Label("epochs")
                    yield Input(id="epochs", compact=True)
                    yield Label("device")
                    yield Input(id="device", compact=True, placeholder="auto | cpu | cuda | cuda:N")
                    yield Label("data dir")
                    yield Input(id="data_dir", compact=True, placeholder="where the dataset files are")
                    yield Label("")
                    yield Checkbox("download", id="download", compact=True)
                    yield Label("log")
                    yield Select([(b, b) for b in LOG_BACKENDS], allow_blank=False, id="log", compact=True)
                yield Input(placeholder="more: section.key=value …  e.g. data.noise_rate=0.4", id="more", compact=True)
                with Horizontal(id="launch-row"):
                    yield Static("", id="form-error")
                    yield Button("Launch ⏎", id="launch", variant="primary", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#presets-side").border_title = "Presets"
        self.query_one("#presets-main").border_title = "Preset"
        self.load_presets()
        self.query_one(PresetList).focus()
        self.call_after_refresh(self.load_finished_runs)  # estimates can wait for the first frame

    def on_screen_resume(self) -> None:
        self.load_finished_runs()

    def load_presets(self) -> None:
        try:
            self.presets = available_presets(self.presets_dir)
        except ConfigError as e:
            self.presets = {}
            self.query_one("#details", Static).update(Text(str(e)))
        if DEFAULT_PRESET in self.presets:
            self.selected = DEFAULT_PRESET
        self._fill_list("")

    @work(thread=True, exclusive=True, group="finished-runs", exit_on_error=False)
    def load_finished_runs(self) -> None:
        """Estimates need the finished runs; reading their summaries must not delay the first frame."""
        runs = finished_runs(list_runs(self.runs_dir))
        self.app.call_from_thread(self._set_finished_runs, runs)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Without the finished runs there is no estimate; say why, the screen stays usable.
        if event.worker.group == "finished-runs" and event.state == WorkerState.ERROR:
            self.app.report_background_error(f"reading the finished runs in {self.runs_dir}", event.worker.error)
            self.notify(f"no run-time estimates: cannot read the runs in {self.runs_dir}: {event.worker.error}",
                        title="estimates", severity="warning")

    def _set_finished_runs(self, runs: list[FinishedRun]) -> None:
        self.finished_runs = runs
        self._show_details()

    def _fill_list(self, pattern: str) -> None:
        option_list = self.query_one(PresetList)
        names = ordered_names([n for n in self.presets if pattern.lower() in n.lower()])
        option_list.clear_options()
        quick = [n for n in names if is_quick(n)]
        others = [n for n in names if not is_quick(n)]
        if pattern or not (quick and others):
            option_list.add_options([Option(self._prompt(n), id=n) for n in names])
        else:  # the whole list: two labelled groups (the headers cannot be highlighted)
            option_list.add_options([Option(Text(QUICK_HEADER, style="dim italic"), disabled=True)])
            option_list.add_options([Option(self._prompt(n), id=n) for n in quick])
            option_list.add_options([Option(Text(OTHER_HEADER, style="dim italic"), disabled=True)])
            option_list.add_options([Option(self._prompt(n), id=n) for n in others])
        if names:
            # While filtering, the first match; otherwise the preset chosen before.
            name = self.selected if not pattern and self.selected in names else names[0]
            option_list.highlighted = option_list.get_option_index(name)
            self._select(name)
        self.shown_count = len(names)
        self._show_count()
        if not names:
            self.query_one("#details", Static).update(Text(f"no preset matches '{pattern}' (Escape clears the filter)"))

    def _prompt(self, name: str) -> str | Text:
        return Text.assemble((MARK, "bold #58a6ff"), name) if name in self.marked else name

    def _show_count(self) -> None:
        shown, pattern = self.shown_count, self.query_one("#filter", Input).value
        count = f"{shown}/{len(self.presets)}" if pattern else f"{shown}"
        if self.marked:
            count += f" · {len(self.marked)} marked · S sweep"
        self.query_one("#presets-side").border_subtitle = count

    # --- marks and the sweep form ----------------------------------------------------------------

    def action_mark(self) -> None:
        """Space: mark or unmark the highlighted preset for a sweep (marks survive the filter)."""
        option_list = self.query_one(PresetList)
        if option_list.highlighted is None:
            return
        name = option_list.get_option_at_index(option_list.highlighted).id
        if name is None:
            return
        if name in self.marked:
            del self.marked[name]
        else:
            self.marked[name] = None
        option_list.replace_option_prompt(name, self._prompt(name))
        self._show_count()

    def action_sweep(self) -> None:
        """S: the sweep form for the marked presets (or the highlighted one when none is marked)."""
        from .sweep_form import SweepForm

        presets = list(self.marked) or ([self.selected] if self.selected else [])
        if not presets:
            return
        own = []
        for name in presets:
            try:
                own.append(load_preset(name, None, self.presets_dir)["train"]["method"])
            except ConfigError:
                pass  # the form says what is wrong with this preset
        self.app.push_screen(SweepForm(presets, list(dict.fromkeys(own)), self.presets_dir), self._sweep_checked)

    def _sweep_checked(self, checked: Any) -> None:
        if checked is not None:
            self.post_message(SweepRequested(checked))

    # --- filter --------------------------------------------------------------------------------

    @on(PresetList.FilterTyped)
    def _filter_typed(self, event: PresetList.FilterTyped) -> None:
        filt = self.query_one("#filter", Input)
        filt.focus()
        filt.insert_text_at_cursor(event.character)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._fill_list(event.value)

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self.query_one(PresetList).focus()

    def on_key(self, event: Key) -> None:
        # Up and Down in the filter move the selection, as in any fuzzy finder.
        if self.focused is self.query_one("#filter") and event.key in ("up", "down"):
            option_list = self.query_one(PresetList)
            option_list.focus()
            option_list.action_cursor_down() if event.key == "down" else option_list.action_cursor_up()
            event.stop()

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_clear_filter(self) -> None:
        filt = self.query_one("#filter", Input)
        filt.value = ""
        self.query_one(PresetList).focus()

    # --- selection and form --------------------------------------------------------------------

    @on(OptionList.OptionHighlighted, "#preset-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id and event.option.id != self.selected:
            self._select(event.option.id)

    @on(OptionList.OptionSelected, "#preset-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.action_launch()

    def _select(self, name: str) -> None:
        self.selected = name
        try:
            self.preset_cfg = load_preset(name, None, self.presets_dir)
        except ConfigError as e:
            self.preset_cfg = None
            self.query_one("#details", Static).update(Text(str(e), style="bold red"))
            self._set_error(str(e))
            return
        t = self.preset_cfg["train"]
        with self.prevent(Input.Changed, Select.Changed, Checkbox.Changed):
            self.query_one("#method", Select).value = t["method"]
            self.query_one("#seed", Input).value = str(t["seed"])
            self.query_one("#epochs", Input).value = str(t["epochs"])
            self.query_one("#device", Input).value = str(t["device"])
            self.query_one("#data_dir", Input).value = str(self.preset_cfg["data"]["data_dir"])
            self.query_one("#download", Checkbox).value = bool(self.preset_cfg["data"]["download"])
            self.query_one("#log", Select).value = t["log"]
        self.query_one("#presets-main").border_title = name
        self._validate()

    def form_values(self) -> dict[str, str]:
        values = {name: self.query_one(f"#{name}", Input).value for name in TEXT_FIELDS}
        method = self.query_one("#method", Select).value
        values["method"] = method if isinstance(method, str) else ""
        log = self.query_one("#log", Select).value
        values["log"] = log if isinstance(log, str) else ""
        values["download"] = "true" if self.query_one("#download", Checkbox).value else "false"
        return values

    @on(Input.Changed, "#seed, #epochs, #device, #data_dir, #more")
    @on(Select.Changed, "#method, #log")
    @on(Checkbox.Changed, "#download")
    def _form_changed(self) -> None:
        self._validate()

    def _validate(self):
        if not self.selected:
            return None
        result = validate(self.selected, self.form_values(), self.query_one("#more", Input).value, self.presets_dir)
        self.form_result = result
        for name in (*FORM_FIELDS, "more"):
            self.query_one(f"#{name}").set_class(name in result.errors, "-invalid")
        self._set_error(result.first_error())
        self._show_details()
        return result

    def _show_details(self) -> None:
        if not self.selected or self.preset_cfg is None:
            return
        result = self.form_result
        cfg = result.cfg if result is not None and result.ok else self.preset_cfg
        # The estimate is for what Enter would launch (overrides included), never for the bare preset.
        form_ok = cfg is not self.preset_cfg
        estimate = estimate_run_time(self.finished_runs, cfg) if form_ok else None
        self.query_one("#details", Static).update(details_text(self.selected, cfg, estimate, form_ok))

    def _set_error(self, message: str) -> None:
        error = self.query_one("#form-error", Static)
        error.update(Text(message, style="bold #ff7b72") if message else Text("Enter launches", style="dim"))
        self.query_one("#launch", Button).disabled = bool(message)

    @on(Input.Submitted, "#seed, #epochs, #device, #data_dir, #more")
    @on(Button.Pressed, "#launch")
    def _launch_requested(self) -> None:
        self.action_launch()

    def action_launch(self) -> None:
        result = self._validate()
        if result is None:
            return
        if not result.ok:
            self.notify(result.first_error(), title="cannot launch", severity="error")
            return
        self.post_message(LaunchRequested(result.cfg))
