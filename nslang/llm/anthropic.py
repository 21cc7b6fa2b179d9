"""Anthropic Messages API (provider ``anthropic``) over httpx.

``POST {base_url}/v1/messages`` (base URL ``https://api.anthropic.com`` unless ``base_config.base_url``
says otherwise) with headers ``x-api-key: <key>`` and ``anthropic-version: 2023-06-01``; an API key
is required.

Mapping: ``system`` turns (``base_config.system_prompt`` included) are joined into the top-level
``system`` field; user/assistant turns become ``messages`` in order. ``max_tokens`` is required by
the API: nslang sends ``base_config.max_tokens`` or :data:`DEFAULT_MAX_TOKENS`. ``temperature`` and
``top_p`` as is, but not both: current Claude models reject the pair, so a definition setting both is
refused before anything is sent (code 18; issue 14 item 1). Other ``base_config`` keys (``top_k``,
``stop_sequences``, ``metadata``, …) are added to the request body as written (``model``,
``messages``, ``system`` and ``stream`` are nslang's own: an error if set). The reply is the
concatenated ``text`` of the ``content`` blocks; input tokens are ``usage.input_tokens`` plus the cache
counts (``cache_creation_input_tokens``, ``cache_read_input_tokens``, also reported apart as cache read /
cache write) when present, output tokens
``usage.output_tokens``. ``stop_reason`` is reported in the common vocabulary:
``end_turn``/``stop_sequence`` → ``stop``, ``max_tokens`` and ``model_context_window_exceeded`` →
``length``, ``tool_use`` → ``tool_calls`` (others unchanged); ``refusal`` is a
:class:`~nslang.llm.base.LLMRefusalError`.

Tool calling (issue 12): offered tools go in ``tools`` as ``{name, description, input_schema}``
(after the entries of ``base_config.provider_tools``, e.g. server tools; a ``base_config.tool_choice`` is
passed through). The reply's ``tool_use``
blocks (``{id, name, input}``, input an object) become :class:`~nslang.llm.messages.ToolCall` objects;
an assistant turn with tool calls is sent back as its ``text`` and ``tool_use`` blocks, and the results
of one turn as one ``user`` message of ``tool_result`` blocks (``{tool_use_id, content, is_error}``).

Streaming (``on_token``): ``"stream": true``; the events ``message_start`` (id, model, input usage),
``content_block_start`` / ``content_block_delta`` (``text_delta`` appends to a text block,
``input_json_delta`` fragments are joined into a ``tool_use`` block's input; other deltas are ignored),
``message_delta`` (``stop_reason`` and the cumulative usage) and ``message_stop`` are folded into one
:class:`MessagesResponse` that goes through the same mapping; ``ping`` is skipped; an ``error`` event
(e.g. ``overloaded_error`` inside a 200 stream) fails the call with its message.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..errors import LLMError
from ._http import HTTPProvider, build, join_system, parse_settings, request_fields, require_key, with_tools
from .base import LLMRefusalError, Message, Model, ModelResponse, ModelSettingsError, ProviderConfig
from .messages import ToolDeclaration, parse_arguments
from .streaming import TokenSink, iter_sse

__all__ = ["API_VERSION", "DEFAULT_BASE_URL", "DEFAULT_MAX_TOKENS", "AnthropicModel", "MessagesRequest",
           "MessagesResponse", "create_model"]

DEFAULT_BASE_URL = "https://api.anthropic.com"
#: The ``anthropic-version`` header.
API_VERSION = "2023-06-01"
#: ``max_tokens`` when base_config sets none (the API requires one).
DEFAULT_MAX_TOKENS = 4096

STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
                "model_context_window_exceeded": "length"}
#: Request fields nslang fills itself: base_config may not set them.
RESERVED = frozenset({"model", "messages", "system", "stream"})


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


class StreamEvent(_Lenient):
    """One event of a Messages stream (the fields the fold reads; the rest stays in ``model_extra``)."""

    model_config = ConfigDict(extra="allow")

    type: str
    index: int = 0
    message: MessagesResponse | None = None
    content_block: dict[str, Any] | None = None
    delta: dict[str, Any] | None = None
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
                on_token: TokenSink | None = None, tools: Sequence[ToolDeclaration] = ()) -> ModelResponse:
        """Send the conversation (and the offered tools) to ``/v1/messages`` and return the reply
        (streamed when ``on_token`` is given).

        Raises:
            ModelSettingsError: both ``temperature`` and ``top_p`` set, or a bad setting (code 18).
            LLMRefusalError: the model refused (code 16).
            LLMHTTPError, LLMTimeoutError, LLMError: see :mod:`nslang.llm._http`.
        """
        s = parse_settings(settings, self._who)
        if s.temperature is not None and s.top_p is not None:
            raise ModelSettingsError(f"{self._who}: base_config sets both temperature and top_p; current Claude "
                                     "models reject the pair (\"temperature and top_p cannot both be specified\"): "
                                     "keep only one")
        http = HTTPProvider(self._config, s.base_url or DEFAULT_BASE_URL,
                            {"x-api-key": self._key, "anthropic-version": API_VERSION})
        turns = list(messages)
        mapped: dict[str, Any] = {
            "model": self.model_name,
            "max_tokens": s.max_tokens or DEFAULT_MAX_TOKENS,
            "messages": _input_messages(turns),
            "system": join_system(turns) or None,
            "temperature": s.temperature,
            "top_p": s.top_p,
        }
        extra = with_tools(s.extra, [{"name": t.name, "description": t.description, "input_schema": dict(t.parameters)}
                                     for t in tools], s.provider_tools)
        fields = request_fields(mapped, extra, RESERVED, self._who)
        if on_token is None:
            resp = http.post("v1/messages", build(MessagesRequest, self._who, fields), MessagesResponse, s)
        else:
            body = build(MessagesRequest, self._who, {**fields, "stream": True})
            resp = http.stream("v1/messages", body, s, lambda chunks: _fold(http, chunks, on_token))
        return self._response(http, resp)

    def _response(self, http: HTTPProvider, resp: MessagesResponse) -> ModelResponse:
        """The one mapping of a (non-streamed or folded) message."""
        text = "".join(b.text or "" for b in resp.content if b.type == "text")
        reason = resp.stop_reason or ""
        if reason == "refusal":
            raise LLMRefusalError(f"{http.who}: the model refused (stop_reason 'refusal')"
                                  + (f"; partial reply: {text[:200]}" if text else ""))
        u = resp.usage
        tin: int | None = None
        if u is not None and u.input_tokens is not None:
            tin = u.input_tokens + (u.cache_creation_input_tokens or 0) + (u.cache_read_input_tokens or 0)
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


def _fold(http: HTTPProvider, chunks: Iterator[bytes], on_token: TokenSink) -> MessagesResponse:
    """The events of a Messages stream as one message (the SDK's ``accumulate_event``: text and tool_use blocks)."""
    message: MessagesResponse | None = None
    blocks: dict[int, ContentBlock] = {}
    inputs: dict[int, list[str]] = {}  # block index -> the input_json_delta fragments of a tool_use block
    usage = Usage()
    stopped = False
    for raw in iter_sse(chunks):
        event = http.event(raw.data, StreamEvent)
        if event.type == "message_start" and event.message is not None:
            message = event.message
            if event.message.usage is not None:
                usage = event.message.usage.model_copy()
        elif event.type == "content_block_start":
            block = event.content_block or {}
            blocks[event.index] = ContentBlock(type=str(block.get("type", "")), text=block.get("text") or "",
                                               id=block.get("id"), name=block.get("name"), input=block.get("input"))
        elif event.type == "content_block_delta":
            delta = event.delta or {}
            piece = delta.get("text")
            if delta.get("type") == "text_delta" and isinstance(piece, str) and piece:
                block = blocks.setdefault(event.index, ContentBlock(type="text", text=""))
                block.text = (block.text or "") + piece
                on_token(piece)
            elif delta.get("type") == "input_json_delta" and isinstance(delta.get("partial_json"), str):
                inputs.setdefault(event.index, []).append(delta["partial_json"])
        elif event.type == "message_delta":
            delta = event.delta or {}
            if message is not None and delta.get("stop_reason"):
                message.stop_reason = delta["stop_reason"]
            if event.usage is not None:  # cumulative counts: the latest wins
                for name, value in event.usage.model_dump(exclude_none=True).items():
                    setattr(usage, name, value)
        elif event.type == "message_stop":
            stopped = True
            break
    if message is None or not stopped:
        raise LLMError(f"{http.who}: the stream ended before message_stop")
    for i, fragments in inputs.items():
        if i in blocks and blocks[i].type == "tool_use" and "".join(fragments).strip():
            blocks[i].input = "".join(fragments)  # a JSON string: parse_arguments reads it (or names its error)
    message.content = [blocks[i] for i in sorted(blocks)]
    message.usage = usage
    return message


def create_model(config: ProviderConfig) -> Model:
    """Provider factory for ``anthropic``.

    Raises:
        ModelSettingsError: no API key, or a bad setting (code 18).
    """
    return AnthropicModel(config)
