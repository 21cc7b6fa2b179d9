#!/usr/bin/env python3
"""Stateless-task throughput through AIWorkerManager with the offline ``test`` provider.
Prints tasks per second; no assertions.

    python bench/bench_stateless.py [--tasks N]

Each task does the whole path: definition look-up, key resolution, model creation, rate-limit
admission, the (instant) model call, the performance record, one in-place append to the
performance log under the cross-process lock, and the summary update. Measured with and without
``fsync``, from one thread and from four, and with a requests-per-minute limit set (so the limiter
runs) that is high enough never to refuse.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nslang.workers import AIWorkerManager  # noqa: E402


def run(tasks: int, threads: int, durable: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        m = AIWorkerManager(tmp, durable=durable)
        m.add_definition({"name": "bench", "provider": "test", "interaction_models": ["stateless_task"],
                          "rate_limits": {"max_requests_per_minute": 10_000_000},
                          "cost_metrics": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}})
        m.execute_stateless_task("bench", "warm up")
        per = tasks // threads

        def work() -> None:
            for i in range(per):
                m.execute_stateless_task("bench", f"summarize item {i} of the benchmark")

        ts = [threading.Thread(target=work) for _ in range(threads)]
        t0 = time.perf_counter()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        dt = time.perf_counter() - t0
        assert m.get_summary("bench").total_tasks_attempted == per * threads + 1
    return per * threads / dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=4000)
    args = ap.parse_args()
    print(f"{'threads':>7} {'fsync':>6} {'tasks/s':>9} {'µs/task':>8}")
    for threads in (1, 4):
        for durable in (True, False):
            rate = run(args.tasks, threads, durable)
            print(f"{threads:>7} {'yes' if durable else 'no':>6} {rate:>9,.0f} {1e6 / rate:>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
