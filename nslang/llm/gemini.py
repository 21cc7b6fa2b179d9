"""Google Gemini ``generateContent`` (provider ``google``) over httpx.

``POST {base_url}/models/{model}:generateContent`` (base URL
``https://generativelanguage.googleapis.com/v1beta`` unless ``base_config.base_url`` says otherwise)
with the key in the ``x-goog-api-key`` header (never in the URL); an API key is required. A model
name that already contains ``/`` (``models/…``, ``tunedModels/…``) is used as given.

Mapping: ``system`` turns (``base_config.system_prompt`` included) are joined into
``systemInstruction``; user turns become ``contents`` with role ``user`` and assistant turns role
``model`` (consecutive turns of one role are merged into one content with several parts).
``temperature``, ``top_p`` and ``max_tokens`` become ``generationConfig.temperature``, ``topP`` and
``maxOutputTokens``. Other ``base_config`` keys go into ``generationConfig`` as written (``topK``,
``stopSequences``, ``responseMimeType``, and ``maxOutputTokens`` / ``topP`` themselves, which win over
the mapped values; issue 14 item 1), except the top-level request fields ``safetySettings``,
``tools``, ``toolConfig``, ``cachedContent`` and ``labels``; ``contents`` and ``systemInstruction`` are
nslang's own (an error if set). The reply is the text of
``candidates[0].content.parts`` (thought parts skipped); input tokens are
``usageMetadata.promptTokenCount``, output tokens ``candidatesTokenCount`` plus
``thoughtsTokenCount`` (thinking is billed as output; also reported apart as reasoning tokens), cache
reads ``cachedContentTokenCount`` (part of ``promptTokenCount``). ``finishReason`` is reported in the common
vocabulary: ``STOP`` → ``stop``, ``MAX_TOKENS`` → ``length``, the safety reasons → ``content_filter``,
others lower-cased. A prompt blocked before any candidate is an error naming ``blockReason``.

Tool calling (issue 12): offered tools go in ``tools`` as one ``{"functionDeclarations": [{name,
description, parameters}]}`` entry (after the entries of ``base_config.provider_tools``, e.g. ``googleSearch``).
The reply's ``functionCall`` parts (``{name, args}``, args an object) become
:class:`~nslang.llm.messages.ToolCall` objects (ids ``call_<n>``, never sent back); the finish reason
stays ``STOP`` (``stop``). An assistant turn with tool calls is sent back as a ``model`` content of
``functionCall`` parts, each result as a ``user`` ``functionResponse`` part ``{name, response:
{"result": text}}`` (``{"error": text}`` for a failure).

Streaming (``on_token``): ``POST …:streamGenerateContent?alt=sse``; each event is a
``GenerateContentResponse`` holding the next parts; they are folded into one response (parts appended,
the last ``finishReason``, ``usageMetadata`` and ``modelVersion`` seen) that goes through the same
mapping (``functionCall`` parts included, so a streamed reply's tool calls are kept). A 429 whose body
carries ``RetryInfo.retryDelay`` waits that long before retrying (:mod:`nslang.llm._http`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import LLMError
from ._http import HTTPProvider, build, join_system, parse_settings, request_fields, require_key, with_tools
from .base import Message, Model, ModelResponse, ProviderConfig
from .messages import ToolDeclaration, parse_arguments
from .streaming import TokenSink, iter_sse

__all__ = ["DEFAULT_BASE_URL", "GeminiModel", "GenerateContentRequest", "GenerateContentResponse", "create_model"]

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
#: Pass-through keys that are request fields rather than ``generationConfig`` fields.
TOP_LEVEL_KEYS = frozenset({"safetySettings", "safety_settings", "tools", "toolConfig", "tool_config",
                            "cachedContent", "cached_content", "labels"})
#: Request fields nslang fills itself: base_config may not set them.
RESERVED = frozenset({"contents", "systemInstruction", "system_instruction"})
FILTERED = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"})


def _finish(reason: str | None) -> str:
    if not reason or reason == "FINISH_REASON_UNSPECIFIED":
        return ""
    if reason == "STOP":
        return "stop"
    if reason == "MAX_TOKENS":
        return "length"
    if reason in FILTERED:
        return "content_filter"
    return reason.lower()


class Part(BaseModel):
    """One part of a content; nslang sends and reads text, ``functionCall`` and ``functionResponse`` parts."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    text: str | None = None
    thought: bool | None = None
    function_call: dict[str, Any] | None = Field(default=None, alias="functionCall")
    function_response: dict[str, Any] | None = Field(default=None, alias="functionResponse")


