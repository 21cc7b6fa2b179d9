"""Streaming (issue 14 item 2): the shared SSE / NDJSON readers, each wire format's stream folded into
the same reply as a non-streamed call (chunks cut inside UTF-8 characters and line breaks, usage only
in the last chunk), error events inside a 200 stream, retries only before the first byte, the
``on_token`` callback, the default (on for an interactive terminal), and ``ask`` printing the reply
as it arrives through ``nslang run``."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from llm_helpers import KEY, SPECS, ns_args
from pytest_httpserver import HTTPServer
from stream_shapes import CONTENT_TYPES, PIECES, REPLY, STREAMS, stream_path
from werkzeug import Request, Response

from nslang._redact import StreamScrubber, redact
from nslang.cli import main
from nslang.errors import LLMError
from nslang.interpreter import Interpreter
from nslang.llm import _http, anthropic, gemini, ollama, openai
from nslang.llm.base import LLMTimeoutError, Message, ProviderConfig
from nslang.llm.streaming import SSEEvent, iter_lines, iter_sse
from nslang.workers import AIWorkerManager

USER = [Message("user", "hi")]
FACTORIES = {"openai": openai.create_model, "local": openai.create_model, "anthropic": anthropic.create_model,
             "google": gemini.create_model, "ollama": ollama.create_model}
PROVIDERS = list(SPECS)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    edges = [0, *sorted(set(cuts)), len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:]) if b > a]


def awkward_cuts(data: bytes) -> list[int]:
    """Every position inside a UTF-8 character, and on each side of every CR and LF."""
    cuts = {i for i, b in enumerate(data) if 0x80 <= b < 0xC0}  # before a continuation byte
    cuts |= {i for i, b in enumerate(data) if b in (0x0A, 0x0D)} | {i + 1 for i, b in enumerate(data) if b == 0x0D}
    return sorted(c for c in cuts if 0 < c < len(data))


# ----------------------------------------------------------------------------- the shared readers


SSE_BODY = ('event: a\r\ndata: {"x": "h\u00e9llo \u2028 \U0001f600"}\r\n\r\n: a comment\ndata: one\ndata: two\n\n'
            'id: 7\rdata:three\r\rdata: end without a blank line').encode()
SSE_EVENTS = [SSEEvent("a", '{"x": "h\u00e9llo \u2028 \U0001f600"}'), SSEEvent("message", "one\ntwo"),
              SSEEvent("message", "three", "7"), SSEEvent("message", "end without a blank line", "7")]


def test_sse_reader_whole_and_cut_at_every_byte() -> None:
    assert list(iter_sse([SSE_BODY])) == SSE_EVENTS
    assert list(iter_sse([bytes([b]) for b in SSE_BODY])) == SSE_EVENTS
    for cut in range(1, len(SSE_BODY)):
        assert list(iter_sse(_split(SSE_BODY, [cut]))) == SSE_EVENTS, cut


def test_ndjson_reader_cut_inside_characters_and_lines() -> None:
    body = '{"a": "\u00e9"}\r\n\n{"b": "\U0001f600"}\n{"c": 3}'.encode()
    want = ['{"a": "\u00e9"}', '{"b": "\U0001f600"}', '{"c": 3}']
    for cut in range(1, len(body)):
        assert list(iter_lines(_split(body, [cut]))) == want, cut
    assert list(iter_lines([b"\xff\n"])) == ["\ufffd"]  # invalid UTF-8 is replaced, never an exception


def test_stream_scrubber_redacts_a_key_split_across_pieces() -> None:
    text = f"the key is {KEY} and {json.dumps(KEY)[1:-1]}!"
    for cut in range(1, len(text)):
        s = StreamScrubber([KEY])
        shown = s.feed(text[:cut]) + s.feed(text[cut:]) + s.flush()
        assert shown == f"the key is {redact(KEY)} and {redact(KEY)}!", cut


# ----------------------------------------------------------------------------- each wire format


class _Chunks(httpx.SyncByteStream):
    """A response body delivered in exactly these chunks; ``fail`` is raised after them."""

    def __init__(self, chunks: list[bytes], fail: Exception | None = None) -> None:
        self.chunks, self.fail = chunks, fail

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        if self.fail is not None:
            raise self.fail


def _streaming_client(provider: str, responses: list[Callable[[], httpx.Response]]
                      ) -> tuple[list[httpx.Request], Callable[[], httpx.Client]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return responses[min(len(seen), len(responses)) - 1]()

    client = httpx.Client(transport=httpx.MockTransport(handler))
    return seen, lambda: client


def _ok(provider: str, chunks: list[bytes], fail: Exception | None = None) -> Callable[[], httpx.Response]:
    return lambda: httpx.Response(200, headers={"content-type": CONTENT_TYPES[provider]},
                                  stream=_Chunks(chunks, fail))


def _model(provider: str, client: Callable[[], httpx.Client], **settings: Any) -> Any:
    spec = SPECS[provider]
    cfg = {"base_url": "http://llm.test" + spec.root.rstrip("/"), "retry_backoff_s": 0, **settings}
    return FACTORIES[provider](ProviderConfig(provider, spec.model, cfg, api_key=KEY if spec.keyed else None,
                                              http_client=client)), cfg


@pytest.mark.parametrize("provider", PROVIDERS)
def test_stream_folds_into_the_same_reply_whatever_the_chunking(provider: str) -> None:
    body = STREAMS[provider](PIECES, 12, 5)
    chunkings = [[body], [bytes([b]) for b in body], _split(body, awkward_cuts(body))]
    chunkings += [_split(body, [c]) for c in awkward_cuts(body)]
    for chunks in chunkings:
        seen, client = _streaming_client(provider, [_ok(provider, chunks)])
        model, cfg = _model(provider, client)
        pieces: list[str] = []
        r = model.request(USER, cfg, pieces.append)
        assert (r.text, r.input_tokens, r.output_tokens, r.finish_reason) == (REPLY, 12, 5, "stop")
        assert "".join(pieces) == REPLY and len(seen) == 1
    req = seen[0]
    sent = json.loads(req.content)
    assert req.url.path == stream_path(provider, SPECS[provider].path)
    if provider == "google":
        assert req.url.params["alt"] == "sse" and "stream" not in sent
    else:
        assert sent["stream"] is True
    if provider in ("openai", "local"):
        assert sent["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_error_event_inside_a_200_stream_fails_with_the_provider_message(provider: str) -> None:
    body = STREAMS[provider](PIECES, 12, 5, error_after=2)
    seen, client = _streaming_client(provider, [_ok(provider, [body])])
    model, cfg = _model(provider, client)
    pieces: list[str] = []
    with pytest.raises(LLMError, match="error inside the stream") as ei:
        model.request(USER, cfg, pieces.append)
    message = {"openai": "The server had an error", "local": "The server had an error", "anthropic": "Overloaded",
               "google": "An internal error has occurred", "ollama": "model runner has unexpectedly stopped"}
    assert message[provider] in ei.value.message and ei.value.code == 16
    assert "".join(pieces) == "".join(PIECES[:2]) and len(seen) == 1  # shown before the error; not retried


@pytest.mark.parametrize("provider", PROVIDERS)
def test_retries_happen_before_the_first_byte_only(provider: str) -> None:
    body = STREAMS[provider](PIECES, 12, 5)
    unavailable = lambda: httpx.Response(503, json={"error": {"message": "busy"}})  # noqa: E731
    first_read_times_out = _ok(provider, [], httpx.ReadTimeout("timed out"))
    seen, client = _streaming_client(provider, [unavailable, first_read_times_out, _ok(provider, [body])])
    model, cfg = _model(provider, client, max_retries=2)
    assert model.request(USER, cfg, lambda _: None).text == REPLY
    assert len(seen) == 3
    # the body started, then the connection broke: not retried, the error says so
    half = body[: len(body) // 2]
    seen, client = _streaming_client(provider, [_ok(provider, [half], httpx.RemoteProtocolError("peer closed")),
                                                _ok(provider, [body])])
    model, cfg = _model(provider, client, max_retries=2)
    with pytest.raises(LLMError, match="not retried: the reply had started") as ei:
        model.request(USER, cfg, lambda _: None)
    assert len(seen) == 1 and not isinstance(ei.value, LLMTimeoutError)
    seen, client = _streaming_client(provider, [_ok(provider, [half], httpx.ReadTimeout("stalled"))])
    model, cfg = _model(provider, client, max_retries=2)
    with pytest.raises(LLMError, match="stalled for more than timeout_s") as ei:
        model.request(USER, cfg, lambda _: None)
    # code 31, but not an LLMTimeoutError: nothing (no retry, no fallback) may serve a reply already begun
    assert len(seen) == 1 and ei.value.code == 31 and not isinstance(ei.value, LLMTimeoutError)


def test_a_stream_that_ends_early_is_an_error() -> None:
    last_ollama_line = b'{"model": "llama3.2", "created_at": "2025-01-01T00:00:01Z"'
    for provider, cut_marker in [("anthropic", b"event: message_stop"), ("ollama", last_ollama_line)]:
        body = STREAMS[provider](PIECES, 1, 1)
        _, client = _streaming_client(provider, [_ok(provider, [body[: body.index(cut_marker)]])])
        model, cfg = _model(provider, client)
        with pytest.raises(LLMError, match="stream ended before"):
            model.request(USER, cfg, lambda _: None)
    _, client = _streaming_client("openai", [_ok("openai", [b": keep-alive\n\n"])])
    model, cfg = _model("openai", client)
    with pytest.raises(LLMError, match="the stream ended without a reply"):
        model.request(USER, cfg, lambda _: None)


def test_openai_streamed_refusal_and_json_error_body_on_a_stream() -> None:
    chunk = {"id": "c", "object": "chat.completion.chunk", "model": "gpt-4o", "choices": [
        {"index": 0, "delta": {"refusal": "I can't help with that."}, "finish_reason": None}]}
    body = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
    _, client = _streaming_client("openai", [_ok("openai", [body])])
    model, cfg = _model("openai", client)
    with pytest.raises(LLMError, match="the model refused: I can't help with that."):
        model.request(USER, cfg, lambda _: None)
    error = lambda: httpx.Response(200, json={"error": {"message": "Upstream quota", "code": 402}})  # noqa: E731
    _, client = _streaming_client("openai", [error])
    model, cfg = _model("openai", client)
    with pytest.raises(LLMError, match="HTTP 200 with an error body: Upstream quota"):
        model.request(USER, cfg, lambda _: None)


# ----------------------------------------------------------------------------- through a loopback server


def _awkward_handler(provider: str, body: bytes, fail_after: int | None = None) -> Callable[[Request], Response]:
    def handler(request: Request) -> Response:
        def chunks() -> Iterator[bytes]:
            pieces = _split(body, awkward_cuts(body)[::3])
            for i, piece in enumerate(pieces):
                if fail_after is not None and i == fail_after:
                    raise ConnectionAbortedError("the server went away")
                yield piece

        return Response(chunks(), status=200, content_type=CONTENT_TYPES[provider])

    return handler


@pytest.mark.parametrize("provider", PROVIDERS)
def test_streamed_task_through_the_manager(provider: str, server: HTTPServer, manager: AIWorkerManager) -> None:
    spec = SPECS[provider]
    manager.add_definition(spec.definition(server, "w", stream=True))
    query = {"query_string": "alt=sse"} if provider == "google" else {}
    server.expect_request(stream_path(provider, spec.path), method="POST", **query).respond_with_handler(
        _awkward_handler(provider, STREAMS[provider](PIECES, 12, 5)))
    pieces: list[str] = []
    manager.on_token = pieces.append
    assert manager.execute_stateless_task("w", "hi").output == REPLY
    assert "".join(pieces) == REPLY and len(pieces) >= 2
    rec, = manager.get_performance_records("w")
    assert rec.success and (rec.llm_metrics["input_tokens"], rec.llm_metrics["output_tokens"]) == (12, 5)
    assert "estimated" not in rec.llm_metrics and rec.llm_metrics["finish_reason"] == "stop"


def test_a_loopback_stream_cut_off_midway_is_not_retried(server: HTTPServer, manager: AIWorkerManager) -> None:
    spec = SPECS["local"]
    manager.add_definition(spec.definition(server, "w", stream=True, max_retries=3))
    server.expect_request(spec.path).respond_with_handler(
        _awkward_handler("local", STREAMS["local"](PIECES, 1, 1), fail_after=4))
    with pytest.raises(LLMError, match="not retried"):
        manager.execute_stateless_task("w", "hi")
    assert len(server.log) == 1
    rec, = manager.get_performance_records("w")
    assert not rec.success and "not retried" in rec.error_details


def test_a_key_echoed_across_stream_pieces_never_reaches_on_token(server: HTTPServer,
                                                                 manager: AIWorkerManager) -> None:
    spec = SPECS["openai"]
    manager.add_definition(spec.definition(server, "w", stream=True))
    pieces = ["Your key: ", KEY[:7], KEY[7:20], KEY[20:], " ok"]
    server.expect_request(spec.path).respond_with_data(STREAMS["openai"](pieces, 1, 1),
                                                       content_type="text/event-stream")
    shown: list[str] = []
    out = manager.execute_stateless_task("w", "hi", on_token=shown.append).output
    assert KEY not in "".join(shown) and "".join(shown) == out == f"Your key: {redact(KEY)} ok"


# ----------------------------------------------------------------------------- defaults, embedding, the CLI


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _ollama_server(server: HTTPServer) -> list[dict[str, Any]]:
    """Answers /api/chat streamed or not, as asked; returns the request bodies seen."""
    bodies: list[dict[str, Any]] = []

    def handler(request: Request) -> Response:
        body = json.loads(request.get_data())
        bodies.append(body)
        if body["stream"]:
            return Response(STREAMS["ollama"](PIECES, 3, 4), content_type="application/x-ndjson")
        return Response(json.dumps(SPECS["ollama"].ok(REPLY, 3, 4)), content_type="application/json")

    server.expect_request("/api/chat").respond_with_handler(handler)
    return bodies


def _define(interp: Interpreter, server: HTTPServer, **base_config: Any) -> None:
    interp.workers.add_definition(SPECS["ollama"].definition(server, "w", **base_config))


def test_stream_default_on_for_a_terminal_or_an_on_token_callback(server: HTTPServer, sandbox: Path) -> None:
    bodies = _ollama_server(server)
    with Interpreter(sandbox_dir=sandbox, stdout=io.StringIO()) as interp:  # not a terminal: no stream
        _define(interp, server)
        assert interp.ask("w", "hi") == REPLY
        got: list[str] = []
        assert interp.ask("w", "hi", on_token=got.append) == REPLY  # a per-call callback streams
        assert got == PIECES
    with Interpreter(sandbox_dir=sandbox, stdout=_Terminal()) as interp:  # a terminal: stream
        assert interp.ask("w", "hi") == REPLY
        assert interp.ask("w", "hi", {"stream": False}) == REPLY  # base_config/with wins
    got = []
    with Interpreter(sandbox_dir=sandbox, stdout=io.StringIO(), on_token=got.append) as interp:
        assert interp.ask("w", "hi") == REPLY  # Interpreter(on_token=…) streams every call
        assert interp.ask("w", "hi", {"stream": False}) == REPLY  # not streamed: the whole reply, once
    assert [b["stream"] for b in bodies] == [False, True, True, False, True, False]
    assert got == [*PIECES, REPLY]


def test_ask_prints_the_reply_as_it_arrives_in_nslang_run(server: HTTPServer, sandbox: Path, tmp_path: Path) -> None:
    bodies = _ollama_server(server)
    definition = SPECS["ollama"].definition(server, "w", stream=True)
    script = tmp_path / "ask.ns"
    script.write_text(f"""command
  call tool.AIWorkerDefinition.Add({ns_args(definition)})
  emit "before"
  ask "w", "hi"
  ask "w", "quiet" into answer
  emit "after: " + answer
  ask "w", "whole" with {{"stream": false}}
