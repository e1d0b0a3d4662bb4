"""Start-up of the engine and of a local sweep's runs, through the real CLI and real processes.

A run imports only what it uses (no torchvision for digits, no scikit-learn once the digits are
cached, never torch._dynamo nor sympy, which torch.optim and torch.autograd import lazily); a local
sweep imports torch once in its fork server, while each run still has a process of its own (a
SIGKILL takes that run only) and gets exactly the numbers of a plain run; the fork server
initialises no CUDA before it forks. Timings are benchmarks (scripts/bench_sweep.py), not tests.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from engine.data.datasets import load_digits
from engine.runs import read_summary
from engine.sweep.store import find_sweep, list_sweeps
from engine.sweep.task import claim_info
from lifecycle_helpers import ROOT, child_env, epoch_records, events, gdw_command, sweep_id, wait_for


def imported(importtime_log: str) -> list[str]:
    """The modules a `-X importtime` log (PYTHONPROFILEIMPORTTIME) says were imported, once per import."""
    return [m.group(1) for m in re.finditer(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)\s*$", importtime_log, re.M)]


def run_gdw(*args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(gdw_command() + list(args), capture_output=True, text=True, timeout=timeout,
                          env=child_env(**env), cwd=ROOT)


def test_a_digits_run_imports_neither_torchvision_nor_scikit_learn_once_cached_nor_torch_dynamo(tmp_path):
    cache = tmp_path / "cache"
    names = []
    for method in ("erm", "gdw"):  # SGD alone; SGD, V's Adam and the meta step
        r = run_gdw("run", "--headless", "digits-unif60", "--method", method, "--epochs", "1", "--device", "cpu",
                    "--runs-dir", str(tmp_path / "runs"), XDG_CACHE_HOME=str(cache), PYTHONPROFILEIMPORTTIME="1")
        assert r.returncode == 0, r.stderr[-3000:]
        names.append(imported(r.stderr))
    first, second = names
    assert "torch" in first and "torch" in second  # the log is read right: the run imported torch
    assert "sklearn" in first and list(cache.glob("gdw-tui/digits-sklearn-*.npz"))  # no cache yet: made once
    assert "sklearn" not in second  # cached: scikit-learn is not imported
    assert "torchvision" not in first and "torchvision" not in second  # digits need no image library
    assert "torch._dynamo" not in first and "torch._dynamo" not in second  # engine/optim.py: 1.6-1.9 s saved
    assert "sympy" not in second  # a meta method's explicit-gradient backward (scalar_for_backward): 0.7-0.9 s
    run_start = next(e for d in (tmp_path / "runs").iterdir() for e in events(d) if e["type"] == "run_start")
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", run_start["versions"]["torchvision"])  # the version, from metadata


def sweep_command(runs: Path, *extra: str) -> list[str]:
    return ["sweep", "digits-unif60", "--methods", "erm", "--seeds", "1,2,3", "--device", "cpu", "--workers", "2",
            "--runs-dir", str(runs), *extra]


def test_a_local_sweep_imports_torch_once_and_gives_each_run_its_own_process(tmp_path):
    load_digits()  # the digits are in the tests' cache (conftest), as after any first run
    r = run_gdw(*sweep_command(tmp_path, "--set", "train.epochs=1"), PYTHONPROFILEIMPORTTIME="1")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    sweep = find_sweep(tmp_path, sweep_id(r.stdout))
    run_dirs = [tmp_path / e["run_id"] for e in sweep.runs]
    assert [read_summary(d)["status"] for d in run_dirs] == ["finished"] * 3
    # The CLI and its fork server log their imports on the command's stderr, each run in its engine.log.
    logs = [r.stderr] + [(d / "engine.log").read_text() for d in run_dirs]
    names = [name for log in logs for name in imported(log)]
    assert names.count("torch") == 1, "torch is imported once, by the fork server, not by each run"
    assert "torchvision" not in names and "sklearn" not in names
    pids = [next(e["pid"] for e in events(d) if e["type"] == "run_start") for d in run_dirs]
    assert len(set(pids)) == 3  # three runs, three processes
    starts = [json.loads(line) for line in (sweep.dir / "schedule.jsonl").read_text().splitlines()]
    assert sorted(x["pid"] for x in starts if x["event"] == "start") == sorted(pids)
    assert all(x["rc"] == 0 for x in starts if x["event"] == "end")


def test_a_sweep_run_gets_exactly_the_numbers_of_a_plain_run(tmp_path):
    r = run_gdw("sweep", "digits-unif60", "--methods", "gdw", "--seeds", "7", "--set", "train.epochs=2",
                "--device", "cpu", "--workers", "1", "--runs-dir", str(tmp_path / "sweep"))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    (entry,) = find_sweep(tmp_path / "sweep", sweep_id(r.stdout)).runs
    swept = tmp_path / "sweep" / entry["run_id"]
    start = next(e for e in events(swept) if e["type"] == "run_start")
    threads = re.search(r"(\d+) threads", start["device_name"]).group(1)
    # The same run by a plain `gdw run`, with the thread count of the sweep's slot.
    plain = run_gdw("run", "--headless", "digits-unif60", "--method", "gdw", "--seed", "7", "--epochs", "2",
                    "--device", "cpu", "--runs-dir", str(tmp_path / "plain"), OMP_NUM_THREADS=threads)
    assert plain.returncode == 0, plain.stderr[-3000:]
    (alone,) = (tmp_path / "plain").iterdir()
    assert read_summary(swept)["final_acc"] == read_summary(alone)["final_acc"]
    assert epoch_records(swept) == epoch_records(alone) and len(epoch_records(swept)) == 2
    assert next(e for e in events(alone) if e["type"] == "run_start")["device_name"] == start["device_name"]


def test_sigkill_of_one_run_leaves_the_scheduler_and_the_other_runs_going(tmp_path):
    hold = tmp_path / "go"
    proc = subprocess.Popen(gdw_command() + sweep_command(tmp_path / "runs", "--set", "train.epochs=2"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env=child_env(GDW_TEST_HOLD=f"epoch:{hold}"))
    try:
        runs = tmp_path / "runs"
        sweep = wait_for(lambda: (list_sweeps(runs) or [None])[0], proc=proc, what="the sweep directory")
        run_dirs = [runs / e["run_id"] for e in sweep.runs]
        # Both slots busy: two runs held after their first epoch, the third waiting for a slot.
        held = wait_for(lambda: [d for d in run_dirs if any(e["type"] == "epoch" for e in events(d))][:2]
                        if sum(any(e["type"] == "epoch" for e in events(d)) for d in run_dirs) == 2 else None,
                        proc=proc, timeout=600, what="two runs to train")
        victim, survivor = held
        (waiting,) = [d for d in run_dirs if d not in held]
        os.kill(claim_info(victim)["pid"], signal.SIGKILL)
        wait_for(lambda: any(e["type"] == "run_start" for e in events(waiting)), proc=proc,
                 what="the freed slot to start the third run")
        hold.touch()
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert read_summary(victim)["status"] != "finished"
    assert [read_summary(d)["status"] for d in (survivor, waiting)] == ["finished", "finished"], out + err
    assert sweep_id(out) == sweep.id  # the scheduler went on to the end
    ends = {x["run_id"]: x["rc"] for x in map(json.loads, (sweep.dir / "schedule.jsonl").read_text().splitlines())
            if x["event"] == "end"}
    assert ends[victim.name] == -signal.SIGKILL and ends[survivor.name] == 0 and ends[waiting.name] == 0


# Run in a fresh interpreter: torch's CUDA entry points are replaced by tripwires, then the fork
# server's preload runs. Any CUDA query before the fork (even is_available()) would be recorded.
CUDA_TRIPWIRE = """
import json, threading, torch
touched = []
def tripwire(name, real):
    def call(*args, **kwargs):
        touched.append(name)
        return real(*args, **kwargs)
    return call
