"""The definitions file: atomic writes, re-read before modify, corrupt files refused and untouched."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from workers_helpers import add_test_worker

from nslang.workers import AIWorkerManager, StoreError
from nslang.workers.store import DEFINITIONS_FILE, DefinitionStore, atomic_write


def test_missing_empty_and_null_files_hold_no_definitions(sandbox: Path) -> None:
    m = AIWorkerManager(sandbox)
    assert m.list_definitions() == []
    sandbox.mkdir(parents=True, exist_ok=True)
    for content in (b"", b"  \n", b"null", b"[]", b"\xef\xbb\xbf[]"):
        (sandbox / DEFINITIONS_FILE).write_bytes(content)
        assert AIWorkerManager(sandbox).list_definitions() == []


@pytest.mark.parametrize("content,why", [
    (b'[\n  {"name": "a", "provider": "test"', "corrupt"),  # truncated
    (b"\x00\x01garbage\xff", "corrupt"),
    (b"hello world", "corrupt"),
    (b'{"aiWorkerDefinitions": []}', "JSON array"),  # the upstream sample bundle shape
    (b'[1, 2]', "not a JSON object"),
    (b'[{"name": "a", "provider": "gpt"}]', "provider"),
    (b'[{"provider": "test"}]', "no name"),
])
def test_corrupt_definitions_file_is_a_clear_error_and_never_overwritten(sandbox: Path, content: bytes,
                                                                         why: str) -> None:
    sandbox.mkdir(parents=True)
    path = sandbox / DEFINITIONS_FILE
    path.write_bytes(content)
    m = AIWorkerManager(sandbox)
    for attempt in (lambda: m.list_definitions(),
                    lambda: m.add_definition({"name": "new", "provider": "test"}),
                    lambda: m.save_definitions(),
                    lambda: m.reload_definitions()):
        with pytest.raises(StoreError) as ei:
            attempt()
        assert str(path) in ei.value.message and why in ei.value.message
        assert ei.value.code == 6
    assert path.read_bytes() == content
    assert [p.name for p in sandbox.iterdir() if not p.name.endswith(".lock")] == [DEFINITIONS_FILE]


def test_writes_are_atomic_and_pretty(sandbox: Path, manager: AIWorkerManager) -> None:
    add_test_worker(manager, "a")
    path = sandbox / DEFINITIONS_FILE
    text = path.read_text()
    assert text.startswith("[\n  {") and text.endswith("]\n")
    data = json.loads(text)
    assert data[0]["name"] == "a" and "aggregate_performance_summary" in data[0]
    assert not [p for p in sandbox.iterdir() if p.name.endswith(".tmp")]


def test_failed_write_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f.json"
    path.write_text("old")

    def boom(*_a: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write(path, b"new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_write_failure_is_a_store_error(sandbox: Path, manager: AIWorkerManager,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    add_test_worker(manager, "a")
    before = (sandbox / DEFINITIONS_FILE).read_bytes()
    monkeypatch.setattr(os, "replace", lambda *_a: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(StoreError, match="No space left"):
        add_test_worker(manager, "b")
    assert (sandbox / DEFINITIONS_FILE).read_bytes() == before
    assert [d.name for d in manager.list_definitions()] == ["a"]


def test_two_managers_never_lose_each_others_updates(sandbox: Path) -> None:
    a, b = AIWorkerManager(sandbox), AIWorkerManager(sandbox)
    add_test_worker(a, "from-a")
    add_test_worker(b, "from-b")  # b re-reads the file under the lock before writing
    a.update_definition("from-b", {"capabilities": ["x"]})
    names = sorted(d.name for d in AIWorkerManager(sandbox).list_definitions())
    assert names == ["from-a", "from-b"]
    assert b.get_definition("from-b").capabilities == ["x"]  # b sees a's change (file changed)


def test_ids_are_stable_across_restarts(sandbox: Path) -> None:
    m = AIWorkerManager(sandbox)
    the_id = add_test_worker(m, "a")
    assert AIWorkerManager(sandbox).get_definition("a").definition_id == the_id
    # a hand-written entry without an ID gets the same ID on every load (UUID5 of its name)
    sandbox.mkdir(exist_ok=True)
    (sandbox / DEFINITIONS_FILE).write_text(json.dumps([{"name": "hand", "provider": "test"}]))
    ids = {AIWorkerManager(sandbox).get_definition("hand").definition_id for _ in range(3)}
    assert len(ids) == 1


def test_duplicate_ids_in_the_file_last_wins(sandbox: Path) -> None:
    sandbox.mkdir()
    (sandbox / DEFINITIONS_FILE).write_text(json.dumps([
        {"definition_id": "x", "name": "first", "provider": "test"},
        {"definition_id": "x", "name": "second", "provider": "test"},
    ]))
    assert [d.name for d in AIWorkerManager(sandbox).list_definitions()] == ["second"]


def test_store_update_returning_none_writes_nothing(tmp_path: Path) -> None:
    store = DefinitionStore(tmp_path / DEFINITIONS_FILE)
    store.update(lambda cur: [{"name": "a"}])
    sig = store.signature()
    store.update(lambda cur: None)
    assert store.signature() == sig
