"""Worker data at scale (issue 11 items 5 and 6, issue 10 item 3): the summaries checkpoint, the lock
on the data files themselves, the stale temporary-file sweep and the durability choice.

Timings are not asserted here (they are in ``bench/bench_log_scale.py``); these tests check that the
fast paths give exactly what the slow ones give, and that no process loses an update.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from workers_helpers import add_test_worker

from nslang.cli import main
from nslang.interpreter import Interpreter
from nslang.workers import AIWorkerManager, StoreError, perflog
from nslang.workers import checkpoint as checkpoint_mod
from nslang.workers.checkpoint import CHECKPOINT_FILE
from nslang.workers.perflog import PERFORMANCE_FILE
from nslang.workers.store import DEFINITIONS_FILE, FileGuard, atomic_write

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


@pytest.fixture
def small_checkpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rewrite the checkpoint after every entry (the real threshold is 1 MiB of log)."""
    monkeypatch.setattr(checkpoint_mod, "CHECKPOINT_EVERY", 1)


def _summaries(m: AIWorkerManager) -> dict[str, Any]:
    return {d.name: d.aggregate_performance_summary.model_dump() for d in m.list_definitions()
            if d.aggregate_performance_summary is not None}


def _full_rebuild(sandbox: Path) -> dict[str, Any]:
    """The summaries built from the whole log, the checkpoint ignored."""
    m = AIWorkerManager(sandbox, environ={})
    m.reload_performance_data()
    try:
        return _summaries(m)
    finally:
        m.close()


def _fill(sandbox: Path, tasks: int = 12) -> AIWorkerManager:
    """Two workers with successes, failures, a rated external record and an instance's lifecycle."""
    m = AIWorkerManager(sandbox, environ={})
    add_test_worker(m, "a")
    b = add_test_worker(m, "b", provider="custom")
    m.register_custom_provider("default", lambda msgs, _s: "" if "fail" in msgs[-1]["content"] else "ok ✓")
    for i in range(tasks):
        m.execute_stateless_task("a", f"task {i} " + "é" * (i % 5))
        try:
            m.execute_stateless_task("b", "fail" if i % 3 == 0 else f"fine {i}")
        except Exception:
            pass
    iid = m.spawn_instance("a").instance_id
    m.chat(iid, "hello")
    m.retire_instance(iid, reason="done")
    now = "2026-01-02T03:04:05.123456789Z"
    m.log_performance({"task_id": "ext-1", "instance_id": "outside", "definition_id": b,
                       "timestamp_start": now, "timestamp_end": now, "duration_ms": 250, "success": True,
                       "cost_incurred": 0.1 + 0.2, "supervisor_feedback": {"rating": 4.5}})
    return m