class Content(BaseModel):
    """A ``Content``: a role (``user`` or ``model``) and its parts."""

    model_config = ConfigDict(extra="ignore")

    role: str | None = None
    parts: list[Part] = Field(default_factory=list)


class GenerationConfig(BaseModel):
    """``generationConfig``; extra keys are pass-through ``base_config`` keys."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    temperature: float | None = None
    top_p: float | None = Field(default=None, alias="topP")
    max_output_tokens: int | None = Field(default=None, alias="maxOutputTokens")


class GenerateContentRequest(BaseModel):
    """The request body; extra keys are top-level pass-through keys."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    contents: list[Content]
    system_instruction: Content | None = Field(default=None, alias="systemInstruction")
    generation_config: GenerationConfig | None = Field(default=None, alias="generationConfig")


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, protected_namespaces=())


class Candidate(_Lenient):
    """One of ``candidates``."""

    content: Content | None = None
    finish_reason: str | None = Field(default=None, alias="finishReason")


class UsageMetadata(_Lenient):
    """``usageMetadata``."""

    prompt_token_count: int | None = Field(default=None, alias="promptTokenCount")
    candidates_token_count: int | None = Field(default=None, alias="candidatesTokenCount")
    thoughts_token_count: int | None = Field(default=None, alias="thoughtsTokenCount")
    cached_content_token_count: int | None = Field(default=None, alias="cachedContentTokenCount")
    total_token_count: int | None = Field(default=None, alias="totalTokenCount")


class PromptFeedback(_Lenient):
    """``promptFeedback`` (set when the prompt was blocked)."""

    block_reason: str | None = Field(default=None, alias="blockReason")


class GenerateContentResponse(_Lenient):
    """The response body."""

    candidates: list[Candidate] = Field(default_factory=list)
    usage_metadata: UsageMetadata | None = Field(default=None, alias="usageMetadata")
    model_version: str = Field(default="", alias="modelVersion")
    prompt_feedback: PromptFeedback | None = Field(default=None, alias="promptFeedback")


def _parts(m: Message) -> list[Part]:
    if m.role == "tool":
        key = "error" if m.is_error else "result"
        return [Part(functionResponse={"name": m.name, "response": {key: m.content}})]
    parts = [Part(text=m.content)] if m.content or not m.tool_calls else []
    return parts + [Part(functionCall={"name": c.name, "args": c.arguments or {}}) for c in m.tool_calls]


def _contents(messages: Sequence[Message]) -> list[Content]:
    out: list[Content] = []
    for m in messages:
        if m.role == "system":
            continue
        role = "model" if m.role == "assistant" else "user"
        if out and out[-1].role == role:
            out[-1].parts.extend(_parts(m))
        else:
            out.append(Content(role=role, parts=_parts(m)))
    return out


