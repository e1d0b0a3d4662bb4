"""`gdw sweep`, `gdw sweeps`, `gdw report`, and the sweep side of `gdw show|stop|resume`.

Registered on the `gdw` app by `register(app)`. Bad input (presets, methods, seeds, grid, sweep
file, executor options) ends with one line and exit code 2, before anything is created.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from engine.config import ConfigError, check_presets_dir, coerce, resolve_preset_path
from engine.runs import read_summary, runs_dir_from
from engine.sweep.spec import (
    CONFIRM_ABOVE, PAPER_SEEDS, SweepSpec, builtin_sweeps, is_sweep_file, load_sweep_file, parse_grid_axis,
    parse_methods, parse_options, parse_seeds, parse_sets,
)
from engine.sweep.executor import check_executor, executor_text, preflight
from engine.sweep.store import Sweep, counts, died_hint, list_sweeps, run_states, scheduler_alive, scheduler_state, sweep_named
from .plain_table import print_table

from .errors import fail, warn

console = Console()
err = Console(stderr=True)
WAIT_POLL_S = 1.0


def _out() -> Console:
    """Whole lines for files and pipes (Rich would fit them to 80 columns)."""
    return console if console.is_terminal else Console(file=sys.stdout, width=1000)


# --- resolving references ---------------------------------------------------------------------------


def sweep_of(runs_dir: Path, ref: str) -> Sweep | None:
    """The sweep `ref` names, if it names one rather than a run (engine.sweep.store.sweep_named)."""
    return sweep_named(runs_dir, ref)


# --- gdw sweep ----------------------------------------------------------------------------------------


def build_spec(refs: list[str], methods: str | None, seeds: str | None, sets: list[str] | None, grid: list[str] | None,
               name: str | None, executor: str | None, presets_dir: str | None) -> SweepSpec:
    sweep_file = None
    if len(refs) == 1:
        builtin = builtin_sweeps()
        if is_sweep_file(refs[0]):
            sweep_file = refs[0]
        elif refs[0] in builtin and not _is_preset(refs[0], presets_dir):
            sweep_file = str(builtin[refs[0]])
    if sweep_file is None and any(is_sweep_file(r) for r in refs):
        raise ConfigError("a sweep file is given alone: `gdw sweep FILE.toml [options]` (not mixed with presets)")
    spec = load_sweep_file(sweep_file) if sweep_file else SweepSpec(presets=list(refs), seeds=list(PAPER_SEEDS))
    if methods is not None:
        spec.methods = parse_methods(methods)
    if seeds is not None:
        spec.seeds = parse_seeds(seeds)
    spec.sets = {**spec.sets, **parse_sets(sets)}
    for item in grid or []:
        key, values = parse_grid_axis(item)
        spec.grid[key] = values
    if name is not None:
        if not name.strip():
            raise ConfigError("--name must not be empty")
        spec.name = name.strip()
    if executor is not None:
        check_executor(executor)
        if executor != spec.executor and sweep_file:
            from engine.sweep.spec import file_options

            spec.options = file_options(sweep_file, executor)
        spec.executor = executor
    return spec


def _is_preset(name: str, presets_dir: str | None) -> bool:
    try:
        resolve_preset_path(name, presets_dir)
        return True
    except ConfigError:
        return False


def cli_options(executor: str, local: dict[str, Any], slurm: dict[str, Any]) -> dict[str, Any]:
    given_local = {k: v for k, v in local.items() if v is not None}
    given_slurm = {k: v for k, v in slurm.items() if v not in (None, [])}
    if executor == "local" and given_slurm:
        raise ConfigError(f"--slurm-{next(iter(given_slurm)).replace('_', '-')} needs --executor slurm")
    if executor == "slurm" and given_local:
        raise ConfigError(f"--{next(iter(given_local)).replace('_', '-')} is an option of the local executor (this sweep uses slurm)")
    return parse_options(executor, given_local if executor == "local" else given_slurm, "command line")


def submit_and_follow(sweep: Sweep, run_dirs: list[Path], detach: bool, wait: bool) -> int:
    """Hand the runs to the sweep's executor; follow them when asked. Returns the exit code."""
    from engine.sweep.executor import make_executor
    from engine.sweep.progress import SweepProgress

    live = console.is_terminal
    foreground = sweep.executor == "local" and not detach
    try:
        with SweepProgress(console, live and (foreground or wait)) as progress:
            options = {**sweep.options, "detach": detach}
            if foreground:
                options.update(on_refresh=progress.refresh, say=progress.say)
            executor = make_executor(sweep.executor, options)
            executor.submit(sweep, run_dirs)
            if wait and not foreground:
                follow(sweep, executor, progress)
            states = progress.refresh(sweep, executor.job_states(sweep)) if (foreground or wait) else {}
    except ConfigError as e:  # the executor refused (e.g. the cluster rejected the jobs): the runs wait
        err.print(f"error: {e} (the sweep's runs are kept; `gdw resume {sweep.id}` tries again)",
                  markup=False, highlight=False, soft_wrap=True)
        print(f"sweep={sweep.id}", flush=True)
        return 2
    except KeyboardInterrupt:
        # The runs are detached processes: they go on without this command.
        console.print(f"interrupted: the runs go on; `gdw resume {sweep.id}` adopts them, `gdw stop {sweep.id}` stops them",
                      markup=False, highlight=False, soft_wrap=True)
        print(f"sweep={sweep.id}", flush=True)
        return 130
    short = not_finished(sweep.reload(), states) if (foreground or wait) else []
    if short:
        console.print(f"{len(short)} of {len(states)} run(s) did not finish:", markup=False, highlight=False, soft_wrap=True)
        for line in short:
            console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
        console.print(f"`gdw show {sweep.id}` lists them, `gdw resume {sweep.id}` retries them",
                      markup=False, highlight=False, soft_wrap=True)
    elif detach and not wait:
        console.print(f"scheduler detached; follow with `gdw show {sweep.id}` or `gdw-tui`", markup=False, highlight=False, soft_wrap=True)
    print(f"sweep={sweep.id}", flush=True)
    return 1 if short else 0


