"""CLI polish: whole preset names in a pipe, --json, `gdw fields`, `--version`, classic metavars in
--help, and training headless when stdout is not a terminal."""

from __future__ import annotations

import json
import re
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

import engine
from engine.config import SCHEMA, TOP_LEVEL, all_field_names, available_presets, load_preset
from engine.runs import create_run, read_summary
from gdw_cli.main import NOT_A_TERMINAL, app
from lifecycle_helpers import SMALL, child_env, gdw_command, last_line

COMMANDS = ["presets", "fields", "run", "resume", "stop", "show", "runs", "tui", "bench", "sweep", "sweeps", "report", "plot"]


def cli(*args: str, columns: int = 80):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": str(columns)})


def test_presets_in_a_pipe_prints_whole_names():
    """CliRunner's stdout is not a terminal; 40 columns would shorten names in a table fitted to it."""
    result = cli("presets", columns=40)
    assert result.exit_code == 0, result.output
    names = sorted(available_presets())
    listed = sorted(line.split()[0] for line in result.stdout.splitlines()[1:] if line.strip())
    assert listed == names
    assert "…" not in result.stdout


def test_presets_json():
    result = cli("presets", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == list(available_presets())
    by_name = {r["name"]: r for r in rows}
    cfg = load_preset("cifar10-unif40")
    assert by_name["cifar10-unif40"] | {"path": None} == {
        "name": "cifar10-unif40", "title": cfg["title"], "dataset": "cifar10", "method": cfg["train"]["method"],
        "epochs": cfg["train"]["epochs"], "path": None}
    assert Path(by_name["cifar10-unif40"]["path"]).name == "cifar10-unif40.toml"


def test_version_is_the_package_version():
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"gdw {engine.__version__}"
    assert version("gdw-tui") == engine.__version__  # pyproject reads the version from engine/__init__.py


def test_fields_lists_every_field_from_the_schema():
    result = cli("fields", columns=60)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert sorted(line.split()[0] for line in lines[1:] if line.strip()) == sorted(all_field_names())
    outer = next(line for line in lines if line.startswith("train.outer_lr "))
    assert re.search(r"train\.outer_lr\s+float\s+100\.0\s+in \(0, 1000000000\]\s+GDW outer learning rate", outer), outer
    rows = {r["field"]: r for r in json.loads(cli("fields", "--json").stdout)}
    assert set(rows) == set(all_field_names())
    f = SCHEMA["train"]["method"]
    assert rows["train.method"] == {"field": "train.method", "type": "str", "default": f.default,
                                    "range": f.describe_range(), "meaning": f.help}
    assert rows["train.seed"]["range"] == "in [0, 2147483647]" and rows["data.data_dir"]["range"] is None
    assert rows["title"]["meaning"] == TOP_LEVEL["title"].help


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_shows_classic_metavars_not_python_types(command):
    result = cli(*([command] if command else []), "--help", columns=200)
    assert result.exit_code == 0, result.output
    assert not re.search(r"<(bool|str|int|float|list)", result.stdout), result.stdout
    if command is None:
        assert "--version" in result.stdout and "fields" in result.stdout
    if command == "run":
        assert re.search(r"--seed\s+SEED\s+seed for initialisation, corruption and data order", result.stdout)
        assert re.search(r"--epochs\s+EPOCHS\s+epochs to train", result.stdout)
        assert re.search(r"--set\s+FIELD=VALUE", result.stdout)
        assert re.search(r"^\W*--headless\s+train in this process", result.stdout, re.M)  # a flag: no metavar


def test_a_missing_argument_names_it_in_capitals():
    result = cli("run")
    assert result.exit_code == 2 and result.stderr.strip() == "error: Missing argument 'PRESET'."


def test_gdw_run_in_a_pipe_trains_headless(tmp_path):
    out = subprocess.run(
        [*gdw_command(), "run", "digits-unif60", "--epochs", "1", *SMALL, "--runs-dir", str(tmp_path)],
        capture_output=True, text=True, env=child_env(), timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines()[0] == NOT_A_TERMINAL
    assert last_line(out.stdout).startswith("final_acc=")
    (run_dir,) = tmp_path.iterdir()
    assert read_summary(run_dir)["status"] == "finished"


def test_gdw_resume_without_a_terminal_trains_headless(tmp_path, monkeypatch):
    from engine.methods.base import Method

    real, calls = Method.step, {"n": 0}

    def fail_in_the_second_epoch(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 20:  # 14 iterations an epoch: after the first checkpoint
            raise RuntimeError("injected fault")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Method, "step", fail_in_the_second_epoch)
    failed = cli("run", "digits-unif60", "--epochs", "2", *SMALL, "--runs-dir", str(tmp_path))
    assert failed.exit_code == 1 and failed.stderr.splitlines()[0] == NOT_A_TERMINAL
    monkeypatch.undo()
    (run_dir,) = tmp_path.iterdir()
    resumed = cli("resume", run_dir.name, "--runs-dir", str(tmp_path))
    assert resumed.exit_code == 0, resumed.output
    assert resumed.stderr.splitlines()[0] == NOT_A_TERMINAL
    assert resumed.stdout.strip().splitlines()[-1].startswith("final_acc=")
    assert read_summary(run_dir)["status"] == "finished"


def test_train_compile_covers_the_erm_forward_and_evaluation(tmp_path):
    """train.compile: ERM trains through the compiled module and evaluation uses it; the meta methods'
    recorded and functional passes stay eager. (Only built here: compiling happens on the first call.)"""
    import torch

    from engine.trainer import Run

    for method, compiled_training in (("erm", True), ("gdw", False)):
        cfg = load_preset("digits-unif60", {"train.compile": True, "train.method": method, "train.device": "cpu"})
        run = Run(create_run(tmp_path, cfg), cfg, torch.device("cpu"), None)
        try:
            (evaluated,) = run.eval_models
            assert evaluated is not run.method.model and evaluated._orig_mod is run.method.model
            assert (run.method.train_forward is not run.method.model) == compiled_training
            if compiled_training:
                assert run.method.train_forward._orig_mod is run.method.model
        finally:
            run.close()