endcommand
""")
    out, err = io.StringIO(), io.StringIO()
    assert main(["run", "--sandbox", str(sandbox), str(script)], stdout=out, stderr=err) == 0, err.getvalue()
    assert out.getvalue() == f"before\n{REPLY}\nafter: {REPLY}\n{REPLY}\n"
    assert [b["stream"] for b in bodies] == [True, True, False]


def test_ask_echo_keeps_the_partial_reply_on_a_line_of_its_own(server: HTTPServer, sandbox: Path) -> None:
    spec = SPECS["ollama"]
    server.expect_request("/api/chat").respond_with_data(STREAMS["ollama"](PIECES, 1, 1, error_after=2),
                                                         content_type="application/x-ndjson")
    out = io.StringIO()
    with Interpreter(sandbox_dir=sandbox, stdout=out) as interp:
        interp.echo_asks = True
        interp.workers.add_definition(spec.definition(server, "w", stream=True))
        interp.load('command\n  on error do\n    emit "caught: " + system_error_message\n    clear_error\n  endon\n'
                    '  ask "w", "hi"\nendcommand\n')
        interp.run()
    text = out.getvalue()
    assert text.startswith("".join(PIECES[:2]) + "\ncaught: ") and "model runner has unexpectedly stopped" in text


def test_streaming_with_the_response_cache_and_a_size_bound(server: HTTPServer, manager: AIWorkerManager,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    spec = SPECS["anthropic"]
    manager.add_definition(spec.definition(server, "w", stream=True, cache=True))
    server.expect_oneshot_request(spec.path).respond_with_data(STREAMS["anthropic"](PIECES, 3, 4),
                                                               content_type="text/event-stream")
    first: list[str] = []
    assert manager.execute_stateless_task("w", "hi", on_token=first.append).output == REPLY
    again: list[str] = []  # a cache hit is not streamed: the reply arrives whole, once
    assert manager.execute_stateless_task("w", "hi", on_token=again.append).output == REPLY
    assert first == PIECES and again == [REPLY] and len(server.log) == 1
    # a stream growing past the body limit is cut off, not retried
    monkeypatch.setattr(_http, "MAX_RESPONSE_BYTES", 400)
    server.expect_request(spec.path).respond_with_data(STREAMS["anthropic"](PIECES * 5, 3, 4),
                                                       content_type="text/event-stream")
    with pytest.raises(LLMError, match="larger than 400 bytes"):
        manager.execute_stateless_task("w", "another prompt")
    assert len(server.log) == 2
