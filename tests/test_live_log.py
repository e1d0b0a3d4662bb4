"""Live logging (`--log`, train.log): a real digits run streams its records to TensorBoard while it
trains, read back from a real TensorBoard server with the engine provably held mid-run; bad
--log input is one line and exit 2 with no run made; without --log no backend library is imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from engine.config import load_preset
from engine.runs import create_run, read_summary
from gdw_cli.main import app

sys.path.insert(0, str(Path(__file__).parent))
from export_support import f32, free_port, tensorboard_server  # noqa: E402
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
