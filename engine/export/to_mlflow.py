"""Records to MLflow, through its client, to any tracking URI (default $MLFLOW_TRACKING_URI, else a
local store in ./mlruns: SQLite in mlruns/mlflow.db, artifacts beside it; MLflow 3 refuses its
older plain-file store unless MLFLOW_ALLOW_FILE_STORE=true).

A run becomes an MLflow run found again by its tag `gdw.run_id`, so exporting twice (or exporting
after live logging) continues the same run: its tag `gdw.exported` says how far each metric and
image series went ({series: last step}), and only later points are written. A sweep becomes a
parent run (tag `gdw.sweep_id`) with the sweep's runs nested under it. The config goes in as
params, preset/method/seed/sweep as tags, the summary's figures as metrics, the ω and Table 6
heatmaps and config.toml/summary.json as artifacts.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

from ..config import ConfigError
from .records import Image, Record, RunInfo, Scalar, read_run

EXPORTED = "gdw.exported"
ENDED = {"finished": "FINISHED", "failed": "FAILED", "stopped": "KILLED", "interrupted": "KILLED"}
BATCH = 1000  # MLflow's limit of metrics per log_batch
PROBE_TIMEOUT_S = 5.0


LOCAL_STORE = "mlruns"


def tracking_uri(given: str | None) -> str:
    return given or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{LOCAL_STORE}/mlflow.db"


def check_tracking_uri(given: str | None) -> str:
    """The URI to use; ConfigError (one line) for a server that does not answer or a store that cannot be written."""
    from .export import check_writable_dir

    uri = tracking_uri(given)
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        probe = f"{uri.rstrip('/')}/api/2.0/mlflow/experiments/search?max_results=1"
        try:
            urllib.request.urlopen(probe, timeout=PROBE_TIMEOUT_S).close()
        except urllib.error.HTTPError:
            pass  # it answered (an error status is still a server: the client reports what it says)
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", None) or e
            raise ConfigError(f"MLflow tracking server {uri} is unreachable ({reason}); start it or pass another --tracking-uri") from None
    elif parsed.scheme in ("", "file"):
        check_writable_dir(Path(parsed.path if parsed.scheme else uri), "--tracking-uri")
    elif parsed.scheme == "sqlite":
        check_writable_dir(Path(uri.removeprefix("sqlite:///")).parent, "--tracking-uri")
    # (the plain-file store, a path: MLflow 3 refuses it unless MLFLOW_ALLOW_FILE_STORE=true; experiment_id says so)
    # other schemes (databricks, …): the client says what is wrong
    return uri


def client_for(uri: str) -> Any:
    # A tracking server that goes away mid-export is reported after a few retries, not after minutes.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    from mlflow.tracking import MlflowClient

    from mlflow.exceptions import MlflowException

    if uri == tracking_uri(None) and uri.startswith(f"sqlite:///{LOCAL_STORE}/"):
        Path(LOCAL_STORE).mkdir(exist_ok=True)
    try:
        client = MlflowClient(tracking_uri=uri)
        client.search_experiments(max_results=1)  # the store is usable (MLflow 3 refuses plain-file stores here)
    except MlflowException as e:
        first = e.message.split(". ")[0].splitlines()[0]
        raise ConfigError(f"MLflow cannot use {uri}: {first}; pass a server URL or sqlite:///DIR/mlflow.db") from None
    return client


def experiment_id(client: Any, name: str) -> str:
    """The experiment's id (made if new); ConfigError when the tracking store refuses (one line)."""
    from mlflow.exceptions import MlflowException

    try:
        exp = client.get_experiment_by_name(name)
        if exp is None:
            artifacts = None
            if client.tracking_uri == tracking_uri(None) and client.tracking_uri.startswith("sqlite:///"):
                artifacts = (Path(LOCAL_STORE) / "artifacts").resolve().as_uri()  # beside the local store, not in the cwd
            return client.create_experiment(name, artifact_location=artifacts)
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp.experiment_id)
        return exp.experiment_id
    except MlflowException as e:
        raise ConfigError(f"MLflow tracking store {client.tracking_uri} refused: {e.message.splitlines()[0]}") from None


def find_run(client: Any, exp_id: str, tag: str, value: str) -> Any | None:
    runs = client.search_runs([exp_id], filter_string=f"tags.`{tag}` = '{value}'", max_results=1)
    return runs[0] if runs else None


def sweep_parent(client: Any, exp_id: str, sweep_id: str, name: str | None) -> str:
    """The parent run of a sweep (made once, found again after)."""
    run = find_run(client, exp_id, "gdw.sweep_id", sweep_id)
    if run is not None and run.data.tags.get("gdw.kind") == "sweep":
        return run.info.run_id
    run = client.create_run(exp_id, run_name=name or sweep_id, tags={"gdw.sweep_id": sweep_id, "gdw.kind": "sweep"})
    return run.info.run_id


