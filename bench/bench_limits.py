#!/usr/bin/env python3
"""Cost of the rate limits (issue 11 items 1-3, 7). Prints figures; no assertions.

    python bench/bench_limits.py [--calls N]

1. One admission + settle (a request with a token limit) per backend: no limits (the fast path),
   memory, SQLite file in the sandbox, Redis (when ``redis-server`` is installed; started on 127.0.0.1),
   from one thread and from four. CPU µs and wall µs per call.
2. A whole stateless task with the ``test`` provider (fsync off): no limits vs. limits on the SQLite
   file vs. Redis, CPU µs per task.
3. pyrate-limiter's SQLite bucket for comparison (the library the issue suggested): one weighted
   acquisition of 1 and of 1,000 tokens; it stores one row per token and cannot settle a reservation.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nslang.workers import AIWorkerDefinition, AIWorkerManager  # noqa: E402
from nslang.workers.limits import LIMITS_FILE, LimitBackend, RateLimiter, RedisLimits, SQLiteLimits  # noqa: E402


class _Msg:
    content = "summarize this paragraph for me please " * 4


MESSAGES = [_Msg()]


def _per_call(fn: Callable[[int], None], calls: int, threads: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per call of ``fn`` run ``calls`` times over ``threads`` threads."""
    per = calls // threads
    pool = [threading.Thread(target=lambda: [fn(i) for i in range(per)]) for _ in range(threads)]
    c0, w0 = time.process_time(), time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    n = per * threads
    return (time.process_time() - c0) / n * 1e6, (time.perf_counter() - w0) / n * 1e6


def _limiter_cost(backend: LimitBackend | None, calls: int, threads: int) -> tuple[float, float]:
    limits = {"max_requests_per_minute": 10**9, "max_tokens_per_minute": 10**12} if backend else {}
    d = AIWorkerDefinition.model_validate({"name": "b", "definition_id": f"bench-{time.time_ns()}",
                                           "provider": "test", "rate_limits": limits})
    rl = RateLimiter(backend or SQLiteLimits(":memory:"))

    def one(_i: int) -> None:
        with rl.admit(d, MESSAGES, {"max_tokens": 100}) as ticket:
            ticket.settle(40, 60, True)

    one(0)
    return _per_call(one, calls, threads)


def _task_cost(tmp: Path, backend: LimitBackend | None, tasks: int) -> float:
    m = AIWorkerManager(tmp, durable=False, environ={}, limits=backend)
    limits = {"max_requests_per_minute": 10**9, "max_tokens_per_day": 10**12} if backend else {}
    name = f"t{time.time_ns()}"
    m.add_definition({"name": name, "provider": "test", "interaction_models": ["stateless_task"],
                      "rate_limits": limits})
    m.execute_stateless_task(name, "warm up")
    cpu, _ = _per_call(lambda i: m.execute_stateless_task(name, f"summarize item {i}"), tasks, 1)
    m.close()
    return cpu


@contextmanager
def _redis() -> Iterator[str | None]:
    path = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists()
                                            else None)
    if path is None:
        yield None
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([path, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import redis

        url = f"redis://127.0.0.1:{port}/0"
        for _ in range(100):
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _pyrate(tmp: Path, calls: int, weight: int) -> float:
    try:
        from pyrate_limiter import Rate, SQLiteBucket
        from pyrate_limiter.abstracts import RateItem
    except ImportError:
        return float("nan")
    bucket = SQLiteBucket.init_from_file([Rate(10**9, 60_000)], db_path=str(tmp / f"pyrate{weight}.sqlite"),
                                         use_file_lock=True)
    c0 = time.process_time()
    for _ in range(calls):
        bucket.put(RateItem("b", bucket.now(), weight=weight))
    cpu = (time.process_time() - c0) / calls * 1e6
    bucket.close()
    return cpu


def limits_section(calls: int) -> None:
    """Print the rate-limit figures (also called by ``bench/run.py``)."""
    with tempfile.TemporaryDirectory() as tmp_s, _redis() as url:
        tmp = Path(tmp_s)
        backends: list[tuple[str, Callable[[], LimitBackend | None]]] = [
            ("no limits", lambda: None),
            ("memory", lambda: SQLiteLimits(":memory:")),
            ("sqlite file", lambda: SQLiteLimits(tmp / LIMITS_FILE)),
        ]
        if url:
            backends.append(("redis", lambda: RedisLimits(url, prefix=f"bench{time.time_ns()}")))
        print("admission + settle of one request (requests/min and tokens/min limits set)")
        print(f"{'backend':14s} {'1 thread CPU µs':>16s} {'wall µs':>9s} {'4 threads CPU µs':>17s} {'wall µs':>9s}")
        for label, make in backends:
            cpu1, wall1 = _limiter_cost(make(), calls, 1)
            cpu4, wall4 = _limiter_cost(make(), calls, 4)
            print(f"{label:14s} {cpu1:16.1f} {wall1:9.1f} {cpu4:17.1f} {wall4:9.1f}")
        if not url:
            print("redis          (redis-server not installed: skipped)")
        print("\nstateless task with the test provider (fsync off), CPU µs per task")
        tasks = max(200, calls // 5)
        for label, make in backends:
            box = tmp / label.replace(" ", "_")
            print(f"{label:14s} {_task_cost(box, make(), tasks):10.1f}")
        print("\npyrate-limiter SQLiteBucket (file lock), CPU µs per acquisition")
        for weight in (1, 1000):
            print(f"weight {weight:<7d} {_pyrate(tmp, max(50, calls // 20), weight):10.1f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=2000)
    limits_section(ap.parse_args().calls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
