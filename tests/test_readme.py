"""README stays true: its preset table is the generated one, its commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_preset_table_is_the_generated_one():
    table = [line for line in (ROOT / "docs" / "presets.md").read_text().splitlines() if line.startswith("|")]
    assert len(table) > 30
    readme_rows = [line for line in README.splitlines() if line.startswith("| `") or line.startswith("| name |")]
    for row in table:
        if row.startswith("|---"):
            continue
        assert row in README, f"README's preset table is stale: {row}"
    assert sum(row.startswith("| `") and "|" in row for row in table) <= len(readme_rows)


def test_readme_starts_with_the_two_fresh_machine_commands_and_ci_runs_the_second():
    blocks = re.findall(r"```bash\n(.*?)\n```", README, flags=re.S)
    setup_run, setup_test = blocks[0], blocks[1]
    assert "gdw run --headless digits-unif60" in setup_run and "python3 -m venv" in setup_run
    assert "pytest" in setup_test and "python3 -m venv" in setup_test
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install --quiet torch==2.14.1 torchvision==0.29.1" in ci and "-e '.[test]'" in ci
    assert "python -m pytest" in ci


def test_the_repository_cites_its_own_docs_or_the_paper_not_a_private_spec():
    # Preset descriptions are shown to users (`gdw presets`, the UI): they cite the paper.
    shipped = [p for d in ("presets", "docs", "engine", "gdw_tui", "gdw_cli", "scripts") for p in (ROOT / d).rglob("*")
               if p.is_file() and p.suffix in (".toml", ".md", ".py")] + [ROOT / "README.md", ROOT / "pyproject.toml"]
    citing = [str(p.relative_to(ROOT)) for p in shipped if "GDW-SPEC" in p.read_text(encoding="utf-8")]
    assert citing == []
