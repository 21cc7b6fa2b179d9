"""Streaming x tool calling (issues 12 and 14): a streamed reply's tool calls are folded in each wire
format's documented shape, never dropped, so a tool-calling loop works whether its calls stream or
not; the request carries the tool declarations through the one request path (``request_fields`` /
``build``); a refusal inside a loop ends the task with a failed record that keeps what was done.

Stream shapes:

* OpenAI Chat Completions: ``delta.tool_calls`` fragments keyed by ``index``; the first fragment of a
  call has ``id``, ``type`` and ``function.name``, later ones append to ``function.arguments``.
* Anthropic Messages: ``content_block_start`` with a ``tool_use`` block (``input: {}``), then
  ``content_block_delta`` events of type ``input_json_delta`` with ``partial_json``.
* Gemini: ``functionCall`` parts inside the streamed ``GenerateContentResponse`` chunks.
* Ollama: ``message.tool_calls`` in an NDJSON line before the final ``done`` line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from llm_helpers import ENV, KEY, SPECS, Spec, scan_for_key
from pytest_httpserver import HTTPServer
from stream_shapes import CONTENT_TYPES, STREAMS, _sse, stream_path

from nslang import Interpreter
from nslang.errors import ErrorCode, NSRuntimeError
from nslang.llm import anthropic, gemini, ollama, openai
from nslang.llm.base import Message, ModelSettingsError, ProviderConfig
from nslang.llm.messages import ToolDeclaration

PROVIDERS = ["openai", "local", "anthropic", "google", "ollama"]
FACTORIES = {"openai": openai.create_model, "local": openai.create_model, "anthropic": anthropic.create_model,
             "google": gemini.create_model, "ollama": ollama.create_model}
USER = [Message("user", "Read both files.")]
READ = ToolDeclaration("fs_Read", "Read a file.", {"type": "object", "properties": {"filepath": {"type": "string"}},
                                                   "required": ["filepath"]})
CALLS = [("fs_Read", {"filepath": "a.txt"}), ("fs_Read", {"filepath": "dir/b ü.txt"})]


def tool_stream(provider: str, text: str, calls: list[tuple[str, dict[str, Any]]], tin: int = 20,
                tout: int = 5) -> bytes:
    """A streamed reply with ``text`` then ``calls``, in ``provider``'s documented stream shape; each
    call's JSON arguments are cut into fragments of 7 characters where the format fragments them."""
    if provider in ("openai", "local"):
        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            return _sse({"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1735689600,
                         "model": "gpt-4o-mini-2024-07-18",
                         "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]})

        out = [chunk({"role": "assistant", "content": None, "refusal": None})]
        if text:
            out.append(chunk({"content": text}))
        for i, (name, args) in enumerate(calls):
            raw = json.dumps(args, ensure_ascii=False)
            out.append(chunk({"tool_calls": [{"index": i, "id": f"call_{i}", "type": "function",
                                              "function": {"name": name, "arguments": ""}}]}))
            out += [chunk({"tool_calls": [{"index": i, "function": {"arguments": raw[k:k + 7]}}]})
                    for k in range(0, len(raw), 7)]
        out.append(chunk({}, "tool_calls"))
        out.append(_sse({"id": "chatcmpl-9", "object": "chat.completion.chunk", "model": "gpt-4o-mini-2024-07-18",
                         "choices": [], "usage": {"prompt_tokens": tin, "completion_tokens": tout,
                                                  "total_tokens": tin + tout}}))
        return ("".join(out) + "data: [DONE]\n\n").encode()
    if provider == "anthropic":
        out = [_sse({"type": "message_start", "message": {
            "id": "msg_09", "type": "message", "role": "assistant", "model": "claude-haiku-4-5-20251001",
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": tin, "output_tokens": 1}}}, "message_start")]
        index = 0
        if text:
            out += [_sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                         "content_block_start"),
                    _sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
                         "content_block_delta"),
                    _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")]
            index = 1
        for i, (name, args) in enumerate(calls):
            raw = json.dumps(args, ensure_ascii=False)
            out.append(_sse({"type": "content_block_start", "index": index, "content_block": {
                "type": "tool_use", "id": f"toolu_0{i}", "name": name, "input": {}}}, "content_block_start"))
            out.append(_sse({"type": "content_block_delta", "index": index,
                             "delta": {"type": "input_json_delta", "partial_json": ""}}, "content_block_delta"))
            out += [_sse({"type": "content_block_delta", "index": index,
                          "delta": {"type": "input_json_delta", "partial_json": raw[k:k + 7]}}, "content_block_delta")
                    for k in range(0, len(raw), 7)]
            out.append(_sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
            index += 1
        out += [_sse({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                      "usage": {"output_tokens": tout}}, "message_delta"),
                _sse({"type": "message_stop"}, "message_stop")]
        return "".join(out).encode()
    if provider == "google":
        events: list[dict[str, Any]] = []
        if text:
            events.append({"candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}]})
        events += [{"candidates": [{"content": {"parts": [{"functionCall": {"name": n, "args": a}}], "role": "model"},
                                    "index": 0}]} for n, a in calls]
        events[-1]["candidates"][0]["finishReason"] = "STOP"
        events[-1]["usageMetadata"] = {"promptTokenCount": tin, "candidatesTokenCount": tout,
                                       "totalTokenCount": tin + tout}
        return "".join(_sse({**e, "modelVersion": "gemini-2.0-flash-001"}, eol="\r\n") for e in events).encode()
    lines = []
    if text:
        lines.append({"model": "llama3.2", "message": {"role": "assistant", "content": text}, "done": False})
    lines.append({"model": "llama3.2", "message": {"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": n, "arguments": a}} for n, a in calls]}, "done": False})
    lines.append({"model": "llama3.2", "message": {"role": "assistant", "content": ""}, "done": True,
                  "done_reason": "stop", "prompt_eval_count": tin, "eval_count": tout})
    return "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines).encode()


class _Chunks(httpx.SyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks


def _model(provider: str, chunks: list[bytes], **settings: Any) -> tuple[Any, dict[str, Any], list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"content-type": CONTENT_TYPES[provider]}, stream=_Chunks(chunks))

    client = httpx.Client(transport=httpx.MockTransport(handler))
    spec = SPECS[provider]
    cfg = {"base_url": "http://llm.test" + spec.root.rstrip("/"), "retry_backoff_s": 0, **settings}
    model = FACTORIES[provider](ProviderConfig(provider, spec.model, cfg, api_key=KEY if spec.keyed else None,
                                               http_client=lambda: client))
    return model, cfg, seen


# ----------------------------------------------------------------------------- each wire format


@pytest.mark.parametrize("provider", PROVIDERS)
def test_streamed_tool_calls_are_folded_whatever_the_chunking(provider: str) -> None:
    body = tool_stream(provider, "Reading both.", CALLS)
    for chunks in ([body], [bytes([b]) for b in body]):
        model, cfg, seen = _model(provider, chunks)
        pieces: list[str] = []
        r = model.request(USER, cfg, on_token=pieces.append, tools=[READ])
        assert [(c.name, c.arguments, c.error) for c in r.tool_calls] == [(n, a, "") for n, a in CALLS]
        assert r.text == "".join(pieces) == "Reading both."
        assert (r.input_tokens, r.output_tokens) == (20, 5)
        assert r.finish_reason in ("tool_calls", "stop")
        if provider in ("openai", "local"):
            assert [c.id for c in r.tool_calls] == ["call_0", "call_1"]
        elif provider == "anthropic":
            assert [c.id for c in r.tool_calls] == ["toolu_00", "toolu_01"]
    sent = json.loads(seen[0].content)
    assert seen[0].url.path == stream_path(provider, SPECS[provider].path)
    names = json.dumps(sent["tools"])
    assert "fs_Read" in names and "filepath" in names  # the declarations travel with the streamed request too


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_streamed_tool_call_with_broken_arguments_keeps_the_call_with_its_error(provider: str) -> None:
    body = tool_stream(provider, "", [("fs_Read", {"filepath": "a.txt"})])
    body = body.replace(b'txt\\"}', b'txt')  # the closing quote and brace are lost
    model, cfg, _ = _model(provider, [body])
    (call,) = model.request(USER, cfg, on_token=lambda _: None, tools=[READ]).tool_calls
    assert call.name == "fs_Read" and call.arguments is None and "not valid JSON" in call.error


def test_openai_refusal_with_tool_calls_is_not_a_refusal_error() -> None:
    body = tool_stream("openai", "", CALLS[:1]).replace(b'"refusal": null', b'"refusal": ""')
    model, cfg, _ = _model("openai", [body])
    assert len(model.request(USER, cfg, on_token=lambda _: None, tools=[READ]).tool_calls) == 1


# ----------------------------------------------------------------------------- the request path


def test_provider_tools_entries_come_first_and_tool_choice_wins() -> None:
    model, cfg, seen = _model("google", [tool_stream("google", "ok", [])], provider_tools=[{"googleSearch": {}}])
    model.request(USER, cfg, tools=[READ], on_token=lambda _: None)
    sent = json.loads(seen[0].content)
    assert sent["tools"][0] == {"googleSearch": {}} and sent["tools"][1]["functionDeclarations"][0]["name"] == "fs_Read"
    model, cfg, seen = _model("openai", [tool_stream("openai", "ok", [])], tool_choice="required")
    model.request(USER, cfg, tools=[READ], on_token=lambda _: None)
    sent = json.loads(seen[0].content)
    assert sent["tool_choice"] == "required" and [t["function"]["name"] for t in sent["tools"]] == ["fs_Read"]
    model, cfg, seen = _model("openai", [tool_stream("openai", "ok", [])])
    model.request(USER, cfg, on_token=lambda _: None)
    assert "tools" not in json.loads(seen[0].content) and "tool_choice" not in json.loads(seen[0].content)
    # base_config.tools names NeuroScript tools a task grants (as `ask … with {"tools": …}` does): never
    # sent to the provider as they are
    model, cfg, seen = _model("openai", [tool_stream("openai", "ok", [])], tools=["fs.Read"])
    model.request(USER, cfg, on_token=lambda _: None)
    assert "tools" not in json.loads(seen[0].content)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_provider_tools_that_is_not_a_list_is_a_settings_error(provider: str) -> None:
    seen: list[httpx.Request] = []
    with pytest.raises(ModelSettingsError, match="base_config.provider_tools must be a list") as ei:
        model, cfg, seen = _model(provider, [b""], provider_tools={"fs_Read": {}})
        model.request(USER, cfg, tools=[READ])
    assert ei.value.code == 18 and seen == []


# ----------------------------------------------------------------------------- a streamed loop, end to end


@pytest.fixture
def host(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Interpreter]:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    sandbox.mkdir(parents=True, exist_ok=True)
    (sandbox / "a.txt").write_text("alpha text", encoding="utf-8")
    shown: list[str] = []
    interp = Interpreter(sandbox_dir=sandbox, load_stdlib=False, on_token=shown.append)
    interp.shown = shown  # type: ignore[attr-defined]
    yield interp
    interp.close()


def _respond(server: HTTPServer, spec: Spec, body: bytes) -> None:
    query = {"query_string": "alt=sse"} if spec.provider == "google" else {}
    server.expect_oneshot_request(stream_path(spec.provider, spec.path), method="POST", **query).respond_with_data(
        body, content_type=CONTENT_TYPES[spec.provider])


def _task(host: Interpreter, **named: Any) -> dict[str, Any]:
    result: dict[str, Any] = host.invoke_tool(host.resolve_tool("AIWorker.ExecuteStatelessTask"), [],
                                              {"name": "w", "prompt": "Summarize a.txt.", **named})
    return result


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_streamed_tool_loop_runs_the_tools_and_streams_the_answer(provider: str, server: HTTPServer,
                                                                     host: Interpreter, sandbox: Path) -> None:
    spec = SPECS[provider]
    host.invoke_tool(host.resolve_tool("AIWorkerDefinition.Add"), [], spec.definition(server, "w"))
    _respond(server, spec, tool_stream(provider, "", CALLS[:1]))
    _respond(server, spec, STREAMS[provider](["It says ", "alpha."], 30, 4))
    r = _task(host, tools=["tool.fs.Read"])
    assert r["output"] == "It says alpha." and r["iterations"] == 2
    (c,) = r["tool_calls"]
    assert (c["name"], c["arguments"], c["ok"], c["result"]) == ("fs.Read", {"filepath": "a.txt"}, True, "alpha text")
    assert "".join(host.shown) == "It says alpha."  # type: ignore[attr-defined]
    first, second = (json.loads(req.get_data()) for req, _ in server.log)
    assert "fs_Read" in json.dumps(first["tools"]) and "alpha text" in json.dumps(second)
    (rec,) = host.workers.get_performance_records("w")
    m = rec.llm_metrics
    assert rec.success and (m["input_tokens"], m["output_tokens"], m["tool_call_count"]) == (50, 9, 1)
    scan_for_key(r, rec.model_dump(mode="json"), paths=[sandbox])


REFUSALS: dict[str, Callable[[], dict[str, Any]]] = {
    "openai": lambda: {"id": "c", "object": "chat.completion", "model": "gpt-4o-mini", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": None, "refusal": "I can't help with that."},
         "finish_reason": "stop"}], "usage": {"prompt_tokens": 30, "completion_tokens": 3, "total_tokens": 33}},
    "anthropic": lambda: {"id": "m", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
                          "content": [], "stop_reason": "refusal", "usage": {"input_tokens": 30, "output_tokens": 3}},
}


@pytest.mark.parametrize("provider", list(REFUSALS))
def test_a_refusal_inside_a_loop_fails_the_task_and_keeps_what_was_done(provider: str, server: HTTPServer,
                                                                         host: Interpreter) -> None:
    from test_llm_tool_calls import tool_reply

    spec = SPECS[provider]
    host.invoke_tool(host.resolve_tool("AIWorkerDefinition.Add"), [], spec.definition(server, "w", stream=False))
    server.expect_oneshot_request(spec.path, method="POST").respond_with_json(tool_reply(spec, CALLS[:1]))
    server.expect_oneshot_request(spec.path, method="POST").respond_with_json(REFUSALS[provider]())
    with pytest.raises(NSRuntimeError, match="refused") as ei:
        _task(host, tools=["tool.fs.Read"])
    assert ei.value.code == ErrorCode.LLM_ERROR and len(server.log) == 2  # no fallback, no retry
    (rec,) = host.workers.get_performance_records("w")
    m = rec.llm_metrics
    assert not rec.success and "refused" in rec.error_details
    assert (m["iterations"], m["tool_call_count"]) == (2, 1)
    assert [s["kind"] for s in m["steps"]] == ["model", "tool", "model"]