def not_finished(sweep: Sweep, states: dict[str, str]) -> list[str]:
    """`RUN status (why)` for each run that ended without finishing: failed, killed, missing, or left
    pending by a scheduler that died. A sweep the user stopped may leave runs stopped or pending."""
    out = []
    for run_id, status in states.items():
        if status == "finished" or (sweep.stopped and status in ("stopped", "created", "interrupted")):
            continue
        message = read_summary(sweep.runs_dir / run_id).get("message") if status == "failed" else ""
        out.append(f"{run_id} {status}" + (f" ({message})" if message else ""))
    return out


def follow(sweep: Sweep, executor: Any, progress: Any) -> None:
    """Until every run has ended (and, locally, the scheduler is gone)."""
    from engine.sweep.task import busy
    from engine.sweep.progress import ended

    proc = getattr(executor, "scheduler_proc", None)  # a scheduler just started may not hold its lock yet
    while True:
        states = progress.refresh(sweep, executor.job_states(sweep))
        if sweep.executor == "local":
            starting = proc is not None and proc.poll() is None
            if not starting and not scheduler_alive(sweep) and not any(busy(d) for d in sweep.run_dirs()):
                return
        elif ended(states):
            return
        time.sleep(WAIT_POLL_S)


def register(app: typer.Typer) -> None:
    """Add the sweep commands to the `gdw` app."""
    from .help_format import Command

    app.command("sweep", cls=Command)(sweep_cmd)
    app.command("sweeps", cls=Command)(sweeps_cmd)
    app.command("report", cls=Command)(report_cmd)