class MlflowSink:
    """One gdw run as one MLflow run; `write` may be called many times (live), each adding only new points."""

    def __init__(self, client: Any, exp_id: str, parent_run_id: str | None = None, live: bool = False):
        self.client, self.exp_id, self.parent, self.live = client, exp_id, parent_run_id, live
        self.run_id = ""
        self.done: dict[str, int] = {}  # series -> last step written

    def start(self, info: RunInfo) -> None:
        from mlflow.entities import Param

        run = find_run(self.client, self.exp_id, "gdw.run_id", info.run_id)
        tags = {f"gdw.{k}" if k == "run_id" else k: v for k, v in info.tags().items()}
        tags["gdw.kind"] = "run"
        if self.parent:
            tags["mlflow.parentRunId"] = self.parent
        if run is None:
            run = self.client.create_run(self.exp_id, run_name=info.run_id, tags=tags)
        else:
            for k, v in tags.items():
                if run.data.tags.get(k) != v:
                    self.client.set_tag(run.info.run_id, k, v)
        self.run_id = run.info.run_id
        if self.live and run.info.status != "RUNNING":
            self.client.update_run(self.run_id, status="RUNNING")  # a resumed run trains again
        try:
            done = json.loads(run.data.tags.get(EXPORTED, "{}"))
            self.done = {k: v for k, v in done.items() if isinstance(k, str) and isinstance(v, int)}
        except (ValueError, AttributeError):
            self.done = {}
        params = [Param(k, str(v)) for k, v in info.hparams().items() if k not in run.data.params]
        for i in range(0, len(params), 100):
            self.client.log_batch(self.run_id, params=params[i:i + 100])

    def write(self, records: list[Record]) -> int:
        """Log the records after the last exported step; returns how many went over."""
        from mlflow.entities import Metric

        metrics, images = [], []
        done = dict(self.done)
        for r in records:
            series = r.tag if isinstance(r, Scalar) else f"images/{r.tag}" if isinstance(r, Image) else None
            if series is None or r.step <= self.done.get(series, -1):
                continue  # histograms: MLflow has none; earlier steps: already there
            if isinstance(r, Scalar):
                metrics.append(Metric(r.tag, r.value, int(r.wall * 1000), r.step))
            else:
                images.append(r)
            done[series] = max(done.get(series, -1), r.step)
        for i in range(0, len(metrics), BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[i:i + BATCH])
        if images:
            with tempfile.TemporaryDirectory(prefix="gdw-mlflow-") as tmp:
                for kind in sorted({im.tag for im in images}):
                    folder = Path(tmp) / kind
                    folder.mkdir()
                    for im in images:
                        if im.tag == kind:
                            (folder / f"epoch_{im.epoch:04d}.png").write_bytes(im.png())
                            (folder / f"epoch_{im.epoch:04d}.txt").write_text(im.caption() + "\n")
                    self.client.log_artifacts(self.run_id, str(folder), artifact_path=f"images/{kind}")
        if done != self.done:
            self.client.set_tag(self.run_id, EXPORTED, json.dumps(done, separators=(",", ":"), sort_keys=True))
            self.done = done
        return len(metrics) + len(images)

    def finish(self, info: RunInfo) -> None:
        from mlflow.entities import Metric

        current = self.client.get_run(self.run_id).data.metrics
        now = int(time.time() * 1000)
        figures = [Metric(f"summary/{k}", v, now, info.epochs_done())
                   for k, v in info.figures().items() if current.get(f"summary/{k}") != v]
        if figures:
            self.client.log_batch(self.run_id, metrics=figures)
        for path in info.artifacts():
            self.client.log_artifact(self.run_id, str(path))
        status = ENDED.get(info.status)
        if status:
            self.client.set_terminated(self.run_id, status=status)

    def flush(self) -> None:
        pass  # every write is sent at once

    def close(self) -> None:
        pass


def export_targets(targets: list[Any], uri: str, experiment: str, say: Callable[[str], None]) -> None:
    client = client_for(uri)
    exp_id = experiment_id(client, experiment)
    for target in targets:
        parent = sweep_parent(client, exp_id, target.sweep_id, target.sweep_name) if target.sweep_id else None
        statuses = []
        for run_dir in target.runs:
            info, records = read_run(run_dir)
            sink = MlflowSink(client, exp_id, parent)
            sink.start(info)
            n = sink.write(records)
            sink.finish(info)
            statuses.append(info.status)
            say(f"{info.run_id}: {n} new points -> MLflow run {sink.run_id} in experiment '{experiment}' at {uri}")
        if parent and all(s in ENDED for s in statuses):
            client.set_terminated(parent, status="FINISHED" if all(s == "finished" for s in statuses) else "FAILED")
