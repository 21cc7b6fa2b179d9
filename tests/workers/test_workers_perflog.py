"""The performance log: in-place appends, tolerant reads, torn tails at every byte, corruption.

Every test runs twice: with the real 1 MiB read block, and with a 7-byte block so that every entry,
separator, bracket and multi-byte character crosses block boundaries of the streaming reader.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nslang.workers import perflog
from nslang.workers.errors import StoreError
from nslang.workers.perflog import LogEntry, PerformanceLog


@pytest.fixture(autouse=True, params=[perflog._BLOCK, 7], ids=["block-1MiB", "block-7B"])
def _block(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(perflog, "_BLOCK", request.param)


class Sink:
    """Collects what a log delivers (reset + entries)."""

    def __init__(self) -> None:
        self.entries: list[LogEntry] = []
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1
        self.entries.clear()

    def add(self, e: LogEntry) -> None:
        self.entries.append(e)

    @property
    def data(self) -> list[dict[str, Any]]:
        return [e.data for e in self.entries]


def _append(log: PerformanceLog, sink: Sink, entry: dict[str, Any]) -> LogEntry:
    return log.append(entry, sink.reset, sink.add)


def _load(path: Path) -> list[dict[str, Any]]:
    sink = Sink()
    PerformanceLog(path).sync(sink.reset, sink.add)
    return sink.data


def test_appends_keep_a_plain_json_array(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    log, sink = PerformanceLog(path), Sink()
    for i in range(5):
        _append(log, sink, {"i": i, "text": "naïve ✓"})
    assert json.loads(path.read_text()) == [{"i": i, "text": "naïve ✓"} for i in range(5)]
    assert path.read_bytes().endswith(b"}\n]\n")
    assert sink.data == [{"i": i, "text": "naïve ✓"} for i in range(5)]
    # offsets point at the entries
    other = PerformanceLog(path)
    s2 = Sink()
    other.sync(s2.reset, s2.add)
    raw = path.read_bytes()
    assert [json.loads(raw[e.offset:e.offset + e.length]) for e in s2.entries] == s2.data
    streamed = Sink()
    other.each_entry(streamed.add)
    assert streamed.data == s2.data


def test_incremental_sync_sees_other_writers(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    a, sa = PerformanceLog(path), Sink()
    b, sb = PerformanceLog(path), Sink()
    _append(a, sa, {"n": 1})
    _append(b, sb, {"n": 2})  # b first delivers a's entry, then its own
    assert sb.data == [{"n": 1}, {"n": 2}]
    assert a.changed()
    a.sync(sa.reset, sa.add)
    resets = sa.resets
    assert sa.data == [{"n": 1}, {"n": 2}]
    assert not a.changed()
    a.sync(sa.reset, sa.add)
    assert sa.data == [{"n": 1}, {"n": 2}] and sa.resets == resets  # incremental: no reset


def test_replaced_file_is_read_again_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    log, sink = PerformanceLog(path), Sink()
    _append(log, sink, {"n": 1})
    resets = sink.resets
    tmp = tmp_path / "new.json"
    tmp.write_text('[{"n": 7}]')
    tmp.replace(path)
    log.sync(sink.reset, sink.add)
    assert sink.data == [{"n": 7}] and sink.resets == resets + 1


@pytest.mark.parametrize("content", [b"", b"   \n", b"null", b"[]", b"[\n]\n", b"\xef\xbb\xbf[]"])
def test_empty_forms(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "log.json"
    path.write_bytes(content)
    assert _load(path) == []
    log, sink = PerformanceLog(path), Sink()
    _append(log, sink, {"n": 1})
    assert json.loads(path.read_text(encoding="utf-8-sig")) == [{"n": 1}]  # a user's BOM is kept


def test_missing_file_is_empty(tmp_path: Path) -> None:
    assert _load(tmp_path / "nope" / "log.json") == []


def test_go_era_pretty_printed_file_loads_and_is_appended(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    old = [{"instance_id": "a", "performance_records": None}, {"instance_id": "b", "performance_records": []}]
    path.write_text(json.dumps(old, indent=2))  # Go: 2-space indent, no trailing newline
    assert _load(path) == old
    log, sink = PerformanceLog(path), Sink()
    _append(log, sink, {"instance_id": "c"})
    assert json.loads(path.read_text()) == [*old, {"instance_id": "c"}]
    assert sink.data == [*old, {"instance_id": "c"}]


def _torn_states(base: bytes, payload: bytes, pos: int) -> list[bytes]:
    """Every file an interrupted in-place write of ``payload`` at ``pos`` can leave behind."""
    states = []
    for k in range(len(payload) + 1):
        b = bytearray(base)
        for j in range(k):
            if pos + j < len(b):
                b[pos + j] = payload[j]
            else:
                b.append(payload[j])
        states.append(bytes(b))
    return states


def test_a_write_interrupted_at_any_byte_loses_no_completed_entry(tmp_path: Path) -> None:
    """SIGKILL at any byte of an append: the log loads, the earlier entries are all there, and the
    next append repairs the file into a plain JSON array (torn bytes are saved aside, not deleted)."""
    path = tmp_path / "log.json"
    log, sink = PerformanceLog(path), Sink()
    for i in range(3):
        _append(log, sink, {"i": i, "s": "x" * 10})
    base = path.read_bytes()
    line = json.dumps({"i": 99, "s": "torn"}, separators=(",", ":")).encode()
    states = _torn_states(base, b",\n" + line + b"\n]\n", len(base) - 3)
    for k, state in enumerate(states):
        path.write_bytes(state)
        loaded = [d["i"] for d in _load(path)]
        assert loaded[:3] == [0, 1, 2], k
        assert loaded in ([0, 1, 2], [0, 1, 2, 99]), k
        log2, s2 = PerformanceLog(path), Sink()
        _append(log2, s2, {"i": 100})
        assert [d["i"] for d in json.loads(path.read_text())] == [*loaded, 100], k
    saved = list(tmp_path.glob("log.json.torn-*"))
    assert saved and all(p.read_bytes() for p in saved)


def test_interrupted_first_append_to_an_empty_array(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    line = json.dumps({"i": 1}).encode()
    for state in _torn_states(b"[\n]\n", b"\n" + line + b"\n]\n", 1):
        path.write_bytes(state)
        assert [d["i"] for d in _load(path)] in ([], [1])
        log, sink = PerformanceLog(path), Sink()
        _append(log, sink, {"i": 2})
        assert json.loads(path.read_text())[-1] == {"i": 2}


@pytest.mark.parametrize("content,where", [
    (b'[\n{"a":1},\ngarbage\n,{"b":2}\n]\n', "not valid JSON"),
    (b'[\n{"a":1}\n]\n{"b":2}\n', "after the closing"),
    (b'{"a": 1}', "does not start with '['"),
    (b'[\n{"a":1}\n{"b":2}\n]\n', "expected ','"),
    (b'[\n1,\n2\n]\n', "not a JSON object"),
])
def test_corruption_is_refused_and_the_file_left_alone(tmp_path: Path, content: bytes, where: str) -> None:
    path = tmp_path / "log.json"
    path.write_bytes(content)
    with pytest.raises(StoreError) as ei:
        _load(path)
    assert str(path) in ei.value.message and where in ei.value.message and ei.value.code == 6
    log, sink = PerformanceLog(path), Sink()
    with pytest.raises(StoreError):
        _append(log, sink, {"c": 3})
    assert path.read_bytes() == content


def test_append_cost_does_not_read_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The append path reads only what other writers appended and the file's last 4 bytes, never the
    whole file; after its own append it reads nothing."""
    path = tmp_path / "log.json"
    log, sink = PerformanceLog(path), Sink()
    for i in range(50):
        _append(log, sink, {"i": i})
    reads: list[int] = []
    import os

    real_pread = os.pread

    def spy(fd: int, n: int, off: int) -> bytes:
        data = real_pread(fd, n, off)
        reads.append(len(data))
        return data

    monkeypatch.setattr(os, "pread", spy)
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("whole-file read on append"))
    _append(log, sink, {"i": 50})
    assert reads == []  # the file ends as our own last append left it: nothing to read
    other, other_sink = PerformanceLog(path), Sink()
    other.sync(other_sink.reset, other_sink.add)
    _append(other, other_sink, {"i": 51})  # another writer
    reads.clear()
    _append(log, sink, {"i": 52})
    assert sum(reads) < 100 and reads[-1] == 4  # just its new entry, then the last 4 bytes
    assert [e["i"] for e in sink.data] == list(range(53))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.text(max_size=30), st.booleans(), st.floats(0, 1)), min_size=1, max_size=12))
