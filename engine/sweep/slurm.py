"""The Slurm executor: one job-array task per run, submitted through submitit.

Torch-free (the login node never imports torch). Each array task runs the sweep's ordinary run
task (`python -m engine.sweep.task --run-dir DIR`: start, resume from the checkpoint, or skip a
finished run), so the runs live in the shared runs directory and `gdw-tui` on the login node
follows them as local runs; their heartbeats (engine.heartbeat) say they are alive.

Requeue-safe: on preemption, `scontrol requeue` or `scancel`, Slurm sends SIGTERM to every
process of the task; the engine checkpoints and exits, and a requeued task runs again and
resumes. Near the time limit Slurm sends SIGUSR2 first: submitit then requeues the task
(SweepTask is Checkpointable) and the SIGTERM that follows stops the engine cleanly.

Files: RUNS_DIR/sweeps/SWEEP_ID/slurm/ holds submitit's batch files, pickles and each task's
log (JOBID_TASK_0_log.out/.err); slurm_jobs.json maps each run to its job id.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import submitit

from ..config import ConfigError
from ..heartbeat import ACTIVE_JOB_STATES
from ..runs import atomic_write_text
from .task import CLAIMED, record_exit, sweep_stopped, task_command

if TYPE_CHECKING:
    from .store import Sweep

SLURM_DIR = "slurm"
JOBS_FILE = "slurm_jobs.json"
DEFAULT_TIME_MIN = 24 * 60  # when neither --slurm-time nor the partition gives a limit
MAX_REQUEUES = 100  # time-limit requeues per task; each one resumes from a later checkpoint


class SweepTask(submitit.helpers.Checkpointable):
    """What one array task runs: the run's task in a child process.

    A child process, so that the engine keeps its own signal handling (SIGTERM: checkpoint and
    exit) and submitit keeps its own (SIGUSR2: requeue before the time limit).
    """

    def __call__(self, run_dir: str) -> int:
        env = dict(os.environ)
        if "SLURM_CPUS_PER_TASK" in env and "OMP_NUM_THREADS" not in env:
            env["OMP_NUM_THREADS"] = env["SLURM_CPUS_PER_TASK"]  # torch's threads = the CPUs Slurm gave
        proc = subprocess.Popen(task_command(Path(run_dir)), env=env, preexec_fn=_ignore_usr2)
        try:
            code = proc.wait()
        finally:
            # submitit leaves through an exception after requeueing on SIGUSR2; the SIGTERM of the
            # requeue reached the engine too, which is writing its checkpoint: let it finish.
            while proc.poll() is None:
                try:
                    proc.wait()
                except BaseException:
                    continue
        if code < 0:
            # The engine was killed by a signal — Slurm's out-of-memory kill is a SIGKILL of the
            # biggest process, the engine — so it could not say so itself: the run is marked failed
            # with the reason, as the local executor does (not when the user stopped the sweep).
            record_exit(Path(run_dir), code, sweep_stopped(Path(run_dir)))
        if code not in (0, CLAIMED):
            # A failed run fails its task, so squeue and sacct say FAILED too.
            raise RuntimeError(f"run {Path(run_dir).name} ended with exit code {code} (see its events.jsonl)")
        return code


def _ignore_usr2() -> None:
    """In the engine child: Slurm's time-limit warning (SIGUSR2) is submitit's business, not the engine's."""
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)


# --- options -------------------------------------------------------------------------------------


def _sbatch_args(options: dict[str, Any]) -> list[str]:
    """The sbatch flags these options mean (for the up-front `sbatch --test-only`)."""
    flags = {"partition": "--partition", "time": "--time", "cpus": "--cpus-per-task",
             "gpus": "--gpus-per-node", "account": "--account", "qos": "--qos"}
    args = [f"{flag}={options[key]}" for key, flag in flags.items() if options.get(key) not in (None, 0)]
    if options.get("mem"):
        args.append(f"--mem={options['mem']}G")
    return args


