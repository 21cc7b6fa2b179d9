"""Shared by the rate-limit tests and their child processes: a workload hitting all four limits at once,
and checks of the limits against the performance log's timestamps (issue 11, "Done means").

Child processes run ``python limits_helpers.py SANDBOX BACKEND_JSON WORKLOAD_JSON``.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nslang.workers import AIWorkerManager, RateLimitedError
from nslang.workers.limits import LIMITS_FILE, LimitBackend, RedisLimits, SQLiteLimits

CALL_S = 0.2  # simulated model latency
OUTPUT_TOKENS = 50
HERE = Path(__file__).resolve().parent

#: name -> rate_limits of the four definitions the workload uses (windows are shortened by the backend);
#: refusals fail at once for requests, the others wait a little (fan-out) and then fail
LIMITS: dict[str, dict[str, Any]] = {
    "rpm": {"max_requests_per_minute": 3},
    "tpm": {"max_tokens_per_minute": 200, "on_limit": "wait", "max_wait_s": 3},
    "tpd": {"max_tokens_per_day": 300, "on_limit": "wait", "max_wait_s": 1},
    "inst": {"max_concurrent_active_instances": 3, "on_limit": "wait", "max_wait_s": 2},
}


def slow_provider(messages: list[dict[str, str]], settings: dict[str, Any]) -> dict[str, Any]:
    """A model call taking ``CALL_S`` seconds: input tokens = characters / 4 (the reservation's own
    estimate), output ``OUTPUT_TOKENS``."""
    time.sleep(CALL_S)
    chars = sum(len(m["content"]) for m in messages)
    return {"text": "ok " * OUTPUT_TOKENS, "input_tokens": chars // 4, "output_tokens": OUTPUT_TOKENS}


def make_backend(spec: dict[str, Any], sandbox: Path) -> LimitBackend:
    """``{"kind": "memory" | "sqlite" | "redis", "url", "prefix", "minute", "day", "lease_ttl"}``."""
    kw = {k: spec[k] for k in ("minute", "day", "lease_ttl") if k in spec}
    if spec["kind"] == "memory":
        return SQLiteLimits(":memory:", **kw)
    if spec["kind"] == "sqlite":
        return SQLiteLimits(sandbox / LIMITS_FILE, **kw)
    return RedisLimits(spec["url"], prefix=spec["prefix"], **kw)


def add_definitions(m: AIWorkerManager) -> None:
    """The four definitions, with fixed ids so that several sandboxes ("hosts") share their limits."""
    for name, limits in LIMITS.items():
        m.add_definition({"name": name, "definition_id": f"def-{name}", "provider": "custom",
                          "base_config": {"custom_provider": "slow"}, "rate_limits": limits})


def manager(sandbox: Path, spec: dict[str, Any]) -> AIWorkerManager:
    m = AIWorkerManager(sandbox, environ={}, durable=False, limits=make_backend(spec, sandbox))
    m.register_custom_provider("slow", slow_provider)
    return m


def workload(m: AIWorkerManager, threads: int, tasks: int) -> dict[str, int]:
    """``threads`` threads per definition, each doing ``tasks`` tasks (instances: spawn, one chat turn,
    retire). Returns how many were refused per definition."""
    refused = dict.fromkeys(LIMITS, 0)
    lock = threading.Lock()
    barrier = threading.Barrier(threads * len(LIMITS))

    def run(name: str, n: int) -> None:
        barrier.wait()
        for i in range(tasks):
            try:
                if name == "inst":
                    iid = m.spawn_instance(name).instance_id
                    m.chat(iid, f"hello {n} {i}")
                    m.retire_instance(iid)
                else:
                    m.execute_stateless_task(name, f"task {n} {i}")
            except RateLimitedError:
                with lock:
                    refused[name] += 1

    pool = [threading.Thread(target=run, args=(name, n)) for name in LIMITS for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return refused


# ----------------------------------------------------------------------------- checks from the log


def _entries(sandbox: Path) -> list[dict[str, Any]]:
    m = AIWorkerManager(sandbox, environ={})
    m.reload_performance_data()
    data: list[dict[str, Any]] = json.loads(m.performance_path.read_text())
    return data


def _ts(value: str) -> float:
    from nslang.workers.models import parse_timestamp

    ts = parse_timestamp(value)
    assert ts is not None
    return ts.timestamp()


def records(sandboxes: list[Path], name: str) -> list[tuple[float, int]]:
    """(start time, input+output tokens) of every record of definition ``def-<name>``, by start time."""
    out = []
    for box in sandboxes:
        for e in _entries(box):
            for r in e.get("performance_records") or ():
                if r["definition_id"] == f"def-{name}":
                    m = r["llm_metrics"]
                    out.append((_ts(r["timestamp_start"]), m["input_tokens"] + m["output_tokens"]))
    return sorted(out)


def max_in_window(events: list[tuple[float, int]], span: float) -> tuple[int, int]:
    """The most events, and the most tokens, whose start times fall within one window of ``span`` s."""
    most = most_tokens = 0
    for i, (t0, _) in enumerate(events):
        inside = [tok for t, tok in events[i:] if t < t0 + span]
        most = max(most, len(inside))
        most_tokens = max(most_tokens, sum(inside))
    return most, most_tokens


def max_live(sandboxes: list[Path], name: str) -> int:
    """The most instances of ``def-<name>`` alive at once, from spawn and retirement entries."""
    marks: list[tuple[float, int]] = []
    for box in sandboxes:
        for e in _entries(box):
            if e.get("definition_id") != f"def-{name}":
                continue
            if e.get("entry_kind") == "spawn":
                marks.append((_ts(e["creation_timestamp"]), +1))
            elif e.get("entry_kind") == "retired_instance":
                marks.append((_ts(e["retirement_timestamp"]), -1))
    live = most = 0
    for _, d in sorted(marks, key=lambda x: (x[0], x[1])):  # a retirement before a spawn at the same instant
        live += d
        most = max(most, live)
    return most


#: Scheduling jitter between a request's admission and its record's ``timestamp_start`` (seconds; with
#: dozens of threads on a loaded 2-core machine a thread can wait that long for the GIL).
JITTER = 0.5
#: The "minute" of the concurrency tests (seconds).
MINUTE = 2.0


def check_limits(sandboxes: list[Path], minute: float) -> dict[str, Any]:
    """Measured peaks: requests and tokens per window (from ``timestamp_start``), total tokens of the
    day-limited definition, live instances. Windows are narrowed by :data:`JITTER`."""
    rpm = records(sandboxes, "rpm")
    tpm = records(sandboxes, "tpm")
    tpd = records(sandboxes, "tpd")
    return {
        "rpm": max_in_window(rpm, minute - JITTER)[0], "rpm_calls": len(rpm),
        "tpm": max_in_window(tpm, minute - JITTER)[1], "tpm_calls": len(tpm),
        "tpd": sum(tok for _, tok in tpd), "tpd_calls": len(tpd),
        "call_tokens": max((tok for _, tok in rpm + tpm + tpd), default=0),
        "inst": max_live(sandboxes, "inst"),
    }


# ----------------------------------------------------------------------------- processes and Redis


def child(sandbox: Path, spec: dict[str, Any], threads: int, tasks: int) -> subprocess.Popen[str]:
    """Start a process running :func:`workload` on ``sandbox``; it prints the refusals as JSON."""
    return subprocess.Popen([sys.executable, str(Path(__file__)), str(sandbox), json.dumps(spec), str(threads),
                             str(tasks)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def redis_server_path() -> str | None:
    return shutil.which("redis-server") or next((p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server")
                                                 if Path(p).is_file()), None)


@contextmanager
def redis_server(path: str) -> Iterator[str]:
    """A throw-away ``redis-server`` on 127.0.0.1 (no persistence); yields its URL."""
    import redis

    port = free_port()
    proc = subprocess.Popen([path, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    box, spec_json, n_threads, n_tasks = sys.argv[1:5]
    mgr = manager(Path(box), json.loads(spec_json))
    print(json.dumps(workload(mgr, int(n_threads), int(n_tasks))))
