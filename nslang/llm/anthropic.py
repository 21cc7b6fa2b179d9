"""Anthropic Messages API (provider ``anthropic``) over httpx.

``POST {base_url}/v1/messages`` (base URL ``https://api.anthropic.com`` unless ``base_config.base_url``
says otherwise) with headers ``x-api-key: <key>`` and ``anthropic-version: 2023-06-01``; an API key
is required.

Mapping: ``system`` turns (``base_config.system_prompt`` included) are joined into the top-level
``system`` field; user/assistant turns become ``messages`` in order. ``max_tokens`` is required by
the API: nslang sends ``base_config.max_tokens`` or :data:`DEFAULT_MAX_TOKENS`. ``temperature`` and
``top_p`` as is; other ``base_config`` keys (``top_k``, ``stop_sequences``, ``metadata``, …) are added to
the request body. The reply is the concatenated ``text`` of the ``content`` blocks; input tokens are
``usage.input_tokens`` plus the cache counts (``cache_creation_input_tokens``,
``cache_read_input_tokens``, also reported apart as cache read / cache write) when present, output
tokens ``usage.output_tokens``. ``stop_reason`` is
reported in the common vocabulary: ``end_turn``/``stop_sequence`` → ``stop``, ``max_tokens`` →
``length``, ``tool_use`` → ``tool_calls``, ``refusal`` → ``content_filter`` (others unchanged).

Tool calling (issue 12): offered tools go in ``tools`` as ``{name, description, input_schema}``. The
reply's ``tool_use`` blocks (``{id, name, input}``, input an object) become
:class:`~nslang.llm.messages.ToolCall` objects; an assistant turn with tool calls is sent back as its
``text`` and ``tool_use`` blocks, and the results of one turn as one ``user`` message of
``tool_result`` blocks (``{tool_use_id, content, is_error}``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from ._http import HTTPProvider, join_system, parse_settings, pass_through, require_key
from .base import Message, Model, ModelResponse, ProviderConfig
from .messages import ToolDeclaration, parse_arguments

__all__ = ["API_VERSION", "DEFAULT_BASE_URL", "DEFAULT_MAX_TOKENS", "AnthropicModel", "MessagesRequest",
           "MessagesResponse", "create_model"]

DEFAULT_BASE_URL = "https://api.anthropic.com"
#: The ``anthropic-version`` header.
API_VERSION = "2023-06-01"
#: ``max_tokens`` when base_config sets none (the API requires one).
DEFAULT_MAX_TOKENS = 4096

STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
                "refusal": "content_filter"}


class InputMessage(BaseModel):
    """One ``messages`` item of the request: a string, or content blocks for tool turns."""

    role: str
    content: str | list[dict[str, Any]]


def _input_messages(turns: Sequence[Message]) -> list[InputMessage]:
    out: list[InputMessage] = []
    for m in turns:
        if m.role == "system":
            continue
        if m.role == "tool":
            block = {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content,
                     "is_error": m.is_error}
            last = out[-1] if out else None
            if last is not None and last.role == "user" and isinstance(last.content, list) \
                    and all(b.get("type") == "tool_result" for b in last.content):
                last.content.append(block)
            else:
                out.append(InputMessage(role="user", content=[block]))
        elif m.tool_calls:
            blocks: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content else []
            blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments or {}}
                       for c in m.tool_calls]
            out.append(InputMessage(role=m.role, content=blocks))
        else:
            out.append(InputMessage(role=m.role, content=m.content))
    return out


class MessagesRequest(BaseModel):
    """The request body; extra keys are pass-through ``base_config`` keys."""

    model_config = ConfigDict(extra="allow")

    model: str
    max_tokens: int
    messages: list[InputMessage]
    system: str | None = None
    temperature: float | None = None
    top_p: float | None = None


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ContentBlock(_Lenient):
    """One ``content`` block; only ``text`` blocks carry reply text."""

    type: str
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: Any = None


class Usage(_Lenient):
    """``usage`` of a Messages response."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class MessagesResponse(_Lenient):
    """The response body (a ``message`` object)."""

    id: str = ""
    type: str = "message"
    role: str = "assistant"
    model: str = ""
    content: list[ContentBlock]
    stop_reason: str | None = None
    usage: Usage | None = None


class AnthropicModel(Model):
    """A Claude model behind the Messages API."""

    def __init__(self, config: ProviderConfig) -> None:
        self._config = config
        self._who = f"provider 'anthropic' (worker '{config.definition_name}')"
        parse_settings(config.settings, self._who)
        self._key = require_key(config, "ANTHROPIC_API_KEY")

    @property
    def provider(self) -> str:
        return "anthropic"

    @property
    def model_name(self) -> str:
        return self._config.model_name

    def request(self, messages: Sequence[Message], settings: Mapping[str, Any],
                tools: Sequence[ToolDeclaration] = ()) -> ModelResponse:
        """Send the conversation (and the offered tools) to ``/v1/messages`` and return the reply."""
        s = parse_settings(settings, self._who)
        http = HTTPProvider(self._config, s.base_url or DEFAULT_BASE_URL,
                            {"x-api-key": self._key, "anthropic-version": API_VERSION})
        turns = list(messages)
        extra = dict(s.extra)
        if tools:
            extra["tools"] = [{"name": t.name, "description": t.description, "input_schema": dict(t.parameters)}
                              for t in tools]
        body = MessagesRequest(
            model=self.model_name,
            max_tokens=s.max_tokens or DEFAULT_MAX_TOKENS,
            messages=_input_messages(turns),
            system=join_system(turns) or None,
            temperature=s.temperature,
            top_p=s.top_p,
            **pass_through(extra, MessagesRequest),
        )
        resp = http.post("v1/messages", body, MessagesResponse, s)
        text = "".join(b.text or "" for b in resp.content if b.type == "text")
        u = resp.usage
        tin: int | None = None
        if u is not None and u.input_tokens is not None:
            tin = u.input_tokens + (u.cache_creation_input_tokens or 0) + (u.cache_read_input_tokens or 0)
        reason = resp.stop_reason or ""
        return ModelResponse(
            text=text,
            input_tokens=tin,
            output_tokens=u.output_tokens if u else None,
            finish_reason=STOP_REASONS.get(reason, reason),
            model=resp.model or self.model_name,
            cache_read_tokens=u.cache_read_input_tokens if u else None,
            cache_write_tokens=u.cache_creation_input_tokens if u else None,
            tool_calls=tuple(parse_arguments(b.id or f"call_{i}", b.name or "", b.input)
                             for i, b in enumerate(resp.content) if b.type == "tool_use"),
        )


def create_model(config: ProviderConfig) -> Model:
    """Provider factory for ``anthropic``.

    Raises:
        ModelSettingsError: no API key, or a bad setting (code 18).
    """
    return AnthropicModel(config)
