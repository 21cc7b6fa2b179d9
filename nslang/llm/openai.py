"""OpenAI Chat Completions (providers ``openai`` and ``local``) over httpx.

``POST {base_url}/chat/completions`` with ``Authorization: Bearer <key>``.

* ``openai``: base URL ``https://api.openai.com/v1`` unless ``base_config.base_url`` names another
  compatible server (OpenRouter-style gateways, Azure-style proxies, …); an API key is required.
* ``local``: any OpenAI-compatible server (llama.cpp ``llama-server``, vLLM, LM Studio, …);
  ``base_config.base_url`` is required and is the API root including ``/v1``
  (e.g. ``http://127.0.0.1:8080/v1``); the key is optional (sent as a bearer token when given).

Mapping: system/user/assistant turns become ``messages`` in order; ``temperature`` and ``top_p`` as
is; ``max_tokens`` is sent as the field ``base_config.max_tokens_field`` names (``"max_tokens"`` or
``"max_completion_tokens"``); by default ``max_completion_tokens`` for api.openai.com (the newer models
refuse ``max_tokens``) and ``max_tokens`` elsewhere (set ``max_tokens_field: "max_completion_tokens"``
for a gateway serving reasoning models). Other ``base_config`` keys (``seed``, ``stop``,
``response_format``, ``presence_penalty``, ``max_completion_tokens``, …) are added to the request body
as written and win over a mapped value; ``model``, ``messages``, ``stream`` and ``stream_options`` are
nslang's own (an error if set). The reply is ``choices[0].message.content``; usage is
``usage.prompt_tokens`` / ``usage.completion_tokens``, with ``prompt_tokens_details.cached_tokens``
(cache read) and ``completion_tokens_details.reasoning_tokens``; the finish reason is
``choices[0].finish_reason`` (``stop``, ``length``, ``content_filter``, …). A reply with no content
and a ``refusal`` is a :class:`~nslang.llm.base.LLMRefusalError` quoting it (issue 14 item 1).

Streaming (``on_token``): the same request with ``"stream": true`` and
``"stream_options": {"include_usage": true}``; the ``chat.completion.chunk`` events are folded into one
:class:`ChatCompletionResponse` (``delta.content`` and ``delta.refusal`` concatenated, the last
``finish_reason``, ``usage`` from the final chunk) which then goes through the same mapping; the
stream ends at ``data: [DONE]``; a ``data: {"error": …}`` event fails the call with its message.

Tool calling (issue 12): offered tools go in ``tools`` as ``{"type": "function", "function": {name,
description, parameters}}`` with ``tool_choice: "auto"`` (a ``base_config.tool_choice`` wins;
entries of ``base_config.provider_tools`` come first). The reply's ``message.tool_calls`` (``{id, type: "function",
function: {name, arguments}}``, arguments a JSON *string*) become
:class:`~nslang.llm.messages.ToolCall` objects; an assistant turn with tool calls is sent back the same
way and each result as ``{"role": "tool", "tool_call_id", "content"}``. A streamed reply's
``delta.tool_calls`` are folded by their ``index``: the first fragment brings ``id`` and
``function.name``, later ones append to ``function.arguments``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import LLMError
from ._http import HTTPProvider, Settings, build, parse_settings, request_fields, require_key, with_tools
from .base import LLMRefusalError, Message, Model, ModelResponse, ModelSettingsError, ProviderConfig
from .messages import ToolDeclaration, parse_arguments
from .streaming import TokenSink, iter_sse

__all__ = ["DEFAULT_BASE_URL", "ChatCompletionRequest", "ChatCompletionResponse", "OpenAIModel", "create_model"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class FunctionCall(BaseModel):
    """``tool_calls[i].function``: the name and the arguments as a JSON string."""

    model_config = ConfigDict(extra="ignore")

    name: str = ""
    arguments: str | None = None


class ToolCallItem(BaseModel):
    """One of ``tool_calls`` (request and response)."""

    model_config = ConfigDict(extra="ignore")

    id: str = ""
    type: str = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    """One ``messages`` item of the request."""

    role: str
    content: str | None
    tool_calls: list[ToolCallItem] | None = None
    tool_call_id: str | None = None


def _message(m: Message) -> ChatMessage:
    if m.role == "tool":
        return ChatMessage(role="tool", content=m.content, tool_call_id=m.tool_call_id)
    if m.tool_calls:
        # malformed arguments are sent back as {} (the tool turn that follows names the error)
        calls = [ToolCallItem(id=c.id, function=FunctionCall(
            name=c.name, arguments=json.dumps(c.arguments, ensure_ascii=False) if c.arguments is not None else "{}"))
            for c in m.tool_calls]
        return ChatMessage(role=m.role, content=m.content or None, tool_calls=calls)
    return ChatMessage(role=m.role, content=m.content)


class ChatCompletionRequest(BaseModel):
    """The request body; extra keys are pass-through ``base_config`` keys."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatMessage]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ResponseMessage(_Lenient):
    """``choices[i].message``."""

    role: str = "assistant"
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCallItem] | None = None


