"""The event schema (engine.events): building and writing events, and tailing a live events.jsonl."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import events
from engine.events import (
    EVENT_TYPES,
    SCHEMA_MINOR,
    SCHEMA_VERSION,
    EventTail,
    EventWriter,
    SchemaError,
    encode,
    make_event,
    read_events,
    render_markdown,
)

ROOT = Path(__file__).resolve().parents[1]


def line(type_: str, **fields) -> bytes:
    return encode(make_event(type_, **fields)).encode()


# --- building and encoding ------------------------------------------------------------------------


def test_make_event_has_type_version_and_time():
    before = time.time()
    e = make_event("epoch", epoch=3, test_acc=87.5)
    assert e["type"] == "epoch" and e["v"] == SCHEMA_VERSION == 1
    assert before - 0.001 <= e["t"] <= time.time() + 0.001
    assert round(e["t"], 3) == e["t"]
    assert (e["epoch"], e["test_acc"]) == (3, 87.5)
    assert list(e)[:4] == ["type", "v", "vm", "t"] and e["vm"] == SCHEMA_MINOR == 2


def test_fields_of_a_later_minor_version_are_required_only_from_it():
    from engine.events import ADDED_IN, validate_event

    new = {f for (t, f), minor in ADDED_IN.items() if t == "epoch" and minor == 2}
    assert new == {"net_accs", "phase", "c_hat", "label_precision", "forget_rate"}
    old = {"type": "epoch", "v": 1, "t": 1.0} | {f: None for f in EVENT_TYPES["epoch"][1] if f not in new}
    validate_event(old)  # written before minor 2 (no vm): the new fields may be absent
    with pytest.raises(ValueError, match=r"missing fields \['c_hat', 'forget_rate', 'label_precision', 'net_accs', 'phase'\]"):
        validate_event(old | {"vm": 2})


def test_unknown_type_is_a_programming_error():
    with pytest.raises(KeyError, match="unknown event type 'epochs'"):
        make_event("epochs")


def test_encode_is_one_compact_line():
    e = make_event("log", level="info", message="a\nb")
    text = encode(e)
    assert text.endswith("\n") and text.count("\n") == 1
    assert ", " not in text and '": ' not in text
    assert json.loads(text) == e


def test_encode_refuses_nan_and_infinity():
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
            encode(make_event("step", loss=bad))
    with pytest.raises(ValueError):
        encode(make_event("weights", omega=[[1.0, math.nan]]))


def test_encode_accepts_array_like_values():
    class FakeArray:  # numpy arrays and scalars are encoded through .tolist()
        def tolist(self):
            return [[0.5, 1.0], [2.0, 3.0]]

    assert json.loads(encode(make_event("weights", omega=FakeArray())))["omega"] == [[0.5, 1.0], [2.0, 3.0]]
    with pytest.raises(TypeError, match="not JSON serialisable: object"):
        encode(make_event("log", message=object()))


def test_newer_version_message_is_one_clear_line():
    with pytest.raises(SchemaError) as info:
        events.check_version({"type": "step", "v": 2})
    assert str(info.value) == "events written with schema v2; this gdw-tui reads up to v1 — upgrade gdw-tui"
    events.check_version({"type": "step", "v": 1})
    events.check_version({"type": "step"})  # no version: taken as current


# --- writing --------------------------------------------------------------------------------------


def test_writer_appends_one_line_per_event(tmp_path):
    path = tmp_path / "events.jsonl"
    w = EventWriter(path)
    e1 = w.emit("run_start", run_id="r", epochs=2)
    e2 = w.emit("step", epoch=0, iter=0, loss=2.3)
    w.close()
    w.close()  # closing twice is harmless
    lines = path.read_text().splitlines()
    assert [json.loads(x) for x in lines] == [e1, e2]
    # a second writer (a resumed segment) appends, it does not truncate
    w = EventWriter(path)
    e3 = w.emit("resume", from_epoch=1, checkpoint="checkpoints/last.pt")
    w.close()
    assert [json.loads(x) for x in path.read_text().splitlines()] == [e1, e2, e3]


def test_each_event_is_visible_to_a_reader_as_soon_as_it_is_emitted(tmp_path):
    path = tmp_path / "events.jsonl"
    w = EventWriter(path)
    tail = EventTail(str(path))
    try:
        for i in range(3):
            w.emit("step", epoch=0, iter=i)
            got = tail.read_new()
            assert [e["iter"] for e in got] == [i]
    finally:
        w.close()


# --- tailing --------------------------------------------------------------------------------------


def test_missing_file_reads_as_nothing(tmp_path):
    tail = EventTail(str(tmp_path / "events.jsonl"))
    assert tail.read_new() == [] and tail.read_new() == []
    assert (tail.offset, tail.skipped) == (0, 0)
    assert read_events(tmp_path / "events.jsonl") == []


def test_partial_last_line_is_held_until_completed(tmp_path):
    path = tmp_path / "events.jsonl"
    full = line("epoch", epoch=0, test_acc=50.0)
    cut = 17
    path.write_bytes(line("log", message="hello") + full[:cut])
    tail = EventTail(str(path))
    got = tail.read_new()
    assert [e["type"] for e in got] == ["log"]
    assert tail.read_new() == []  # nothing new, still partial
    with open(path, "ab") as f:
        f.write(full[cut:-1])  # everything but the newline
    assert tail.read_new() == []
    with open(path, "ab") as f:
        f.write(b"\n")
    got = tail.read_new()
    assert got == [json.loads(full)]
    assert tail.skipped == 0
    # read_events ignores a truncated last line (a killed writer)
    with open(path, "ab") as f:
        f.write(b'{"type":"ste')
    assert [e["type"] for e in read_events(path)] == ["log", "epoch"]


def test_growth_across_reads(tmp_path):
    path = tmp_path / "events.jsonl"
    tail = EventTail(str(path))
    seen = []
    for i in range(5):
        with open(path, "ab") as f:
            f.write(line("step", epoch=0, iter=2 * i) + line("step", epoch=0, iter=2 * i + 1))
        got = tail.read_new()
        assert tail.restarted is False
        seen += [e["iter"] for e in got]
    assert seen == list(range(10))
    assert tail.offset == path.stat().st_size


def test_small_reads_split_lines_anywhere(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(line("step", epoch=0, iter=i, loss=i / 3) for i in range(20)))
    tail = EventTail(str(path))
    got = []
    for _ in range(10_000):
        got += tail.read_new(max_bytes=7)
        if tail.offset == path.stat().st_size:
            break
    assert [e["iter"] for e in got] == list(range(20))


def test_truncation_restarts_from_the_start(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(line("log", message="a") + line("log", message="b"))
    tail = EventTail(str(path))
    assert [e["message"] for e in tail.read_new()] == ["a", "b"]
    path.write_bytes(line("log", message="c"))  # truncated in place and rewritten, shorter
    got = tail.read_new()
    assert tail.restarted is True
    assert [e["message"] for e in got] == ["c"]
    assert tail.read_new() == [] and tail.restarted is False


def test_replacement_restarts_from_the_start(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(line("log", message="old"))
    tail = EventTail(str(path))
    assert [e["message"] for e in tail.read_new()] == ["old"]
    new = tmp_path / "new.jsonl"
    new.write_bytes(line("log", message="new1") + line("log", message="new2"))  # longer than the old file
    os.replace(new, path)
    got = tail.read_new()
    assert tail.restarted is True
    assert [e["message"] for e in got] == ["new1", "new2"]


def test_garbage_lines_are_skipped_and_counted(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(
        line("log", message="first")
        + b"not json at all\n"
        + b"\n   \n"  # blank lines are not garbage
        + b"[1, 2, 3]\n"  # JSON but not an event object
        + b'{"v": 1, "t": 0}\n'  # an object without a type
        + b"\xff\xfe\x00\n"  # not UTF-8
        + line("log", message="last")
    )
    tail = EventTail(str(path))
    got = tail.read_new()
    assert [e["message"] for e in got] == ["first", "last"]
    assert tail.skipped == 4


def test_unknown_types_and_fields_pass_through(tmp_path):
    path = tmp_path / "events.jsonl"
    future = {"type": "gradient_norms", "v": 1, "t": 1.0, "norms": [1, 2]}
    extended = {**make_event("epoch", epoch=1, test_acc=3.0), "new_field": {"x": 1}}
    path.write_text(json.dumps(future) + "\n" + json.dumps(extended) + "\n")
    assert read_events(path) == [future, extended]


def test_newer_major_version_is_refused_and_stays_refused(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(line("log", message="ok") + b'{"type":"step","v":2,"t":1}\n')
    tail = EventTail(str(path))
    message = "events written with schema v2; this gdw-tui reads up to v1 — upgrade gdw-tui"
    assert [e["message"] for e in tail.read_new()] == ["ok"]  # what came before the newer event is kept
    with pytest.raises(SchemaError) as info:
        tail.read_new()
    assert str(info.value) == message
    with pytest.raises(SchemaError):  # polling again does not silently skip past it
        tail.read_new()
    with pytest.raises(SchemaError):
        read_events(path)


def test_reader_follows_a_writer_in_another_process(tmp_path):
    path = tmp_path / "events.jsonl"
    code = (
        "import sys, time\n"
        "from engine.events import EventWriter\n"
        "w = EventWriter(sys.argv[1])\n"
        "for i in range(50):\n"
        "    w.emit('step', epoch=0, iter=i, loss=float(i))\n"
        "    time.sleep(0.002)\n"
        "w.emit('run_end', final_acc=1.0)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=ROOT)
    tail = EventTail(str(path))
    got = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got += tail.read_new()
        if got and got[-1]["type"] == "run_end":
            break
        time.sleep(0.005)
    assert proc.wait(timeout=30) == 0
    assert [e["iter"] for e in got if e["type"] == "step"] == list(range(50))
    assert got[-1]["final_acc"] == 1.0 and tail.skipped == 0


# --- documentation --------------------------------------------------------------------------------


def test_docs_events_md_is_the_rendered_schema():
    assert (ROOT / "docs" / "events.md").read_text(encoding="utf-8") == render_markdown()


def test_rendered_schema_lists_every_type_and_field():
    md = render_markdown()
    assert f"Schema version: **{SCHEMA_VERSION}.{SCHEMA_MINOR}**" in md and "## Minor versions" in md
    for name, (desc, fields) in EVENT_TYPES.items():
        assert f"## `{name}`" in md and desc in md
        for key in fields:
            assert f"| `{key}` |" in md


def test_module_prints_the_schema():
    out = subprocess.run(
        [sys.executable, "-m", "engine.events"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out == render_markdown()


def test_file_rewritten_in_place_past_the_old_offset_is_read_again(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(line("log", message="old run"))
    tail = EventTail(str(path))
    assert [e["message"] for e in tail.read_new()] == ["old run"]
    # Same inode, new content, already longer than the old read position.
    with open(path, "r+b") as f:
        f.write(line("log", message="NEW run, first") + line("log", message="NEW run, second"))
    got = tail.read_new()
    assert tail.restarted
    assert [e["message"] for e in got] == ["NEW run, first", "NEW run, second"]
