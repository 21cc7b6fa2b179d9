"""Tool calling against every HTTP provider (issue 12): a loopback server answers in the provider's
documented tool-call shapes (OpenAI Chat Completions ``tool_calls`` with JSON-string arguments and
``role: "tool"`` results; Anthropic ``tool_use`` / ``tool_result`` blocks; Gemini ``functionCall`` /
``functionResponse`` parts with finish reason ``STOP``; Ollama ``tool_calls`` with object arguments).

Each test runs the loop as a script does, through ``tool.AIWorker.ExecuteStatelessTask`` on a real
:class:`~nslang.Interpreter`, and checks the requests the provider received, the result map, the
files in the sandbox and the performance record."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from llm_helpers import ENV, KEY, SPECS, Spec, scan_for_key
from pytest_httpserver import HTTPServer

from nslang import Interpreter
from nslang.errors import ErrorCode, NSRuntimeError
from nslang.workers import agent as agent_mod

pytestmark = pytest.mark.parametrize("spec", list(SPECS.values()), ids=list(SPECS))

TIN, TOUT = 20, 5  # usage every reply reports


# ----------------------------------------------------------------------------- documented shapes


def tool_reply(spec: Spec, calls: list[tuple[str, Any]], text: str = "") -> dict[str, Any]:
    """A reply asking for ``calls`` [(wire name, arguments: a dict, or a raw string)] in ``spec``'s shape."""
    p = spec.provider
    if p in ("openai", "local"):
        items = [{"id": f"call_{i}", "type": "function",
                  "function": {"name": n, "arguments": a if isinstance(a, str) else json.dumps(a)}}
                 for i, (n, a) in enumerate(calls)]
        return {"id": "chatcmpl-2", "object": "chat.completion", "created": 1735689600,
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text or None, "refusal": None,
                                                     "tool_calls": items},
                             "logprobs": None, "finish_reason": "tool_calls"}],
                "usage": {"prompt_tokens": TIN, "completion_tokens": TOUT, "total_tokens": TIN + TOUT}}
    if p == "anthropic":
        blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        blocks += [{"type": "tool_use", "id": f"toolu_0{i}", "name": n, "input": a} for i, (n, a) in enumerate(calls)]
        return {"id": "msg_02", "type": "message", "role": "assistant", "model": "claude-3-5-haiku-20241022",
                "content": blocks, "stop_reason": "tool_use", "stop_sequence": None,
                "usage": {"input_tokens": TIN, "output_tokens": TOUT}}
    if p == "google":
        parts: list[dict[str, Any]] = [{"text": text}] if text else []
        parts += [{"functionCall": {"name": n, "args": a}} for n, a in calls]
        return {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": TIN, "candidatesTokenCount": TOUT,
                                  "totalTokenCount": TIN + TOUT},
                "modelVersion": "gemini-2.0-flash-001"}
    return {"model": "llama3.2", "created_at": "2025-01-01T00:00:00.000000Z",
            "message": {"role": "assistant", "content": text,
                        "tool_calls": [{"function": {"name": n, "arguments": a}} for n, a in calls]},
            "done": True, "done_reason": "stop", "prompt_eval_count": TIN, "eval_count": TOUT}