class GeminiModel(Model):
    """A Gemini model behind ``generateContent``."""

    def __init__(self, config: ProviderConfig) -> None:
        self._config = config
        self._who = f"provider 'google' (worker '{config.definition_name}')"
        parse_settings(config.settings, self._who)
        self._key = require_key(config, "GEMINI_API_KEY")

    @property
    def provider(self) -> str:
        return "google"

    @property
    def model_name(self) -> str:
        return self._config.model_name

    def request(self, messages: Sequence[Message], settings: Mapping[str, Any],
                on_token: TokenSink | None = None, tools: Sequence[ToolDeclaration] = ()) -> ModelResponse:
        """Send the conversation (and the offered tools) to ``generateContent``
        (``streamGenerateContent`` when ``on_token`` is given) and return the first candidate.

        Raises:
            ModelSettingsError: a bad setting (code 18). LLMHTTPError, LLMTimeoutError, LLMError: see
                :mod:`nslang.llm._http`; LLMError also for a blocked prompt.
        """
        s = parse_settings(settings, self._who)
        http = HTTPProvider(self._config, s.base_url or DEFAULT_BASE_URL, {"x-goog-api-key": self._key})
        turns = list(messages)
        top = with_tools({k: v for k, v in s.extra.items() if k in TOP_LEVEL_KEYS or k in RESERVED},
                         [{"functionDeclarations": [{"name": t.name, "description": t.description,
                                                     "parameters": dict(t.parameters)} for t in tools]}]
                         if tools else [], s.provider_tools)
        gen = request_fields({"temperature": s.temperature, "topP": s.top_p, "maxOutputTokens": s.max_tokens},
                             {k: v for k, v in s.extra.items() if k not in top}, (), self._who)
        config = build(GenerationConfig, self._who, gen)
        system = join_system(turns)
        fields = request_fields({
            "contents": _contents(turns),
            "systemInstruction": Content(parts=[Part(text=system)]) if system else None,
            "generationConfig": config if config.model_dump(exclude_none=True) else None,
        }, top, RESERVED, self._who)
        body = build(GenerateContentRequest, self._who, fields)
        name = self.model_name if "/" in self.model_name else f"models/{self.model_name}"
        if on_token is None:
            resp = http.post(f"{name}:generateContent", body, GenerateContentResponse, s)
        else:
            resp = http.stream(f"{name}:streamGenerateContent", body, s,
                               lambda chunks: _fold(http, chunks, on_token), params={"alt": "sse"})
        return self._response(http, resp)

    def _response(self, http: HTTPProvider, resp: GenerateContentResponse) -> ModelResponse:
        """The one mapping of a (non-streamed or folded) response."""
        if not resp.candidates:
            blocked = resp.prompt_feedback.block_reason if resp.prompt_feedback else None
            raise LLMError(f"{http.who}: no candidates in the response"
                           + (f" (the prompt was blocked: {blocked})" if blocked else ""))
        cand = resp.candidates[0]
        parts = cand.content.parts if cand.content else []
        text = "".join(p.text or "" for p in parts if not p.thought)
        u = resp.usage_metadata
        tout: int | None = None
        if u is not None and (u.candidates_token_count is not None or u.thoughts_token_count is not None):
            tout = (u.candidates_token_count or 0) + (u.thoughts_token_count or 0)
        return ModelResponse(
            text=text,
            input_tokens=u.prompt_token_count if u else None,
            output_tokens=tout,
            finish_reason=_finish(cand.finish_reason),
            model=resp.model_version or self.model_name,
            cache_read_tokens=u.cached_content_token_count if u else None,
            reasoning_tokens=u.thoughts_token_count if u else None,
            tool_calls=tuple(parse_arguments(f"call_{i}", str(p.function_call.get("name", "")),
                                             p.function_call.get("args"))
                             for i, p in enumerate(q for q in parts if q.function_call is not None)),
        )


def _fold(http: HTTPProvider, chunks: Iterator[bytes], on_token: TokenSink) -> GenerateContentResponse:
    """The ``GenerateContentResponse`` events of a stream as one response (first candidate)."""
    folded = GenerateContentResponse()
    parts: list[Part] = []
    finish: str | None = None
    seen = False
    for event in iter_sse(chunks):
        chunk = http.event(event.data, GenerateContentResponse)
        seen = True
        folded.usage_metadata = chunk.usage_metadata or folded.usage_metadata
        folded.model_version = chunk.model_version or folded.model_version
        folded.prompt_feedback = chunk.prompt_feedback or folded.prompt_feedback
        if chunk.candidates:
            cand = chunk.candidates[0]
            for p in cand.content.parts if cand.content else []:
                parts.append(p)
                if p.text and not p.thought:
                    on_token(p.text)
            finish = cand.finish_reason or finish
    if not seen:
        raise LLMError(f"{http.who}: the stream ended without a reply")
    if parts or finish:
        folded.candidates = [Candidate(content=Content(role="model", parts=parts), finishReason=finish)]
    return folded


def create_model(config: ProviderConfig) -> Model:
    """Provider factory for ``google``.

    Raises:
        ModelSettingsError: no API key, or a bad setting (code 18).
    """
    return GeminiModel(config)
