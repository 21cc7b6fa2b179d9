#!/usr/bin/env python3
"""One command for every nslang benchmark: ``python bench/run.py [--runs N] [--quick]``.

1. The six shared benchmarks (``../shared/bench``, NeuroScript programs and their plain-Python twins),
   timed by the shared harness in one run, printed as nslang ÷ CPython next to the Go interpreter's
   ratio from ``../shared/bench/README.md`` (lower is better; "beats Go" when below).
2. parse_big again with ``--no-cache`` (a cold parse of the 11,007-line file).
3. The project's own benchmarks, when present: performance-log appends at 1k and 100k records
   (``bench/bench_perf_log.py``) and stateless-task throughput through the worker manager with the
   offline ``test`` provider (``bench/bench_stateless.py``).
4. Worker data at 1k → 100k → 1M records (``bench/bench_log_scale.py``, issue 11 items 5 and 6):
   rebuild and open time, open RSS, ``nslang workers list`` time, CPU per stateless task. It writes
   about 1.3 GB of log into a temporary directory and takes a few minutes; ``--log-sizes`` changes
   the sizes.
5. Rate limits (``bench/bench_limits.py``): the per-call cost of an admission and its settle on each
   backend (no limits, memory, SQLite file, Redis when ``redis-server`` is installed), from one and four
   threads; a stateless task with and without limits; pyrate-limiter's SQLite bucket for comparison.
6. Fan-out (``bench/bench_fanout.py``, issue 13 item 3): ``tool.AIWorker.Map`` of 16 prompts against a
   loopback server answering in 200 ms, one by one and 8 at a time (target: under 0.6 s).

Compare ratios from one run only; the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GO_RATIO = {"startup": 0.25, "fib": 26.2, "loop": 5.3, "strings": 3.3, "collections": 12.6, "parse_big": 5.1}
STARTUP_BAR = 2.0


def _harness(shared: Path, ns_cmd: str, names: list[str], runs: int) -> dict[str, float]:
    env = dict(os.environ, NS_CMD=ns_cmd)
    cmd = [sys.executable, str(shared / "run_bench.py"), "--ns", "--runs", str(runs), *names]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    print(out, end="")
    ratios: dict[str, float] = {}
    current = None
    for line in out.splitlines():
        m = re.match(r"(\w+) \[neuroscript\]", line)
        if m:
            current = m.group(1)
            if "output WRONG" in line:
                print(f"!! {current}: nslang printed the wrong output")
        m = re.search(r"neuroscript/python wall ratio ([0-9.]+)", line)
        if m and current:
            ratios[current] = float(m.group(1))
    return ratios


def log_scale(sizes: str) -> None:
    """Section 4: worker data at scale (issue 11 items 5 and 6)."""
    path = HERE / "bench_log_scale.py"
    if path.is_file():
        print("\n== bench_log_scale.py (issue 11 items 5-6: targets open < 1 s and < 100 MB at 1M records, "
              "workers list < 1 s, ≤ 150 µs CPU per task without fsync)")
        subprocess.run([sys.executable, str(path), "--sizes", sizes], check=False, cwd=ROOT)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="timed runs per benchmark (after one warm-up)")
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "bench", help="shared bench folder")
    ap.add_argument("--quick", action="store_true", help="skip the project's own benchmarks")
    ap.add_argument("--log-sizes", default="1000,100000,1000000", help="log sizes for bench_log_scale.py")
    args = ap.parse_args()
    if not (args.shared / "run_bench.py").is_file():
        print(f"shared benchmarks not found at {args.shared}", file=sys.stderr)
        return 2
    # the installed console script, as users run it (``python -m`` adds runpy's start-up cost)
    script = shutil.which("nslang")
    ns = f"{shlex.quote(script)} run" if script else f"{shlex.quote(sys.executable)} -m nslang run"
    names = list(GO_RATIO)
    ratios = _harness(args.shared, ns, names, args.runs)
    cold = _harness(args.shared, ns + " --no-cache", ["parse_big"], args.runs).get("parse_big")

    print("\nbenchmark     nslang/CPython   Go/CPython   verdict")
    for name in names:
        r = ratios.get(name)
        if r is None:
            print(f"{name:13s} {'n/a':>14s}")
            continue
        bar = STARTUP_BAR if name == "startup" else GO_RATIO[name]
        verdict = ("within 2.0" if r <= bar else "over 2.0") if name == "startup" else \
            ("beats Go" if r < bar else "slower than Go")
        print(f"{name:13s} {r:14.2f} {GO_RATIO[name]:12.2f}   {verdict}")
    if cold is not None:
        verdict = "within 2x Go" if cold <= 2 * GO_RATIO["parse_big"] else "over 2x Go"
        print(f"{'parse_big cold':13s} {cold:14.2f} {GO_RATIO['parse_big']:12.2f}   {verdict} (--no-cache)")

    if not args.quick:
        for script in ("bench_perf_log.py", "bench_stateless.py"):
            path = HERE / script
            if path.is_file():
                print(f"\n== {script}")
                subprocess.run([sys.executable, str(path)], check=False, cwd=ROOT)
        log_scale(args.log_sizes)
        _limits_section()
        _fanout_section()
    return 0


def _limits_section() -> None:
    """Section 4: rate-limit costs per backend (issue 11 item 7)."""
    print("\n== bench_limits.py")
    subprocess.run([sys.executable, str(HERE / "bench_limits.py")], check=False, cwd=ROOT)


def _fanout_section() -> None:
    """Section 6: Map's wall time against a loopback server (issue 13 item 3)."""
    print("\n== bench_fanout.py")
    subprocess.run([sys.executable, str(HERE / "bench_fanout.py")], check=False, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