class Choice(_Lenient):
    """One of ``choices``."""

    index: int = 0
    message: ResponseMessage
    finish_reason: str | None = None


class PromptTokensDetails(_Lenient):
    """``usage.prompt_tokens_details``: ``cached_tokens`` were read from the prompt cache."""

    cached_tokens: int | None = None


class CompletionTokensDetails(_Lenient):
    """``usage.completion_tokens_details``: ``reasoning_tokens`` (part of ``completion_tokens``)."""

    reasoning_tokens: int | None = None


class Usage(_Lenient):
    """``usage``: ``prompt_tokens`` (input, cached included) and ``completion_tokens`` (output, reasoning
    included), with their details."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None


class ChatCompletionResponse(_Lenient):
    """The response body (a ``chat.completion`` object)."""

    id: str = ""
    model: str = ""
    choices: list[Choice]
    usage: Usage | None = None


class DeltaFunction(_Lenient):
    """``delta.tool_calls[i].function``: the name (first fragment) and a piece of the arguments string."""

    name: str | None = None
    arguments: str | None = None


class DeltaToolCall(_Lenient):
    """A fragment of a streamed tool call, keyed by ``index`` (``id`` and the name come first)."""

    index: int = 0
    id: str | None = None
    function: DeltaFunction = Field(default_factory=DeltaFunction)


class Delta(_Lenient):
    """``choices[i].delta`` of a stream chunk."""

    content: str | None = None
    refusal: str | None = None
    tool_calls: list[DeltaToolCall] | None = None


class ChunkChoice(_Lenient):
    """One of a chunk's ``choices``."""

    index: int = 0
    delta: Delta = Field(default_factory=Delta)
    finish_reason: str | None = None


class ChatCompletionChunk(_Lenient):
    """One streamed ``chat.completion.chunk``; with ``include_usage`` the last one has ``usage`` and no choices."""

    id: str = ""
    model: str = ""
    choices: list[ChunkChoice] = Field(default_factory=list)
    usage: Usage | None = None


#: Request fields nslang fills itself: base_config may not set them.
RESERVED = frozenset({"model", "messages", "stream", "stream_options"})
MAX_TOKENS_FIELDS = ("max_tokens", "max_completion_tokens")


