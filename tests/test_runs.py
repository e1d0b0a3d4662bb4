"""Run directories (engine.runs): unique ids under concurrency, summaries, the engine lock, honest status, stop."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import pytest

from engine import runs
from engine.config import ConfigError, load_preset
from engine.runs import (
    acquire_lock,
    create_run,
    engine_alive,
    ensure_runs_dir,
    find_run,
    list_runs,
    lock_pid,
    read_summary,
    run_status,
    stop_run,
    write_summary,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cfg():
    return load_preset("digits-unif60", {"train.seed": 10})


def one_line(message: str) -> str:
    assert "\n" not in message
    return message


# --- creating runs --------------------------------------------------------------------------------


def test_create_run_writes_config_and_created_summary(tmp_path, cfg):
    runs_dir = tmp_path / "runs" / "nested"  # created on demand
    before = time.time()
    run = create_run(runs_dir, cfg)
    assert run.parent == runs_dir
    stamp, _, rest = run.name.partition("-digits-unif60-")
    assert rest == "gdw-s10" and len(stamp) == len("20240101-120000")
    assert tomllib.loads((run / "config.toml").read_text()) == cfg
    s = read_summary(run)
    assert s["run_id"] == run.name and s["status"] == "created"
    assert (s["preset"], s["method"], s["seed"], s["dataset"], s["epochs"]) == ("digits-unif60", "gdw", 10, "digits", cfg["train"]["epochs"])
    assert s["final_acc"] is None and s["best_acc"] is None
    assert before <= s["created"] <= time.time()
    assert run_status(run) == "created"
    assert sorted(p.name for p in run.iterdir()) == ["config.toml", "summary.json"]  # no temporary files left


def test_run_names_are_readable_and_safe(tmp_path, cfg):
    odd = {**cfg, "preset": "my preset/../x", "train": {**cfg["train"], "method": "mwnet"}}
    run = create_run(tmp_path, odd)
    assert run.parent == tmp_path and run.name.endswith("-my-preset-..-x-mwnet-s10")


def test_many_runs_in_the_same_second_get_unique_dirs(tmp_path, cfg):
    made = [create_run(tmp_path, cfg) for _ in range(30)]
    assert len({p.name for p in made}) == 30
    pattern = re.compile(r"^\d{8}-\d{6}-digits-unif60-gdw-s10(-\d+)?$")
    assert all(pattern.match(p.name) for p in made), [p.name for p in made]
    assert any(p.name.endswith("-s10-2") for p in made)  # a second one in the same second got a suffix
    for p in made:
        assert tomllib.loads((p / "config.toml").read_text()) == cfg


def test_concurrent_threads_never_share_a_dir(tmp_path, cfg):
    barrier = threading.Barrier(8)
    made: list[Path] = []
    lock = threading.Lock()

    def work():
        barrier.wait()
        mine = [create_run(tmp_path, cfg) for _ in range(5)]
        with lock:
            made.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 40 and len({p.name for p in made}) == 40
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in made)
    for p in made:
        assert read_summary(p)["run_id"] == p.name
        assert tomllib.loads((p / "config.toml").read_text()) == cfg


def _create_in_process(runs_dir: str, cfg: dict, barrier, out) -> None:
    barrier.wait()
    for _ in range(5):
        out.put(create_run(Path(runs_dir), cfg).name)


def test_concurrent_processes_never_share_a_dir(tmp_path, cfg):
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(4)
    out = ctx.Queue()
    procs = [ctx.Process(target=_create_in_process, args=(str(tmp_path), cfg, barrier, out)) for _ in range(4)]
    for p in procs:
        p.start()
    names = [out.get(timeout=30) for _ in range(20)]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert len(set(names)) == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    for name in names:
        assert read_summary(tmp_path / name)["status"] == "created"


def test_runs_dir_that_is_a_file(tmp_path, cfg):
    f = tmp_path / "runs"
    f.write_text("not a dir")
    with pytest.raises(ConfigError) as info:
        create_run(f, cfg)
    assert one_line(str(info.value)) == f"runs directory {f} is a file, not a directory (choose another with --runs-dir)"
    with pytest.raises(ConfigError) as info:
        create_run(f / "sub", cfg)  # a runs dir below a file cannot be created
    assert one_line(str(info.value)) == f"cannot create runs directory {f / 'sub'}: Not a directory"
    assert f.read_text() == "not a dir"


def test_runs_dir_option_and_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("GDW_RUNS_DIR", raising=False)
    assert runs.runs_dir_from(None) == Path("runs")
    monkeypatch.setenv("GDW_RUNS_DIR", str(tmp_path / "env"))
    assert runs.runs_dir_from(None) == tmp_path / "env"
    assert runs.runs_dir_from(tmp_path / "opt") == tmp_path / "opt"


READ_ONLY_PROBE = """
import sys
from pathlib import Path
from engine.config import ConfigError, load_preset
from engine.runs import create_run
for target in (Path(sys.argv[1]), Path(sys.argv[1]) / "runs"):
    try:
        create_run(target, load_preset("digits-clean"))
        print("created")
    except ConfigError as e:
        print(e)