def test_random_appends_and_crashes_keep_every_completed_entry(tmp_path: Path,
                                                               ops: list[tuple[str, bool, float]]) -> None:
    """Appends of arbitrary text, each possibly interrupted at a random byte: entries whose append
    completed are always loaded, in order, and the file ends as a plain JSON array."""
    path = tmp_path / "prop" / "log.json"
    if path.exists():
        path.unlink()
    for p in path.parent.glob("log.json.torn-*") if path.parent.exists() else ():
        p.unlink()
    completed: list[dict[str, Any]] = []
    torn_before = False  # the previous append was interrupted: this one first cuts the file back
    for n, (text, crash, where) in enumerate(ops):
        entry = {"n": n, "text": text}
        before = path.read_bytes() if path.exists() else b""
        log, sink = PerformanceLog(path, durable=False), Sink()
        _append(log, sink, entry)
        if crash and before:
            after = path.read_bytes()
            # keep a prefix of what this append wrote (the bytes from the first difference on)
            first = next((i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b), len(before))
            cut = first + int(where * (len(after) - first))
            # an in-place write leaves the old bytes beyond what it wrote; after a repair (the file
            # was cut back to its last complete entry first) there are none
            torn = after[:cut] if torn_before else after[:cut] + before[cut:]
            path.write_bytes(torn)
            torn_before = True
            loaded = _load(path)
            assert loaded[: len(completed)] == completed
            assert len(loaded) in (len(completed), len(completed) + 1)
            if len(loaded) > len(completed):
                completed.append(entry)
        else:
            completed.append(entry)
            torn_before = False
        assert _load(path) == completed
    log, sink = PerformanceLog(path, durable=False), Sink()
    _append(log, sink, {"n": "last"})
    assert json.loads(path.read_text()) == [*completed, {"n": "last"}]
