"""Real TensorBoard and MLflow servers for the export tests, started on 127.0.0.1 and stopped after,
and a small sweep made of the recorded digits runs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from engine.events import read_events
from engine.runs import read_summary, write_summary

RECORDED = Path(__file__).parent / "fixtures" / "recorded"
GDW_RUN = "20261130-070453-digits-unif60-gdw-s1"
MWNET_RUN = "20261130-070458-digits-unif60-mwnet-s1"
SWEEP_ID = "20261130-070450-digits-unif60"
# The tools, run by this interpreter (their console scripts may not be on PATH in a venv).
TOOLS = {"tensorboard": "tensorboard.main", "mlflow": "mlflow", "wandb": "wandb"}


def tool(name: str) -> list[str]:
    return [sys.executable, "-m", TOOLS[name]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def f32(x: float) -> float:
    """What TensorBoard stores for a scalar (a 32-bit float)."""
    return struct.unpack("f", struct.pack("f", x))[0]


def make_sweep(runs: Path) -> Path:
    """The two recorded runs as the runs of one sweep (as engine.sweep.store writes it)."""
    runs.mkdir(parents=True, exist_ok=True)
    entries = []
    for run_id, method in ((GDW_RUN, "gdw"), (MWNET_RUN, "mwnet")):
        shutil.copytree(RECORDED / run_id, runs / run_id)
        s = read_summary(runs / run_id)
        s.update(sweep=SWEEP_ID, setting="digits-unif60")
        write_summary(runs / run_id, s)
        entries.append({"run_id": run_id, "setting": "digits-unif60", "preset": "digits-unif60", "method": method,
                        "seed": 1, "grid": {}})
    sweep = runs / "sweeps" / SWEEP_ID
    sweep.mkdir(parents=True)
    (sweep / "sweep.json").write_text(json.dumps({
        "id": SWEEP_ID, "name": "digits-unif60", "created": 0, "presets": ["digits-unif60"], "methods": ["gdw", "mwnet"],
        "seeds": [1], "set": {}, "grid": {}, "source": None, "executor": "local", "options": {}, "stopped": False,
        "runs": entries}))
    return runs


def events_of(run_dir: Path, type_: str) -> list[dict]:
    return [e for e in read_events(run_dir / "events.jsonl") if e["type"] == type_]


class Server:
    """A server process in its own session (stopped with its whole process group)."""

    def __init__(self, args: list[str], url: str, ready_path: str, log: Path, env: dict | None = None):
        self.url = url
        self.log = open(log, "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, **(env or {})})
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url + ready_path, timeout=2).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"server {args[0]} did not start; its log: {log.read_text()[-2000:]}")
                time.sleep(0.3)

    def get_json(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return json.loads(r.read())

    def get_json_post(self, path: str, body: dict):
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                         headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()


def tensorboard_server(logdir: Path, log: Path) -> Server:
    port = free_port()
    return Server([*tool("tensorboard"), "--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(port),
                   "--reload_interval", "1"], f"http://127.0.0.1:{port}", "/data/runs", log)


def mlflow_server(root: Path) -> Server:
    port = free_port()
    return Server([*tool("mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                   "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts")],
                  f"http://127.0.0.1:{port}", "/health", root / "server.log",
                  env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})


def mlflow_fixture(tmp_path_factory):
    """A module's MLflow server (a pytest fixture body: `mlflow = pytest.fixture(scope="module")(mlflow_fixture)`)."""
    server = mlflow_server(tmp_path_factory.mktemp("mlflow"))
    yield server
    server.stop()
