"""Streamed replies in each provider's documented shapes (issue 14 item 2), as raw bytes.

* OpenAI Chat Completions: ``data: {chat.completion.chunk}`` events, the first with the role, then
  ``delta.content`` pieces, a chunk with ``finish_reason``, with ``stream_options.include_usage`` a
  last chunk with ``"choices": []`` and the ``usage``, then ``data: [DONE]``.
* Anthropic Messages: ``message_start`` (input usage), ``content_block_start``, ``ping``,
  ``content_block_delta`` (``text_delta``), ``content_block_stop``, ``message_delta`` (stop reason,
  cumulative output usage), ``message_stop``; errors as ``event: error``.
* Gemini ``streamGenerateContent?alt=sse``: each event a GenerateContentResponse with the next
  parts; the last with ``finishReason`` and ``usageMetadata``; events end with ``\\r\\n\\r\\n``.
* Ollama ``/api/chat``: NDJSON, one ChatResponse per line; the last ``"done": true`` with the counts.
"""

from __future__ import annotations

import json
from typing import Any

#: Reply pieces with multi-byte characters (2, 3 and 4 bytes in UTF-8) to cut through.
PIECES = ["Héllo", ", wörld", " 日本", " 😀", "!"]
REPLY = "".join(PIECES)


def _sse(data: Any, event: str | None = None, eol: str = "\n") -> str:
    head = f"event: {event}{eol}" if event else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False)}{eol}{eol}"


def openai_stream(pieces: list[str], tin: int, tout: int, *, error_after: int | None = None) -> bytes:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1735689600,
                "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_1",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], "usage": None}

    out = [_sse(chunk({"role": "assistant", "content": "", "refusal": None}))]
    for i, p in enumerate(pieces):
        if error_after is not None and i == error_after:
            out.append(_sse({"error": {"message": "The server had an error while processing your request.",
                                       "type": "server_error", "param": None, "code": None}}))
            return "".join(out).encode()
        out.append(_sse(chunk({"content": p})))
    out.append(_sse(chunk({}, "stop")))
    out.append(_sse({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1735689600,
                     "model": "gpt-4o-mini-2024-07-18", "choices": [],
                     "usage": {"prompt_tokens": tin, "completion_tokens": tout, "total_tokens": tin + tout}}))
    out.append("data: [DONE]\n\n")
    return "".join(out).encode()


def anthropic_stream(pieces: list[str], tin: int, tout: int, *, error_after: int | None = None) -> bytes:
    out = [_sse({"type": "message_start", "message": {
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-haiku-4-5-20251001", "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": tin, "output_tokens": 1}}},
        "message_start"),
        _sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
             "content_block_start"),
        _sse({"type": "ping"}, "ping")]
    for i, p in enumerate(pieces):
        if error_after is not None and i == error_after:
            out.append(_sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
                            "error"))
            return "".join(out).encode()
        out.append(_sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}},
                        "content_block_delta"))
    out += [_sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            _sse({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                  "usage": {"output_tokens": tout}}, "message_delta"),
            _sse({"type": "message_stop"}, "message_stop")]
    return "".join(out).encode()


def gemini_stream(pieces: list[str], tin: int, tout: int, *, error_after: int | None = None) -> bytes:
    out = []
    for i, p in enumerate(pieces):
        if error_after is not None and i == error_after:
            out.append(_sse({"error": {"code": 500, "message": "An internal error has occurred.",
                                       "status": "INTERNAL"}}, eol="\r\n"))
            return "".join(out).encode()
        event: dict[str, Any] = {"candidates": [{"content": {"parts": [{"text": p}], "role": "model"}, "index": 0}],
                                 "modelVersion": "gemini-3.5-flash", "responseId": "r1"}
        if i == len(pieces) - 1:
            event["candidates"][0]["finishReason"] = "STOP"
            event["usageMetadata"] = {"promptTokenCount": tin, "candidatesTokenCount": tout,
                                      "totalTokenCount": tin + tout}
        out.append(_sse(event, eol="\r\n"))
    return "".join(out).encode()


def ollama_stream(pieces: list[str], tin: int, tout: int, *, error_after: int | None = None) -> bytes:
    out = []
    for i, p in enumerate(pieces):
        if error_after is not None and i == error_after:
            out.append(json.dumps({"error": "model runner has unexpectedly stopped"}) + "\n")
            return "".join(out).encode()
        out.append(json.dumps({"model": "llama3.2", "created_at": "2025-01-01T00:00:00Z",
                               "message": {"role": "assistant", "content": p}, "done": False},
                              ensure_ascii=False) + "\n")
    out.append(json.dumps({"model": "llama3.2", "created_at": "2025-01-01T00:00:01Z",
                           "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
                           "total_duration": 5_000_000, "prompt_eval_count": tin, "eval_count": tout}) + "\n")
    return "".join(out).encode()


STREAMS = {"openai": openai_stream, "local": openai_stream, "anthropic": anthropic_stream, "google": gemini_stream,
           "ollama": ollama_stream}
CONTENT_TYPES = {"openai": "text/event-stream", "local": "text/event-stream", "anthropic": "text/event-stream",
                 "google": "text/event-stream", "ollama": "application/x-ndjson"}


def stream_path(provider: str, path: str) -> str:
    """The streaming endpoint of a provider whose non-streaming endpoint is ``path``."""
    return path.replace(":generateContent", ":streamGenerateContent") if provider == "google" else path
