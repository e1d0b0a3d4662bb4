"""engine/hold.py: the test hook that holds the engine at a named point until a file exists."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from engine.hold import hold_at


def test_off_unless_the_variable_is_set(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GDW_TEST_HOLD", raising=False)
    hold_at("startup")
    monkeypatch.setenv("GDW_TEST_HOLD", f"epoch:{tmp_path / 'release'}")
    hold_at("startup")  # another point: passes
    assert not (tmp_path / "release.held").exists()


def test_waits_at_its_point_until_released(monkeypatch, tmp_path: Path) -> None:
    release = tmp_path / "release"
    monkeypatch.setenv("GDW_TEST_HOLD", f"epoch:{release}")
    passed = threading.Event()
    waiter = threading.Thread(target=lambda: (hold_at("epoch"), passed.set()))
    waiter.start()
    deadline = time.monotonic() + 10
    while not (tmp_path / "release.held").exists():
        assert time.monotonic() < deadline, "hold_at never said it was holding"
        time.sleep(0.01)
    assert not passed.is_set()  # holding: no time-based guess, it cannot pass before the file exists
    release.touch()
    waiter.join(timeout=10)
    assert passed.is_set()
    hold_at("epoch")  # released: later points pass at once
