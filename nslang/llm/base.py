"""The provider-neutral model interface every LLM provider implements (pydantic-ai style).

The AI worker manager (:mod:`nslang.workers`) never talks to a vendor API directly: it asks a
provider factory for a :class:`Model` and calls :meth:`Model.request` with a list of
:class:`Message` objects and a settings mapping (a definition's ``base_config`` merged with any
overrides, spec ai_workers.md Part 1 "LLM providers"). A model answers with a :class:`ModelResponse`
carrying the reply text and the provider's own token counts. Given an ``on_token`` callback, a model
streams: it calls the callback with each piece of reply text as it arrives and still returns the whole
:class:`ModelResponse` at the end (issue 14 item 2).

Offline doubles live in :mod:`nslang.llm.testing`; HTTP providers (one module per wire format) are
added beside this module and must call :func:`check_allow_model_requests` before any network request,
so test suites can switch real requests off globally (house rule 11).

Errors: a model raises :class:`~nslang.errors.LLMError` (code 16) for a failed call,
:class:`LLMRefusalError` (code 16) when the model declined to answer (OpenAI ``refusal``, Anthropic
``stop_reason: "refusal"``; issue 14 item 1), :class:`LLMTimeoutError` (code 31) when the call ran out
of time, and
:class:`~nslang.errors.LLMHTTPError` for an HTTP error status; a factory raises
:class:`ModelSettingsError` (code 18) for a missing key or an unusable setting. Messages never
contain an API key.

Conversation shaping (:func:`build_messages`), the same for every provider:

* ``base_config.system_prompt`` (a string) becomes one ``system`` message at the start;
* ``base_config.max_history_turns`` (an integer N >= 0) bounds what is sent: the system prompt, then
  the last N earlier exchanges (one user turn and the assistant's reply each), then the new user
  turn. Older turns are not sent, but the instance keeps its whole history (``GetHistory`` shows it).
  Unset means the whole history is sent.
* ``base_config.max_prompt_chars`` (a positive integer, default :data:`DEFAULT_MAX_PROMPT_CHARS`)
  caps what is sent: when the messages' texts together are longer, the call is refused before the
  model is called, with :class:`PromptTooLargeError` (code 37) and no performance record (issue 10
  item 6).
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from ..errors import ErrorCode, LLMError, NSRuntimeError, UsageError
from .messages import Message, ToolCall, ToolDeclaration

__all__ = [
    "ALLOW_MODEL_REQUESTS",
    "DEFAULT_MAX_PROMPT_CHARS",
    "LLMConnectionError",
    "LLMRefusalError",
    "LLMTimeoutError",
    "Message",
    "Model",
    "ModelResponse",
    "ModelSettingsError",
    "PromptTooLargeError",
    "ProviderConfig",
    "ToolCall",
    "ToolDeclaration",
    "build_messages",
    "check_allow_model_requests",
    "check_prompt_size",
    "override_allow_model_requests",
]

#: Conversation roles (ai_workers.md §1.1 ``Role``).
ROLES = ("system", "user", "assistant", "tool")

#: Default of ``base_config.max_prompt_chars``: the longest prompt sent, in characters of all messages.
DEFAULT_MAX_PROMPT_CHARS = 1_000_000

#: When False, HTTP models refuse to send requests (:func:`check_allow_model_requests`). Offline
#: models (``test``, ``custom``) ignore it. Test suites set it to False in an autouse fixture.
ALLOW_MODEL_REQUESTS = True


class LLMTimeoutError(LLMError):
    """Raised when a model call did not finish in time (code 31, Timeout)."""

    default_code = ErrorCode.TIMEOUT


class LLMConnectionError(LLMError):
    """Raised when the provider could not be reached (refused, reset, DNS, protocol; code 16).

    Like :class:`LLMTimeoutError` and a 408/409/429/5xx :class:`~nslang.errors.LLMHTTPError`, it makes
    a definition's ``fallback`` serve the call (issue 14 item 5).
    """


class PromptTooLargeError(NSRuntimeError):
    """Raised before a model call whose messages exceed ``base_config.max_prompt_chars`` (code 37)."""

    default_code = ErrorCode.RESOURCE_EXHAUSTION


class LLMRefusalError(LLMError):
    """Raised when the model declined to answer (code 16, LLMError): the message quotes its refusal.

    A refusal is never returned as a reply, so a script cannot mistake it for an answer; ``on error``
    catches it like any failed model call (issue 14 item 1).
    """


class ModelSettingsError(NSRuntimeError):
    """Raised when a model cannot be built: a missing API key or an unusable setting (code 18)."""

    default_code = ErrorCode.CONFIGURATION


@dataclass(frozen=True, slots=True)
class ModelResponse:
    """A model's answer to one request.

    Attributes:
        text: the reply text (may be empty; the worker manager treats an empty reply as a failure).
        input_tokens: prompt tokens as the provider reported them, or None when it reported none.
        output_tokens: completion tokens as reported, or None.
        finish_reason: the provider's reason for stopping (``stop``, ``length``, …), or ``""``.
        model: the model that answered, as the provider names it, or ``""``.
        cache_read_tokens: input tokens read from the provider's prompt cache (OpenAI
            ``prompt_tokens_details.cached_tokens``, Anthropic ``cache_read_input_tokens``, Gemini
            ``cachedContentTokenCount``), or None when not reported. Included in ``input_tokens``.
        cache_write_tokens: input tokens written to the prompt cache (Anthropic
            ``cache_creation_input_tokens``), or None. Included in ``input_tokens``.
        reasoning_tokens: output tokens spent on reasoning (OpenAI
            ``completion_tokens_details.reasoning_tokens``, Gemini ``thoughtsTokenCount``), or None.
            Included in ``output_tokens`` (they are billed as output).
        tool_calls: the tool calls the model asked for (issue 12); the finish reason is then
            ``tool_calls`` for every provider except Gemini, which keeps ``stop``.

    ``input_tokens`` is always the whole prompt, cached parts included (for Anthropic, whose
    ``input_tokens`` excludes them, the provider module adds them), as genai-prices expects
    (issue 14 item 3).
    """

    text: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    finish_reason: str = ""
    model: str = ""
    _: KW_ONLY  # the split usage and the tool calls are passed by name
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    tool_calls: tuple[ToolCall, ...] = ()

    @property
    def usage_reported(self) -> bool:
        """True when the provider reported both token counts (they are then never estimated)."""
        return self.input_tokens is not None and self.output_tokens is not None


@dataclass(frozen=True)
class ProviderConfig:
    """Everything a provider factory needs to build a :class:`Model` for one call.

    Attributes:
        provider: the definition's ``provider`` (``openai``, ``test``, ``custom``, …).
        model_name: the definition's ``model_name``.
        settings: the effective configuration (``base_config`` ⊕ overrides). Keys understood by
            every provider: ``temperature``, ``top_p``, ``max_tokens``, ``base_url``, ``timeout_s``
            (seconds), ``max_retries``; other keys are passed through to the provider request.
        api_key: the resolved API key, or None. Never part of ``repr``; never log it.
        http_client: returns the interpreter's one shared ``httpx.Client`` (created on first call).
        definition_name: the worker definition's name, for error messages.
        deadline: the ``time.monotonic()`` value by which the call must be over (the run's deadline),
            or None; HTTP providers bound their attempts, retries and waits by it (issue 10 item 6).
    """

    provider: str
    model_name: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    api_key: str | None = field(default=None, repr=False)
    http_client: Callable[[], Any] | None = field(default=None, repr=False)
    definition_name: str = ""
    deadline: float | None = None


class Model(abc.ABC):
    """A configured model that answers requests. Implementations must be thread-safe."""

    @property
    @abc.abstractmethod
    def provider(self) -> str:
        """The provider name (``test``, ``custom``, ``openai``, …)."""

    @property
    @abc.abstractmethod
    def model_name(self) -> str:
        """The model name sent to the provider."""

    @abc.abstractmethod
    def request(self, messages: Sequence[Message], settings: Mapping[str, Any],
                on_token: Callable[[str], None] | None = None,
                tools: Sequence[ToolDeclaration] = ()) -> ModelResponse:
        """Send the conversation and return the model's reply.

        Args:
            messages: the conversation so far; the last one is normally the new ``user`` turn, or
                the ``tool`` turns answering the previous reply's tool calls.
            settings: the effective configuration (see :class:`ProviderConfig`).
            on_token: when given, stream: call it with each piece of reply text (a non-empty ``str``)
                as it arrives; the returned response still holds the whole reply, the usage and the
                tool calls (a streamed reply's tool calls are folded from their fragments).
            tools: the tools offered (issue 12). The manager passes this keyword only when it is
                non-empty, so a model written before tool calling keeps working without tools.

        Returns:
            The reply with the provider's token counts.

        Raises:
            LLMError: the call failed (code 16); LLMTimeoutError (code 31) when it timed out.
        """


def build_messages(history: Sequence[Message], prompt: str, settings: Mapping[str, Any]) -> list[Message]:
    """The messages to send for a new user turn ``prompt`` after ``history`` (see the module docstring).

    Args:
        history: earlier turns, oldest first (``user``/``assistant`` pairs; ``system`` turns in it
            are always kept).
        prompt: the new user turn.
        settings: the effective configuration; reads ``system_prompt`` and ``max_history_turns``.

    Raises:
        ModelSettingsError: ``system_prompt`` is not a string, ``max_history_turns`` is not a
            non-negative integer or ``max_prompt_chars`` not a positive integer (code 18).
        PromptTooLargeError: the messages are longer than ``max_prompt_chars`` characters (code 37).
    """
    system = settings.get("system_prompt")
    if system is not None and not isinstance(system, str):
        raise ModelSettingsError(f"base_config.system_prompt must be a string, got {type(system).__name__}")
    limit = settings.get("max_history_turns")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit < 0
                              or limit != int(limit)):
        raise ModelSettingsError(f"base_config.max_history_turns must be a non-negative integer, got {limit!r}")
    kept = [m for m in history if m.role == "system"]
    turns = [m for m in history if m.role != "system"]
    if limit is not None:
        # an exchange starts at a user turn: keep the last N of them and what follows each
        starts = [i for i, m in enumerate(turns) if m.role == "user"]
        n = int(limit)
        turns = turns[starts[-n]:] if 0 < n <= len(starts) else ([] if n == 0 else turns)
    out = [Message("system", system)] if system else []
    messages = [*out, *kept, *turns, Message("user", prompt)]
    check_prompt_size(messages, settings, " (base_config.max_history_turns sends fewer earlier turns)" if history
                      else "")
    return messages


def check_prompt_size(messages: Sequence[Message], settings: Mapping[str, Any], hint: str = "") -> None:
    """Refuse ``messages`` longer than ``base_config.max_prompt_chars`` characters (all turns' text;
    a tool-calling loop checks its growing conversation before each model call, issue 12).

    Raises:
        ModelSettingsError: ``max_prompt_chars`` is not a positive integer (code 18).
        PromptTooLargeError: the messages are longer (code 37); ``hint`` is added to the message.
    """
    cap = settings.get("max_prompt_chars", DEFAULT_MAX_PROMPT_CHARS)
    if isinstance(cap, bool) or not isinstance(cap, (int, float)) or cap < 1 or cap != int(cap):
        raise ModelSettingsError(f"base_config.max_prompt_chars must be a positive integer, got {cap!r}")
    size = sum(len(m.content) for m in messages)
    if size > cap:
        raise PromptTooLargeError(f"the prompt is {size:,} characters long (system prompt and history included), "
                                  f"more than base_config.max_prompt_chars = {int(cap):,}; nothing was sent" + hint)


def check_allow_model_requests() -> None:
    """Raise :class:`~nslang.errors.UsageError` when real model requests are switched off.

    HTTP providers call this before sending anything (house rule 11).
    """
    if not ALLOW_MODEL_REQUESTS:
        raise UsageError(
            "real LLM requests are disabled (nslang.llm.base.ALLOW_MODEL_REQUESTS is False); "
            "use the offline 'test' provider or a 'custom' provider"
        )


@contextlib.contextmanager
def override_allow_model_requests(allow: bool) -> Iterator[None]:
    """Temporarily set :data:`ALLOW_MODEL_REQUESTS` (for tests)."""
    global ALLOW_MODEL_REQUESTS
    old = ALLOW_MODEL_REQUESTS
    ALLOW_MODEL_REQUESTS = allow
    try:
        yield
    finally:
        ALLOW_MODEL_REQUESTS = old
