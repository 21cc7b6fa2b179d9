"""Every HTTP provider against a real HTTP server on 127.0.0.1 answering with its documented JSON:
request body and headers, reply, usage and cost in the performance record, conversations, retries,
timeouts and errors; the API key never shows."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from llm_helpers import KEY, SPECS, Spec, ToolCaller, ns_args, scan_for_key
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from nslang.errors import LLMError, LLMHTTPError, NSRuntimeError
from nslang.llm.base import LLMTimeoutError
from nslang.workers import AIWorkerManager

pytestmark = pytest.mark.parametrize("spec", list(SPECS.values()), ids=list(SPECS))


def _bodies(server: HTTPServer) -> list[dict[str, Any]]:
    return [json.loads(req.get_data()) for req, _ in server.log]


def _ok(server: HTTPServer, spec: Spec, text: str = "Paris.", tin: int = 11, tout: int = 7) -> None:
    server.expect_oneshot_request(spec.path, method="POST").respond_with_json(spec.ok(text, tin, tout))


def _fail(server: HTTPServer, spec: Spec, status: int, message: str, headers: dict[str, str] | None = None,
          kind: str = "rate_limit_error") -> None:
    server.expect_oneshot_request(spec.path, method="POST").respond_with_json(
        spec.err(message, kind), status=status, headers=headers)


def test_stateless_task_request_reply_usage_and_cost(spec: Spec, server: HTTPServer, manager: AIWorkerManager,
                                                      sandbox: Path) -> None:
    call = ToolCaller(sandbox, manager)
    top_p = None if spec.provider == "anthropic" else 0.9  # Claude refuses temperature with top_p (issue 14)
    sampling = {"temperature": 0.25} if top_p is None else {"temperature": 0.25, "top_p": top_p}
    call("AIWorkerDefinition.Add", **spec.definition(server, "w", **sampling, max_tokens=64,
                                                     system_prompt="Be terse.", **spec.extra))
    _ok(server, spec, "Paris.", 11, 7)
    out = call("AIWorker.ExecuteStatelessTask", "w", "Capital of France?")
    assert out["output"] == "Paris."
    assert (out["input_tokens"], out["output_tokens"]) == (11, 7)
    assert out["cost"] == pytest.approx(11 * 0.001 + 7 * 0.002)
    # the request: path, auth headers, model, turns (system prompt first), parameters, pass-through key
    (req, _), = server.log
    assert req.path == spec.path and req.method == "POST"
    assert req.headers["Content-Type"] == "application/json"
    spec.auth(req.headers)
    assert KEY not in req.url
    body = json.loads(req.get_data())
    if spec.provider != "google":
        assert body["model"] == spec.model
    if spec.provider == "ollama":
        assert body["stream"] is False
    assert spec.turns(body) == [("system", "Be terse."), ("user", "Capital of France?")]
    assert spec.params(body) == (0.25, top_p, 64, next(iter(spec.extra.values())))
    for nslang_key in ("system_prompt", "retry_backoff_s", "base_url", "max_retries", "timeout_s"):
        assert nslang_key not in json.dumps(body)
    # the performance record and the summary
    rec, = manager.get_performance_records("w")
    assert rec.success and rec.output_summary == "Paris."
    assert rec.llm_metrics["input_tokens"] == 11 and rec.llm_metrics["output_tokens"] == 7
    assert rec.llm_metrics["finish_reason"] == "stop"
    assert rec.llm_metrics["model_used_at_call"] == spec.reported_model
    assert "estimated" not in rec.llm_metrics
    assert rec.cost_incurred == pytest.approx(0.025)
    summary = call("AIWorker.GetPerformanceSummary", "w")
    assert summary["total_tokens_processed"] == 18 and summary["total_cost_incurred"] == pytest.approx(0.025)


def test_two_turn_chat_sends_the_whole_history(spec: Spec, server: HTTPServer, manager: AIWorkerManager,
                                               sandbox: Path) -> None:
    call = ToolCaller(sandbox, manager)
    call("AIWorkerDefinition.Add", **spec.definition(server, "w", system_prompt="You are a tutor."))
    iid = call("AIWorkerInstance.Spawn", "w")["instance_id"]
    _ok(server, spec, "A worker runs tasks.", 20, 5)
    _ok(server, spec, "An instance is one conversation.", 31, 6)
    assert call("AIWorkerInstance.Chat", iid, "What is a worker?") == "A worker runs tasks."
    assert call("AIWorkerInstance.Chat", iid, "And an instance?") == "An instance is one conversation."
    first, second = _bodies(server)
    assert spec.turns(first) == [("system", "You are a tutor."), ("user", "What is a worker?")]
    assert spec.turns(second) == [("system", "You are a tutor."), ("user", "What is a worker?"),
                                  ("assistant", "A worker runs tasks."), ("user", "And an instance?")]
    inst = call("AIWorkerInstance.Get", iid)
    assert inst["session_token_usage"] == {"input_tokens": 51, "output_tokens": 11, "total_tokens": 62}
    assert len(call("AIWorkerInstance.GetHistory", iid)) == 4
    recs = manager.get_performance_records("w")
    assert [r.llm_metrics["input_tokens"] for r in recs] == [20, 31]
    assert sum(r.cost_incurred for r in recs) == pytest.approx(51 * 0.001 + 11 * 0.002)


def test_history_is_bounded_by_max_history_turns(spec: Spec, server: HTTPServer, manager: AIWorkerManager) -> None:
    manager.add_definition(spec.definition(server, "w", system_prompt="S", max_history_turns=1))
    iid = manager.spawn_instance("w").instance_id
    for i in range(3):
        _ok(server, spec, f"answer {i}")
        manager.chat(iid, f"question {i}")
    last = _bodies(server)[-1]
    # policy: the system prompt, the last N exchanges, the new turn
    assert spec.turns(last) == [("system", "S"), ("user", "question 1"), ("assistant", "answer 1"),
                                ("user", "question 2")]
    assert len(manager.get_history(iid)) == 6  # the instance still keeps everything


def test_429_with_retry_after_is_honoured(spec: Spec, server: HTTPServer, manager: AIWorkerManager,
                                          sleeps: list[float]) -> None:
    manager.add_definition(spec.definition(server, "w"))
    _fail(server, spec, 429, "Rate limit reached, slow down", {"Retry-After": "2"})
    _ok(server, spec, "after the wait")
    assert manager.execute_stateless_task("w", "hi").output == "after the wait"
    assert sleeps == [2.0]
    assert len(server.log) == 2


def test_500_then_success_backs_off(spec: Spec, server: HTTPServer, manager: AIWorkerManager,
                                    sleeps: list[float]) -> None:
    manager.add_definition(spec.definition(server, "w", retry_backoff_s=0.2))
    _fail(server, spec, 500, "internal error", kind="api_error")
    _fail(server, spec, 503, "overloaded", kind="overloaded_error")
    _ok(server, spec, "third time lucky", 3, 3)
    r = manager.execute_stateless_task("w", "hi")
    assert r.output == "third time lucky" and r.record.success
    assert len(server.log) == 3
    # exponential backoff with up to 25 % jitter: ~0.2 s, then ~0.4 s
    assert len(sleeps) == 2
    assert 0.15 <= sleeps[0] <= 0.2 and 0.3 <= sleeps[1] <= 0.4


def test_retries_are_bounded_by_max_retries(spec: Spec, server: HTTPServer, manager: AIWorkerManager,
                                            sleeps: list[float]) -> None:
    manager.add_definition(spec.definition(server, "w", max_retries=1))
    for _ in range(3):
        _fail(server, spec, 502, "bad gateway", kind="api_error")
    with pytest.raises(LLMHTTPError) as ei:
        manager.execute_stateless_task("w", "hi")
    e = ei.value
    assert e.code == 16 and e.status == 502 and e.provider == spec.provider
    assert "bad gateway" in e.body and "HTTP 502" in e.message and "gave up after 2 attempts" in e.message
    assert len(server.log) == 2 and len(sleeps) == 1
    rec, = manager.get_performance_records("w")
    assert not rec.success and "HTTP 502" in rec.error_details


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_fail_at_once_and_never_show_the_key(spec: Spec, status: int, server: HTTPServer,
                                                           manager: AIWorkerManager, sandbox: Path,
                                                           sleeps: list[float],
                                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    manager.add_definition(spec.definition(server, "w"))
    echoed = KEY if spec.keyed else "(none)"  # a provider echoing the key it was sent
    _fail(server, spec, status, f"Incorrect API key provided: {echoed}. Check your key.", kind="authentication_error")
    with pytest.raises(LLMHTTPError) as ei:
        manager.execute_stateless_task("w", "hi")
    e = ei.value
    assert (e.status, e.provider, e.code) == (status, spec.provider, 16)
    assert f"HTTP {status}" in e.message and "Incorrect API key provided" in e.message
    assert f"provider '{spec.provider}'" in e.message and spec.model in e.message
    assert len(server.log) == 1 and sleeps == []
    records = manager.get_performance_records("w")
    assert len(records) == 1 and not records[0].success
    scan_for_key(e, e.message, e.body, e.__cause__, records[0].model_dump_json(), caplog.text, paths=[sandbox])


def test_connection_refused(spec: Spec, server: HTTPServer, manager: AIWorkerManager, closed_port: int,
                            sleeps: list[float]) -> None:
    d = spec.definition(server, "w", max_retries=2)
    d["base_config"]["base_url"] = f"http://127.0.0.1:{closed_port}" + spec.root.rstrip("/")
    manager.add_definition(d)
    with pytest.raises(LLMError) as ei:
        manager.execute_stateless_task("w", "hi")
    e = ei.value
    assert not isinstance(e, LLMHTTPError) and e.code == 16
    assert "connection refused" in e.message and f"127.0.0.1:{closed_port}" in e.message
    assert "gave up after 3 attempts" in e.message
    assert len(sleeps) == 2
    scan_for_key(e, e.message)


def test_slow_server_times_out(spec: Spec, server: HTTPServer, manager: AIWorkerManager,
                               sleeps: list[float]) -> None:
    release = threading.Event()

    def slow(request: Request) -> Response:
        release.wait(2.0)
        return Response(json.dumps(spec.ok("too late", 1, 1)), content_type="application/json")

    server.expect_request(spec.path, method="POST").respond_with_handler(slow)
    manager.add_definition(spec.definition(server, "w", timeout_s=0.25, max_retries=1))
    t0 = time.perf_counter()
    with pytest.raises(LLMTimeoutError) as ei:
        manager.execute_stateless_task("w", "hi")
    elapsed = time.perf_counter() - t0
    assert ei.value.code == 31
    assert "timeout_s=0.25" in ei.value.message and "gave up after 2 attempts" in ei.value.message
    assert 0.45 <= elapsed < 1.5  # two attempts of 0.25 s, not the server's 2 s
    rec, = manager.get_performance_records("w")
    assert not rec.success and "timeout_s=0.25" in rec.error_details
    release.set()  # let the server's handlers finish before the next test uses the server
    deadline = time.monotonic() + 5
    while len(server.log) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.mark.parametrize("payload", ["this is not JSON", '{"unexpected": true}', '{"choices": 5}'])
def test_malformed_body_is_a_clear_error(spec: Spec, payload: str, server: HTTPServer, manager: AIWorkerManager,
                                         sleeps: list[float]) -> None:
    server.expect_request(spec.path, method="POST").respond_with_data(payload, content_type="application/json")
    manager.add_definition(spec.definition(server, "w"))
    with pytest.raises(NSRuntimeError) as ei:
        manager.execute_stateless_task("w", "hi")
    e = ei.value
    assert e.code == 16
    assert "malformed response" in e.message or "no choices" in e.message or "no candidates" in e.message \
        or "empty reply" in e.message or "no message" in e.message
    assert len(server.log) == 1 and sleeps == []


def test_retry_after_too_long_is_not_waited_for(spec: Spec, server: HTTPServer, manager: AIWorkerManager,
                                                sleeps: list[float]) -> None:
    manager.add_definition(spec.definition(server, "w"))
    _fail(server, spec, 429, "daily quota exhausted", {"Retry-After": "3600"})
    with pytest.raises(LLMHTTPError) as ei:
        manager.execute_stateless_task("w", "hi")
    assert ei.value.status == 429 and "3600" in ei.value.message and "daily quota exhausted" in ei.value.message
    assert sleeps == [] and len(server.log) == 1


def test_ask_statement_and_chat_through_the_interpreter(spec: Spec, server: HTTPServer, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from nslang import Interpreter

    if spec.keyed:
        monkeypatch.setenv(spec.env_var, KEY)
    _ok(server, spec, "one", 2, 1)
    _ok(server, spec, "two", 4, 1)
    _ok(server, spec, "three", 8, 1)
    src = f"""
func main() means
  call tool.AIWorkerDefinition.Add({ns_args(spec.definition(server, "w"))})
  ask "w", "first" into a
  set id = tool.AIWorkerInstance.Spawn("w")["instance_id"]
  ask id, "second" into b
  ask id, "third" into c
  emit a + " " + b + " " + c
  emit tool.AIWorkerInstance.Get(id)["session_token_usage"]["input_tokens"]
endfunc
"""
    out = io.StringIO()
    with Interpreter(sandbox_dir=tmp_path / "sb", stdout=out) as interp:
        interp.load(src)
        interp.run()
    assert out.getvalue().splitlines() == ["one two three", "12"]
    assert spec.turns(_bodies(server)[2]) == [("user", "second"), ("assistant", "two"), ("user", "third")]
