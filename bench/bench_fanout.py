#!/usr/bin/env python3
"""Fan-out wall time: ``tool.AIWorker.Map`` against a loopback OpenAI-compatible server (issue 13 item 3).
Prints seconds; no assertions.

    python bench/bench_fanout.py [--prompts 16] [--concurrency 8] [--latency 0.2]

A threaded HTTP server on 127.0.0.1 answers every ``/v1/chat/completions`` request after ``--latency``
seconds. The same prompts run one by one (``max_concurrency`` 1) and fanned out; the target is 16
prompts at concurrency 8 with 200 ms answers under 0.6 s (3.2 s one by one). Each run goes through
the whole path: HTTP provider, rate-limit admission (a limit high enough never to refuse), record,
performance log append.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nslang import Interpreter  # noqa: E402


def serve(latency: float) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            time.sleep(latency)
            prompt = body["messages"][-1]["content"]
            data = json.dumps({"id": "x", "object": "chat.completion", "model": body["model"],
                               "choices": [{"index": 0, "finish_reason": "stop",
                                            "message": {"role": "assistant", "content": f"ok: {prompt}"}}],
                               "usage": {"prompt_tokens": 5, "completion_tokens": 3}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def run(url: str, prompts: int, concurrency: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        interp = Interpreter(sandbox_dir=tmp, stdout=io.StringIO(), durable=False)
        interp.workers.add_definition({
            "name": "fan", "provider": "openai", "model_name": "m", "interaction_models": ["stateless_task"],
            "auth": {"method": "inline", "value": "sk-bench-0000"},
            "base_config": {"base_url": url, "max_retries": 0},
            "rate_limits": {"max_requests_per_minute": 100_000}})
        mapper = interp.resolve_tool("AIWorker.Map")
        interp.invoke_tool(mapper, ["fan", ["warm up"]], {"max_concurrency": 1})
        t0 = time.perf_counter()
        results = interp.invoke_tool(mapper, ["fan", [f"item {i}" for i in range(prompts)]],
                                     {"max_concurrency": concurrency})
        dt = time.perf_counter() - t0
        assert [r["output"] for r in results] == [f"ok: item {i}" for i in range(prompts)]
        interp.close()
    return dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--latency", type=float, default=0.2)
    args = ap.parse_args()
    server = serve(args.latency)
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        print(f"{args.prompts} prompts, server answering in {args.latency * 1000:.0f} ms")
        print(f"{'max_concurrency':>15} {'wall s':>8}")
        for n in (1, args.concurrency):
            print(f"{n:>15} {run(url, args.prompts, n):>8.3f}")
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
