"""Bad input, as a battery: every malformed input through the real CLI ends with exactly one line
on stderr naming the problem, exit code 2, no traceback, no new (half-made) run directory and no
run whose status changed — in particular none left marked running.

The table's messages are listed in docs/reliability.md. The TUI's launch form validates with the
same engine.config functions; test_form_says_what_the_cli_says checks it gives the same lines.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from engine.config import load_preset
from engine.runs import LOCK, create_run, list_runs, read_summary, write_summary
from gdw_cli.main import app

runner = CliRunner()
HAS_CUDA = torch.cuda.is_available()


def make_run(root: Path, status: str, **files: bytes | str) -> Path:
    """A run directory in `status`, with extra files (relative path -> content)."""
    cfg = load_preset("digits-unif60", {"train.epochs": 2, "train.device": "cpu"})
    run_dir = create_run(root, cfg)
    s = read_summary(run_dir)
    s.update(status=status, final_acc=91.25 if status == "finished" else None)
    write_summary(run_dir, s)
    for rel, content in files.items():
        path = run_dir / rel.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return run_dir


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A runs directory with runs in every state a bad command could meet, and bad files."""
    base = tmp_path_factory.mktemp("bad")
    root = base / "runs"
    events = json.dumps({"type": "run_start", "v": 1, "t": 1.0, "run_id": "x"}) + "\n"
    garbage = bytes(range(256)) * 16  # not UTF-8, not TOML, not a pickle, not a zip
    w = {
        "base": base,
        "root": root,
        "finished": make_run(root, "finished", **{"events.jsonl": events}).name,
        "corrupt_ckpt": make_run(root, "stopped", **{"events.jsonl": events, "checkpoints__last.pt": garbage}).name,
        "corrupt_cfg": make_run(root, "stopped", **{"events.jsonl": events, "checkpoints__last.pt": garbage,
                                                     "config.toml": "[train\nepochs = 3\n"}).name,
        "no_ckpt": make_run(root, "stopped", **{"events.jsonl": events}).name,
        "running": make_run(root, "running", **{"events.jsonl": events}).name,
    }
    # "Running": an engine holds the run's lock (a stand-in process, so no training is needed).
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
         "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, str(os.getpid()).encode()); print('locked', flush=True); "
         "time.sleep(600)", str(root / w["running"] / LOCK)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    (base / "garbage.toml").write_bytes(garbage)
    (base / "wrong-type.toml").write_text('[train]\nepochs = "ten"\n')
    (base / "unknown-section.toml").write_text("[trian]\nepochs = 3\n")
    (base / "a-directory.toml").mkdir()
    (base / "a-file").write_text("not a directory\n")
    (base / "empty-data").mkdir()
    try:
        yield w
    finally:
        holder.kill()
        holder.wait()