"""


def test_read_only_runs_dir_is_refused_cleanly(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    expected = [
        f"runs directory {ro} is not writable (choose another with --runs-dir)",
        f"cannot create runs directory {ro / 'runs'}: Read-only file system",
    ]
    if os.geteuid() == 0:
        # root ignores permission bits; a read-only bind mount in a private mount namespace is the real thing
        if not shutil.which("unshare"):
            pytest.skip("running as root without `unshare`: cannot make a read-only directory")
        script = tmp_path / "probe.py"
        script.write_text(READ_ONLY_PROBE)
        cmd = ["unshare", "-m", "sh", "-c", f'mount --bind -o ro "$1" "$1" && exec "$2" "$3" "$1"',
               "sh", str(ro), sys.executable, str(script)]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
        if proc.returncode != 0 and not proc.stdout:
            pytest.skip(f"running as root and a read-only bind mount is not permitted here: {proc.stderr.strip()[:200]}")
        assert proc.stdout.splitlines() == expected
    else:
        ro.chmod(0o555)
        try:
            with pytest.raises(ConfigError) as info:
                ensure_runs_dir(ro)
            assert str(info.value) == expected[0]
            with pytest.raises(ConfigError) as info:
                ensure_runs_dir(ro / "runs")
            assert str(info.value) == f"cannot create runs directory {ro / 'runs'}: Permission denied"
        finally:
            ro.chmod(0o755)
    assert list(ro.iterdir()) == []  # nothing half-made


# --- summary --------------------------------------------------------------------------------------


def test_summary_round_trip_and_unreadable_summary(tmp_path, cfg):
    run = create_run(tmp_path, cfg)
    s = read_summary(run)
    s.update(status="finished", final_acc=87.97, best_acc=88.1, best_epoch=77)
    write_summary(run, s)
    assert read_summary(run) == s
    assert json.loads((run / "summary.json").read_text()) == s
    assert run_status(run) == "finished"
    with pytest.raises(ValueError):
        write_summary(run, {**s, "final_acc": float("nan")})  # never writes invalid JSON
    assert read_summary(run) == s
    (run / "summary.json").write_text("{half")
    assert read_summary(run) == {"run_id": run.name, "status": "created", "message": "summary.json missing or unreadable"}
    (run / "summary.json").unlink()
    assert read_summary(run)["status"] == "created"


def test_concurrent_summary_writers_leave_valid_json(tmp_path, cfg):
    run = create_run(tmp_path, cfg)
    errors = []

    def writer(k):
        try:
            for i in range(30):
                write_summary(run, {"status": "running", "epoch": i, "writer": k, "pad": "x" * 5000})
        except Exception as e:  # pragma: no cover - the failure being tested
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert read_summary(run)["epoch"] == 29
    assert [p.name for p in run.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    "stored,events,expected",
    [
        ("created", False, "created"),
        ("created", True, "interrupted"),  # it started writing events, then its engine went away
        ("running", False, "interrupted"),
        ("finished", False, "finished"),
        ("failed", True, "failed"),
        ("stopped", True, "stopped"),
        ("bogus", True, "interrupted"),
    ],
)
def test_honest_status_without_an_engine(tmp_path, cfg, stored, events, expected):
    run = create_run(tmp_path, cfg)
    write_summary(run, {**read_summary(run), "status": stored})
    if events:
        (run / "events.jsonl").write_text("")
    assert run_status(run) == expected
    assert [r["status"] for r in list_runs(tmp_path)] == [expected]


# --- the engine lock ------------------------------------------------------------------------------

HOLDER = """
import signal, sys, time
from pathlib import Path
from engine.runs import acquire_lock
run = Path(sys.argv[1])
def on_term(signum, frame):
    (run / "got-signal").write_text(signal.Signals(signum).name)
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
acquire_lock(run)
print("locked", flush=True)
time.sleep(60)
"""


def _hold_lock(run: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_lock_makes_status_running_and_a_kill_makes_it_interrupted(tmp_path, cfg):
    run = create_run(tmp_path, cfg)
    write_summary(run, {**read_summary(run), "status": "running"})
    assert engine_alive(run) is False
    proc = _hold_lock(run)
    try:
        assert engine_alive(run) is True
        assert lock_pid(run) == proc.pid
        assert run_status(run) == "running"
        assert [r["status"] for r in list_runs(tmp_path)] == ["running"]
        # probes from several readers at once never see each other as an engine
        assert all(engine_alive(run) for _ in range(50))
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert engine_alive(run) is False
    assert run_status(run) == "interrupted"
    assert [r["status"] for r in list_runs(tmp_path)] == ["interrupted"]


def test_second_engine_is_refused_while_the_lock_is_held(tmp_path, cfg):
    run = create_run(tmp_path, cfg)
    proc = _hold_lock(run)
    try:
        with pytest.raises(ConfigError) as info:
            acquire_lock(run, wait_s=0.1)
        assert one_line(str(info.value)) == f"run {run.name} is already running (another engine holds its lock)"
        assert lock_pid(run) == proc.pid  # the refused attempt did not overwrite the holder's pid
    finally:
        proc.kill()
        proc.wait(timeout=10)
    fd = acquire_lock(run)  # free again once its holder is gone
    try:
        assert lock_pid(run) == os.getpid()
    finally:
        os.close(fd)


def test_a_probe_in_progress_neither_lies_nor_blocks_an_engine(tmp_path, cfg):
    import fcntl

    run = create_run(tmp_path, cfg)
    write_summary(run, {**read_summary(run), "status": "running"})
    (run / "engine.lock").write_text("12345\n")  # a dead engine's lock file
    # Freeze another reader in the middle of its probe: it holds the lock the way engine_alive does.
    probe = open(run / "engine.lock", "rb")
    fcntl.flock(probe.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
    timer = threading.Timer(0.1, probe.close)  # the probe ends 0.1 s later
    try:
        assert engine_alive(run) is False  # the other reader is not mistaken for an engine
        assert run_status(run) == "interrupted"
        timer.start()
        engine_fd = acquire_lock(run)  # an engine starting meanwhile waits it out instead of failing
        os.close(engine_fd)
    finally:
        timer.cancel()
        if timer.is_alive():
            timer.join()
        probe.close()


# --- finding and stopping runs --------------------------------------------------------------------


def test_find_run_by_id_prefix_suffix_and_path(tmp_path, cfg):
    a = create_run(tmp_path, cfg)
    b = create_run(tmp_path, {**cfg, "preset": "digits-clean", "train": {**cfg["train"], "seed": 100}})
    assert find_run(tmp_path, a.name) == a
    assert find_run(tmp_path, str(b)) == b
    assert find_run(tmp_path / "elsewhere", str(a)) == a  # a path works with any runs dir
    assert find_run(tmp_path, "s100") == b  # a suffix
    assert find_run(tmp_path, "digits-clean") == b  # a unique substring
    with pytest.raises(ConfigError) as info:
        find_run(tmp_path, "digits")
    assert one_line(str(info.value)) == f"run 'digits' is ambiguous in {tmp_path}: {', '.join(sorted([a.name, b.name]))}"
    with pytest.raises(ConfigError) as info:
        find_run(tmp_path, "nope")
    assert one_line(str(info.value)) == f"no run 'nope' in {tmp_path} (see `gdw runs`; a run id or a run directory path)"
    with pytest.raises(ConfigError):
        find_run(tmp_path / "missing", "nope")
    (tmp_path / "not-a-run").mkdir()  # a directory without config.toml is not a run
    with pytest.raises(ConfigError):
        find_run(tmp_path, "not-a-run")


def test_find_run_prefers_prefix_and_suffix_over_middle(tmp_path, cfg):
    s1 = create_run(tmp_path, cfg | {"train": {**cfg["train"], "seed": 1}})
    s11 = create_run(tmp_path, cfg | {"train": {**cfg["train"], "seed": 11}})
    assert s1.name.endswith("-s1") and s11.name.endswith("-s11")
    assert find_run(tmp_path, "s1") == s1  # "s1" is inside both names but ends only one
    assert find_run(tmp_path, "s11") == s11


def test_list_runs_newest_first(tmp_path, cfg):
    made = [create_run(tmp_path, cfg) for _ in range(3)]
    for i, run in enumerate(made):
        write_summary(run, {**read_summary(run), "created": 1000.0 + i})
    listed = list_runs(tmp_path)
    assert [r["run_id"] for r in listed] == [p.name for p in reversed(made)]
    assert [r["path"] for r in listed] == [str(p) for p in reversed(made)]
    assert list_runs(tmp_path / "missing") == []


def test_stop_run_sends_sigterm_to_the_lock_holder(tmp_path, cfg):
    run = create_run(tmp_path, cfg)
    assert stop_run(run) is False  # nothing to stop
    proc = _hold_lock(run)
    try:
        assert stop_run(run) is True
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (run / "got-signal").read_text() == "SIGTERM"
    assert engine_alive(run) is False and stop_run(run) is False


def test_hard_stop_sends_sigkill(tmp_path, cfg):
    run = create_run(tmp_path, cfg)
    proc = _hold_lock(run)
    try:
        assert stop_run(run, hard=True) is True
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not (run / "got-signal").exists()


def test_every_summary_field_is_documented() -> None:
    """docs/summary.md names every field the engine writes to summary.json (recorded real runs)."""
    import re

    documented = set(re.findall(r"`([a-z_]+)`", (Path(__file__).parents[1] / "docs" / "summary.md").read_text()))
    written = set()
    for summary in Path(__file__).parent.joinpath("fixtures", "recorded").glob("*/summary.json"):
        written |= set(json.loads(summary.read_text()))
    written |= {"sweep", "setting", "grid", "attempts"}  # sweep runs (engine.sweep.store, engine.sweep.task)
    assert written and not written - documented, f"undocumented: {sorted(written - documented)}"
