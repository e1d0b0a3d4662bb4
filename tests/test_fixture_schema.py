"""The events the UI's tests run on obey the engine's schema (engine.events.validate_event).

Most UI tests and snapshots read synthesised runs (scripts/synth_run.py via
tests/fixtures/make_fixtures.py) or recorded ones (tests/fixtures/recorded/); a field the engine
does not write, or one it does write but the fixtures lack, would let the UI be tested against a
run that cannot exist.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.events import EVENT_TYPES, SCHEMA_VERSION, make_event, read_events, validate_event
from fixtures.make_fixtures import FIXTURE_RUNS, make_all, synth_events

ROOT = Path(__file__).resolve().parent.parent
RECORDED = Path(__file__).parent / "fixtures" / "recorded"


def full_event(type_: str) -> dict:
    return make_event(type_, **{name: None for name in EVENT_TYPES[type_][1]})


# --- validate_event itself -----------------------------------------------------------------------


@pytest.mark.parametrize("type_", list(EVENT_TYPES))
def test_an_event_with_every_declared_field_is_valid(type_: str) -> None:
    validate_event(full_event(type_))


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda e: e.update(type="from_the_future"), "unknown event type 'from_the_future'"),
        (lambda e: e.update(loss_ema=1.0), "step: undeclared fields ['loss_ema']"),
        (lambda e: e.pop("samples_s"), "step: missing fields ['samples_s']"),
        (lambda e: e.pop("t"), "step: t must be a number of seconds (got None)"),
        (lambda e: e.update(v=SCHEMA_VERSION + 1), f"step: v must be an integer 1..{SCHEMA_VERSION} (got {SCHEMA_VERSION + 1})"),
        (lambda e: e.update(v=True), "step: v must be an integer"),
        (lambda e: e.update(v=0), f"step: v must be an integer 1..{SCHEMA_VERSION} (got 0)"),
        (lambda e: e.update(v=-1), f"step: v must be an integer 1..{SCHEMA_VERSION} (got -1)"),
        (lambda e: e.update(v=1.0), f"step: v must be an integer 1..{SCHEMA_VERSION} (got 1.0)"),
        (lambda e: e.update(v="1"), f"step: v must be an integer 1..{SCHEMA_VERSION} (got '1')"),
    ],
    ids=["unknown-type", "undeclared-field", "missing-field", "no-time", "newer-version", "bool-version", "version-0",
         "negative-version", "float-version", "string-version"],
)
def test_invalid_events_are_refused_with_the_reason(change, error: str) -> None:
    event = full_event("step")
    change(event)
    with pytest.raises(ValueError, match="^" + re.escape(error)):
        validate_event(event)


# --- the fixtures --------------------------------------------------------------------------------


def test_every_synthesised_fixture_event_is_valid(tmp_path: Path) -> None:
    runs = make_all(tmp_path / "runs")
    assert set(runs) == set(FIXTURE_RUNS)
    seen = set()
    for run_id, run_dir in runs.items():
        events = read_events(run_dir / "events.jsonl")  # what the UI reads: a killed run's partial line is not an event
        assert events and events[0]["type"] == "run_start" and events[0]["run_id"] == run_id
        for e in events:
            validate_event(e)
            seen.add(e["type"])
    # The fixtures exercise every event type but resume (test_tui_units builds that one by hand).
    assert seen == set(EVENT_TYPES) - {"resume"}


def test_replay_sized_synthesised_events_are_valid() -> None:
    """The shapes scripts/replay_run.py asks for: 100 classes, a snapshot every n iterations."""
    classes = [f"c{i}" for i in range(100)]
    for e in synth_events(run_id="r", preset="cifar100-unif40", classes=classes, dataset="cifar100", epochs=2,
                          iters_per_epoch=30, step_every=1, weights_every_iters=7):
        validate_event(e)


def test_every_recorded_event_is_valid() -> None:
    recorded = sorted(d for d in RECORDED.iterdir() if d.is_dir())
    assert recorded
    for run_dir in recorded:
        for e in read_events(run_dir / "events.jsonl"):
            validate_event(e)


# --- scripts/replay_run.py needs nothing from tests/ -----------------------------------------------


def test_replay_run_works_without_the_tests_directory(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    for name in ("replay_run.py", "synth_run.py"):
        shutil.copy(ROOT / "scripts" / name, scripts / name)
    proc = subprocess.run(
        [sys.executable, str(scripts / "replay_run.py"), str(tmp_path / "runs"), "--instant", "--classes", "10",
         "--epochs", "2", "--iters-per-epoch", "20", "--weights-per-epoch", "2"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(proc.stdout.splitlines()[0])
    events = read_events(run_dir / "events.jsonl")
    assert [e["type"] for e in events].count("epoch") == 2 and events[-1]["type"] == "run_end"
    for e in events:
        validate_event(e)
