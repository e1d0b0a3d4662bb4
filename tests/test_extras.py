"""Optional extras: pyproject's extras and engine.extras agree, and a missing one is named in one line."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from engine.extras import EXTRAS, MissingExtra, install_command, require

ROOT = Path(__file__).resolve().parents[1]
OPTIONAL = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def test_every_extra_is_in_pyproject_and_all_and_test_pull_them():
    assert set(EXTRAS) | {"all", "test"} == set(OPTIONAL)
    assert OPTIONAL["all"] == [f"gdw-tui[{','.join(EXTRAS)}]"]
    assert "gdw-tui[all]" in OPTIONAL["test"]  # CI installs .[test]: every extra is tested


@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_a_missing_extra_names_itself_and_the_command(extra, monkeypatch):
    module = EXTRAS[extra][0]
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed: importing it fails
    monkeypatch.chdir(ROOT)
    with pytest.raises(MissingExtra) as info:
        require(extra, "the feature")
    assert str(info.value) == f"the feature needs the '{extra}' extra ({module} is not installed): pip install -e '.[{extra}]'"


def test_the_install_command_names_the_checkout_from_elsewhere(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert install_command("plot") == f"pip install -e '{ROOT}[plot]'"
