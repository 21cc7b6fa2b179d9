#!/usr/bin/env python3
"""Worker data at 1k → 100k → 1M performance records (issue 11 items 5 and 6). Prints figures; no
assertions.

    python bench/bench_log_scale.py [--sizes 1000,100000,1000000] [--tasks 2000]

For each size a sandbox is filled with one definition and a log of that many realistic
stateless-task entries, the last tenth of them inside the last 24 hours (1M records: 100,000 recent),
written directly in the layout the log writes. Then, each in a fresh process:

* **rebuild**: the first open without a summaries checkpoint (reads the whole log once, writes
  ``ai_worker_summaries.json``). Its clock is set two days ahead, so the rate limiter's seeding from
  the log (``RateLimiter.observe``, quadratic past 4,096 recent records, being replaced by the shared
  limits backend) is left out: this column is the log reader and the summaries alone.
* **open**: ``AIWorkerManager(sandbox).list_definitions()`` with the checkpoint: wall time and the
  process's peak RSS (targets: < 1 s and < 100 MB at 1M records).
* **workers list**: ``nslang workers list`` end to end (interpreter start-up included; target < 1 s).
* **task CPU**: CPU time per stateless task with the ``test`` provider after the open, without and
  with ``fsync`` (target ≤ 150 µs without; flat from 1k to 1M).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEF_ID = "5f0c8f4e-3b7a-4c1e-9a55-2f7d7c1b9e01"


def _ts(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


def fill(sandbox: Path, n: int) -> int:
    """Definitions file + a log of ``n`` entries (the last n/10 in the last 24 h); returns log bytes."""
    from nslang.workers import AIWorkerManager

    m = AIWorkerManager(sandbox, durable=False)
    m.add_definition({"definition_id": DEF_ID, "name": "bench", "provider": "test",
                      "interaction_models": ["stateless_task"],
                      "cost_metrics": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}})
    m.close()
    now = time.time()
    recent = n // 10
    old_start, old_step = now - 30 * 86400, (29 * 86400) / max(1, n - recent)
    new_start, new_step = now - 86000, 85000 / max(1, recent)
    template = json.dumps({
        "entry_kind": "stateless_task", "instance_id": "stateless-@IID@", "definition_id": DEF_ID,
        "creation_timestamp": "@TS@", "retirement_timestamp": "@TS@", "final_status": "retired_completed",
        "retirement_reason": "stateless task",
        "session_token_usage": {"input_tokens": 12, "output_tokens": 40, "total_tokens": 52},
        "initial_file_contexts": [],
        "performance_records": [{
            "task_id": "@TID@", "instance_id": "stateless-@IID@", "definition_id": DEF_ID,
            "timestamp_start": "@TS@", "timestamp_end": "@TS@", "duration_ms": 420, "success": True,
            "input_context": {"prompt_char_length": 120, "message_count": 1},
            "llm_metrics": {"input_tokens": 12, "output_tokens": 40, "total_tokens": 52, "finish_reason": "stop",
                            "model_used_at_call": "test"},
            "cost_incurred": 0.000104, "output_summary": "x" * 200, "error_details": "",
            "supervisor_feedback": None}],
    }, separators=(",", ":")).replace("%", "%%")
    template = template.replace("@IID@", "%(iid)s").replace("@TID@", "%(tid)s").replace("@TS@", "%(ts)s")
    path = sandbox / "ai_worker_performance_data.json"
    with open(path, "w") as f:
        f.write("[\n")
        for i in range(n):
            t = old_start + i * old_step if i < n - recent else new_start + (i - n + recent) * new_step
            if i:
                f.write(",\n")
            f.write(template % {"iid": uuid.UUID(int=2 * i), "tid": uuid.UUID(int=2 * i + 1), "ts": _ts(t)})
        f.write("\n]\n")
    return path.stat().st_size


_PROBE = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from nslang.workers import AIWorkerManager
mode, sandbox, tasks = sys.argv[1], sys.argv[2], int(sys.argv[3])
out = {}
if mode == "rebuild":
    m = AIWorkerManager(sandbox, durable=False, clock=lambda: time.time() + 2 * 86400)
    t1 = time.perf_counter()
    m.list_definitions()
    out["rebuild_s"] = time.perf_counter() - t1
else:
    t1 = time.perf_counter()
    m = AIWorkerManager(sandbox, durable=False)
    defs = m.list_definitions()
    out["open_s"] = time.perf_counter() - t1
    out["import_s"] = t1 - t0
    out["tasks_seen"] = defs[0].aggregate_performance_summary.total_tasks_attempted
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for durable in (False, True):
        m._log.durable = durable
        m.execute_stateless_task("bench", "warm up")
        c0 = time.process_time()
        for i in range(tasks):
            m.execute_stateless_task("bench", f"summarize item {i} of the benchmark")
        out["task_us_fsync" if durable else "task_us"] = (time.process_time() - c0) / tasks * 1e6
print(json.dumps(out))
"""


def probe(mode: str, sandbox: Path, tasks: int) -> dict[str, float]:
    r = subprocess.run([sys.executable, "-c", _PROBE, mode, str(sandbox), str(tasks)], capture_output=True,
                       text=True, check=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return json.loads(r.stdout.strip().splitlines()[-1])


def workers_list_s(sandbox: Path) -> float:
    """``nslang workers list`` through the installed console script, as users run it (best of 3)."""
    script = shutil.which("nslang", path=str(Path(sys.executable).parent)) or shutil.which("nslang")
    cmd = [script] if script else [sys.executable, "-m", "nslang"]
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([*cmd, "workers", "list", "--sandbox", str(sandbox)], capture_output=True, check=True,
                       cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,100000,1000000")
    ap.add_argument("--tasks", type=int, default=2000, help="stateless tasks timed per size")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as empty:
        print(f"(nslang workers list on an empty sandbox: {workers_list_s(Path(empty)):.2f} s: start-up and imports)")
    print(f"{'records':>9} {'log MB':>7} {'rebuild s':>10} {'open s':>7} {'open RSS MB':>12} "
          f"{'workers list s':>15} {'task µs CPU':>12} {'with fsync':>11}")
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            sandbox = Path(tmp)
            size = fill(sandbox, n)
            rebuild = probe("rebuild", sandbox, 0)["rebuild_s"]
            listing = workers_list_s(sandbox)
            r = probe("open", sandbox, args.tasks)
            assert r["tasks_seen"] == n, r
            print(f"{n:>9,} {size / 1e6:>7.0f} {rebuild:>10.2f} {r['open_s']:>7.3f} {r['rss_mb']:>12.0f} "
                  f"{listing:>15.2f} {r['task_us']:>12.0f} {r['task_us_fsync']:>11.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
