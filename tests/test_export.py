"""`gdw export`: what a run recorded, read back from the real TensorBoard, MLflow and W&B and from the CSV.

The servers are real (started here on 127.0.0.1, stopped after); the values they give back must be the
events' own numbers, and a second export must not add a single point.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.export.records import EPOCH_SCALARS, STEP_SCALARS, read_run, run_info
from gdw_cli.main import app

sys.path.insert(0, str(Path(__file__).parent))
from export_support import (  # noqa: E402
    GDW_RUN, MWNET_RUN, SWEEP_ID, events_of, f32, free_port, make_sweep, mlflow_fixture, tensorboard_server, tool,
)

runner = CliRunner()


def gdw(*args: str):
    return runner.invoke(app, ["export", *args])


@pytest.fixture(scope="module")
def sweep_runs(tmp_path_factory) -> Path:
    return make_sweep(tmp_path_factory.mktemp("export") / "runs")


# --- CSV -------------------------------------------------------------------------------------------


def test_csv_is_one_tidy_table_of_the_events_and_a_second_export_changes_nothing(sweep_runs, tmp_path):
    out = tmp_path / "csv"
    r = gdw(SWEEP_ID, "--to", "csv", "--out", str(out), "--runs-dir", str(sweep_runs))
    assert r.exit_code == 0, r.output
    path = out / f"{SWEEP_ID}.csv"
    first = path.read_bytes()
    rows = list(csv.DictReader(io.StringIO(first.decode())))
    assert list(rows[0]) == ["run", "preset", "method", "seed", "epoch", "iteration", "metric", "value"]
    for run_id, method in ((GDW_RUN, "gdw"), (MWNET_RUN, "mwnet")):
        mine = [row for row in rows if row["run"] == run_id]
        assert {row["method"] for row in mine} == {method} and {row["seed"] for row in mine} == {"1"}
        epochs = events_of(sweep_runs / run_id, "epoch")
        got = {(int(row["epoch"]), row["metric"]): float(row["value"]) for row in mine if row["metric"].startswith("epoch/")}
        want = {(e["epoch"], tag): e[k] for e in epochs for k, tag in EPOCH_SCALARS.items() if e[k] is not None}
        assert got == want
        steps = events_of(sweep_runs / run_id, "step")
        loss = [(int(row["iteration"]), float(row["value"])) for row in mine if row["metric"] == "iter/loss"]
        assert loss == [(e["global_iter"], e["loss"]) for e in steps]
        summary = json.loads((sweep_runs / run_id / "summary.json").read_text())
        assert [float(row["value"]) for row in mine if row["metric"] == "summary/final_acc"] == [summary["final_acc"]]
    r = gdw(SWEEP_ID, "--to", "csv", "--out", str(out), "--runs-dir", str(sweep_runs))
    assert r.exit_code == 0 and path.read_bytes() == first
    assert sorted(p.name for p in out.iterdir()) == [f"{SWEEP_ID}.csv"]  # no temporary file left


# --- TensorBoard -----------------------------------------------------------------------------------


def test_tensorboard_serves_the_events_values_once_each(sweep_runs, tmp_path):
    out = tmp_path / "tb"
    for _ in range(2):  # exported twice: the second replaces the first, nothing doubles
        r = gdw(SWEEP_ID, "--to", "tensorboard", "--out", str(out), "--runs-dir", str(sweep_runs))
        assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (out / SWEEP_ID).iterdir()) == sorted([GDW_RUN, MWNET_RUN])
    for run_id in (GDW_RUN, MWNET_RUN):  # one event file each (TensorBoard itself would hide a second copy's points)
        assert len(list((out / SWEEP_ID / run_id).iterdir())) == 1
    server = tensorboard_server(out, tmp_path / "tb.log")
    try:
        for run_id in (GDW_RUN, MWNET_RUN):
            run = f"{SWEEP_ID}/{run_id}"
            epochs = events_of(sweep_runs / run_id, "epoch")
            got = server.get_json(f"/data/plugin/scalars/scalars?run={run}&tag=epoch/test_acc")
            assert [(step, value) for _, step, value in got] == [(e["epoch"], f32(e["test_acc"])) for e in epochs]
            steps = events_of(sweep_runs / run_id, "step")
            got = server.get_json(f"/data/plugin/scalars/scalars?run={run}&tag=iter/meta_loss")
            assert [(step, value) for _, step, value in got] == [(e["global_iter"], f32(e["meta_loss"])) for e in steps]
            weights = events_of(sweep_runs / run_id, "weights")
            got = server.get_json(f"/data/plugin/scalars/scalars?run={run}&tag=iter/target_weight_corrupted")
            assert [(s, v) for _, s, v in got] == [(e["global_iter"], f32(e["target_weight"]["corrupted_mean"])) for e in weights]
        tags = server.get_json("/data/plugin/scalars/tags")[f"{SWEEP_ID}/{GDW_RUN}"]
        assert set(STEP_SCALARS.values()) | set(EPOCH_SCALARS.values()) | {"summary/final_acc"} <= set(tags)
        images = server.get_json("/data/plugin/images/tags")[f"{SWEEP_ID}/{GDW_RUN}"]
        assert set(images) == {"images/omega", "images/table6_increase_ratio"}
        assert "images/omega" in server.get_json("/data/plugin/images/tags")[f"{SWEEP_ID}/{MWNET_RUN}"]
        assert set(server.get_json("/data/plugin/histograms/tags")[f"{SWEEP_ID}/{GDW_RUN}"]) == {
            "weights/target_clean", "weights/target_corrupted"}
        texts = server.get_json("/data/plugin/text/tags")[f"{SWEEP_ID}/{GDW_RUN}"]
        assert set(texts) == {"run/tags", "run/config.toml", "run/summary.json", "images/omega/scale",
                              "images/table6_increase_ratio/scale"}
        hparams = server.get_json_post("/data/plugin/hparams/experiment", {"experimentName": ""})
        info = {h["name"]: h for h in hparams["hparamInfos"]}
        assert sorted(info["train.method"]["domainDiscrete"]) == ["gdw", "mwnet"] and "train.lr" in info
    finally:
        server.stop()


# --- MLflow ----------------------------------------------------------------------------------------


mlflow = pytest.fixture(scope="module")(mlflow_fixture)


def test_mlflow_gets_a_parent_run_with_nested_runs_and_each_point_once(sweep_runs, mlflow, tmp_path):
    from mlflow.tracking import MlflowClient

    # First a copy of the gdw run cut after its third epoch (a running run), then the whole sweep, twice.
    partial = tmp_path / "runs"
    partial.mkdir()
    shutil.copytree(sweep_runs / GDW_RUN, partial / GDW_RUN)
    lines = (partial / GDW_RUN / "events.jsonl").read_text().splitlines(keepends=True)
    third = [i for i, line in enumerate(lines) if '"type":"epoch"' in line][2]
    (partial / GDW_RUN / "events.jsonl").write_text("".join(lines[: third + 1]))
    assert gdw(GDW_RUN, "--to", "mlflow", "--tracking-uri", mlflow.url, "--project", "t", "--runs-dir", str(partial)).exit_code == 0
    for _ in range(2):
        r = gdw(SWEEP_ID, "--to", "mlflow", "--tracking-uri", mlflow.url, "--project", "t", "--runs-dir", str(sweep_runs))
        assert r.exit_code == 0, r.output
    client = MlflowClient(tracking_uri=mlflow.url)
    exp = client.get_experiment_by_name("t")
    parents = client.search_runs([exp.experiment_id], filter_string="tags.`gdw.kind` = 'sweep'")
    assert [p.data.tags["gdw.sweep_id"] for p in parents] == [SWEEP_ID]
    assert parents[0].info.status == "FINISHED"
    children = client.search_runs([exp.experiment_id], filter_string="tags.`gdw.kind` = 'run'")
    assert sorted(c.data.tags["gdw.run_id"] for c in children) == sorted([GDW_RUN, MWNET_RUN])
    for child in children:
        run_id = child.data.tags["gdw.run_id"]
        run_dir = sweep_runs / run_id
        info, _ = read_run(run_dir)
        assert child.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert {k: child.data.tags[k] for k in ("preset", "method", "seed", "sweep")} == {
            "preset": "digits-unif60", "method": info.method, "seed": "1", "sweep": SWEEP_ID}
        assert child.data.params == {k: str(v) for k, v in info.hparams().items()}
        assert child.info.status == "FINISHED"
        epochs = events_of(run_dir, "epoch")
        history = client.get_metric_history(child.info.run_id, "epoch/test_acc")
        assert sorted((m.step, m.value) for m in history) == [(e["epoch"], e["test_acc"]) for e in epochs]
        steps = events_of(run_dir, "step")
        history = client.get_metric_history(child.info.run_id, "iter/loss")
        assert sorted((m.step, m.value) for m in history) == [(e["global_iter"], e["loss"]) for e in steps]
        assert child.data.metrics["summary/final_acc"] == json.loads((run_dir / "summary.json").read_text())["final_acc"]
        files = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"config.toml", "summary.json", "images"} <= files
        omegas = [a.path for a in client.list_artifacts(child.info.run_id, "images/omega")]
        assert omegas == [f"images/omega/epoch_{e['epoch']:04d}.{ext}" for e in epochs for ext in ("png", "txt")]
        config = Path(client.download_artifacts(child.info.run_id, "config.toml", str(tmp_path)))
        assert config.read_bytes() == (run_dir / "config.toml").read_bytes()


# --- W&B -------------------------------------------------------------------------------------------


def wandb_records(path: Path) -> list[dict]:
    """The records of an offline run file, through wandb's own reader (`wandb leet inspect --json`)."""
    out = subprocess.run([*tool("wandb"), "leet", "inspect", str(path), "--json"], capture_output=True, text=True, timeout=120, check=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def test_wandb_offline_files_hold_the_events_history_in_the_sweeps_group(sweep_runs, tmp_path):
    out = tmp_path / "wb"
    for _ in range(2):
        r = gdw(SWEEP_ID, "--to", "wandb", "--out", str(out), "--project", "lab", "--runs-dir", str(sweep_runs))
        assert r.exit_code == 0, r.output
    files = sorted((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 2  # one per run: the second export replaced the first
    for path in files:
        records = wandb_records(path)
        run = next(r["run"] for r in records if r["type"] == "run")
        run_id = run["display_name"]
        assert run["run_group"] == SWEEP_ID and run["project"] == "lab"
        info = run_info(sweep_runs / run_id)
        assert info.method in run["tags"] and "seed=1" in run["tags"]
        history = [r["history"]["item"] for r in records if r["type"] == "history"]
        epochs = events_of(sweep_runs / run_id, "epoch")
        assert [(h["epoch"], h["epoch/test_acc"]) for h in history if "epoch/test_acc" in h] == [
            (e["epoch"], pytest.approx(e["test_acc"], rel=1e-12)) for e in epochs]
        steps = events_of(sweep_runs / run_id, "step")
        assert [(h["iteration"], h["iter/loss"]) for h in history if "iter/loss" in h] == [
            (e["global_iter"], pytest.approx(e["loss"], rel=1e-12)) for e in steps]
        assert sum("images/omega._type" in h for h in history) == len(epochs)
        saved = path.parent / "files"
        assert (saved / "config.toml").read_bytes() == (sweep_runs / run_id / "config.toml").read_bytes()
        assert json.loads((saved / "summary.json").read_text()) == json.loads((sweep_runs / run_id / "summary.json").read_text())


# --- bad input -------------------------------------------------------------------------------------


def one_line_error(r, *words: str) -> None:
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_bad_input_is_one_line_exit_2_and_writes_nothing(sweep_runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runs = ["--runs-dir", str(sweep_runs)]
    one_line_error(gdw(GDW_RUN, "--to", "comet", *runs), "comet", "tensorboard, mlflow, wandb, csv")
    one_line_error(gdw("no-such-run", "--to", "csv", *runs), "no-such-run")
    one_line_error(gdw(GDW_RUN, "--to", "csv", "--tracking-uri", "http://x", *runs), "--tracking-uri")
    closed = f"http://127.0.0.1:{free_port()}"
    one_line_error(gdw(GDW_RUN, "--to", "mlflow", "--tracking-uri", closed, *runs), "unreachable", closed)
    (tmp_path / "a-file").write_text("x")
    one_line_error(gdw(GDW_RUN, "--to", "tensorboard", "--out", str(tmp_path / "a-file"), *runs), "is a file")
    one_line_error(gdw(GDW_RUN, "--to", "csv", "--out", str(tmp_path / "a-file" / "sub"), *runs), "cannot be created")
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if the extra were not installed
    one_line_error(gdw(GDW_RUN, "--to", "tensorboard", *runs), "'tensorboard' extra", "pip install")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # no gdw-export/, no mlruns/