def sweep_cmd(
    refs: list[str] = typer.Argument(..., metavar="PRESET... | FILE.toml", help="presets (names or .toml paths), or one sweep file"),
    methods: Optional[str] = typer.Option(None, "--methods", metavar="M1,M2,...", help="comma-separated methods (default: each preset's own)"),
    seeds: Optional[str] = typer.Option(None, "--seeds", metavar="S1,S2,...", help="comma-separated seeds (default: 1,10,100,1000,10000)"),
    sets: Optional[list[str]] = typer.Option(None, "--set", metavar="FIELD=VALUE", help="section.key=value for every run (repeatable)"),
    grid: Optional[list[str]] = typer.Option(None, "--grid", metavar="FIELD=V1,V2,...", help="section.key=v1,v2,... a cartesian axis (repeatable)"),
    name: Optional[str] = typer.Option(None, "--name", help="the sweep's name (default: the file's or the first preset)"),
    runs_dir: Optional[str] = typer.Option(None, "--runs-dir", help="runs directory (default: $GDW_RUNS_DIR or ./runs)"),
    presets_dir: Optional[str] = typer.Option(None, "--presets-dir", help="extra presets directory (also $GDW_PRESETS)"),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", metavar="DIR", help="where dataset files are"),
    download: bool = typer.Option(False, "--download", help="download CIFAR if missing (each run, as `gdw run --download`)"),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda (GPU slots come from --gpus)"),
    executor: Optional[str] = typer.Option(None, "--executor", help="local (default) or slurm"),
    gpus: Optional[str] = typer.Option(None, "--gpus", help="local: GPU indices, e.g. 0,1 (default: all visible)"),
    per_gpu: Optional[int] = typer.Option(None, "--per-gpu", help="local: runs sharing one GPU (default 1)"),
    workers: Optional[int] = typer.Option(None, "--workers", help="local, no GPUs: parallel runs (default 1)"),
    detach: bool = typer.Option(False, "--detach", help="detach the scheduler and return at once"),
    wait: bool = typer.Option(False, "--wait", help="return only when every run has ended"),
    yes: bool = typer.Option(False, "--yes", help=f"create a sweep of more than {CONFIRM_ABOVE} runs without asking (scripts)"),
    force: bool = typer.Option(False, "--force", help="run label-noise methods (glc, coteach) on imbalance-only presets too"),
    dry_run: bool = typer.Option(False, "--dry-run", help="check the sweep (presets, data, executor, device) and list its runs; create and run nothing"),
    slurm_partition: Optional[str] = typer.Option(None, "--slurm-partition"),
    slurm_time: Optional[int] = typer.Option(None, "--slurm-time", help="minutes per run"),
    slurm_gpus: Optional[int] = typer.Option(None, "--slurm-gpus", help="GPUs per task"),
    slurm_cpus: Optional[int] = typer.Option(None, "--slurm-cpus", help="CPUs per task"),
    slurm_mem: Optional[int] = typer.Option(None, "--slurm-mem", help="GB per task"),
    slurm_array_parallelism: Optional[int] = typer.Option(None, "--slurm-array-parallelism"),
    slurm_setup: Optional[list[str]] = typer.Option(None, "--slurm-setup", help="a shell line before each task (repeatable)"),
    slurm_account: Optional[str] = typer.Option(None, "--slurm-account"),
    slurm_qos: Optional[str] = typer.Option(None, "--slurm-qos"),
    log: Optional[str] = typer.Option(None, "--log", metavar="BACKEND", help="every run streams its records live: tensorboard, mlflow or wandb (train.log)"),
    log_to: Optional[str] = typer.Option(None, "--log-to", metavar="DIR|URI", help="where --log writes: a directory, or an MLflow tracking URI (train.log_to)"),
) -> None:
    """Run a grid: presets × methods × seeds × --grid axes, as ordinary runs, on this machine or Slurm."""
    from engine.sweep.start import check_sweep
    from engine.sweep.store import create_sweep

    try:
        check_presets_dir(presets_dir)
        spec = build_spec(refs, methods, seeds, sets, grid, name, executor, presets_dir)
        spec.force = spec.force or force
        if data_dir is not None:
            spec.sets["data.data_dir"] = data_dir
        if download:
            spec.sets["data.download"] = True
        if device is not None:
            spec.sets["train.device"] = coerce("train.device", device)
        for dotted, value in (("train.log", log), ("train.log_to", log_to)):
            if value is not None:
                spec.sets[dotted] = coerce(dotted, value)
        local = {"gpus": gpus, "per_gpu": per_gpu, "workers": workers}
        slurm = {"partition": slurm_partition, "time": slurm_time, "gpus": slurm_gpus, "cpus": slurm_cpus,
                 "mem": slurm_mem, "array_parallelism": slurm_array_parallelism, "setup": slurm_setup,
                 "account": slurm_account, "qos": slurm_qos}
        spec.options = {**spec.options, **cli_options(spec.executor, local, slurm)}
        checked = check_sweep(spec, presets_dir)  # the sweep form of gdw-tui makes the same checks
        plans, slots = checked.plans, checked.slots
        confirm_size(len(plans), yes)
        root = runs_dir_from(runs_dir)
        sweep = None if dry_run else create_sweep(root, spec, plans, presets_dir)
    except ConfigError as e:
        fail(str(e))
    except KeyboardInterrupt:
        err.print("interrupted: no sweep was created (nothing is left behind)", markup=False, highlight=False)
        raise typer.Exit(130) from None
    axes = " × ".join([f"{len(spec.presets)} preset(s)", f"{len(spec.methods) if spec.methods else 1} method(s)",
                       f"{len(spec.seeds)} seed(s)"] + [f"{len(v)} {k}" for k, v in spec.grid.items()])
    where = f"{len(slots)} slot(s): {', '.join(s.label() for s in slots)}" if spec.executor == "local" else "slurm"
    if sweep is None:
        _print_dry_run(spec.name or spec.presets[0], plans, axes, where)
        return
    console.print(f"sweep {sweep.id}: {len(plans)} runs ({axes}) on {where}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(submit_and_follow(sweep, sweep.run_dirs(), detach, wait))


def confirm_size(runs: int, yes: bool) -> None:
    """A sweep of more than CONFIRM_ABOVE runs is created only when confirmed (a terminal) or with --yes."""
    if runs <= CONFIRM_ABOVE or yes:
        return
    if not sys.stdin.isatty():
        raise ConfigError(f"this sweep has {runs:,} runs (more than {CONFIRM_ABOVE}): add --yes to create them")
    if not typer.confirm(f"create {runs:,} runs?", default=False, err=True):
        err.print("nothing created", markup=False, highlight=False)
        raise typer.Exit(1)


def _print_dry_run(name: str, plans: list, axes: str, where: str) -> None:
    """`gdw sweep --dry-run`: what the sweep would run, after the same checks; nothing is created."""
    out = _out()
    out.print(f"dry run of sweep {name}: {len(plans)} runs ({axes}) on {where}; presets, data files, executor and "
              "device checked; nothing created", markup=False, highlight=False, soft_wrap=True)
    table = Table("setting", "method", "seed", "epochs", "device", box=None, pad_edge=False)
    for p in plans:
        table.add_row(p.setting, p.method, str(p.seed), str(p.config["train"]["epochs"]), str(p.config["train"]["device"]))
    out.print(table)


def sweeps_cmd(runs_dir: Optional[str] = typer.Option(None, "--runs-dir", help="runs directory (default: $GDW_RUNS_DIR or ./runs)")) -> None:
    """List the sweeps: id, name, runs done/running/failed/pending (and missing: deleted), executor."""
    from engine.sweep.executor import make_executor

    root = runs_dir_from(runs_dir)
    died: list[Sweep] = []
    unreadable: list[str] = []
    rows = []
    for sweep in list_sweeps(root, unreadable):
        states = run_states(sweep, _job_states(sweep, make_executor))
        c = counts(states)
        scheduler = scheduler_state(sweep, states)
        if scheduler == "died":
            died.append(sweep)
        rows.append((sweep.id, sweep.name, str(len(sweep.runs)), str(c["done"]), str(c["running"]), str(c["failed"]),
                     str(c["pending"]), str(c["missing"]), sweep.executor, scheduler))
    # Deleted runs get their own column where there are any (not counted as failed).
    columns = ["sweep", "name", "runs", "done", "running", "failed", "pending", "missing", "executor", "scheduler"]
    missing = columns.index("missing")
    keep = [i for i in range(len(columns)) if i != missing or any(row[missing] != "0" for row in rows)]
    table = Table(*(columns[i] for i in keep), box=None, pad_edge=False)
    for row in rows:
        table.add_row(*(row[i] for i in keep))
    _out().print(table)
    for sweep in died:
        _out().print(f"{sweep.id}: {died_hint(sweep)}", markup=False, highlight=False, soft_wrap=True)
    for line in unreadable:
        warn(f"{line} (sweep left out)")


def _job_states(sweep: Sweep, make_executor: Any) -> dict[str, str]:
    if sweep.executor == "local":
        return {}
    try:
        return make_executor(sweep.executor, sweep.options).job_states(sweep)
    except (ConfigError, OSError, ImportError):
        return {}  # no scheduler reachable here: the run directories alone tell the status


# --- the sweep side of show, stop, resume -------------------------------------------------------------


def show_if_sweep(ref: str, runs_dir: str | None) -> bool:
    """`gdw show SWEEP`: the grid and every run's status. False when `ref` is not a sweep."""
    from engine.sweep.executor import make_executor
    from engine.sweep.progress import counts_line, grid_table

    root = runs_dir_from(runs_dir)
    try:
        sweep = sweep_of(root, ref)
    except ConfigError as e:
        fail(str(e))
    if sweep is None:
        return False
    states = run_states(sweep, _job_states(sweep, make_executor))
    out = _out()
    head = Table(show_header=False, box=None, pad_edge=False)
    for k, v in [("sweep", sweep.id), ("name", sweep.name), ("executor", executor_text(sweep.executor, sweep.options)),
                 ("scheduler", scheduler_line(sweep, states)),
                 ("directory", str(sweep.dir))]:
        head.add_row(k, v)
    out.print(head)
    out.print(grid_table(sweep, states))
    rows = []
    for entry in sweep.runs:
        s = read_summary(root / entry["run_id"])
        final = s.get("final_acc")
        rows.append([entry["run_id"], entry["setting"], entry["method"], str(entry["seed"]), states[entry["run_id"]],
                     f"{s.get('epoch', 0)}/{s.get('epochs', '?')}", "-" if final is None else f"{final:.2f}"])
    print_table(["run", "setting", "method", "seed", "status", "epoch", "final"], rows)  # plain: 10,000 rows print at once
    out.print(counts_line(sweep, states), markup=False, highlight=False)
    return True


def scheduler_line(sweep: Sweep, states: dict[str, str]) -> str:
    state = scheduler_state(sweep, states)
    return {"stopped": "stopped (gdw resume to go on)", "died": died_hint(sweep)}.get(state, state)


def stop_if_sweep(ref: str, runs_dir: str | None, now: bool, wait_s: float) -> bool:
    """`gdw stop SWEEP`: no more starts, and a clean stop of every run (scancel for Slurm)."""
    from engine.sweep.executor import make_executor
    from engine.sweep.task import busy

    root = runs_dir_from(runs_dir)
    try:
        sweep = sweep_of(root, ref)
        if sweep is None:
            return False
        executor = make_executor(sweep.executor, sweep.options)
    except ConfigError as e:
        fail(str(e))
    try:
        sweep.set_stopped(True)
    except OSError as e:  # a full or read-only disk: stopping must not depend on writing
        from engine.sweep.local import signal_scheduler

        told = sweep.executor == "local" and signal_scheduler(sweep)
        warn(f"cannot mark {sweep.dir.name}/sweep.json stopped ({e.strerror or e}); "
             + ("its scheduler was told by signal to start no more runs; " if told else "") + "stopping the runs")
    deadline = time.time() + wait_s
    signalled = set()
    while True:  # again and again: a task launched just before the flag was set is stopped too
        live = [d for d in sweep.run_dirs() if busy(d)]
        todo = [d for d in live if d.name not in signalled or now]
        if todo:
            if now:
                from engine.runs import stop_run

                for d in todo:
                    stop_run(d, hard=True)
            else:
                executor.cancel(sweep, todo)
            signalled.update(d.name for d in todo)
        if sweep.executor == "slurm" and not signalled:
            executor.cancel(sweep, sweep.run_dirs())
            signalled.add("*")
        if not live or time.time() > deadline:
            break
        time.sleep(0.2)
    from engine.sweep.progress import counts_line

    console.print(counts_line(sweep, run_states(sweep)) + " · stopped (resume with `gdw resume " + sweep.id + "`)",
                  markup=False, highlight=False, soft_wrap=True)
    return True


def resume_if_sweep(ref: str, runs_dir: str | None, detach: bool, wait: bool = False, restart: list[str] | None = None) -> bool:
    """`gdw resume SWEEP`: finished runs skipped, the others resumed or started; runs still
    going are adopted. Safe to run twice: no run is ever started twice. `restart`: runs of the
    sweep to start over (e.g. a corrupt checkpoint), each attempt kept under attempts/N/."""
    from engine.sweep.local import wait_for_scheduler_exit
    from engine.sweep.task import busy, restart as start_over

    root = runs_dir_from(runs_dir)
    try:
        sweep = sweep_of(root, ref)
        if sweep is None:
            if restart:
                raise ConfigError("--restart RUN starts a run of a sweep over: `gdw resume SWEEP --restart RUN`")
            return False
        again = [sweep_run(sweep, r) for r in restart or []]
        if sweep.executor == "local" and sweep.stopped and scheduler_alive(sweep):
            wait_for_scheduler_exit(sweep, 30.0)  # the scheduler of a stopped sweep ends with its last run
        if sweep.executor == "slurm":
            preflight(sweep.executor, sweep.options)
        for run_dir in again:
            start_over(run_dir)
            console.print(f"{run_dir.name}: starts over (the old attempt is kept under {run_dir.name}/attempts/)",
                          markup=False, highlight=False, soft_wrap=True)
        sweep.set_stopped(False)
    except ConfigError as e:
        fail(str(e))
    missing = [d for d in sweep.run_dirs() if not d.is_dir()]
    todo = [d for d in sweep.run_dirs() if d.is_dir() and (read_summary(d).get("status") != "finished" or busy(d))]
    gone = f"; {len(missing)} missing (deleted): {', '.join(d.name for d in missing)}" if missing else ""
    console.print(f"sweep {sweep.id}: {len(sweep.runs) - len(todo) - len(missing)} finished, {len(todo)} to resume, "
                  f"adopt or start{gone}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(submit_and_follow(sweep, todo, detach, wait))


def sweep_run(sweep: Sweep, ref: str) -> Path:
    """A run of the sweep: its id, or a unique prefix or suffix of one; ConfigError otherwise."""
    ids = [e["run_id"] for e in sweep.runs]
    matches = [i for i in ids if i == ref] or [i for i in ids if i.startswith(ref) or i.endswith(ref)]
    if len(matches) != 1:
        what = "is ambiguous" if matches else "is not a run of"
        raise ConfigError(f"--restart {ref} {what} sweep {sweep.id} (its runs: `gdw show {sweep.id}`)")
    run_dir = sweep.runs_dir / matches[0]
    if not run_dir.is_dir():
        raise ConfigError(f"--restart {ref}: run {matches[0]} is missing (its directory was deleted)")
    return run_dir


# --- gdw report ---------------------------------------------------------------------------------------


def report_cmd(
    refs: list[str] = typer.Argument(..., metavar="SWEEP|RUN...", help="sweeps and/or runs"),
    fmt: Optional[str] = typer.Option(None, "--format", help="md, csv or latex (default: a table on a terminal, md otherwise)"),
    out: Optional[str] = typer.Option(None, "--out", help="write to this file instead of stdout"),
    runs_dir: Optional[str] = typer.Option(None, "--runs-dir", help="runs directory (default: $GDW_RUNS_DIR or ./runs)"),
) -> None:
    """The paper's table: settings × methods, mean ± std of final_acc over seeds, GDW − best baseline with a 95% CI."""
    from engine.sweep.report import FORMATS, collect, render, report_runs, rich_table

    try:
        if fmt is not None and fmt not in FORMATS:
            raise ConfigError(f"--format must be one of {', '.join(FORMATS)} (got {fmt!r})")
        if out is not None:
            parent = Path(out).expanduser().parent
            if not parent.is_dir():
                raise ConfigError(f"--out: directory {parent} does not exist")
            if Path(out).is_dir():
                raise ConfigError(f"--out {out} is a directory; give a file name")
        report = collect(report_runs(runs_dir_from(runs_dir), refs))
        if not report.rows:
            raise ConfigError("no runs to report")
    except ConfigError as e:
        fail(str(e))
    if out is None and fmt is None and console.is_terminal:
        console.print(rich_table(report))
        return
    if fmt is None and out is not None:
        fmt = {".csv": "csv", ".tex": "latex"}.get(Path(out).suffix, "md")
    text = render(report, fmt or "md")
    if out is None:
        sys.stdout.write(text)
    else:
        try:
            Path(out).expanduser().write_text(text, encoding="utf-8")
        except OSError as e:
            fail(f"cannot write {out}: {e.strerror}")
        console.print(f"wrote {out}", markup=False, highlight=False)
    for note in report.notes:  # on stderr: the table stays clean for a file, the reader still sees them
        err.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