for name in ("_cuda_init", "_cuda_getDeviceCount", "_cuda_setDevice", "_cuda_getDevice"):
    if hasattr(torch._C, name):
        setattr(torch._C, name, tripwire(name, getattr(torch._C, name)))
for name in ("init", "is_available", "device_count", "current_device", "set_device", "get_device_name"):
    setattr(torch.cuda, name, tripwire("torch.cuda." + name, getattr(torch.cuda, name)))
from engine.sweep.forkserver import preload
preload()
print(json.dumps({"touched": touched, "initialized": torch.cuda.is_initialized(),
                  "threads": [t.name for t in threading.enumerate()]}))
"""


def test_the_fork_server_initialises_no_cuda_and_starts_no_thread_before_forking():
    r = subprocess.run([sys.executable, "-c", CUDA_TRIPWIRE], capture_output=True, text=True, timeout=300,
                       env=child_env(), cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    state = json.loads(r.stdout.strip().splitlines()[-1])
    assert state == {"touched": [], "initialized": False, "threads": ["MainThread"]}


def fork_server_of(pid: int) -> int | None:
    """The pid of the fork server the process `pid` started (engine.sweep.forkserver), if any."""
    for proc in Path("/proc").iterdir():
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if b"engine.sweep.forkserver" in cmdline and int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            return int(proc.name)
    return None


def test_a_killed_fork_server_takes_no_run_and_the_sweep_goes_on(tmp_path):
    hold = tmp_path / "go"
    runs = tmp_path / "runs"
    proc = subprocess.Popen(gdw_command() + sweep_command(runs, "--set", "train.epochs=2"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env=child_env(GDW_TEST_HOLD=f"epoch:{hold}"))
    try:
        sweep = wait_for(lambda: (list_sweeps(runs) or [None])[0], proc=proc, what="the sweep directory")
        run_dirs = [runs / e["run_id"] for e in sweep.runs]
        wait_for(lambda: sum(any(e["type"] == "epoch" for e in events(d)) for d in run_dirs) == 2, proc=proc,
                 timeout=600, what="two runs to train")
        os.kill(fork_server_of(proc.pid), signal.SIGKILL)
        hold.touch()
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out + err
    # The two forked runs outlived their server; the third started as a process of its own.
    assert [read_summary(d)["status"] for d in run_dirs] == ["finished"] * 3, out
    assert "fork server unavailable" in out and sweep_id(out) == sweep.id