class _Counting:
    """Counts the log entries a manager folds while loading."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = AIWorkerManager._on_log_entry

        def counting(mgr: AIWorkerManager, entry: Any) -> None:
            self.count += 1
            original(mgr, entry)

        monkeypatch.setattr(AIWorkerManager, "_on_log_entry", counting)


# ================================================================================================ checkpoint


def test_an_open_reads_only_the_log_after_the_checkpoint(sandbox: Path, small_checkpoints: None,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    m = _fill(sandbox)
    expected = _summaries(m)
    ck = json.loads((sandbox / CHECKPOINT_FILE).read_text())
    assert ck["log"]["offset"] == (sandbox / PERFORMANCE_FILE).stat().st_size - 3  # up to the final "\n]\n"
    counter = _Counting(monkeypatch)
    fresh = AIWorkerManager(sandbox, environ={})
    assert _summaries(fresh) == expected
    assert counter.count == 0  # nothing but the checkpoint was needed
    assert expected == _full_rebuild(sandbox)
    assert [r.task_id for r in fresh.get_performance_records("b", {"task_id": "ext-1"})] == ["ext-1"]


def test_a_stale_checkpoint_is_caught_up_from_the_log(sandbox: Path, small_checkpoints: None,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _fill(sandbox)
    monkeypatch.setattr(checkpoint_mod, "CHECKPOINT_EVERY", 1 << 40)  # this writer never refreshes it
    other = AIWorkerManager(sandbox, environ={})
    for i in range(7):
        other.execute_stateless_task("a", f"later {i}")
    counter = _Counting(monkeypatch)
    got = _summaries(AIWorkerManager(sandbox, environ={}))
    assert counter.count == 7  # the checkpoint, then only the 7 entries after it
    assert got == _full_rebuild(sandbox)
    assert got["a"]["total_tasks_attempted"] == 12 + 1 + 7


@pytest.mark.parametrize("damage", [
    b"", b"garbage", b'{"version": 1, "log": {"offset": 5', b'{"version": 99, "log": {}, "summaries": {}}', b"[]",
    "negative", "wrong type", "offset past the end", "deep", "NaN cost", "Infinity cost", "negative cost",
])
def test_a_missing_or_damaged_checkpoint_is_rebuilt_with_identical_summaries(
        sandbox: Path, small_checkpoints: None, damage: Any, caplog: pytest.LogCaptureFixture) -> None:
    expected = _summaries(_fill(sandbox))
    path = sandbox / CHECKPOINT_FILE
    ck = json.loads(path.read_text())
    original = ck["log"]["offset"]
    some = next(iter(ck["summaries"]))
    if damage == "negative":
        ck["summaries"][some]["attempted"] = -1
    elif damage == "wrong type":
        ck["summaries"][some]["cost"] = "a lot"
    elif isinstance(damage, str) and damage.endswith(" cost"):  # json.loads accepts NaN and Infinity
        ck["summaries"][some]["cost"] = {"NaN cost": math.nan, "Infinity cost": math.inf, "negative cost": -1.0}[damage]
    elif damage == "offset past the end":
        ck["log"]["offset"] += 10_000
    if isinstance(damage, bytes):
        path.write_bytes(damage)
    elif damage == "deep":
        path.write_text("[" * 100_000 + "]" * 100_000)
    else:
        path.write_text(json.dumps(ck))
    with caplog.at_level(logging.WARNING, logger="nslang.workers"):
        fresh = AIWorkerManager(sandbox, environ={})
        assert _summaries(fresh) == expected
    if damage != "offset past the end":  # (that one is well-formed: it simply does not match the log)
        assert any("damaged" in r.getMessage() and str(path) in r.getMessage() for r in caplog.records)
    assert json.loads(path.read_text())["log"]["offset"] == original  # rewritten, valid again


def test_a_missing_checkpoint_is_rebuilt(sandbox: Path, small_checkpoints: None) -> None:
    expected = _summaries(_fill(sandbox))
    (sandbox / CHECKPOINT_FILE).unlink()
    assert _summaries(AIWorkerManager(sandbox, environ={})) == expected
    assert (sandbox / CHECKPOINT_FILE).exists()


def test_a_checkpoint_of_another_log_is_not_used(sandbox: Path, small_checkpoints: None,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _fill(sandbox)
    log = sandbox / PERFORMANCE_FILE
    lines = log.read_bytes().split(b"\n")
    # the log is replaced by a shorter one (e.g. a backup restored): its first entries only
    log.write_bytes(b"\n".join(lines[:6]) + b"\n]\n")
    monkeypatch.setattr(checkpoint_mod, "CHECKPOINT_EVERY", 1 << 40)
    fresh = _summaries(AIWorkerManager(sandbox, environ={}))
    assert fresh == _full_rebuild(sandbox)
    assert fresh["a"]["total_tasks_attempted"] < 12
    # same length, different bytes near the start (an entry edited in place): no longer matches
    monkeypatch.setattr(checkpoint_mod, "CHECKPOINT_EVERY", 1)
    _summaries(AIWorkerManager(sandbox, environ={}))  # writes a checkpoint of the shorter log
    data = log.read_bytes()
    assert b'"success":true' in data[:4096]
    log.write_bytes(data.replace(b'"success":true', b'"success":null', 1))
    edited = _summaries(AIWorkerManager(sandbox, environ={}))
    assert edited == _full_rebuild(sandbox) != fresh


def test_small_logs_have_no_checkpoint(sandbox: Path) -> None:
    _fill(sandbox, tasks=3)
    assert not (sandbox / CHECKPOINT_FILE).exists()  # under 1 MiB of log: nothing to gain


def _kill_child(sandbox: Path, wfd: int, seed: int) -> None:  # pragma: no cover - runs in a child
    m = AIWorkerManager(sandbox, environ={}, durable=False)
    i = 0
    while True:
        r = m.execute_stateless_task("w", f"task {seed}-{i} " + "x" * (i * 37 % 300))
        os.write(wfd, f"{r.record.task_id}\n".encode())
        i += 1


@needs_fork
def test_appends_from_four_processes_killed_at_random_keep_every_record_and_the_checkpoint(
        sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkpoint_mod, "CHECKPOINT_EVERY", 4000)  # a checkpoint every few entries
    add_test_worker(AIWorkerManager(sandbox, environ={}), "w", interaction_models=["stateless_task"])
    rng = random.Random(11)
    saved: set[str] = set()
    for round_no in range(6):
        children = []
        for k in range(4):
            rfd, wfd = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover
                try:
                    os.close(rfd)
                    _kill_child(sandbox, wfd, round_no * 4 + k)
                finally:
                    os._exit(0)
            os.close(wfd)
            children.append((pid, rfd))
        time.sleep(rng.uniform(0.2, 0.5))
        for pid, _ in children:
            time.sleep(rng.uniform(0, 0.01))
            os.kill(pid, signal.SIGKILL)
        for pid, rfd in children:
            os.waitpid(pid, 0)
            with os.fdopen(rfd, "rb") as f:
                saved |= {line.decode() for line in f.read().split(b"\n")[:-1]}
        fresh = AIWorkerManager(sandbox, environ={})
        got = {r.task_id for r in fresh.get_performance_records("w")}
        assert saved <= got, round_no
        with_checkpoint = _summaries(fresh)
        assert with_checkpoint["w"]["total_tasks_attempted"] == len(got)
        assert with_checkpoint == _full_rebuild(sandbox), round_no
        fresh.close()
    assert len(saved) > 50
    assert (sandbox / CHECKPOINT_FILE).exists()
    assert not [p for p in sandbox.iterdir() if p.name.endswith(".tmp")]


# ================================================================================================ locking


def test_the_lock_follows_a_replaced_data_file(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text("[]")
    mine = FileGuard(path)
    with mine.hold():
        pass  # the descriptor stays open on the first file
    atomic_write(path, b"[1]")  # a writer replaces the file (as every definitions write does)
    other = FileGuard(path, timeout=0.05)
    with mine.hold() as locked:
        assert locked and os.path.samestat(os.fstat(mine.fd), os.stat(path))
        with pytest.raises(StoreError, match="could not lock"):
            with other.hold():
                pass
    with other.hold():  # free again
        pass


def test_no_lock_file_is_created(sandbox: Path) -> None:
    m = _fill(sandbox, tasks=2)
    m.close()
    assert not [p.name for p in sandbox.iterdir() if p.name.endswith(".lock")]


def _adder(sandbox: Path, k: int, n: int) -> None:  # pragma: no cover - runs in a child
    m = AIWorkerManager(sandbox, environ={}, durable=False)
    for i in range(n):
        m.add_definition({"name": f"p{k}-{i}", "provider": "test"})


@needs_fork
def test_deleting_lock_files_mid_run_loses_no_update(sandbox: Path) -> None:
    """Issue 10 item 3: 4 processes add definitions while a loop deletes every lock file (260 of 447
    Adds were lost this way when the lock was a separate ``.lock`` file)."""
    sandbox.mkdir(parents=True)
    stop = threading.Event()
    deleted = 0

    def attacker() -> None:
        nonlocal deleted
        while not stop.is_set():
            for p in sandbox.iterdir():
                if p.name.endswith(".lock"):
                    try:
                        p.unlink()
                        deleted += 1
                    except OSError:
                        pass

    thread = threading.Thread(target=attacker)
    thread.start()
    pids = []
    try:
        for k in range(4):
            pid = os.fork()
            if pid == 0:  # pragma: no cover
                code = 1
                try:
                    _adder(sandbox, k, 25)
                    code = 0
                finally:
                    os._exit(code)
            pids.append(pid)
        codes = [os.waitpid(pid, 0)[1] for pid in pids]
    finally:
        stop.set()
        thread.join()
    assert codes == [0, 0, 0, 0]
    names = {d.name for d in AIWorkerManager(sandbox, environ={}).list_definitions()}
    assert names == {f"p{k}-{i}" for k in range(4) for i in range(25)}


# ================================================================================================ temp files


def test_stale_temporary_files_are_swept_at_the_next_start(sandbox: Path) -> None:
    m = _fill(sandbox, tasks=2)
    m.close()
    stale = [f".{DEFINITIONS_FILE}.k1ll3d.tmp", f".{PERFORMANCE_FILE}.abc.tmp", f".{CHECKPOINT_FILE}.x_9.tmp"]
    kept = [".notes.txt.abc.tmp", "draft.tmp", f"{DEFINITIONS_FILE}.bak"]
    for name in stale + kept:
        (sandbox / name).write_text("half-written")
    fresh = AIWorkerManager(sandbox, environ={})
    assert [d.name for d in fresh.list_definitions()] == ["a", "b"]
    left = {p.name for p in sandbox.iterdir()}
    assert not left & set(stale)
    assert set(kept) <= left


# ================================================================================================ readers


def test_streamed_records_match_and_survive_a_replaced_log(sandbox: Path) -> None:
    m = _fill(sandbox, tasks=5)
    before = [r.task_id for r in m.get_performance_records("a")]
    assert len(before) == 5 + 1
    log = sandbox / PERFORMANCE_FILE
    data = log.read_bytes()
    log.unlink()
    log.write_bytes(data)  # same content, new file: the reader notices and reads again
    assert [r.task_id for r in m.get_performance_records("a")] == before


@pytest.mark.parametrize("case", ["directory", "deep", "string cost"])
def test_workers_list_on_a_damaged_log_is_a_clear_error(sandbox: Path, case: str) -> None:
    m = AIWorkerManager(sandbox, environ={})
    add_test_worker(m, "a")
    m.execute_stateless_task("a", "x")
    m.close()
    log = sandbox / PERFORMANCE_FILE
    text = log.read_text()
    if case == "directory":
        log.unlink()
        log.mkdir()
    elif case == "deep":
        log.write_text(text[:-3] + ',\n{"performance_records": ' + "[" * 100_000 + "]" * 100_000 + "}\n]\n")
    else:
        log.write_text(text.replace('"cost_incurred":0.0', '"cost_incurred":"a lot"'))
    out, err = io.StringIO(), io.StringIO()
    code = main(["workers", "list", "--sandbox", str(sandbox)], stdout=out, stderr=err)
    if case == "string cost":  # a value the summary cannot use counts as 0 (ai_workers.md §1.7)
        assert code == 0 and "a" in out.getvalue(), err.getvalue()
    else:
        assert code != 0
        assert str(log) in err.getvalue() and "internal error" not in err.getvalue()
        assert "Traceback" not in err.getvalue()


# ================================================================================================ durability


def test_durability_is_a_documented_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Interpreter(sandbox_dir=tmp_path).workers.durable is True
    assert Interpreter(sandbox_dir=tmp_path, durable=False).workers.durable is False
    syncs: list[int] = []
    monkeypatch.setattr(perflog, "_fdatasync", lambda fd: syncs.append(fd))
    script = tmp_path / "s.ns"
    script.write_text('func main() means\n  call tool.AIWorkerDefinition.Add(name: "w", provider: "test")\n'
                      '  ask "w", "hello" into r\nendfunc\n')
    for flag, expect_sync in (("--no-durable", False), ("--durable", True)):
        syncs.clear()
        sb = tmp_path / flag.strip("-")
        code = main(["run", flag, "--sandbox", str(sb), str(script)], stdout=io.StringIO(), stderr=io.StringIO())
        assert code == 0
        assert bool(syncs) is expect_sync, flag
