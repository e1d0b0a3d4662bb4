"""Messages that used to mislead, through the real CLI: a stop that timed out, a checkpoint deleted
after epochs ran, a duplicate TOML key, a UTF-8 byte order mark, an unreadable sweep.json, and a
path with a name longer than a file system allows.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.config import load_preset
from engine.runs import LOCK, create_run, read_summary, run_status, write_summary
from engine.sweep.spec import SweepSpec, expand
from engine.sweep.store import create_sweep
from gdw_cli.main import app
from lifecycle_helpers import wait_for

runner = CliRunner()


def cli(*args: str):
    return runner.invoke(app, list(args))


def one_line(result, code: int = 2) -> str:
    assert result.exit_code == code, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stdout + result.stderr, result.stderr
    return lines[0]


def a_run(root: Path, **summary) -> Path:
    run_dir = create_run(root, load_preset("digits-unif60", {"train.epochs": 20, "train.device": "cpu"}))
    write_summary(run_dir, {**read_summary(run_dir), **summary})
    return run_dir


def test_a_stop_that_times_out_says_so_and_suggests_now(tmp_path):
    run_dir = a_run(tmp_path, status="running")
    # A stuck engine: it holds the run's lock and ignores SIGTERM.
    stuck = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
         "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); fcntl.flock(fd, fcntl.LOCK_EX); "
         "os.ftruncate(fd, 0); os.write(fd, str(os.getpid()).encode()); print('locked', flush=True); time.sleep(600)",
         str(run_dir / LOCK)], stdout=subprocess.PIPE, text=True)
    try:
        assert stuck.stdout.readline().strip() == "locked"
        line = one_line(cli("stop", run_dir.name, "--wait", "1", "--runs-dir", str(tmp_path)), code=1)
        assert line == (f"error: run {run_dir.name} did not stop within 1 s (it is still running); "
                        f"`gdw stop {run_dir.name} --now` kills it (resume from its last checkpoint)")
        assert stuck.poll() is None and run_status(run_dir) == "running"
        killed = cli("stop", run_dir.name, "--now", "--runs-dir", str(tmp_path))
        assert killed.exit_code == 0 and killed.stdout.strip() == f"{run_dir.name}: interrupted", killed.stdout
        wait_for(lambda: stuck.poll() is not None, what="the stuck process to be killed")
    finally:
        stuck.kill()
        stuck.wait()


def test_a_deleted_checkpoint_is_not_a_run_that_never_reached_an_epoch(tmp_path):
    run_dir = a_run(tmp_path, status="stopped", epoch=10)  # it checkpointed 10 epochs; last.pt is gone
    line = one_line(cli("resume", run_dir.name, "--headless", "--runs-dir", str(tmp_path)))
    assert line == (f"error: run {run_dir.name} has no checkpoint: checkpoints/last.pt is gone though it reached epoch 10 "
                    "(deleted or moved?); start it again with `gdw run`")
    fresh = a_run(tmp_path, status="stopped", epoch=0)
    assert "has no checkpoint yet (it stopped before its first epoch ended)" in one_line(
        cli("resume", fresh.name, "--headless", "--runs-dir", str(tmp_path)))


def test_a_duplicate_toml_key_names_the_line_and_key(tmp_path):
    preset = tmp_path / "dup.toml"
    preset.write_text('title = "x"\n[train]\nepochs = 3\nepochs = 4\n')
    line = one_line(cli("run", "--headless", str(preset), "--runs-dir", str(tmp_path / "runs")))
    assert line == f"error: {preset} is not valid TOML: line 4: 'epochs' is set twice"
    assert not (tmp_path / "runs").exists()


def test_a_utf8_byte_order_mark_is_read_past(tmp_path):
    presets = tmp_path / "presets"
    presets.mkdir()
    text = (Path(__file__).parents[1] / "presets" / "digits-unif60.toml").read_text(encoding="utf-8")
    (presets / "bom-preset.toml").write_bytes(b"\xef\xbb\xbf" + text.encode())
    listed = cli("presets", "--presets-dir", str(presets))
    assert listed.exit_code == 0, listed.stdout + listed.stderr
    assert any(line.startswith("bom-preset ") for line in listed.stdout.splitlines()), listed.stdout
    (presets / "latin1.toml").write_bytes(b'title = "caf\xe9"\n')
    line = one_line(cli("run", "--headless", str(presets / "latin1.toml"), "--runs-dir", str(tmp_path / "runs")))
    assert line == f"error: {presets / 'latin1.toml'} is not valid TOML: line 1 is not UTF-8 text (byte 0xe9 at position 12)"


def test_gdw_sweeps_says_which_sweep_json_it_cannot_read(tmp_path):
    spec = SweepSpec(presets=["digits-clean"], methods=["erm"], seeds=[1], name="fine")
    good = create_sweep(tmp_path, spec, expand(spec))
    bad = create_sweep(tmp_path, SweepSpec(presets=["digits-clean"], methods=["erm"], seeds=[2], name="cut"), expand(spec))
    (bad.dir / "sweep.json").write_text('{"runs": [')
    r = cli("sweeps", "--runs-dir", str(tmp_path))
    assert r.exit_code == 0 and good.id in r.stdout and bad.id not in r.stdout
    assert r.stderr.splitlines() == [f"warning: {bad.dir / 'sweep.json'} is unreadable: Expecting value: line 1 column 11 "
                                     "(char 10) (sweep left out)"]


LONG = "a" * 300


@pytest.mark.parametrize("argv", [
    ["run", "--headless", "digits-unif60", "--device", "cpu", "--runs-dir", "{tmp}/" + LONG],
    ["run", "--headless", "{tmp}/" + LONG + ".toml"],
    ["runs", "--runs-dir", "{tmp}/" + LONG],
    ["sweeps", "--runs-dir", "{tmp}/" + LONG],
    ["show", LONG, "--runs-dir", "{tmp}"],
    ["resume", LONG, "--runs-dir", "{tmp}"],
    ["sweep", "digits-clean", "--runs-dir", "{tmp}/" + LONG],
], ids=["run --runs-dir", "run PRESET.toml", "runs", "sweeps", "show", "resume", "sweep"])
def test_a_name_over_255_bytes_is_one_line(tmp_path, argv):
    line = one_line(cli(*[a.format(tmp=tmp_path) for a in argv]))
    extra = 5 if argv[1:2] == ["--headless"] and argv[2].endswith(".toml") else 0
    assert line == (f"error: a name in a path is {300 + extra} bytes long; a file system allows at most 255: "
                    f"{'a' * 24}…{('a' * 300 + '.toml' * bool(extra))[-24:]}")
    assert list(tmp_path.iterdir()) == []  # nothing made
