"""The run's time limit bounds model calls, retries and waits included (issue 10 item 6).

Attack replayed: ``nslang run --timeout 2`` against a server that answers 503 with ``Retry-After``
(or answers too slowly) ran 17.5 s, as each attempt had its own timeout and every wait was slept
in full. Now the call ends at the run's deadline with the run's timeout error (code 31, not
catchable by ``on error``), and the failed call still has its performance record. Each attempt's
whole exchange is bounded by ``timeout_s`` (a server dripping its reply byte by byte), and a reply
body by 32 MiB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_helpers import KEY, SPECS, ns_args
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from nslang.errors import LLMError
from nslang.llm import _http
from nslang.llm.base import LLMTimeoutError
from nslang.workers import AIWorkerManager

REPO = Path(__file__).resolve().parents[2]


def _run(server: HTTPServer, tmp_path: Path, timeout: float,
         **base_config: object) -> tuple[subprocess.CompletedProcess[str], float, Path]:
    d = SPECS["openai"].definition(server, "slow", **base_config)
    script = tmp_path / "slow.ns"
    script.write_text(f"""
func main() means
  call tool.AIWorkerDefinition.Add({ns_args(d)})
  on error do
    emit "caught: " + system_error_message
    clear_error
  endon
  emit tool.AIWorker.ExecuteStatelessTask("slow", "hello")["output"]
endfunc
""")
    sandbox = tmp_path / "sb"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENAI_API_KEY": KEY, "NSLANG_NO_CACHE": "1"}
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "nslang", "run", "--timeout", str(timeout), "--sandbox",
                           str(sandbox), str(script)], capture_output=True, text=True, env=env, timeout=120)
    return proc, time.monotonic() - t0, sandbox


def _records(sandbox: Path) -> list[dict[str, object]]:
    entries = json.loads((sandbox / "ai_worker_performance_data.json").read_text())
    return [r for e in entries for r in e.get("performance_records", [])]


def test_retry_after_waits_end_at_the_run_deadline(server: HTTPServer, tmp_path: Path) -> None:
    server.expect_request("/v1/chat/completions", method="POST").respond_with_response(
        Response(json.dumps({"error": {"message": "overloaded"}}), status=503, headers={"Retry-After": "5"},
                 content_type="application/json"))
    proc, elapsed, sandbox = _run(server, tmp_path, 2, max_retries=5)
    assert proc.returncode == 70, proc.stderr
    assert "error 31 (Timeout): the run exceeded its time limit of 2.0 s" in proc.stderr
    assert "caught" not in proc.stdout  # the run's time limit is not catchable
    assert elapsed < 9  # process start-up included; before the fix: 5 retries x 5 s
    (record,) = _records(sandbox)
    assert record["success"] is False and "HTTP 503" in str(record["error_details"])
    assert KEY not in proc.stdout + proc.stderr


def test_a_slow_server_is_cut_off_at_the_run_deadline(server: HTTPServer, tmp_path: Path) -> None:
    release = threading.Event()

    def slow(request: Request) -> Response:
        release.wait(10)
        return Response(json.dumps(SPECS["openai"].ok("late", 1, 1)), content_type="application/json")

    server.expect_request("/v1/chat/completions", method="POST").respond_with_handler(slow)
    try:
        proc, elapsed, sandbox = _run(server, tmp_path, 2, timeout_s=30)
    finally:
        release.set()
    assert proc.returncode == 70, proc.stderr  # before the fix: the answer after 10 s, exit 0
    assert "error 31 (Timeout): the run exceeded its time limit of 2.0 s" in proc.stderr
    assert elapsed < 9  # process start-up included; the server holds its answer for 10 s
    (record,) = _records(sandbox)
    details = str(record["error_details"])
    assert record["success"] is False
    assert "within" in details and "(the run's remaining time)" in details or "time limit was reached" in details


def test_a_server_dripping_its_reply_is_cut_off_after_timeout_s(server: HTTPServer, manager: AIWorkerManager) -> None:
    body = json.dumps(SPECS["openai"].ok("slow but complete", 1, 1)).encode()

    def drip(request: Request) -> Response:
        def chunks() -> Iterator[bytes]:
            for i in range(0, len(body), 16):  # each read is quick, the whole reply takes seconds
                time.sleep(0.1)
                yield body[i:i + 16]

        return Response(chunks(), content_type="application/json")

    server.expect_request("/v1/chat/completions", method="POST").respond_with_handler(drip)
    manager.add_definition(SPECS["openai"].definition(server, "w", timeout_s=0.5, max_retries=0))
    with pytest.raises(LLMTimeoutError, match="within 0.5 s"):
        manager.execute_stateless_task("w", "hi")


def test_a_huge_reply_is_not_read_into_memory(server: HTTPServer, manager: AIWorkerManager,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_http, "MAX_RESPONSE_BYTES", 4096)
    server.expect_request("/v1/chat/completions", method="POST").respond_with_json(
        SPECS["openai"].ok("x" * 10_000, 1, 1))
    manager.add_definition(SPECS["openai"].definition(server, "w", max_retries=0))
    with pytest.raises(LLMError, match="larger than 4096 bytes"):
        manager.execute_stateless_task("w", "hi")