def declared(spec: Spec, body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Tool name → parameters schema, as the request declared them."""
    if spec.provider == "anthropic":
        return {t["name"]: t["input_schema"] for t in body["tools"]}
    if spec.provider == "google":
        (entry,) = body["tools"]
        return {d["name"]: d["parameters"] for d in entry["functionDeclarations"]}
    assert all(t["type"] == "function" for t in body["tools"])
    return {t["function"]["name"]: t["function"]["parameters"] for t in body["tools"]}


def results_sent(spec: Spec, body: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """The tool results a request carries: (tool name or call id, content, is_error or None)."""
    p = spec.provider
    if p in ("openai", "local"):
        return [(m["tool_call_id"], m["content"], None) for m in body["messages"] if m["role"] == "tool"]
    if p == "anthropic":
        return [(b["tool_use_id"], b["content"], b["is_error"]) for m in body["messages"]
                if isinstance(m["content"], list) for b in m["content"] if b["type"] == "tool_result"]
    if p == "google":
        out = []
        for c in body["contents"]:
            for part in c["parts"]:
                if "functionResponse" in part:
                    r = part["functionResponse"]
                    assert c["role"] == "user"
                    err = "error" in r["response"]
                    out.append((r["name"], r["response"]["error" if err else "result"], err))
        return out
    return [(m["tool_name"], m["content"], None) for m in body["messages"] if m["role"] == "tool"]


def calls_echoed(spec: Spec, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The assistant tool calls a request sends back: (name, arguments)."""
    p = spec.provider
    if p in ("openai", "local"):
        return [(c["function"]["name"], json.loads(c["function"]["arguments"])) for m in body["messages"]
                if m["role"] == "assistant" for c in m.get("tool_calls", [])]
    if p == "anthropic":
        return [(b["name"], b["input"]) for m in body["messages"] if m["role"] == "assistant"
                and isinstance(m["content"], list) for b in m["content"] if b["type"] == "tool_use"]
    if p == "google":
        return [(part["functionCall"]["name"], part["functionCall"]["args"]) for c in body["contents"]
                if c["role"] == "model" for part in c["parts"] if "functionCall" in part]
    return [(c["function"]["name"], c["function"]["arguments"]) for m in body["messages"]
            if m["role"] == "assistant" for c in m.get("tool_calls", [])]


def ids(spec: Spec, n: int) -> list[str]:
    """The ids (or, for Gemini and Ollama, the names) that results answer, for calls 0..n-1."""
    return [{"anthropic": f"toolu_0{i}"}.get(spec.provider, f"call_{i}") for i in range(n)]


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
def host(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> Interpreter:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    sandbox.mkdir(parents=True, exist_ok=True)
    (sandbox / "a.txt").write_text("alpha text", encoding="utf-8")
    (sandbox / "b.txt").write_text("beta text", encoding="utf-8")
    interp = Interpreter(sandbox_dir=sandbox, load_stdlib=False)
    yield interp
    interp.close()


def add(host: Interpreter, spec: Spec, server: HTTPServer, **fields: Any) -> None:
    d = spec.definition(server, "w")
    d.update(fields)
    host.invoke_tool(host.resolve_tool("AIWorkerDefinition.Add"), [], d)


def task(host: Interpreter, **named: Any) -> dict[str, Any]:
    named.setdefault("name", "w")
    named.setdefault("prompt", "Summarize the files.")
    result: dict[str, Any] = host.invoke_tool(host.resolve_tool("AIWorker.ExecuteStatelessTask"), [], named)
    return result


def reply(server: HTTPServer, spec: Spec, body: dict[str, Any]) -> None:
    server.expect_oneshot_request(spec.path, method="POST").respond_with_json(body)


def bodies(server: HTTPServer) -> list[dict[str, Any]]:
    return [json.loads(req.get_data()) for req, _ in server.log]


def record(host: Interpreter) -> dict[str, Any]:
    (rec,) = host.workers.get_performance_records("w")
    return rec.model_dump(mode="json")


# ----------------------------------------------------------------------------- the tests


def test_one_call(spec: Spec, server: HTTPServer, host: Interpreter, sandbox: Path) -> None:
    add(host, spec, server)
    reply(server, spec, tool_reply(spec, [("fs_Read", {"filepath": "a.txt"})]))
    reply(server, spec, spec.ok("It says alpha.", 30, 4))
    r = task(host, tools=["tool.fs.Read"])
    assert r["output"] == "It says alpha."
    assert r["iterations"] == 2 and r["finish_reason"] == "stop"
    (c,) = r["tool_calls"]
    assert (c["name"], c["arguments"], c["ok"], c["result"], c["iteration"]) == (
        "fs.Read", {"filepath": "a.txt"}, True, "alpha text", 1)
    # tokens and cost summed over both model calls
    assert (r["input_tokens"], r["output_tokens"]) == (TIN + 30, TOUT + 4)
    assert r["cost"] == pytest.approx((TIN + 30) * 0.001 + (TOUT + 4) * 0.002)
    first, second = bodies(server)
    # the declaration: wire name, JSON Schema from the ToolSpec
    schema = declared(spec, first)["fs_Read"]
    assert schema["type"] == "object" and schema["required"] == ["filepath"]
    assert schema["properties"]["filepath"]["type"] == "string"
    if spec.provider in ("openai", "local"):
        assert first["tool_choice"] == "auto"
    # the follow-up: the call echoed back, its result as a tool result (data, not instructions)
    assert calls_echoed(spec, second) == [("fs_Read", {"filepath": "a.txt"})]
    answered = ids(spec, 1) if spec.provider in ("openai", "local", "anthropic") else ["fs_Read"]
    assert results_sent(spec, second) == [(answered[0], "alpha text", None if spec.provider in (
        "openai", "local", "ollama") else False)]
    rec = record(host)
    m = rec["llm_metrics"]
    assert rec["success"] is True
    assert (m["input_tokens"], m["output_tokens"], m["iterations"], m["tool_call_count"]) == (
        TIN + 30, TOUT + 4, 2, 1)
    assert [s["kind"] for s in m["steps"]] == ["model", "tool", "model"]
    scan_for_key(r, rec, paths=[sandbox])


def test_several_calls_in_one_turn(spec: Spec, server: HTTPServer, host: Interpreter) -> None:
    add(host, spec, server)
    reply(server, spec, tool_reply(spec, [("fs_Read", {"filepath": "a.txt"}), ("fs_Read", {"filepath": "b.txt"})],
                                   text="Reading both."))
    reply(server, spec, spec.ok("Both read.", 40, 3))
    r = task(host, tools=["fs.Read"])
    assert r["output"] == "Both read." and r["iterations"] == 2
    assert [(c["arguments"]["filepath"], c["result"]) for c in r["tool_calls"]] == [
        ("a.txt", "alpha text"), ("b.txt", "beta text")]
    second = bodies(server)[1]
    assert [content for _, content, _ in results_sent(spec, second)] == ["alpha text", "beta text"]
    if spec.provider == "anthropic":  # both results in one user message, in order
        assert second["messages"][-1]["role"] == "user" and len(second["messages"][-1]["content"]) == 2
    assert (r["input_tokens"], r["output_tokens"]) == (TIN + 40, TOUT + 3)


def test_malformed_arguments_are_an_error_result(spec: Spec, server: HTTPServer, host: Interpreter) -> None:
    add(host, spec, server)
    reply(server, spec, tool_reply(spec, [("fs_Read", '{"filepath": "a.txt"'), ("fs_Read", {"filepath": 7})]))
    reply(server, spec, spec.ok("Sorry.", 30, 2))
    r = task(host, tools=["fs.Read"])  # no script error
    assert r["output"] == "Sorry."
    bad_json, bad_type = r["tool_calls"]
    assert bad_json["ok"] is False and "not valid JSON" in bad_json["error"]
    assert bad_type["ok"] is False and "invalid arguments" in bad_type["error"] and "must be a string" in \
        bad_type["error"]
    sent = results_sent(spec, bodies(server)[1])
    assert "not valid JSON" in sent[0][1] and "must be a string" in sent[1][1]
    if spec.provider in ("anthropic", "google"):
        assert [e for _, _, e in sent] == [True, True]


def test_unknown_tool(spec: Spec, server: HTTPServer, host: Interpreter, sandbox: Path) -> None:
    add(host, spec, server)
    reply(server, spec, tool_reply(spec, [("shell_Exec", {"cmd": "rm -rf /"}), ("fs_Write", {"filepath": "x",
                                                                                          "content": "y"})]))
    reply(server, spec, spec.ok("OK.", 30, 2))
    r = task(host, tools=["fs.Read"])
    assert [(c["name"], c["ok"]) for c in r["tool_calls"]] == [("shell_Exec", False), ("fs_Write", False)]
    assert all("not available to this task" in c["error"] for c in r["tool_calls"])
    assert not (sandbox / "x").exists()
    assert list(declared(spec, bodies(server)[0])) == ["fs_Read"]


def test_denied_tool(spec: Spec, server: HTTPServer, host: Interpreter) -> None:
    add(host, spec, server, tool_allowlist=["fs.*"], tool_denylist=["tool.FS.Read"])
    reply(server, spec, tool_reply(spec, [("fs_Read", {"filepath": "a.txt"}), ("fs_Stat", {"path": "a.txt"})]))
    reply(server, spec, spec.ok("Done.", 30, 2))
    r = task(host, tools=["fs.Read", "fs.Stat", "str.Length"])  # str.Length: not in the allowlist
    read, stat = r["tool_calls"]
    assert read["ok"] is False and "not available" in read["error"]
    assert stat["ok"] is True and json.loads(stat["result"])["size_bytes"] == len("alpha text")
    assert list(declared(spec, bodies(server)[0])) == ["fs_Stat"]


def test_approval_refused(spec: Spec, server: HTTPServer, host: Interpreter, sandbox: Path) -> None:
    asked: list[Any] = []
    host.approve = lambda req: asked.append(req) or False
    add(host, spec, server)
    reply(server, spec, tool_reply(spec, [("fs_Write", {"filepath": "summary.txt", "content": "S"})]))
    reply(server, spec, spec.ok("I could not write it.", 30, 2))
    r = task(host, tools=["fs.Write"])
    (c,) = r["tool_calls"]
    assert c["ok"] is False and "not approved" in c["error"]
    assert not (sandbox / "summary.txt").exists()
    (req,) = asked
    assert (req.tool, req.arguments, req.worker) == ("fs.Write", {"filepath": "summary.txt", "content": "S"}, "w")
    (answer,) = results_sent(spec, bodies(server)[1])
    assert "not approved" in answer[1]


def test_max_iterations_reached(spec: Spec, server: HTTPServer, host: Interpreter) -> None:
    add(host, spec, server)
    for _ in range(2):
        reply(server, spec, tool_reply(spec, [("fs_Read", {"filepath": "a.txt"})]))
    with pytest.raises(NSRuntimeError) as ei:
        task(host, tools=["fs.Read"], max_iterations=2)
    assert ei.value.code == ErrorCode.RESOURCE_EXHAUSTION and ei.value.catchable
    assert "max_iterations=2" in ei.value.message
    assert len(server.log) == 2
    rec = record(host)
    m = rec["llm_metrics"]
    assert rec["success"] is False and "max_iterations" in rec["error_details"]
    assert (m["iterations"], m["tool_call_count"], m["input_tokens"], m["output_tokens"]) == (2, 2, 2 * TIN, 2 * TOUT)
    assert rec["cost_incurred"] == pytest.approx(2 * TIN * 0.001 + 2 * TOUT * 0.002)
    assert [s.get("ok") for s in m["steps"] if s["kind"] == "tool"] == [True, False]  # the 2nd call: not run


def test_timeout_reached(spec: Spec, server: HTTPServer, host: Interpreter, monkeypatch: pytest.MonkeyPatch) -> None:
    skew = [0.0]
    monkeypatch.setattr(agent_mod, "clock", lambda: time.monotonic() + skew[0])

    @host.tool("host", "Slow")
    def slow() -> str:
        """Takes ten (simulated) seconds."""
        skew[0] += 10
        return "done"

    add(host, spec, server)
    reply(server, spec, tool_reply(spec, [("host_Slow", {})]))
    with pytest.raises(NSRuntimeError) as ei:
        task(host, tools=["host.Slow"], timeout_s=5)
    assert ei.value.code == ErrorCode.TIMEOUT and ei.value.catchable
    assert "timeout_s=5" in ei.value.message
    assert len(server.log) == 1
    rec = record(host)
    assert rec["success"] is False
    assert (rec["llm_metrics"]["iterations"], rec["llm_metrics"]["tool_call_count"]) == (1, 1)
    assert rec["llm_metrics"]["input_tokens"] == TIN


def test_the_key_never_reaches_a_tool_result(spec: Spec, server: HTTPServer, host: Interpreter) -> None:
    """A model asking to read the definitions file gets an error result; the key is in no request."""
    add(host, spec, server)
    reply(server, spec, tool_reply(spec, [("fs_Write", {"filepath": "ai_worker_definitions.json", "content": "[]"}),
                                          ("fs_Read", {"filepath": "ai_worker_definitions.json"})]))
    reply(server, spec, spec.ok("OK.", 30, 2))
    host.approve = lambda req: True
    r = task(host, tools=["fs.Write", "fs.Read"])
    write, read = r["tool_calls"]
    assert write["ok"] is False and "error 11" in write["error"]
    for (req, _) in server.log:
        assert KEY not in req.get_data(as_text=True)
    assert host.workers.get_definition("w").name == "w"  # the file is intact


def test_a_tool_result_holding_the_key_is_redacted(spec: Spec, server: HTTPServer, host: Interpreter,
                                                    sandbox: Path) -> None:
    if not spec.keyed:
        pytest.skip(f"{spec.provider} sends no key")

    @host.tool("host", "Env")
    def env() -> str:
        """A careless host tool that shows the environment."""
        return f"OPENAI_API_KEY={KEY} ANTHROPIC_API_KEY={KEY}"

    add(host, spec, server)
    reply(server, spec, tool_reply(spec, [("host_Env", {})]))
    reply(server, spec, spec.ok("OK.", 30, 2))
    r = task(host, tools=["host.Env"])
    (c,) = r["tool_calls"]
    assert c["ok"] is True and "OPENAI_API_KEY=" in c["result"]
    scan_for_key(r, record(host), paths=[sandbox])
    assert KEY not in server.log[1][0].get_data(as_text=True)
