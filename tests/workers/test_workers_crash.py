"""Crash safety: a process appending records and adding definitions is SIGKILLed at random moments.

After every kill, both files load and everything the child reported as saved is there. (Torn writes
at every byte offset are covered deterministically in test_workers_perflog.py.)
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import pytest
from workers_helpers import add_test_worker

from nslang.workers import AIWorkerManager
from nslang.workers.perflog import PERFORMANCE_FILE

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

ROUNDS = 24


def _child(sandbox: Path, wfd: int) -> None:
    m = AIWorkerManager(sandbox)
    i = 0
    while True:
        if i % 7 == 0:
            d = m.add_definition({"name": f"crash-{os.getpid()}-{i}", "provider": "test"})
            os.write(wfd, f"def {d.definition_id}\n".encode())
        r = m.execute_stateless_task("worker", f"task {i} " + "padding " * (i % 50))
        os.write(wfd, f"task {r.record.task_id}\n".encode())
        i += 1


def _read_lines(fd: int, buf: bytearray, want: int) -> list[str]:
    """Read from the pipe until it holds ``want`` complete lines (or EOF when ``want`` < 0)."""
    while want < 0 or buf.count(b"\n") < want:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buf += chunk
    return buf.decode().splitlines()[: buf.count(b"\n")]


def test_sigkill_at_random_moments_never_loses_a_saved_record(sandbox: Path) -> None:
    rng = random.Random(20240611)
    add_test_worker(AIWorkerManager(sandbox), "worker", interaction_models=["stateless_task"])
    saved_tasks: set[str] = set()
    saved_defs: set[str] = set()
    for round_no in range(ROUNDS):
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child never returns
            try:
                os.close(rfd)
                _child(sandbox, wfd)
            finally:
                os._exit(0)
        os.close(wfd)
        buf = bytearray()
        _read_lines(rfd, buf, rng.randint(1, 30))
        time.sleep(rng.uniform(0, 0.004))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        lines = _read_lines(rfd, buf, -1)
        os.close(rfd)
        for line in lines:
            kind, _, ident = line.partition(" ")
            (saved_tasks if kind == "task" else saved_defs).add(ident)

        fresh = AIWorkerManager(sandbox)  # loads both files, tolerating a torn log tail
        assert saved_defs <= {d.definition_id for d in fresh.list_definitions()}, round_no
        got = {r.task_id for r in fresh.get_performance_records("worker")}
        assert saved_tasks <= got, round_no
        assert fresh.get_summary("worker").total_tasks_attempted == len(got)
    # the next append repairs any torn tail: the log is a plain JSON array again
    m = AIWorkerManager(sandbox)
    m.execute_stateless_task("worker", "after the storm")
    entries = json.loads((sandbox / PERFORMANCE_FILE).read_text())
    assert {r["task_id"] for e in entries for r in e["performance_records"]} >= saved_tasks
    assert len(saved_tasks) >= ROUNDS
