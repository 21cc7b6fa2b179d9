"""Ollama's native chat API (provider ``ollama``) over httpx.

``POST {base_url}/api/chat`` with ``"stream": false``. The base URL is ``base_config.base_url``, else
the ``OLLAMA_HOST`` environment variable read as Ollama's own Python client reads it
(:func:`host_url`: ``host``, ``host:port``, ``:port`` or a URL; with no scheme, ``http`` and port
11434; with a scheme and no port, that scheme's port, 80 or 443), else ``http://127.0.0.1:11434``.
No key is needed; one that is configured is sent as a bearer token (for an Ollama behind an
authenticating proxy).

Mapping: system/user/assistant turns become ``messages`` in order. ``temperature``, ``top_p`` and
``max_tokens`` become ``options.temperature``, ``options.top_p`` and ``options.num_predict``. Other
``base_config`` keys go into ``options`` (``num_ctx``, ``top_k``, ``seed``, ``stop``, …), except the
top-level request fields ``format``, ``keep_alive``, ``think`` and ``tools``; a key written in
``base_config`` wins over the mapped one (``num_predict``); ``model``, ``messages`` and ``stream`` are
nslang's own (an error if set). The reply is
``message.content``; input tokens are ``prompt_eval_count`` (Ollama omits it when the whole prompt
was cached; the manager then estimates), output tokens ``eval_count``; the finish reason is
``done_reason`` (``stop``, ``length``, …).

Tool calling (issue 12): offered tools go in ``tools`` as ``{"type": "function", "function": {name,
description, parameters}}`` (after any ``base_config.provider_tools``). The reply's ``message.tool_calls``
(``{function: {name, arguments}}``, arguments an *object*) become
:class:`~nslang.llm.messages.ToolCall` objects (ids ``call_<n>``); Ollama reports ``done_reason``
``stop`` for them, which nslang reports as ``tool_calls``. An assistant turn with tool calls is sent
back the same way, each result as ``{"role": "tool", "content", "tool_name"}``.

Streaming (``on_token``): ``"stream": true``; the answer is NDJSON, one ``ChatResponse`` per line, each
with the next ``message.content``; the last (``"done": true``) carries ``done_reason`` and the counts.
Tool calls may come in any line (in practice the last before ``done``); their ``message.tool_calls`` are
collected in order. The lines are folded into one :class:`ChatResponse` that goes through the same
mapping; a line ``{"error": …}`` fails the call with its message.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from ..errors import LLMError
from ._http import HTTPProvider, build, parse_settings, request_fields, with_tools
from .base import Message, Model, ModelResponse, ModelSettingsError, ProviderConfig
from .messages import ToolDeclaration, parse_arguments
from .streaming import TokenSink, iter_lines

__all__ = ["DEFAULT_BASE_URL", "ChatRequest", "ChatResponse", "OllamaModel", "create_model", "host_url"]

DEFAULT_BASE_URL = "http://127.0.0.1:11434"
TOP_LEVEL_KEYS = frozenset({"format", "keep_alive", "think", "tools"})
#: Request fields nslang fills itself: base_config may not set them.
RESERVED = frozenset({"model", "messages", "stream"})


def host_url(value: str | None) -> str:
    """An ``OLLAMA_HOST`` value as a base URL, by the rules of ollama-python's ``_parse_host`` (issue 14
    item 1): ``None``/``""`` → ``http://127.0.0.1:11434``; ``host`` → ``http://host:11434``; ``:port`` →
    ``http://127.0.0.1:port``; ``http://host`` → port 80; ``https://host`` → port 443; an explicit port
    wins; a path is kept without its slashes; IPv6 hosts keep their brackets.

    Raises:
        ModelSettingsError: a scheme other than http/https, or a port that is not a number (code 18).
    """
    raw = (value or "").strip()
    scheme, _, hostport = raw.partition("://")
    port = 11434
    if not hostport:
        scheme, hostport = "http", raw
    elif scheme == "http":
        port = 80
    elif scheme == "https":
        port = 443
    else:
        raise ModelSettingsError(f"OLLAMA_HOST={value!r} is not a host, host:port or http(s) URL")
    split = urlsplit(f"{scheme}://{hostport}")
    try:
        port = split.port or port
    except ValueError:
        raise ModelSettingsError(f"OLLAMA_HOST={value!r} has an invalid port") from None
    host = split.hostname or "127.0.0.1"
    try:
        if isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address):
            host = f"[{host}]"
    except ValueError:
        pass
    path = split.path.strip("/")
    return f"{scheme}://{host}:{port}/{path}" if path else f"{scheme}://{host}:{port}"


class ChatMessage(BaseModel):
    """One ``messages`` item (request and response)."""

    model_config = ConfigDict(extra="ignore")

    role: str = "assistant"
    content: str = ""
    tool_calls: list[dict[str, Any]] | None = None
    tool_name: str | None = None


def _message(m: Message) -> ChatMessage:
    if m.role == "tool":
        return ChatMessage(role="tool", content=m.content, tool_name=m.name)
    if m.tool_calls:
        calls = [{"function": {"name": c.name, "arguments": c.arguments or {}}} for c in m.tool_calls]
        return ChatMessage(role=m.role, content=m.content, tool_calls=calls)
    return ChatMessage(role=m.role, content=m.content)


class Options(BaseModel):
    """``options``; extra keys are pass-through ``base_config`` keys."""

    model_config = ConfigDict(extra="allow")

    temperature: float | None = None
    top_p: float | None = None
    num_predict: int | None = None


class ChatRequest(BaseModel):
    """The request body; extra keys are top-level pass-through keys."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatMessage]
    stream: bool = False
    options: Options | None = None


