"""Sweep expansion, sweep files and bad input: one line, exit 2, nothing created (real CLI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.config import ConfigError
from engine.sweep.spec import (
    PAPER_SEEDS, SweepSpec, builtin_sweeps, expand, load_sweep_file, parse_grid_axis, parse_methods, parse_seeds,
)
from gdw_cli.main import app

runner = CliRunner()


def test_expansion_is_presets_x_grid_x_methods_x_seeds_with_validated_configs():
    spec = SweepSpec(presets=["digits-clean", "digits-imb"], methods=parse_methods("erm,gdw"), seeds=parse_seeds("1,10,100"),
                     sets={"train.epochs": "3"}, grid=dict([parse_grid_axis("train.outer_lr=10,1000")]))
    plans = expand(spec)
    assert len(plans) == 2 * 2 * 2 * 3
    keys = {(p.preset, p.grid["train.outer_lr"], p.method, p.seed) for p in plans}
    assert len(keys) == 24
    p = plans[0]
    assert (p.preset, p.method, p.seed, p.setting) == ("digits-clean", "erm", 1, "digits-clean train.outer_lr=10")
    assert p.config["train"]["epochs"] == 3 and p.config["train"]["outer_lr"] == 10.0  # typed by the schema
    assert p.config["data"]["imbalance"] == 1.0
    assert {q.config["data"]["imbalance"] for q in plans if q.preset == "digits-imb"} == {10.0}
    # Without --methods each preset keeps its own method; the default seeds are the paper's.
    own = expand(SweepSpec(presets=["digits-clean"]))
    assert [(q.method, q.seed) for q in own] == [("gdw", s) for s in PAPER_SEEDS]


def test_builtin_sweep_files_expand():
    sizes = {name: len(expand(load_sweep_file(path))) for name, path in builtin_sweeps().items()}
    assert sizes == {"digits": 105, "table8": 200, "noise": 280, "imbalance": 250, "clothing1m": 7}
    digits = load_sweep_file(builtin_sweeps()["digits"])
    assert digits.methods == ["erm", "l2rw", "mwnet", "glc", "coteach", "insw", "gdw"] and digits.seeds == [1, 10, 100, 1000, 10000]
    noise = load_sweep_file(builtin_sweeps()["noise"])
    assert set(noise.methods) == {"erm", "coteach", "glc", "l2rw", "mwnet", "insw", "gdw"}
    assert "insw" in load_sweep_file(builtin_sweeps()["imbalance"]).methods
    assert digits.options == {"workers": 2}


def test_sweep_file_schema(tmp_path):
    good = tmp_path / "g.toml"
    good.write_text('presets = ["digits-clean"]\nmethods = ["erm"]\nseeds = [3, 4]\n[set]\ntrain.epochs = 2\n'
                    '[grid]\n"train.outer_lr" = [10, 100]\n[local]\nworkers = 2\n')
    spec = load_sweep_file(good)
    assert (spec.name, spec.seeds, spec.sets, spec.grid, spec.options) == (
        "g", [3, 4], {"train.epochs": 2}, {"train.outer_lr": [10.0, 100.0]}, {"workers": 2})
    cases = {
        'presets = ["digits-clean"]\nseed = [1]\n': "g.toml: unknown field 'seed'; did you mean 'seeds'?; valid fields: name, description, presets, methods, seeds, set, grid, executor, local, slurm, force",
        'presets = []\n': "g.toml: presets must be a non-empty list of preset names",
        'presets = ["digits-clean"]\n[set]\ntrain.epoch = 2\n': "g.toml: unknown field 'train.epoch'; did you mean 'train.epochs'?",
        'presets = ["digits-clean"]\n[grid]\ntrain.lr = 0.1\n': "g.toml: [grid] train.lr must be a list of values (got 0.1)",
        'presets = ["digits-clean"]\n[local]\nworker = 2\n': "g.toml: [local]: unknown local option 'worker'; did you mean 'workers'?; valid: gpus, per_gpu, workers",
        'presets = ["digits-clean"]\nseeds = [1, 1]\n': "g.toml: --seeds lists 1 twice",
    }
    for text, message in cases.items():
        good.write_text(text)
        with pytest.raises(ConfigError) as e:
            load_sweep_file(good)
        assert str(e.value) == message


def _no_traceback_one_line(result) -> str:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


BAD = [
    (["digits-clean", "digits-nope"], "unknown preset 'digits-nope'"),
    (["digits-clean", "--methods", "erm,foo"], "error: unknown method 'foo' in --methods; valid methods: erm, l2rw, mwnet, glc, coteach, insw, gdw, gdw-nozm"),
    (["digits-clean", "--methods", "erm,erm"], "error: --methods lists 'erm' twice"),
    (["digits-clean", "--seeds", ""], "error: --seeds must be a comma-separated list with no empty items (got '')"),
    (["digits-clean", "--seeds", "1,10,1"], "error: --seeds lists 1 twice"),
    (["digits-clean", "--seeds", "1,x"], "error: --seeds: train.seed must be an integer (got 'x')"),
    (["digits-clean", "--grid", "train.outer_lr"], "error: --grid expects section.key=v1,v2,..., e.g. train.outer_lr=10,100,1000 (got 'train.outer_lr')"),
    (["digits-clean", "--grid", "train.outr_lr=1,2"], "error: unknown field 'train.outr_lr'; did you mean 'train.outer_lr'?"),
    (["digits-clean", "--grid", "train.outer_lr=1,big"], "error: train.outer_lr must be a number (got 'big')"),
    (["digits-clean", "--grid", "train.outer_lr=-5"], "error: train.outer_lr must be in (0, 1000000000] (got '-5')"),
    (["digits-clean", "--grid", "data.noise_rate=0.2"], "error: preset digits-clean with data.noise_rate=0.2: data.noise_rate=0.2 needs data.noise to be unif, flip or flip2 (it is 'none')"),
    (["digits-clean", "--set", "train.epochs=0"], "error: train.epochs must be in [1, 100000] (got '0')"),
    (["digits-clean", "--workers", "0"], "error: --workers must be at least 1 (got 0)"),
    (["digits-clean", "--slurm-time", "10"], "error: --slurm-time needs --executor slurm"),
    (["digits-clean", "--executor", "pbs"], "error: unknown executor 'pbs'; valid executors: local, slurm"),
    (["digits-clean", "--device", "gpu"], "error: train.device must be auto, cpu, cuda or cuda:N (got 'gpu')"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_one_line_exit_2_nothing_created(tmp_path, args, message):
    runs = tmp_path / "runs"
    line = _no_traceback_one_line(runner.invoke(app, ["sweep", *args, "--runs-dir", str(runs)]))
    assert line.startswith(message) if message.startswith("error") else message in line
    assert not runs.exists()


def test_bad_sweep_file_and_slurm_without_sbatch(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    bad = tmp_path / "bad.toml"
    bad.write_text('presets = ["digits-clean"]\nexecutor_options = {}\n')
    line = _no_traceback_one_line(runner.invoke(app, ["sweep", str(bad), "--runs-dir", str(runs)]))
    assert line.startswith("error: bad.toml: unknown field 'executor_options'")
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch anywhere
    line = _no_traceback_one_line(runner.invoke(app, ["sweep", "digits-clean", "--executor", "slurm", "--runs-dir", str(runs)]))
    assert line == "error: --executor slurm: no `sbatch` on PATH (Slurm is not installed here or not on PATH; see scripts/slurm-local.sh)"
    assert not runs.exists()


def test_gpus_on_a_machine_without_them(tmp_path):
    if Path("/proc/driver/nvidia/gpus").is_dir() and os.environ.get("CUDA_VISIBLE_DEVICES") != "":
        pytest.skip("this machine has GPUs")  # the refusal below is for a CPU-only machine
    runs = tmp_path / "runs"
    line = _no_traceback_one_line(runner.invoke(app, ["sweep", "digits-clean", "--gpus", "0", "--runs-dir", str(runs)]))
    assert line == "error: --gpus: no CUDA device found on this machine; use --workers N (CPU) instead"
    assert not runs.exists()


def test_unknown_sweep_or_run_in_report_show_stop(tmp_path):
    runs = str(tmp_path / "runs")
    line = _no_traceback_one_line(runner.invoke(app, ["report", "nothing", "--runs-dir", runs]))
    assert line.startswith("error: no sweep or run 'nothing'")
    line = _no_traceback_one_line(runner.invoke(app, ["report", "nothing", "--format", "xls", "--runs-dir", runs]))
    assert line == "error: --format must be one of md, csv, latex (got 'xls')"


def test_a_builtin_sweep_by_name_and_command_line_overrides():
    from gdw_cli.sweep_commands import build_spec

    spec = build_spec(["digits"], "erm,gdw", "1,2", ["train.epochs=3"], ["train.outer_lr=10,100"], None, None, None)
    assert (spec.name, spec.presets, spec.methods, spec.seeds) == ("digits", ["digits-unif60", "digits-clean", "digits-imb"], ["erm", "gdw"], [1, 2])
    assert spec.sets == {"train.device": "cpu", "train.epochs": "3"} and spec.grid == {"train.outer_lr": [10.0, 100.0]}
    assert len(expand(spec)) == 3 * 2 * 2 * 2
    # A preset named like a file is still a preset; a sweep file mixed with presets is refused.
    assert build_spec(["digits-clean"], None, None, None, None, None, None, None).presets == ["digits-clean"]
    with pytest.raises(ConfigError, match="a sweep file is given alone"):
        build_spec([str(builtin_sweeps()["digits"]), "digits-clean"], None, None, None, None, None, None, None)


def test_slurm_setup_string_is_one_line_and_a_list_is_several(tmp_path):
    from submitit.slurm.slurm import _make_sbatch_string

    sweep_file = tmp_path / "s.toml"
    sweep_file.write_text('presets = ["digits-clean"]\nexecutor = "slurm"\n[slurm]\nsetup = "export CUDA_VISIBLE_DEVICES=0,1"\n')
    assert load_sweep_file(sweep_file).options["setup"] == ["export CUDA_VISIBLE_DEVICES=0,1"]
    # The batch script submitit writes from it carries the line whole.
    script = _make_sbatch_string(command="python -m engine.sweep.task", folder=tmp_path,
                                 setup=load_sweep_file(sweep_file).options["setup"])
    assert "\nexport CUDA_VISIBLE_DEVICES=0,1\n" in script and "\nexport CUDA_VISIBLE_DEVICES=0\n" not in script
    sweep_file.write_text('presets = ["digits-clean"]\nexecutor = "slurm"\n[slurm]\nsetup = ["module load cuda", "export A=1,2"]\n')
    assert load_sweep_file(sweep_file).options["setup"] == ["module load cuda", "export A=1,2"]
    sweep_file.write_text('presets = ["digits-clean"]\nexecutor = "slurm"\n[slurm]\nsetup = 3\n')
    with pytest.raises(ConfigError, match=r"s.toml: slurm option setup must be a line or a list of lines \(got 3\)"):
        load_sweep_file(sweep_file)


def test_an_executor_option_written_as_a_string_says_how_to_write_the_table(tmp_path):
    sweep_file = tmp_path / "s.toml"
    sweep_file.write_text('presets = ["digits-clean"]\nlocal = "workers=2"\n')
    with pytest.raises(ConfigError) as e:
        load_sweep_file(sweep_file)
    assert str(e.value) == ("s.toml: local must be a table of options: a line [local], then one option per line "
                            "such as workers = 2 (got local = 'workers=2')")


def test_label_noise_methods_on_imbalance_only_presets_need_force(tmp_path):
    from engine.config import ConfigError
    from engine.sweep.spec import SweepSpec, expand, load_sweep_file

    spec = SweepSpec(presets=["digits-unif60", "digits-imb"], methods=["erm", "glc"], seeds=[1])
    with pytest.raises(ConfigError, match="^glc is a label-noise method and preset digits-imb has no label noise"):
        expand(spec)
    spec.force = True
    assert [(p.preset, p.method) for p in expand(spec)] == [
        ("digits-unif60", "erm"), ("digits-unif60", "glc"), ("digits-imb", "erm"), ("digits-imb", "glc")]
    # Label noise with imbalance (Table 8's mixed settings) and clean data are not refused.
    expand(SweepSpec(presets=["cifar10-mix-unif40-imb10", "digits-clean"], methods=["coteach"], seeds=[1]))
    # The digits sweep file runs all seven methods on all three settings, saying so with force = true.
    digits = load_sweep_file(Path(__file__).resolve().parents[1] / "presets" / "sweeps" / "digits.toml")
    assert digits.force and len(expand(digits)) == 105
    (tmp_path / "bad.toml").write_text('presets = ["digits-imb"]\nforce = "yes"\n')
    with pytest.raises(ConfigError, match="^bad.toml: force must be true or false"):
        load_sweep_file(tmp_path / "bad.toml")
