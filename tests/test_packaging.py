"""Packaging: the presets ship inside the wheel as `gdw_presets`, are found from an editable install,
and docs/presets.md is the generated table."""

from __future__ import annotations

import json
import runpy
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from engine.config import available_presets, builtin_presets_dir, load_preset

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted(p.name for p in (ROOT / "presets").glob("*.toml"))
SOURCES = ("pyproject.toml", "README.md", "engine", "gdw_cli", "gdw_tui", "presets")


def test_editable_install_finds_the_builtin_presets(monkeypatch):
    monkeypatch.delenv("GDW_PRESETS", raising=False)
    assert builtin_presets_dir().resolve() == (ROOT / "presets").resolve()
    assert sorted(p.name for p in available_presets().values()) == PRESETS
    # and from a process started elsewhere, as an installed `gdw` would be
    out = subprocess.run(
        [sys.executable, "-c", "from engine.config import builtin_presets_dir as b; print(b())"],
        cwd="/", capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()
    assert Path(out).resolve() == (ROOT / "presets").resolve()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built offline (no isolation, no index; each step bounded by a subprocess timeout) from a
    copy of the source tree, so the checkout gets no build/ or egg-info litter."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        elif path.exists():
            shutil.copy2(path, src / name)
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "-q", "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    wheels = list(out.glob("gdw_tui-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_ships_every_preset_and_no_docs(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(n.split("/", 1)[1] for n in names if n.startswith("gdw_presets/") and n.endswith(".toml"))
    assert [n for n in shipped if "/" not in n] == PRESETS
    assert [n for n in shipped if "/" in n] == sorted(f"sweeps/{p.name}" for p in (ROOT / "presets" / "sweeps").glob("*.toml"))
    assert "engine/sweep/spec.py" in names and "gdw_cli/sweep_commands.py" in names
    assert "gdw_presets/__init__.py" in names
    for module in ("engine/config.py", "engine/events.py", "engine/runs.py", "engine/launch.py",
                   "engine/methods/__init__.py", "engine/data/__init__.py", "engine/figures/kinds.py", "engine/extras.py"):
        assert module in names, module
    assert not [n for n in names if n.startswith(("docs/", "tests/", "presets/", "scripts/"))]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "gdw = gdw_cli.main:main" in text and "gdw-tui = gdw_cli.main:tui_main" in text
    assert "gdw_cli/main.py" in names


def test_presets_load_from_the_installed_wheel(wheel, tmp_path):
    """Unpacked on a path of its own (as site-packages would hold it), the wheel finds its presets."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from engine.config import builtin_presets_dir, available_presets, load_preset\n"
        "print(builtin_presets_dir())\n"
        "print(len(available_presets()))\n"
        "print(load_preset('cifar10-unif40')['train']['outer_lr'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", code, str(site)], cwd=tmp_path,
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split()
    assert out == [str(site / "gdw_presets"), str(len(PRESETS)), "100.0"]


def test_docs_presets_md_is_the_generated_table():
    render = runpy.run_path(str(ROOT / "scripts" / "presets_table.py"))["render"]
    text = render()
    assert (ROOT / "docs" / "presets.md").read_text(encoding="utf-8") == text
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == len(PRESETS)
    by_name = {row.split("`")[1]: [c.strip() for c in row.strip("|").split("|")] for row in rows}
    assert by_name["cifar10-unif40"] == [
        "`cifar10-unif40`", "CIFAR-10, 40% uniform noise", "cifar10", "unif 0.4", "1", "gdw", "80",
        "MW-Net 86.62, GDW 87.97 (authors' public log, seed 100)",
    ]
    assert by_name["cifar100-mix-unif60-imb100"][3:5] == ["unif 0.6", "100"]
    assert by_name["cifar100-mix-unif60-imb100"][7] == "MW-Net 12.75, GDW 14.15 (appendix Table 8)"
    assert by_name["places-lt"][7] == "L2RW 15.08, INSW 17.80, MW-Net 18.08, GDW 19.17 (appendix Table 7)"
    assert by_name["digits-imb"][3:8] == ["none", "10", "gdw", str(load_preset("digits-imb")["train"]["epochs"]), "—"]


def test_presets_table_script_prints_the_table():
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "presets_table.py")], cwd="/",
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    assert out == (ROOT / "docs" / "presets.md").read_text(encoding="utf-8")


def gdw_tui_modules() -> list[str]:
    import pkgutil

    import gdw_tui

    return ["gdw_tui"] + [m.name for m in pkgutil.walk_packages(gdw_tui.__path__, "gdw_tui.")]


@pytest.mark.parametrize("module", gdw_tui_modules())
def test_no_ui_module_imports_torch(module):
    """The UI process never imports torch: each module of gdw_tui, imported alone in a fresh
    interpreter, leaves torch (and the engine's torch side) out of sys.modules."""
    code = (
        "import importlib, sys\n"
        f"importlib.import_module({module!r})\n"
        "heavy = [m for m in ('torch', 'torchvision', 'numpy', 'engine.trainer', 'engine.methods', 'engine.models',"
        " 'engine.data') if m in sys.modules]\n"
        "print(heavy)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_no_torch_check_sees_every_ui_module():
    """The walk finds the screens, the widgets and the app (a new module is checked without a list to update)."""
    found = set(gdw_tui_modules())
    assert {"gdw_tui.app", "gdw_tui.dashboard", "gdw_tui.runs_screen", "gdw_tui.widgets"} <= found
    on_disk = {p.stem for p in (ROOT / "gdw_tui").glob("*.py") if p.stem != "__init__"}
    assert {m.split(".")[1] for m in found if m.count(".") >= 1} >= on_disk


def test_driving_every_screen_never_imports_torch(tmp_path):
    """Importing is not enough: a lazy `import torch` inside a painter runs only when a screen paints.
    tests/fixtures/drive_every_screen.py drives every screen (each fixture run's dashboard with
    every pane, the config, compare, runs, sweeps, report, sweep form, help screens) in a fresh
    interpreter and lists the torch modules it holds afterwards."""
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "fixtures" / "drive_every_screen.py"), str(tmp_path)],
                         capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"DashboardScreen", "ConfigScreen", "CompareScreen", "RunsScreen", "SweepsScreen", "ReportScreen",
            "SweepForm", "HelpScreen", "ConfirmScreen", "PresetsScreen"} <= set(result["screens"]), result["screens"]
    assert result["heavy"] == []
