"""Files with wrong types inside a shared runs directory: a sweep.json whose runs are strings, whose
entry has no setting, whose options say workers = "two"; a summary.json whose created is "x" or
whose final_acc is "abc". Each gives one line naming the file, and every other sweep and run is
still shown: gdw sweeps, show, report, resume, runs, and the runs and sweeps screens.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.config import load_preset
from engine.runs import create_run, read_summary, write_summary
from engine.sweep.spec import SweepSpec, expand
from engine.sweep.store import create_sweep
from fixtures.tui_support import screen_text, wait_until
from gdw_cli.main import app
from gdw_tui.app import GdwApp
from gdw_tui.runs_screen import RunsScreen
from gdw_tui.sweeps_screen import SweepsScreen
from gdw_tui.textual_compat import notifications

runner = CliRunner()

BAD_SWEEPS = {  # name -> (what is done to its sweep.json, the line that names the problem)
    "runs-strings": (lambda d: d.update(runs=["a", "b"]),
                     "runs[0] must be an object with run_id, setting, preset, method, seed, grid (got 'a')"),
    "no-setting": (lambda d: d["runs"][0].pop("setting"), "runs[0] has no setting"),
    "workers-two": (lambda d: d.update(options={"workers": "two"}), "local option workers must be an integer (got 'two')"),
    "escapes": (lambda d: d["runs"][0].update(run_id="../../etc"),
                "runs[0].run_id must be a run directory name in the runs directory (got '../../etc')"),
}
BAD_SUMMARIES = {"created": ("x", "created must be a number or null (got 'x')"),
                 "final_acc": ("abc", "final_acc must be a number or null (got 'abc')"),
                 "changes": (["epochs=2"], 'changes must be a string (got ["epochs=2"])')}


def small_sweep(root: Path, name: str):
    spec = SweepSpec(presets=["digits-clean"], methods=["erm"], seeds=[1, 2], sets={"train.epochs": 1}, name=name)
    sweep = create_sweep(root, spec, expand(spec))
    for i, d in enumerate(sweep.run_dirs()):
        s = read_summary(d)
        s.update(status="finished", final_acc=80.0 + i)
        write_summary(d, s)
    return sweep


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("wrong") / "runs"
    w: dict = {"root": root, "good_sweep": small_sweep(root, "good").id, "sweeps": {}, "runs": {}}
    for name, (damage, why) in BAD_SWEEPS.items():
        sweep = small_sweep(root, name)
        path = sweep.dir / "sweep.json"
        data = json.loads(path.read_text())
        damage(data)
        path.write_text(json.dumps(data))
        w["sweeps"][name] = (sweep.id, f"{path}: {why}")
    cfg = load_preset("digits-unif60", {"train.epochs": 2, "train.device": "cpu"})
    good = create_run(root, cfg)
    write_summary(good, {**read_summary(good), "status": "finished", "final_acc": 91.25})
    w["good_run"] = good.name
    for field, (value, why) in BAD_SUMMARIES.items():
        d = create_run(root, cfg)
        write_summary(d, {**read_summary(d), "status": "finished", "final_acc": 90.5, field: value})
        w["runs"][field] = (d.name, f"{d / 'summary.json'}: {why}; shown without it")
    return w


def cli(w, *args: str):
    return runner.invoke(app, [*args, "--runs-dir", str(w["root"])])


def test_gdw_sweeps_lists_the_good_sweep_and_names_each_bad_file(world):
    r = cli(world, "sweeps")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert world["good_sweep"] in r.stdout
    assert sorted(r.stderr.splitlines()) == sorted(f"warning: {line} (sweep left out)" for _, line in world["sweeps"].values())
    assert "Traceback" not in r.stdout + r.stderr


@pytest.mark.parametrize("command", ["show", "report", "resume", "stop"])
@pytest.mark.parametrize("name", list(BAD_SWEEPS))
def test_a_bad_sweep_json_is_one_line_naming_it(world, command, name):
    sweep_id, line = world["sweeps"][name]
    r = cli(world, command, sweep_id)
    assert r.exit_code == 2 and r.stderr.splitlines() == [f"error: {line}"], r.stdout + r.stderr


def test_gdw_runs_lists_every_run_and_names_each_bad_summary(world):
    r = cli(world, "runs")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert sorted(r.stderr.splitlines()) == sorted(f"warning: {line}" for _, line in world["runs"].values())
    lines = r.stdout.splitlines()
    for run_id in [world["good_run"]] + [n for n, _ in world["runs"].values()]:
        assert any(line.startswith(run_id + " ") for line in lines), (run_id, r.stdout)
    acc_row = next(line for line in lines if line.startswith(world["runs"]["final_acc"][0] + " "))
    created_row = next(line for line in lines if line.startswith(world["runs"]["created"][0] + " "))
    assert acc_row.split()[6] == "-" and created_row.split()[6] == "90.50"  # only the wrong field is unknown
    # A wrong-typed `changes` is left out and the run's changes are computed from its config.toml instead.
    good_row = next(line for line in lines if line.startswith(world["good_run"] + " "))
    changes_row = next(line for line in lines if line.startswith(world["runs"]["changes"][0] + " "))
    assert "epochs=2" in good_row.split()[8:] and changes_row.split()[8:] == good_row.split()[8:]


@pytest.mark.parametrize("field", list(BAD_SUMMARIES))
def test_gdw_show_run_names_its_bad_summary(world, field):
    run_id, line = world["runs"][field]
    r = cli(world, "show", run_id)
    assert r.exit_code == 0 and r.stderr.splitlines() == [f"warning: {line}"], r.stdout + r.stderr
    assert "status         finished" in r.stdout


def test_gdw_report_says_an_unreadable_summary_instead_of_dropping_it(world, tmp_path):
    sweep = small_sweep(tmp_path / "runs", "report")
    broken = sweep.run_dirs()[0] / "summary.json"
    broken.write_text("{broken")
    r = runner.invoke(app, ["report", sweep.id, "--format", "csv", "--runs-dir", str(tmp_path / "runs")])
    assert r.exit_code == 0, r.stdout + r.stderr
    assert (f"note: {broken} is unreadable (Expecting property name enclosed in double quotes: line 1 column 2 (char 1)); "
            "the run counts as created") in r.stderr.splitlines()


async def test_the_runs_and_sweeps_screens_show_the_rest_and_name_each_bad_file(world):
    app_ = GdwApp(world["root"])
    async with app_.run_test(size=(160, 50)) as pilot:
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app_.screen, RunsScreen) and app_.screen.loaded, what="the runs")
        text = screen_text(app_)
        for run_id in [world["good_run"]] + [n for n, _ in world["runs"].values()]:
            assert run_id in text
        said = [n.message for n in notifications(app_)]
        for _, line in world["runs"].values():
            assert line in said
        await pilot.press("escape")
        await pilot.press("w")
        await wait_until(pilot, lambda: isinstance(app_.screen, SweepsScreen) and app_.screen.loaded, what="the sweeps")
        await wait_until(pilot, lambda: len([n for n in notifications(app_) if "sweep left out" in n.message]) == len(BAD_SWEEPS),
                         what="a warning per bad sweep.json")
        assert world["good_sweep"] in screen_text(app_)
        said = [n.message for n in notifications(app_)]
        for _, line in world["sweeps"].values():
            assert f"{line} (sweep left out)" in said
        assert not app_.background_errors