def _first_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()] or lines or ["no reason given"]
    return re.sub(r"^(sbatch: )?error: ", "", errors[0])


def _run(cmd: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def slurm_minutes(text: str) -> int | None:
    """Slurm's time format (`MM`, `MM:SS`, `HH:MM:SS`, `D-HH[:MM[:SS]]`) in whole minutes; None for
    `infinite`, `n/a` and anything else that is not a limit."""
    text = text.strip()
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if not m:
        return None
    days, a, b, c = (int(g) if g else None for g in m.groups())
    if days is not None:  # D-HH, D-HH:MM, D-HH:MM:SS
        hours, minutes, seconds = a, b or 0, c or 0
    elif c is not None:  # HH:MM:SS
        hours, minutes, seconds = a, b, c
    else:  # MM or MM:SS
        hours, minutes, seconds = 0, a, b or 0
    return max(1, (days or 0) * 1440 + hours * 60 + minutes + (1 if seconds else 0))


def partition_time_min(partition: str | None) -> int:
    """The time limit a job gets without --time: the partition's default, else its maximum."""
    cmd = ["sinfo", "-h", "-o", "%P|%L|%l"] + (["-p", partition] if partition else [])
    try:
        rows = [ln.split("|") for ln in _run(cmd).stdout.splitlines() if ln.count("|") == 2]
    except (OSError, subprocess.SubprocessError):
        rows = []
    if not partition:  # the default partition is the one sinfo marks with '*'
        rows = [r for r in rows if r[0].endswith("*")] or rows
    for _, default, maximum in rows[:1]:
        return slurm_minutes(default) or slurm_minutes(maximum) or DEFAULT_TIME_MIN
    return DEFAULT_TIME_MIN


def preflight(options: dict[str, Any]) -> None:
    """ConfigError (one line) unless Slurm is here and accepts a job with these options.

    Run before the sweep creates anything: `sbatch --test-only` checks partition, time, CPUs,
    memory, GPUs, account and QOS against the cluster without queueing a job.
    """
    if shutil.which("sbatch") is None:
        raise ConfigError("--executor slurm needs Slurm's sbatch on PATH and there is none here "
                          "(run on the cluster's login node, or use --executor local)")
    args = _sbatch_args(options)
    try:
        result = _run(["sbatch", "--test-only", *args, "--wrap", "true"])
    except (OSError, subprocess.SubprocessError) as e:
        raise ConfigError(f"cannot ask Slurm whether it accepts the sweep's jobs: {e}") from None
    if result.returncode != 0:
        reason = _first_error(result.stderr + result.stdout)
        hint = ""
        if "partition" in reason.lower():
            names = _run(["sinfo", "-h", "-o", "%R"]).stdout.split()
            hint = f"; partitions here: {', '.join(dict.fromkeys(names))}" if names else ""
        shown = " ".join(args) or "no options"
        raise ConfigError(f"Slurm rejects the sweep's jobs ({shown}): {reason}{hint}")


# --- the executor --------------------------------------------------------------------------------


def private_folder(path: Path) -> Path:
    """submitit's folder, writable and readable by this user only: the compute node unpickles the
    calls it finds there, so another user who could write into it could run code as this one."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)  # made before with a looser mode, or under a umask that kept more bits
    return path


class SlurmExecutor:
    name = "slurm"

    def __init__(self, options: dict[str, Any]):
        self.options = dict(options)  # checked by preflight() before the sweep was created

    def _submitit(self, sweep: "Sweep") -> submitit.SlurmExecutor:
        o = self.options
        ex = submitit.SlurmExecutor(folder=private_folder(sweep.dir / SLURM_DIR), max_num_timeout=MAX_REQUEUES)
        params: dict[str, Any] = {
            "job_name": f"gdw-{sweep.id}",
            "time": o.get("time") or partition_time_min(o.get("partition")),
            "cpus_per_task": o.get("cpus") or 1,
            # A requeued task (preemption, `scontrol requeue`) keeps its place and resumes; many
            # clusters default to no requeue.
            "additional_parameters": {"requeue": True},
        }
        for key, param in (("partition", "partition"), ("account", "account"), ("qos", "qos"),
                           ("array_parallelism", "array_parallelism"), ("setup", "setup")):
            if o.get(key):
                params[param] = o[key]
        if o.get("gpus"):
            params["gpus_per_node"] = o["gpus"]  # one task per job: per node = per task
        if o.get("mem"):
            params["mem"] = f"{o['mem']}GB"
        ex.update_parameters(**params)
        return ex

    def submit(self, sweep: "Sweep", run_dirs: list[Path]) -> None:
        """One array task per run; runs whose job is still queued or running are not submitted again."""
        active = {run for run, state in self.job_states(sweep).items() if state in ACTIVE_JOB_STATES}
        todo = [Path(d) for d in run_dirs if Path(d).name not in active]
        if not todo:
            return
        try:
            jobs = self._submitit(sweep).map_array(SweepTask(), [str(d.resolve()) for d in todo])
        except Exception as e:  # sbatch refused after all (e.g. the controller is down)
            raise ConfigError(f"Slurm did not take the sweep's jobs: {_first_error(str(e))} "
                              f"(`gdw resume {sweep.id}` submits them again)") from None
        recorded = read_jobs(sweep)
        recorded.update({d.name: job.job_id for d, job in zip(todo, jobs)})
        atomic_write_text(sweep.dir / JOBS_FILE, json.dumps(recorded, indent=2) + "\n")

    def job_states(self, sweep: "Sweep") -> dict[str, str]:
        """run_id -> Slurm state (PENDING, RUNNING, COMPLETED, CANCELLED, ...) of its latest job.

        squeue knows queued and recently ended jobs; sacct (where the cluster keeps accounting)
        knows older ones. A job neither knows is left out: the run's heartbeat then decides.
        """
        jobs = read_jobs(sweep)
        if not jobs:
            return {}
        states = squeue_states()
        missing = sorted({j for j in jobs.values() if j not in states})
        if missing:
            states.update(sacct_states(missing))
        return {run: states[job] for run, job in jobs.items() if job in states}

    def cancel(self, sweep: "Sweep", run_dirs: list[Path]) -> None:
        """scancel: Slurm sends SIGTERM, each engine checkpoints and exits; queued tasks never start."""
        jobs = read_jobs(sweep)
        ids = [jobs[Path(d).name] for d in run_dirs if Path(d).name in jobs]
        if ids:
            try:
                _run(["scancel", *ids])
            except (OSError, subprocess.SubprocessError) as e:
                raise ConfigError(f"scancel failed: {e}") from None


def read_jobs(sweep: "Sweep") -> dict[str, str]:
    try:
        data = json.loads((sweep.dir / JOBS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def squeue_states() -> dict[str, str]:
    """job id (`123_4` for array tasks) -> state, for this user's jobs Slurm still lists (ended
    ones too, for the cluster's MinJobAge: 5 minutes by default)."""
    try:
        out = _run(["squeue", "-h", "-r", "-t", "all", "-u", getpass.getuser(), "-o", "%i|%T"])
    except (OSError, subprocess.SubprocessError):
        return {}
    return dict(ln.split("|", 1) for ln in out.stdout.splitlines() if "|" in ln) if out.returncode == 0 else {}


def sacct_states(job_ids: list[str]) -> dict[str, str]:
    """job id -> state from Slurm's accounting; {} where accounting is off."""
    try:
        out = _run(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(job_ids)])
    except (OSError, subprocess.SubprocessError):
        return {}
    if out.returncode != 0:
        return {}
    states = {}
    for ln in out.stdout.splitlines():
        job, _, state = ln.partition("|")
        if state:
            states[job] = state.split()[0]  # "CANCELLED by 0" -> CANCELLED
    return states
