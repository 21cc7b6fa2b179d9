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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..errors import LLMError
from ._http import HTTPProvider, Settings, parse_settings, pass_through, reject_tool_turns, require_key
from .base import Message, Model, ModelResponse, ModelSettingsError, ProviderConfig

__all__ = ["DEFAULT_BASE_URL", "ChatCompletionRequest", "ChatCompletionResponse", "OpenAIModel", "create_model"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class ChatMessage(BaseModel):
    """One ``messages`` item of the request."""

    role: str
    content: str


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

    def request(self, messages: Sequence[Message], settings: Mapping[str, Any]) -> ModelResponse:
        """Send the conversation to ``/chat/completions`` and return the first choice."""
        s = parse_settings(settings, self._who)
        http = self._provider(s)
        reject_tool_turns(list(messages), http.who)
        official = "api.openai.com" in http.base_url
        body = ChatCompletionRequest(
            model=self.model_name,
            messages=[ChatMessage(role=m.role, content=m.content) for m in messages],
            temperature=s.temperature,
            top_p=s.top_p,
            max_tokens=None if official else s.max_tokens,
            max_completion_tokens=s.max_tokens if official else None,
            **pass_through(s.extra, ChatCompletionRequest),
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
        )


def create_model(config: ProviderConfig) -> Model:
    """Provider factory for ``openai`` and ``local``.

    Raises:
        ModelSettingsError: no key for api.openai.com, no base_url for ``local``, or a bad setting (code 18).
    """
    return OpenAIModel(config)