# (id, command line, what the one line must contain). {base}/{root} and run names are filled in.
RUN = ["run", "--headless"]
CASES = [
    ("unknown preset", RUN + ["digits-unif6O"], ["unknown preset 'digits-unif6O'", "did you mean 'digits-unif60'", "valid presets: cifar10-flip20"]),
    ("unknown field", RUN + ["digits-unif60", "--set", "train.epoch=3"], ["unknown field 'train.epoch'", "did you mean 'train.epochs'"]),
    ("unknown field (section)", RUN + ["digits-unif60", "--set", "trian.epochs=3"], ["unknown field 'trian.epochs'", "did you mean 'train.epochs'"]),
    ("wrong type (--set)", RUN + ["digits-unif60", "--set", "train.epochs=ten"], ["train.epochs must be an integer (got 'ten')"]),
    ("wrong type (option)", RUN + ["digits-unif60", "--epochs", "ten"], ["Invalid value for '--epochs'"]),
    ("wrong type (bool)", RUN + ["digits-unif60", "--set", "data.augment=maybe"], ["data.augment must be true or false (got 'maybe')"]),
    ("negative epochs", RUN + ["digits-unif60", "--epochs", "-3"], ["train.epochs must be in [1, 100000] (got -3)"]),
    ("zero epochs", RUN + ["digits-unif60", "--set", "train.epochs=0"], ["train.epochs must be in [1, 100000] (got '0')"]),
    ("noise rate 1.5", RUN + ["digits-unif60", "--set", "data.noise_rate=1.5"], ["data.noise_rate must be in [0, 1] (got '1.5')"]),
    ("imbalance 0", RUN + ["digits-unif60", "--set", "data.imbalance=0"], ["data.imbalance must be in [1, 100000] (got '0')"]),
    ("lr nan", RUN + ["digits-unif60", "--set", "train.lr=nan"], ["train.lr must be in (0, 100] (got 'nan')"]),
    ("unknown method", RUN + ["digits-unif60", "--method", "sgd"], ["train.method must be one of erm, l2rw, mwnet, glc, coteach, insw, gdw, gdw-nozm (got 'sgd')"]),
    ("noise without rate", RUN + ["digits-clean", "--set", "data.noise=flip"], ["data.noise='flip' needs data.noise_rate > 0"]),
    ("malformed --set (no =)", RUN + ["digits-unif60", "--set", "train.epochs"], ["--set expects section.key=value", "(got 'train.epochs')"]),
    ("malformed --set (no section)", RUN + ["digits-unif60", "--set", "epochs=3"], ["--set expects section.key=value", "did you mean 'train.epochs=3'"]),
    ("malformed --set (empty value)", RUN + ["digits-unif60", "--set", "train.epochs="], ["train.epochs must be an integer (got '')"]),
    ("missing argument", ["run", "--headless"], ["Missing argument"]),
    ("unknown option", RUN + ["digits-unif60", "--epoch", "3"], ["No such option: --epoch"]),
    ("forget rate 1", RUN + ["digits-unif60", "--method", "coteach", "--set", "train.forget_rate=1"], ["train.forget_rate must be in [0, 1) or -1 (auto) (got '1')"]),
    ("forget rate -0.5", RUN + ["digits-unif60", "--set", "train.forget_rate=-0.5"], ["train.forget_rate must be in [0, 1) or -1 (auto) (got '-0.5')"]),
    ("forget epochs 0", RUN + ["digits-unif60", "--set", "train.forget_epochs=0"], ["train.forget_epochs must be in [1, 100000] (got '0')"]),
    ("glc phase 1 too long", RUN + ["digits-unif60", "--method", "glc", "--epochs", "10", "--set", "train.glc_phase1_epochs=10"],
     ["train.glc_phase1_epochs=10 leaves no epoch for GLC's phase 2; it must be less than train.epochs=10 (0 = half)"]),
    ("glc phase 1 negative", RUN + ["digits-unif60", "--set", "train.glc_phase1_epochs=-1"], ["train.glc_phase1_epochs must be in [0, 100000] (got '-1')"]),
    ("glc one epoch", RUN + ["digits-unif60", "--method", "glc", "--epochs", "1"], ["method glc trains in two phases: train.epochs must be at least 2 (got 1)"]),
    ("coteach on imbalance only", ["sweep", "digits-imb", "--methods", "erm,coteach", "--seeds", "1"],
     ["coteach is a label-noise method and preset digits-imb has no label noise (class imbalance 10 only); leave coteach out of --methods, or pass --force to run it anyway"]),
    ("garbage preset file", RUN + ["{base}/garbage.toml"], ["garbage.toml is not valid TOML"]),
    ("wrong type in preset file", RUN + ["{base}/wrong-type.toml"], ["wrong-type.toml: train.epochs must be an integer (got 'ten')"]),
    ("unknown section in preset file", RUN + ["{base}/unknown-section.toml"], ["unknown-section.toml: unknown section or field 'trian'", "did you mean 'train'"]),
    ("preset path does not exist", RUN + ["{base}/nope.toml"], ["preset file not found: {base}/nope.toml"]),
    ("preset path is a directory", RUN + ["{base}/a-directory.toml"], ["preset path is a directory, not a .toml file: {base}/a-directory.toml"]),
    ("bad --presets-dir", RUN + ["digits-unif60", "--presets-dir", "{base}/no-presets"], ["presets directory not found: {base}/no-presets"]),
    ("bad --presets-dir (gdw presets)", ["presets", "--presets-dir", "{base}/no-presets"], ["presets directory not found: {base}/no-presets"]),
    ("missing dataset files", RUN + ["cifar10-unif40", "--device", "cpu", "--data-dir", "{base}/empty-data"], ["{base}/empty-data", "--download"]),
    ("CUDA unavailable (cuda)", RUN + ["digits-unif60", "--device", "cuda"], ["device 'cuda' is not available", "--device cpu"],
     pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA")),
    ("CUDA unavailable (cuda:7)", RUN + ["digits-unif60", "--device", "cuda:7"], ["device 'cuda:7' is not available"],
     pytest.mark.skipif(HAS_CUDA and torch.cuda.device_count() > 7, reason="this machine has cuda:7")),
    ("device syntax", RUN + ["digits-unif60", "--device", "tpu"], ["train.device must be auto, cpu, cuda or cuda:N (got 'tpu')"]),
    ("runs dir is a file", RUN + ["digits-unif60", "--device", "cpu", "--runs-dir", "{base}/a-file"], ["runs directory {base}/a-file is a file, not a directory"]),
    ("runs dir below a file", RUN + ["digits-unif60", "--device", "cpu", "--runs-dir", "{base}/a-file/runs"], ["cannot create runs directory {base}/a-file/runs: Not a directory"]),
    ("resume: no such run", ["resume", "no-such-run", "--headless"], ["no run 'no-such-run' in {root}"]),
    ("resume: still running", ["resume", "{running}", "--headless"], ["run {running} is still running; stop it first with `gdw stop {running}`"]),
    ("resume: finished", ["resume", "{finished}", "--headless"], ["run {finished} already finished; nothing to resume"]),
    ("resume: no checkpoint", ["resume", "{no_ckpt}", "--headless"], ["run {no_ckpt} has no checkpoint yet"]),
    ("resume: corrupt checkpoint", ["resume", "{corrupt_ckpt}", "--headless"], ["checkpoint {root}/{corrupt_ckpt}/checkpoints/last.pt is corrupt or does not match this run"]),
    ("resume: corrupt config.toml", ["resume", "{corrupt_cfg}", "--headless"], ["{root}/{corrupt_cfg}/config.toml is corrupt"]),
    ("resume --detach: corrupt config.toml", ["resume", "{corrupt_cfg}", "--detach"], ["{root}/{corrupt_cfg}/config.toml is corrupt"]),
    ("stop: not running", ["stop", "{finished}"], ["run {finished} is not running (status: finished)"]),
    ("stop: no such run", ["stop", "no-such-run"], ["no run 'no-such-run' in {root}"]),
    ("show: no such run", ["show", "no-such-run"], ["no run 'no-such-run' in {root}"]),
    ("show: ambiguous run", ["show", "digits-unif60"], ["run 'digits-unif60' is ambiguous in {root}"]),
]


def snapshot(root: Path) -> dict[str, str]:
    return {r["run_id"]: r["status"] for r in list_runs(root)}


@pytest.mark.parametrize("case, argv, expected", [pytest.param(*c[:3], id=c[0], marks=c[3:]) for c in CASES])
def test_bad_input_gets_one_line_and_exit_2(world, case, argv, expected):
    fill = {k: str(v) for k, v in world.items()}
    argv = [a.format(**fill) for a in argv]
    if "--runs-dir" not in argv and argv[0] != "presets":
        argv += ["--runs-dir", fill["root"]]
    before = snapshot(world["root"])
    result = runner.invoke(app, argv)
    output = result.stdout + result.stderr
    assert result.exit_code == 2, output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    for part in expected:
        assert part.format(**fill) in lines[0], lines[0]
    assert "Traceback" not in output
    # Nothing half-made, nothing changed: same runs, same statuses (the "running" one is the stand-in).
    assert snapshot(world["root"]) == before
    assert [r for r, s in before.items() if s == "running"] == [world["running"]]


def test_the_battery_is_big_enough():
    assert len(CASES) >= 20


# The form fields of the TUI's launch form, and the CLI arguments that set the same thing.
FORM_CASES = [
    ({"epochs": "-3"}, "", ["--epochs", "-3"]),
    ({"epochs": "ten"}, "", ["--set", "train.epochs=ten"]),
    ({"method": "sgd"}, "", ["--method", "sgd"]),
    ({"device": "tpu"}, "", ["--device", "tpu"]),
    ({}, "data.noise_rate=1.5", ["--set", "data.noise_rate=1.5"]),
    ({}, "data.imbalance=0", ["--set", "data.imbalance=0"]),
    ({}, "train.epoch=3", ["--set", "train.epoch=3"]),
    ({}, "epochs=3", ["--set", "epochs=3"]),
]


@pytest.mark.parametrize("fields, more, argv", FORM_CASES)
def test_form_says_what_the_cli_says(fields, more, argv):
    """The TUI's launch form shows the CLI's message for the same bad value (both use engine.config)."""
    form = pytest.importorskip("gdw_tui.launch_form")
    result = form.validate("digits-unif60", fields, more, None)
    assert not result.ok
    cli_line = runner.invoke(app, RUN + ["digits-unif60", *argv]).stderr.strip()
    shown = result.first_error()
    # The CLI quotes a value given as a number on the command line the same way as typed text,
    # except `--epochs -3`, which Typer has already parsed into an int.
    assert cli_line == f"error: {shown}" or cli_line.replace("(got -3)", "(got '-3')") == f"error: {shown}"