class ChatResponse(BaseModel):
    """The (non-streamed) response body."""

    model_config = ConfigDict(extra="ignore")

    model: str = ""
    message: ChatMessage | None = None
    done: bool = True
    done_reason: str | None = None
    prompt_eval_count: int | None = None
    eval_count: int | None = None


class OllamaModel(Model):
    """A model served by Ollama."""

    def __init__(self, config: ProviderConfig) -> None:
        self._config = config
        self._who = f"provider 'ollama' (worker '{config.definition_name}')"
        parse_settings(config.settings, self._who)

    @property
    def provider(self) -> str:
        return "ollama"

    @property
    def model_name(self) -> str:
        return self._config.model_name

    def request(self, messages: Sequence[Message], settings: Mapping[str, Any],
                on_token: TokenSink | None = None, tools: Sequence[ToolDeclaration] = ()) -> ModelResponse:
        """Send the conversation (and the offered tools) to ``/api/chat`` and return the reply (streamed
        when ``on_token`` is given).

        Raises:
            ModelSettingsError: a bad setting or OLLAMA_HOST (code 18). LLMHTTPError, LLMTimeoutError,
                LLMError: see :mod:`nslang.llm._http`.
        """
        s = parse_settings(settings, self._who)
        base = s.base_url
        if base is None:
            env = os.environ.get("OLLAMA_HOST")
            base = host_url(env) if env else DEFAULT_BASE_URL
        key = self._config.api_key
        http = HTTPProvider(self._config, base, {"authorization": f"Bearer {key}"} if key else {})
        turns = list(messages)
        top = with_tools({k: v for k, v in s.extra.items() if k in TOP_LEVEL_KEYS or k in RESERVED},
                         [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                            "parameters": dict(t.parameters)}} for t in tools],
                         s.provider_tools)
        options = build(Options, self._who, request_fields(
            {"temperature": s.temperature, "top_p": s.top_p, "num_predict": s.max_tokens},
            {k: v for k, v in s.extra.items() if k not in top}, (), self._who))
        fields = request_fields({
            "model": self.model_name,
            "messages": [_message(m) for m in turns],
            "options": options if options.model_dump(exclude_none=True) else None,
        }, top, RESERVED, self._who)
        if on_token is None:
            resp = http.post("api/chat", build(ChatRequest, self._who, fields), ChatResponse, s)
        else:
            body = build(ChatRequest, self._who, {**fields, "stream": True})
            resp = http.stream("api/chat", body, s, lambda chunks: _fold(http, chunks, on_token))
        return self._response(http, resp)

    def _response(self, http: HTTPProvider, resp: ChatResponse) -> ModelResponse:
        """The one mapping of a (non-streamed or folded) response."""
        if resp.message is None:
            raise LLMError(f"{http.who}: the response has no message")
        calls = tuple(parse_arguments(f"call_{i}", str((c.get("function") or {}).get("name", "")),
                                      (c.get("function") or {}).get("arguments"))
                      for i, c in enumerate(resp.message.tool_calls or ()) if isinstance(c, dict))
        return ModelResponse(
            text=resp.message.content,
            input_tokens=resp.prompt_eval_count,
            output_tokens=resp.eval_count,
            finish_reason="tool_calls" if calls else resp.done_reason or ("stop" if resp.done else ""),
            model=resp.model or self.model_name,
            tool_calls=calls,
        )


def _fold(http: HTTPProvider, chunks: Iterator[bytes], on_token: TokenSink) -> ChatResponse:
    """The NDJSON lines of a stream as one response; the final ``done`` line carries the counts."""
    text: list[str] = []
    calls: list[dict[str, Any]] = []
    last: ChatResponse | None = None
    for line in iter_lines(chunks):
        last = http.event(line, ChatResponse)
        piece = last.message.content if last.message else ""
        if piece:
            text.append(piece)
            on_token(piece)
        if last.message is not None and last.message.tool_calls:
            calls.extend(last.message.tool_calls)
        if last.done:
            break
    if last is None or not last.done:
        raise LLMError(f"{http.who}: the stream ended before the final 'done' line")
    return last.model_copy(update={"message": ChatMessage(role="assistant", content="".join(text),
                                                          tool_calls=calls or None)})


def create_model(config: ProviderConfig) -> Model:
    """Provider factory for ``ollama``.

    Raises:
        ModelSettingsError: a bad setting (code 18).
    """
    return OllamaModel(config)
