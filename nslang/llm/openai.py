"""OpenAI Chat Completions (providers ``openai`` and ``local``) over httpx.

``POST {base_url}/chat/completions`` with ``Authorization: Bearer <key>``.

* ``openai``: base URL ``https://api.openai.com/v1`` unless ``base_config.base_url`` names another
  compatible server (OpenRouter-style gateways, Azure-style proxies, …); an API key is required.
* ``local``: any OpenAI-compatible server (llama.cpp ``llama-server``, vLLM, LM Studio, …);
  ``base_config.base_url`` is required and is the API root including ``/v1``
  (e.g. ``http://127.0.0.1:8080/v1``); the key is optional (sent as a bearer token when given).

Mapping: system/user/assistant turns become ``messages`` in order; ``temperature`` and ``top_p`` as
is; ``max_tokens`` becomes ``max_completion_tokens`` for api.openai.com (the newer models refuse
``max_tokens``) and ``max_tokens`` elsewhere. Other ``base_config`` keys (``seed``, ``stop``,
``response_format``, ``presence_penalty``, …) are added to the request body. The reply is
``choices[0].message.content``; usage is ``usage.prompt_tokens`` / ``usage.completion_tokens``, with
``prompt_tokens_details.cached_tokens`` (cache read) and ``completion_tokens_details.reasoning_tokens``; the
finish reason is ``choices[0].finish_reason`` (``stop``, ``length``, ``content_filter``, …).

Tool calling (issue 12): offered tools go in ``tools`` as ``{"type": "function", "function": {name,
description, parameters}}`` with ``tool_choice: "auto"`` (a ``base_config.tool_choice`` wins). The
reply's ``message.tool_calls`` (``{id, type: "function", function: {name, arguments}}``, arguments a
JSON *string*) become :class:`~nslang.llm.messages.ToolCall` objects; an assistant turn with tool
calls is sent back the same way and each result as ``{"role": "tool", "tool_call_id", "content"}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..errors import LLMError
from ._http import HTTPProvider, Settings, parse_settings, pass_through, require_key
from .base import Message, Model, ModelResponse, ModelSettingsError, ProviderConfig
from .messages import ToolDeclaration, parse_arguments

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
                tools: Sequence[ToolDeclaration] = ()) -> ModelResponse:
        """Send the conversation (and the offered tools) to ``/chat/completions``; the first choice."""
        s = parse_settings(settings, self._who)
        http = self._provider(s)
        official = "api.openai.com" in http.base_url
        extra = dict(s.extra)
        if tools:
            extra["tools"] = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                                 "parameters": dict(t.parameters)}} for t in tools]
            extra.setdefault("tool_choice", "auto")
        body = ChatCompletionRequest(
            model=self.model_name,
            messages=[_message(m) for m in messages],
            temperature=s.temperature,
            top_p=s.top_p,
            max_tokens=None if official else s.max_tokens,
            max_completion_tokens=s.max_tokens if official else None,
            **pass_through(extra, ChatCompletionRequest),
        )
        resp = http.post("chat/completions", body, ChatCompletionResponse, s)
        if not resp.choices:
            raise LLMError(f"{http.who}: the response has no choices")
        choice = resp.choices[0]
        text = choice.message.content
        if text is None:
            text = choice.message.refusal or ""
        usage = resp.usage
        pdet = usage.prompt_tokens_details if usage else None
        cdet = usage.completion_tokens_details if usage else None
        return ModelResponse(
            text=text,
            input_tokens=usage.prompt_tokens if usage else None,
            output_tokens=usage.completion_tokens if usage else None,
            finish_reason=choice.finish_reason or "",
            model=resp.model or self.model_name,
            cache_read_tokens=pdet.cached_tokens if pdet else None,
            reasoning_tokens=cdet.reasoning_tokens if cdet else None,
            tool_calls=tuple(parse_arguments(c.id or f"call_{i}", c.function.name, c.function.arguments)
                             for i, c in enumerate(choice.message.tool_calls or ())),
        )


def create_model(config: ProviderConfig) -> Model:
    """Provider factory for ``openai`` and ``local``.

    Raises:
        ModelSettingsError: no key for api.openai.com, no base_url for ``local``, or a bad setting (code 18).
    """
    return OpenAIModel(config)
