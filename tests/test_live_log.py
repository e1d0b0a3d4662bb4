"""Live logging (`--log`, train.log): a real digits run streams its records to TensorBoard while it
trains, read back from a real TensorBoard server with the engine provably held mid-run; bad
--log input is one line and exit 2 with no run made; without --log no backend library is imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.config import load_preset
from engine.runs import create_run, read_summary
from gdw_cli.main import app

sys.path.insert(0, str(Path(__file__).parent))
from export_support import f32, free_port, mlflow_fixture, tensorboard_server, tool  # noqa: E402
from lifecycle_helpers import ROOT, child_env, events, wait_for  # noqa: E402

runner = CliRunner()
EPOCHS = 5
HELD_IN = 3  # the engine is held inside this epoch (0-based): epochs 0..2 are over, the run is not


def served(server, run: str, tag: str) -> list[tuple[int, float]]:
    data = server.get_json("/data/plugin/scalars/tags").get(run, {})
    if tag not in data:
        return []
    return [(step, value) for _, step, value in server.get_json(f"/data/plugin/scalars/scalars?run={run}&tag={tag}")]


def test_tensorboard_sees_the_epochs_of_a_run_while_it_trains(tmp_path):
    runs, tb = tmp_path / "runs", tmp_path / "tb"
    cfg = load_preset("digits-unif60", {"train.epochs": EPOCHS, "train.device": "cpu", "train.log": "tensorboard",
                                        "train.log_to": str(tb), "train.step_events_per_s": 10000.0})
    run_dir = create_run(runs, cfg)
    release = tmp_path / "release"
    proc = subprocess.Popen([sys.executable, "-m", "engine", "run", "--run-dir", str(run_dir)],
                            env=child_env(GDW_TEST_HOLD=f"step@{HELD_IN}.1:{release}"), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    server = None
    try:
        wait_for(lambda: Path(f"{release}.held").exists(), 300, "the engine to hold inside epoch 4", proc)
        server = tensorboard_server(tb, tmp_path / "tb.log")
        so_far = [e for e in events(run_dir) if e["type"] == "epoch"]
        assert [e["epoch"] for e in so_far] == list(range(HELD_IN))
        want = [(e["epoch"], f32(e["test_acc"])) for e in so_far]
        wait_for(lambda: served(server, run_dir.name, "epoch/test_acc") == want, 60, "TensorBoard to serve epochs 1-3")
        # Still held: the run has not ended, and TensorBoard already has its first epochs.
        assert proc.poll() is None
        assert not any(e["type"] == "run_end" for e in events(run_dir))
        assert read_summary(run_dir)["status"] == "running"
        release.touch()
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        epochs = [e for e in events(run_dir) if e["type"] == "epoch"]
        assert len(epochs) == EPOCHS
        want = [(e["epoch"], f32(e["test_acc"])) for e in epochs]
        wait_for(lambda: served(server, run_dir.name, "epoch/test_acc") == want, 60, "TensorBoard to serve every epoch")
        steps = [e for e in events(run_dir) if e["type"] == "step"]
        assert served(server, run_dir.name, "iter/loss") == [(e["global_iter"], f32(e["loss"])) for e in steps]
        final = read_summary(run_dir)["final_acc"]
        wait_for(lambda: served(server, run_dir.name, "summary/final_acc") == [(EPOCHS, f32(final))], 60, "the summary")
        images = server.get_json("/data/plugin/images/tags")[run_dir.name]
        assert set(images) == {"images/omega", "images/table6_increase_ratio"}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if server is not None:
            server.stop()


mlflow = pytest.fixture(scope="module")(mlflow_fixture)


def train(tmp_path: Path, **overrides) -> Path:
    """A short digits run trained by the real engine process, with the given train.* fields."""
    fields = {"train.epochs": 3, "train.device": "cpu", **{f"train.{k}": v for k, v in overrides.items()}}
    run_dir = create_run(tmp_path / "runs", load_preset("digits-unif60", fields))
    out = subprocess.run([sys.executable, "-m", "engine", "run", "--run-dir", str(run_dir)], env=child_env(), cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return run_dir


def test_live_logging_to_mlflow_and_wandb_gives_what_export_gives(tmp_path, mlflow):
    from mlflow.tracking import MlflowClient

    run_dir = train(tmp_path, log="mlflow", log_to=mlflow.url)
    epochs = [e for e in events(run_dir) if e["type"] == "epoch"]
    client = MlflowClient(tracking_uri=mlflow.url)
    exp = client.get_experiment_by_name("gdw")
    [run] = client.search_runs([exp.experiment_id], filter_string=f"tags.`gdw.run_id` = '{run_dir.name}'")
    assert run.info.status == "FINISHED" and run.data.tags["method"] == "gdw"
    history = client.get_metric_history(run.info.run_id, "epoch/test_acc")
    assert sorted((m.step, m.value) for m in history) == [(e["epoch"], e["test_acc"]) for e in epochs]
    assert run.data.metrics["summary/final_acc"] == read_summary(run_dir)["final_acc"]
    # Exporting the run after live logging adds nothing: every point is there once.
    r = runner.invoke(app, ["export", str(run_dir), "--to", "mlflow", "--tracking-uri", mlflow.url])
    assert r.exit_code == 0 and "0 new points" in r.output, r.output
    assert len(client.get_metric_history(run.info.run_id, "epoch/test_acc")) == len(epochs)

    wb = tmp_path / "wb"
    run_dir = train(tmp_path, log="wandb", log_to=str(wb))
    [path] = (wb / "wandb").glob("offline-run-*/run-*.wandb")
    out = subprocess.run([*tool("wandb"), "leet", "inspect", str(path), "--json"], capture_output=True, text=True,
                         timeout=120, check=True)
    records = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    history = [r["history"]["item"] for r in records if r["type"] == "history"]
    epochs = [e for e in events(run_dir) if e["type"] == "epoch"]
    assert [(h["epoch"], h["epoch/test_acc"]) for h in history if "epoch/test_acc" in h] == [
        (e["epoch"], pytest.approx(e["test_acc"], rel=1e-12)) for e in epochs]
    assert any(r["type"] == "exit" for r in records)  # the W&B run was finished


def one_line_error(r, *words: str) -> None:
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_bad_log_input_is_one_line_and_makes_no_run(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    args = ["digits-unif60", "--headless", "--device", "cpu", "--runs-dir", str(runs)]
    one_line_error(runner.invoke(app, ["run", *args, "--log", "comet"]), "train.log", "tensorboard, mlflow, wandb")
    closed = f"http://127.0.0.1:{free_port()}"
    one_line_error(runner.invoke(app, ["run", *args, "--log", "mlflow", "--log-to", closed]), "unreachable", closed)
    one_line_error(runner.invoke(app, ["sweep", "digits-unif60", "--seeds", "1", "--runs-dir", str(runs),
                                       "--log", "mlflow", "--log-to", closed]), "unreachable")
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if the extra were not installed
    one_line_error(runner.invoke(app, ["run", *args, "--log", "tensorboard"]), "'tensorboard' extra", "pip install")
    assert not runs.exists() or not any(runs.iterdir())


def test_without_log_the_engine_imports_no_backend(tmp_path):
    code = ("import sys; from engine.config import load_preset; from engine.runs import create_run;"
            "from engine.lifecycle import train_run;"
            f"d = create_run(__import__('pathlib').Path({str(tmp_path)!r}), load_preset('digits-unif60', {{'train.epochs': 1, 'train.device': 'cpu'}}));"
            "train_run(d);"
            "print(sorted(m for m in ('tensorboard', 'mlflow', 'wandb', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=child_env(), cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
