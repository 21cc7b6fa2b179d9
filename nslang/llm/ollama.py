"""Ollama's native chat API (provider ``ollama``) over httpx.

``POST {base_url}/api/chat`` with ``"stream": false``. The base URL is ``base_config.base_url``, else
the ``OLLAMA_HOST`` environment variable (``host``, ``host:port`` or a URL; scheme ``http`` and port
11434 by default), else ``http://localhost:11434``. No key is needed; one that is configured is sent
as a bearer token (for an Ollama behind an authenticating proxy).

Mapping: system/user/assistant turns become ``messages`` in order. ``temperature``, ``top_p`` and
``max_tokens`` become ``options.temperature``, ``options.top_p`` and ``options.num_predict``. Other
``base_config`` keys go into ``options`` (``num_ctx``, ``top_k``, ``seed``, ``stop``, …), except the
top-level request fields ``format``, ``keep_alive``, ``think`` and ``tools``. The reply is
``message.content``; input tokens are ``prompt_eval_count`` (Ollama omits it when the whole prompt
was cached; the manager then estimates), output tokens ``eval_count``; the finish reason is
``done_reason`` (``stop``, ``length``, …).

Tool calling (issue 12): offered tools go in ``tools`` as ``{"type": "function", "function": {name,
description, parameters}}`` (after any ``base_config.tools``). The reply's ``message.tool_calls``
(``{function: {name, arguments}}``, arguments an *object*) become
:class:`~nslang.llm.messages.ToolCall` objects (ids ``call_<n>``); Ollama reports ``done_reason``
``stop`` for them, which nslang reports as ``tool_calls``. An assistant turn with tool calls is sent
back the same way, each result as ``{"role": "tool", "content", "tool_name"}``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from ..errors import LLMError
from ._http import HTTPProvider, parse_settings
from .base import Message, Model, ModelResponse, ModelSettingsError, ProviderConfig
from .messages import ToolDeclaration, parse_arguments

__all__ = ["DEFAULT_BASE_URL", "ChatRequest", "ChatResponse", "OllamaModel", "create_model", "host_url"]

DEFAULT_BASE_URL = "http://localhost:11434"
TOP_LEVEL_KEYS = frozenset({"format", "keep_alive", "think", "tools"})


def host_url(value: str) -> str:
    """An ``OLLAMA_HOST`` value as a base URL: ``host``, ``host:port`` or ``scheme://host[:port]``."""
    value = value.strip().rstrip("/")
    if "://" not in value:
        value = "http://" + value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ModelSettingsError(f"OLLAMA_HOST={value!r} is not a host, host:port or http(s) URL")
    try:
        port = parts.port
    except ValueError:
        raise ModelSettingsError(f"OLLAMA_HOST={value!r} has an invalid port") from None
    if port is None and parts.scheme == "http":
        return f"http://{parts.netloc.rstrip(':')}:11434{parts.path}"
    return value


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
                tools: Sequence[ToolDeclaration] = ()) -> ModelResponse:
        """Send the conversation (and the offered tools) to ``/api/chat`` and return the reply."""
        s = parse_settings(settings, self._who)
        base = s.base_url
        if base is None:
            env = os.environ.get("OLLAMA_HOST", "").strip()
            base = host_url(env) if env else DEFAULT_BASE_URL
        key = self._config.api_key
        http = HTTPProvider(self._config, base, {"authorization": f"Bearer {key}"} if key else {})
        turns = list(messages)
        top = {k: v for k, v in s.extra.items() if k in TOP_LEVEL_KEYS}
        if tools:
            declared = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                          "parameters": dict(t.parameters)}} for t in tools]
            top["tools"] = [*(top.get("tools") or []), *declared]
        extra_options = {k: v for k, v in s.extra.items() if k not in TOP_LEVEL_KEYS and k != "num_predict"}
        options = Options(temperature=s.temperature, top_p=s.top_p, num_predict=s.max_tokens, **extra_options)
        if s.max_tokens is None and "num_predict" in s.extra:
            options.num_predict = s.extra["num_predict"]
        body = ChatRequest(
            model=self.model_name,
            messages=[_message(m) for m in turns],
            options=options if options.model_dump(exclude_none=True) else None,
            **top,
        )
        resp = http.post("api/chat", body, ChatResponse, s)
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


def create_model(config: ProviderConfig) -> Model:
    """Provider factory for ``ollama``.

    Raises:
        ModelSettingsError: a bad setting (code 18).
    """
    return OllamaModel(config)