class OpenAIModel(Model):
    """A Chat Completions model (``openai`` or ``local``)."""

    def __init__(self, config: ProviderConfig) -> None:
        self._config = config
        self._who = f"provider '{config.provider}' (worker '{config.definition_name}')"
        settings = parse_settings(config.settings, self._who)
        key = config.api_key
        if config.provider == "local":
            if settings.base_url is None:
                raise ModelSettingsError(
                    f"AI worker definition '{config.definition_name}': provider 'local' needs base_config.base_url, "
                    "the server's OpenAI-compatible API root (e.g. http://127.0.0.1:8080/v1 for llama.cpp)"
                )
        elif settings.base_url is None or "api.openai.com" in settings.base_url:
            key = require_key(config, "OPENAI_API_KEY")
        self._key = key

    @property
    def provider(self) -> str:
        return self._config.provider

    @property
    def model_name(self) -> str:
        return self._config.model_name

    def _provider(self, settings: Settings) -> HTTPProvider:
        headers = {"authorization": f"Bearer {self._key}"} if self._key else {}
        return HTTPProvider(self._config, settings.base_url or DEFAULT_BASE_URL, headers)

    def request(self, messages: Sequence[Message], settings: Mapping[str, Any],
                on_token: TokenSink | None = None, tools: Sequence[ToolDeclaration] = ()) -> ModelResponse:
        """Send the conversation (and the offered tools) to ``/chat/completions`` and return the first
        choice (streamed when ``on_token`` is given).

        Raises:
            LLMRefusalError: the model refused (code 16). ModelSettingsError: a bad setting (code 18).
            LLMHTTPError, LLMTimeoutError, LLMError: see :mod:`nslang.llm._http`.
        """
        s = parse_settings(settings, self._who)
        http = self._provider(s)
        field = settings.get("max_tokens_field")
        if field is None:
            field = "max_completion_tokens" if "api.openai.com" in http.base_url else "max_tokens"
        elif field not in MAX_TOKENS_FIELDS:
            raise ModelSettingsError(f"{self._who}: base_config.max_tokens_field must be \"max_tokens\" or "
                                     f"\"max_completion_tokens\", got {field!r}")
        mapped: dict[str, Any] = {
            "model": self.model_name,
            "messages": [_message(m) for m in messages],
            "temperature": s.temperature, "top_p": s.top_p, field: s.max_tokens,
        }
        if tools:
            mapped["tool_choice"] = "auto"
        extra = with_tools(s.extra, [{"type": "function", "function": {
            "name": t.name, "description": t.description, "parameters": dict(t.parameters)}} for t in tools],
            s.provider_tools)
        fields = request_fields(mapped, extra, RESERVED, self._who)
        if on_token is None:
            resp = http.post("chat/completions", build(ChatCompletionRequest, self._who, fields),
                             ChatCompletionResponse, s)
        else:
            body = build(ChatCompletionRequest, self._who,
                         {**fields, "stream": True, "stream_options": {"include_usage": True}})
            resp = http.stream("chat/completions", body, s, lambda chunks: _fold(http, chunks, on_token))
        return self._response(http, resp)

    def _response(self, http: HTTPProvider, resp: ChatCompletionResponse) -> ModelResponse:
        """The one mapping of a (non-streamed or folded) response."""
        if not resp.choices:
            raise LLMError(f"{http.who}: the response has no choices")
        choice = resp.choices[0]
        text = choice.message.content
        if not text and choice.message.refusal and not choice.message.tool_calls:
            raise LLMRefusalError(f"{http.who}: the model refused: {choice.message.refusal}")
        usage = resp.usage
        pdet = usage.prompt_tokens_details if usage else None
        cdet = usage.completion_tokens_details if usage else None
        return ModelResponse(
            text=text or "",
            input_tokens=usage.prompt_tokens if usage else None,
            output_tokens=usage.completion_tokens if usage else None,
            finish_reason=choice.finish_reason or "",
            model=resp.model or self.model_name,
            cache_read_tokens=pdet.cached_tokens if pdet else None,
            reasoning_tokens=cdet.reasoning_tokens if cdet else None,
            tool_calls=tuple(parse_arguments(c.id or f"call_{i}", c.function.name, c.function.arguments)
                             for i, c in enumerate(choice.message.tool_calls or ())),
        )


def _fold(http: HTTPProvider, chunks: Iterator[bytes], on_token: TokenSink) -> ChatCompletionResponse:
    """The ``chat.completion.chunk`` events of a stream as one response (first choice only)."""
    text: list[str] = []
    refusal: list[str] = []
    calls: dict[int, dict[str, Any]] = {}  # index -> id, name, argument fragments
    finish: str | None = None
    usage: Usage | None = None
    ident = model = ""
    for event in iter_sse(chunks):
        if event.data.strip() == "[DONE]":
            break
        chunk = http.event(event.data, ChatCompletionChunk)
        ident, model = chunk.id or ident, chunk.model or model
        usage = chunk.usage or usage
        for c in chunk.choices:
            if c.index != 0:
                continue
            if c.delta.content:
                text.append(c.delta.content)
                on_token(c.delta.content)
            if c.delta.refusal:
                refusal.append(c.delta.refusal)
            for d in c.delta.tool_calls or ():
                call = calls.setdefault(d.index, {"id": "", "name": "", "arguments": []})
                call["id"] = d.id or call["id"]
                call["name"] = d.function.name or call["name"]
                if d.function.arguments:
                    call["arguments"].append(d.function.arguments)
            finish = c.finish_reason or finish
    if not (text or refusal or finish or calls):
        raise LLMError(f"{http.who}: the stream ended without a reply")
    tool_calls = [ToolCallItem(id=c["id"], function=FunctionCall(name=c["name"], arguments="".join(c["arguments"])
                                                                 if c["arguments"] else None))
                  for _, c in sorted(calls.items())]
    message = ResponseMessage(content="".join(text) if text else None, refusal="".join(refusal) or None,
                              tool_calls=tool_calls or None)
    return ChatCompletionResponse(id=ident, model=model, choices=[Choice(message=message, finish_reason=finish)],
                                  usage=usage)


def create_model(config: ProviderConfig) -> Model:
    """Provider factory for ``openai`` and ``local``.

    Raises:
        ModelSettingsError: no key for api.openai.com, no base_url for ``local``, or a bad setting (code 18).
    """
    return OpenAIModel(config)
