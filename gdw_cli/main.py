"""`gdw`: the command line — list presets, run headless or under the UI, inspect, stop and resume runs, benchmark.

Bad input of any kind (preset, field, value, path, device) ends with one line on stderr and
exit code 2. The torch-heavy engine is imported only by the commands that train or benchmark.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import typer
from rich.console import Console
from rich.table import Column, Table

from engine import __version__
from engine.config import SCHEMA, TOP_LEVEL, ConfigError, available_presets, check_presets_dir, load_preset, parse_set
from engine.fast_exit import exit_process
from engine.heartbeat import describe_heartbeat
from engine.method_table import METHODS
from engine.rundir import resume_refusal
from engine.runs import (
    EVENTS, create_run, find_run, list_runs, load_run_config, read_summary_checked, run_status, runs_dir_from,
    stop_run,
)

from . import export_command, plot_command, sweep_commands
from .errors import OneLineErrors, err, fail, warn
from .headless import console, train_here
from .help_format import Command
from .plain_table import print_table

app = typer.Typer(cls=OneLineErrors, no_args_is_help=True, add_completion=False, help="GDW experiment runner: presets, runs, the TUI and benchmarks.")
RunsDir = typer.Option(None, "--runs-dir", metavar="DIR", help="runs directory (default: $GDW_RUNS_DIR or ./runs)")
PresetsDir = typer.Option(None, "--presets-dir", metavar="DIR", help="extra presets directory (also $GDW_PRESETS)")
JsonOutput = typer.Option(False, "--json", help="print JSON instead of a table")
LogOption = typer.Option(None, "--log", metavar="BACKEND", help="stream the records live: tensorboard, mlflow or wandb (train.log)")
LogToOption = typer.Option(None, "--log-to", metavar="DIR|URI", help="where --log writes: a directory, or an MLflow tracking URI (train.log_to)")
NOT_A_TERMINAL = "stdout is not a terminal: training headless (as with --headless)"


def log_overrides(log: str | None, log_to: str | None) -> dict[str, Any]:
    """--log and --log-to as the preset fields they set (checked like any --set)."""
    from engine.config import coerce

    out: dict[str, Any] = {}
    if log is not None:
        out["train.log"] = coerce("train.log", log)
    if log_to is not None:
        out["train.log_to"] = coerce("train.log_to", log_to)
    return out


def field_help(dotted: str) -> str:
    """An option that sets a preset field says what the preset schema says about it."""
    section, key = dotted.split(".")
    return SCHEMA[section][key].help


def show_version(value: bool) -> None:
    if value:
        console.print(f"gdw {__version__}", markup=False, highlight=False)
        raise typer.Exit()


@app.callback()
def gdw(
    version: bool = typer.Option(False, "--version", callback=show_version, is_eager=True, help="print the version and exit"),
) -> None:
    pass  # the group's own options (--version); its help is the Typer app's


def headless_unless_terminal(headless: bool) -> bool:
    """Without a terminal (a script, nohup, a pipe) there is no UI to open: train here instead."""
    if headless or sys.stdout.isatty():
        return headless
    err.print(NOT_A_TERMINAL, markup=False, highlight=False, soft_wrap=True)
    return True


def overrides_from(
    method: str | None, seed: int | None, epochs: int | None, device: str | None,
    data_dir: str | None, download: bool, sets: list[str] | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in sets or []:
        name, value = parse_set(item)
        out[name] = value
    named = {"train.method": method, "train.seed": seed, "train.epochs": epochs, "train.device": device, "data.data_dir": data_dir}
    out.update({k: v for k, v in named.items() if v is not None})
    if download:
        out["data.download"] = True
    return out


@app.command(cls=Command)
def presets(presets_dir: Optional[str] = PresetsDir, as_json: bool = JsonOutput) -> None:
    """List the presets: name, title, dataset, method, epochs."""
    try:
        check_presets_dir(presets_dir)
        rows = []
        for name, path in available_presets(presets_dir).items():
            cfg = load_preset(name, presets_dir=presets_dir)
            rows.append({"name": name, "title": cfg["title"], "dataset": cfg["data"]["dataset"],
                         "method": cfg["train"]["method"], "epochs": cfg["train"]["epochs"], "path": str(path)})
    except ConfigError as e:
        fail(str(e))
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    # Names are what `gdw run` takes: never shortened, in a narrow terminal or in a pipe.
    name_column = Column("name", no_wrap=True, min_width=max((len(r["name"]) for r in rows), default=4))
    table = Table(name_column, "title", "dataset", "method", "epochs", box=None, pad_edge=False)
    for r in rows:
        table.add_row(r["name"], r["title"], r["dataset"], r["method"], str(r["epochs"]))
    whole_lines().print(table)


@app.command(cls=Command)
def fields(as_json: bool = JsonOutput) -> None:
    """Every preset field (and `--set` key): type, default, range and meaning, from the preset schema."""
    rows = [(name, f) for name, f in TOP_LEVEL.items()]
    rows += [(f"{section}.{key}", f) for section, fs in SCHEMA.items() for key, f in fs.items()]
    if as_json:
        print(json.dumps([{"field": name, "type": f.kind.__name__, "default": f.default,
                           "range": _field_range(f), "meaning": f.help} for name, f in rows], indent=2))
        return
    table = Table(Column("field", no_wrap=True), "type", "default", "range", "meaning", box=None, pad_edge=False)
    for name, f in rows:
        table.add_row(name, f.kind.__name__, json.dumps(f.default), _field_range(f) or "", f.help)
    whole_lines().print(table)


def _field_range(f: Any) -> str | None:
    """Choices or numeric bounds; None for free text and booleans."""
    if f.choices or (f.kind in (int, float) and (f.lo is not None or f.hi is not None)):
        return f.describe_range()
    return None


@app.command(cls=Command)
def run(
    preset: str = typer.Argument(..., metavar="PRESET", help="preset name (see `gdw presets`) or path to a .toml"),
    headless: bool = typer.Option(False, "--headless", help="train in this process, print progress, no UI (the default when stdout is not a terminal)"),
    method: Optional[str] = typer.Option(None, "--method", help="method: " + ", ".join(METHODS)),
    seed: Optional[int] = typer.Option(None, "--seed", help=field_help("train.seed") + " (train.seed)"),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="epochs to train (train.epochs)"),
    device: Optional[str] = typer.Option(None, "--device", help=field_help("train.device")),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", metavar="DIR", help="where dataset files are"),
    download: bool = typer.Option(False, "--download", help="download CIFAR if missing"),
    sets: Optional[list[str]] = typer.Option(None, "--set", metavar="FIELD=VALUE", help="override any field, e.g. train.lr=0.05 (repeatable; see `gdw fields`)"),
    log: Optional[str] = LogOption,
    log_to: Optional[str] = LogToOption,
    runs_dir: Optional[str] = RunsDir,
    presets_dir: Optional[str] = PresetsDir,
) -> None:
    """Start a run. With --headless (or without a terminal) it trains here; otherwise it starts the engine detached and opens the UI on it."""
    headless = headless_unless_terminal(headless)
    try:
        overrides = overrides_from(method, seed, epochs, device, data_dir, download, sets)
        overrides.update(log_overrides(log, log_to))
        cfg = load_preset(preset, overrides, presets_dir)
        root = runs_dir_from(runs_dir)
        # Bad input makes no run: the device and the dataset's files are checked first (the UI's
        # launch form runs the same pre-flight).
        from engine.launch import preflight

        preflight(cfg)
        if headless:
            from engine.device import resolve_device

            resolve_device(cfg["train"]["device"])  # with torch, which the UI process never imports
        run_dir = create_run(root, cfg, presets_dir=presets_dir)
    except ConfigError as e:
        fail(str(e))
    if headless:
        raise typer.Exit(train_here(run_dir, resume=False))
    from engine.launch import launch_detached
    from gdw_tui.app import run_tui

    run_tui(root, presets_dir, open_run=run_dir, launched=launch_detached(run_dir))


@app.command(cls=Command)
def resume(
    run_ref: str = typer.Argument(..., metavar="RUN|SWEEP", help="run id or run directory, or a sweep id or name"),
    headless: bool = typer.Option(False, "--headless", help="train in this process instead of detached + UI (the default when stdout is not a terminal)"),
    detach: bool = typer.Option(False, "--detach", help="start the engine detached and return at once"),
    wait: bool = typer.Option(False, "--wait", help="a sweep: return only when every run has ended"),
    restart: Optional[list[str]] = typer.Option(None, "--restart", metavar="RUN", help="a sweep: start this run over (e.g. a corrupt checkpoint), keeping its attempt under attempts/N/ (repeatable)"),
    runs_dir: Optional[str] = RunsDir,
) -> None:
    """Continue a stopped, interrupted or failed run from its last checkpoint (or every unfinished run of a sweep)."""
    if sweep_commands.resume_if_sweep(run_ref, runs_dir, detach, wait, restart):
        return
    if not detach:
        headless = headless_unless_terminal(headless)
    root = runs_dir_from(runs_dir)
    try:
        run_dir = find_run(root, run_ref)
        status = run_status(run_dir)
        refusal = resume_refusal(run_dir, status)
        if refusal:
            # The reason the UI gives too (engine.rundir), and the command that helps here.
            how = {"running": f" with `gdw stop {run_dir.name}`", "finished": ""}.get(status, " with `gdw run`")
            raise ConfigError(f"run {run_dir.name} {refusal}{how}")
        # Checked here too, so a detached resume never starts an engine that can only refuse.
        _check_readable(run_dir)
        load_run_config(run_dir)
    except ConfigError as e:
        fail(str(e))
    if headless:
        raise typer.Exit(train_here(run_dir, resume=True))
    from engine.launch import launch_detached

    proc = launch_detached(run_dir, resume=True)
    if detach:
        console.print(f"resumed {run_dir.name} (engine pid {proc.pid})", markup=False)
        return
    from gdw_tui.app import run_tui

    run_tui(root, None, open_run=run_dir, launched=proc)


@app.command(cls=Command)
def stop(
    run_ref: str = typer.Argument(..., metavar="RUN|SWEEP", help="run id or run directory, or a sweep id or name"),
    now: bool = typer.Option(False, "--now", help="kill at once (SIGKILL) instead of a clean stop"),
    wait: float = typer.Option(30.0, "--wait", metavar="SECONDS", help="seconds to wait for the clean stop"),
    runs_dir: Optional[str] = RunsDir,
) -> None:
    """Stop a running run: it finishes the iteration, checkpoints and exits (resume later). A sweep: every run."""
    if sweep_commands.stop_if_sweep(run_ref, runs_dir, now, wait):
        return
    try:
        run_dir = find_run(runs_dir_from(runs_dir), run_ref)
        if not stop_run(run_dir, hard=now):
            raise ConfigError(not_stoppable_here(run_dir))
    except ConfigError as e:
        fail(str(e))
    deadline = time.time() + wait
    while time.time() < deadline and run_status(run_dir) == "running":
        time.sleep(0.1)
    status = run_status(run_dir)
    if status == "running":
        err.print(f"error: run {run_dir.name} did not stop within {wait:g} s (it is still running); "
                  f"`gdw stop {run_dir.name} --now` kills it (resume from its last checkpoint)",
                  markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    console.print(f"{run_dir.name}: {status}", markup=False)


def not_stoppable_here(run_dir: Path) -> str:
    """Why `gdw stop` could not signal the run: not running, or running on another host."""
    from engine.heartbeat import running_elsewhere

    status = run_status(run_dir)
    beat = running_elsewhere(run_dir) if status == "running" else None
    if beat is not None:
        return (f"run {run_dir.name} is running on host {beat.get('host', '?')} (its heartbeat is fresh), "
                f"out of reach of signals from here: stop it there, or cancel its Slurm job (`gdw stop SWEEP`)")
    return f"run {run_dir.name} is not running (status: {status})"


@app.command(cls=Command)
def show(
    run_ref: str = typer.Argument(..., metavar="RUN|SWEEP", help="run id or run directory, or a sweep id or name"),
    runs_dir: Optional[str] = RunsDir,
) -> None:
    """Print a run's summary (finished, running or failed), or a sweep's grid and runs."""
    if sweep_commands.show_if_sweep(run_ref, runs_dir):
        return
    try:
        run_dir = find_run(runs_dir_from(runs_dir), run_ref)
        _check_readable(run_dir)
    except ConfigError as e:
        fail(str(e))
    s, problem = read_summary_checked(run_dir)
    if problem:
        warn(problem)
    status = run_status(run_dir, s)
    table = Table(show_header=False, box=None, pad_edge=False)
    rows = [
        ("run", run_dir.name), ("status", status), ("preset", s.get("preset")), ("changes", _changes_text(run_dir, s)),
        ("method", s.get("method")),
        ("seed", s.get("seed")), ("dataset", s.get("dataset")), ("device", s.get("device")),
        ("epoch", f"{s.get('epoch', 0)}/{s.get('epochs', '?')}"),
        ("final_acc", _pct(s.get("final_acc"))), ("best_acc", _pct(s.get("best_acc"))),
        ("last test_acc", _pct(s.get("last_test_acc"))), ("wall", f"{s.get('wall_s') or 0:.1f}s"),
        ("directory", str(run_dir)),
    ]
    if s.get("message"):
        rows.append(("message", s["message"]))
    beat = describe_heartbeat(run_dir)
    if beat and status in ("running", "interrupted"):  # what the status on another host rests on
        rows.append(("heartbeat", beat))
    if status in ("interrupted", "stopped", "failed"):
        refusal = resume_refusal(run_dir, status)
        gone = "the engine is gone without a final event; " if status == "interrupted" else ""
        if refusal is None:
            rows.append(("hint", f"{gone}`gdw resume {run_dir.name}` continues from the last checkpoint"))
        else:
            rows.append(("hint", f"{gone}it {refusal} with `gdw run`"))
    for k, v in rows:
        table.add_row(k, "-" if v is None else str(v))
    whole_lines().print(table)
    if status == "failed":
        tb = _last_traceback(run_dir)
        if tb:
            console.print(tb, markup=False, highlight=False)


def _changes_text(run_dir: Path, summary: dict[str, Any]) -> str:
    """What the run set differently from its preset (`noise_rate=0.4 epochs=300`), or says there is nothing."""
    from engine.changes import run_changes

    changes = run_changes(run_dir, None, summary=summary)
    if changes == "?":
        return "unknown (its config or its preset cannot be read here)"
    return changes or "none (the preset as it is)"


def _check_readable(run_dir: Path) -> None:
    """A run written by a newer gdw-tui (newer major event schema) is refused with one line."""
    from engine.events import SchemaError, check_file_version

    try:
        check_file_version(run_dir / EVENTS)
    except SchemaError as e:
        raise ConfigError(f"run {run_dir.name}: {e}") from None


def whole_lines() -> Console:
    """The console for tables: a file or a pipe gets whole lines (Rich would fit them to 80
    columns, shortening run ids and wrapping paths and messages)."""
    return console if console.is_terminal else Console(file=sys.stdout, width=1000)


def _pct(x: Any) -> str | None:
    return None if x is None else f"{x:.2f}"


def _last_traceback(run_dir: Path) -> str | None:
    from engine.events import read_events

    try:
        fails = [e for e in read_events(run_dir / EVENTS) if e["type"] == "failure"]
    except Exception:
        return None
    return fails[-1].get("traceback") if fails else None


RUN_STATUSES = ("created", "running", "stopped", "interrupted", "failed", "finished")


@app.command("runs", cls=Command)
def runs_cmd(
    runs_dir: Optional[str] = RunsDir,
    sweep: Optional[str] = typer.Option(None, "--sweep", metavar="SWEEP", help="only the runs of this sweep (id or name)"),
    status: Optional[str] = typer.Option(None, "--status", metavar="STATUS", help=f"only runs with this status: {', '.join(RUN_STATUSES)}"),
    preset: Optional[str] = typer.Option(None, "--preset", metavar="PRESET", help="only runs made from this preset"),
) -> None:
    """List the runs in the runs directory with their honest status and what they changed from their preset."""
    from engine.changes import run_changes

    root = runs_dir_from(runs_dir)
    if not root.is_dir():
        fail(f"no runs directory at {root.resolve()} (choose one with --runs-dir or $GDW_RUNS_DIR)")
    if status is not None and status not in RUN_STATUSES:
        fail(f"unknown status '{status}'; valid statuses: {', '.join(RUN_STATUSES)}")
    wanted = [f"--{k} {v}" for k, v in (("sweep", sweep), ("status", status), ("preset", preset)) if v is not None]
    runs = list_runs(root)
    if sweep is not None:
        try:
            found = sweep_commands.sweep_of(root, sweep)
        except ConfigError as e:
            fail(str(e))
        if found is None:
            fail(f"no sweep '{sweep}' in {root.resolve()} (`gdw sweeps` lists them)")
        runs = [s for s in runs if s.get("sweep") == found.id]
    runs = [s for s in runs if (status is None or s["status"] == status) and (preset is None or s.get("preset") == preset)]
    if not runs:
        console.print(f"no runs in {root.resolve()}" + (f" match {' '.join(wanted)}" if wanted else ""), markup=False, highlight=False, soft_wrap=True)
        return
    presets: dict[str, Any] = {}  # each preset read once for the changes column
    # Plain aligned text (Rich took most of a minute for 10,000 runs), never shortened: run ids
    # are what `show`, `resume` and `stop` take.
    print_table(["run", "status", "preset", "method", "seed", "epoch", "final", "best", "changes"],
                ([s["run_id"], s["status"], str(s.get("preset", "")), str(s.get("method", "")), str(s.get("seed", "")),
                  f"{s.get('epoch', 0)}/{s.get('epochs', '?')}", _pct(s.get("final_acc")) or "-", _pct(s.get("best_acc")) or "-",
                  run_changes(Path(s["path"]), None, presets, s) or "-"] for s in runs))
    for s in runs:
        if s.get("problem"):
            warn(s["problem"])


@app.command(cls=Command)
def tui(
    run_ref: Optional[str] = typer.Argument(None, metavar="RUN", help="a run id or run directory to open"),
    serve: bool = typer.Option(False, "--serve", help="serve the UI in a browser tab (textual-serve), behind a token"),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="port for --serve"),
    host: Optional[str] = typer.Option(None, "--host", help="address for --serve to listen on (default 127.0.0.1: this machine only)"),
    token: Optional[str] = typer.Option(None, "--token", help="the token for --serve's URL (also $GDW_TUI_TOKEN; default: a random one)"),
    runs_dir: Optional[str] = RunsDir,
    presets_dir: Optional[str] = PresetsDir,
) -> None:
    """Open the terminal UI (`gdw-tui` is this command)."""
    from gdw_tui.app import check_serve_available, run_tui

    root = runs_dir_from(runs_dir)
    try:
        open_run = find_run(root, run_ref) if run_ref else None
        check_presets_dir(presets_dir)
        for given, name in ((host, "--host"), (token, "--token")):
            if given is not None and not serve:
                raise ConfigError(f"{name} needs --serve")
        if serve:
            check_serve_available()
            from gdw_tui.serve import choose_token

            token = choose_token(token)
    except ConfigError as e:
        fail(str(e))

    run_tui(root, presets_dir, open_run, serve=serve, port=port, host=host, token=token)


@contextlib.contextmanager
def progress_on_stderr(what: str) -> Iterator[Callable[[str], None]]:
    """What a long measurement is doing, on stderr (stdout keeps the result, e.g. --json): one
    line updated in place on a terminal, a line per step otherwise."""
    if err.is_terminal:
        with err.status(what) as status:
            yield lambda message: status.update(f"{what}: {message}")
    else:
        yield lambda message: err.print(f"{what}: {message}", markup=False, highlight=False, soft_wrap=True)


@app.command(cls=Command)
def bench(
    methods: Optional[str] = typer.Option(None, "--methods", help="comma-separated methods, or gdw-naive (GDW the authors' way); default: all but gdw-nozm"),
    arch: str = typer.Option("resnet32", "--arch", help="resnet32 (CIFAR) or digits_mlp"),
    batch_size: int = typer.Option(100, "--batch-size", min=1),
    classes: int = typer.Option(10, "--classes", min=2),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N, auto"),
    warmup: int = typer.Option(2, "--warmup", min=0),
    iters: int = typer.Option(10, "--iters", min=1),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="torch CPU threads"),
    channels_last: bool = typer.Option(False, "--channels-last"),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the plain forward (ERM)"),
    bf16: bool = typer.Option(False, "--bf16", help="bf16 autocast (CUDA)"),
    augmentation: bool = typer.Option(True, "--augmentation/--no-augmentation", help="also time the data pipelines"),
    malloc_tuning: bool = typer.Option(True, "--malloc-tuning/--system-malloc",
                                       help="keep freed memory for reuse, as training does (engine.allocator)"),
    as_json: bool = JsonOutput,
) -> None:
    """Time one iteration of each method (and the augmentation pipelines): median, spread, ratio to ERM."""
    from engine.config import check_device_syntax

    try:
        check_device_syntax(device)
        from engine.bench import DEFAULT_BENCH_METHODS, run_bench

        names = DEFAULT_BENCH_METHODS if methods is None else tuple(m.strip() for m in methods.split(",") if m.strip())

        with progress_on_stderr("bench") as progress:
            result = run_bench(names, arch, batch_size, device, warmup, iters, classes, channels_last, compile_, bf16,
                               augmentation, threads, malloc_tuning, progress)
    except ConfigError as e:
        fail(str(e))
    if as_json:
        print(json.dumps(result, indent=2))
        return
    console.print(f"{result['device_name']} · torch {result['torch']} · {result['arch']} · batch {batch_size} · "
                  f"{result['threads']} threads · options {result['options']}", markup=False, highlight=False)
    table = Table("method", "median ms", "p25–p75 ms", "min ms", "× erm", box=None, pad_edge=False)
    for r in result["methods"]:
        ratio = "-" if r["x_erm"] is None else f"{r['x_erm']:.2f}"
        table.add_row(r["method"], f"{1000 * r['median_s']:.1f}", f"{1000 * r['p25_s']:.1f}–{1000 * r['p75_s']:.1f}",
                      f"{1000 * r['min_s']:.1f}", ratio)
    console.print(table)
    if "gdw_over_mwnet" in result:
        console.print(f"gdw / mwnet = {result['gdw_over_mwnet']:.3f}", markup=False)
    if "insw_over_mwnet" in result:
        console.print(f"insw / mwnet = {result['insw_over_mwnet']:.3f}", markup=False)
    if "naive_over_gdw" in result:
        console.print(f"gdw-naive / gdw = {result['naive_over_gdw']:.2f} (speed-up of the lean meta step)", markup=False)
    if "augmentation" in result:
        a = result["augmentation"]
        console.print(f"augmentation: tensor pipeline {a['tensor_images_s']:,.0f} images/s · per-image PIL "
                      f"{a['pil_images_s']:,.0f} images/s · {a['tensor_images_s'] / a['pil_images_s']:.1f}×", markup=False)


sweep_commands.register(app)  # gdw sweep, gdw sweeps, gdw report
export_command.register(app)  # gdw export
plot_command.register(app)  # gdw plot


def main() -> None:
    try:
        app()
    except SystemExit as e:  # a run trained here: skip the teardown of torch (engine.fast_exit)
        exit_process(e.code)


def tui_main() -> None:
    """`gdw-tui ARGS` is `gdw tui ARGS`: one command, one set of options and errors."""
    app(args=["tui", *sys.argv[1:]], prog_name="gdw")


if __name__ == "__main__":
    main()
