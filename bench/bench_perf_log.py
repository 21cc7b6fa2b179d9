#!/usr/bin/env python3
"""Performance-log append cost at 1k and at 100k records (ai_workers.md Part 1: the cost of an
append must not grow with the log). Prints appends per second; no assertions.

    python bench/bench_perf_log.py [--appends N] [--sizes 1000,100000]

For each size the log is pre-filled with that many realistic stateless-task entries (written
directly, in the same layout the log writes), then N entries are appended through
``PerformanceLog.append`` (the cross-process lock, the 4-byte tail check, one in-place write) with
and without ``fsync``. Also shown: how long a new ``AIWorkerManager`` takes to load the log and
rebuild every summary from it (what a fresh CLI run pays once).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nslang.workers import AIWorkerManager  # noqa: E402
from nslang.workers.perflog import PERFORMANCE_FILE, LogEntry, PerformanceLog  # noqa: E402

DEF_ID = "5f0c8f4e-3b7a-4c1e-9a55-2f7d7c1b9e01"


def entry(i: int) -> dict[str, Any]:
    iid = f"stateless-{uuid.UUID(int=i)}"
    ts = "2025-01-01T10:00:00.123456Z"
    return {
        "entry_kind": "stateless_task", "instance_id": iid, "definition_id": DEF_ID, "creation_timestamp": ts,
        "retirement_timestamp": ts, "final_status": "retired_completed", "retirement_reason": "stateless task",
        "session_token_usage": {"input_tokens": 12, "output_tokens": 40, "total_tokens": 52},
        "initial_file_contexts": [],
        "performance_records": [{
            "task_id": str(uuid.UUID(int=i + 1)), "instance_id": iid, "definition_id": DEF_ID,
            "timestamp_start": ts, "timestamp_end": ts, "duration_ms": 420, "success": True,
            "input_context": {"prompt_char_length": 120, "message_count": 1},
            "llm_metrics": {"input_tokens": 12, "output_tokens": 40, "total_tokens": 52, "finish_reason": "stop",
                            "model_used_at_call": "test"},
            "cost_incurred": 0.00012, "output_summary": "x" * 200, "error_details": "", "supervisor_feedback": None,
        }],
    }


def prefill(path: Path, n: int) -> None:
    lines = (json.dumps(entry(i), separators=(",", ":")) for i in range(n))
    path.write_text("[\n" + ",\n".join(lines) + "\n]\n")


def measure(size: int, appends: int, durable: bool) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / PERFORMANCE_FILE
        prefill(path, size)
        log = PerformanceLog(path, durable=durable)
        count = 0

        def on_entry(_e: LogEntry) -> None:
            nonlocal count
            count += 1

        log.sync(lambda: None, on_entry)  # the one-time full read, outside the timing
        t0 = time.perf_counter()
        for i in range(appends):
            log.append(entry(size + i), lambda: None, on_entry)
        dt = time.perf_counter() - t0
        assert count == size + appends
        file_size = path.stat().st_size
        t1 = time.perf_counter()
        m = AIWorkerManager(tmp)
        m.reload_performance_data()
        load = time.perf_counter() - t1
    return appends / dt, load, file_size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--appends", type=int, default=2000)
    ap.add_argument("--sizes", default="1000,100000")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'records':>9} {'file MB':>8} {'appends/s fsync':>16} {'appends/s no fsync':>19} {'load+rebuild s':>15}")
    for size in sizes:
        rate_durable, _, _ = measure(size, args.appends, True)
        rate_fast, load, file_size = measure(size, args.appends, False)
        print(f"{size:>9,} {file_size / 1e6:>8.1f} {rate_durable:>16,.0f} {rate_fast:>19,.0f} {load:>15.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
