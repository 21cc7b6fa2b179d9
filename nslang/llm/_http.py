"""What every HTTP provider shares: settings, the provider object (URL, auth, client), retries, errors.

Each wire-format module (:mod:`~nslang.llm.openai`, :mod:`~nslang.llm.anthropic`,
:mod:`~nslang.llm.gemini`, :mod:`~nslang.llm.ollama`) builds its pydantic request body, hands it to
:meth:`HTTPProvider.post` with its pydantic response model, and maps the validated answer to a
:class:`~nslang.llm.base.ModelResponse`. Only this module touches httpx.

Settings (``base_config`` ⊕ overrides, spec ai_workers.md Part 1), read by :func:`parse_settings`:

* ``temperature``, ``top_p`` (numbers), ``max_tokens`` (a positive integer): mapped to each wire format;
* ``base_url`` (``http://`` or ``https://``): the API root (each module documents its default);
* ``timeout_s`` (default 60): seconds for each HTTP attempt, the whole exchange (a server that sends
  its reply byte by byte is cut off); a reply body over 32 MiB fails the attempt;
* ``max_retries`` (default 2): extra attempts after a retryable failure;
* ``retry_backoff_s`` (default 0.5): the first backoff delay;
* ``system_prompt``, ``max_history_turns``, ``max_prompt_chars``: conversation shaping and its size cap
  (:func:`~nslang.llm.base.build_messages`);
* ``stream`` (a boolean): whether the reply is streamed (read by the worker manager, issue 14 item 2);
* every other key is passed through into the provider's request body (each module says where),
  except ``custom_provider`` and the ``test_*`` keys of the offline providers. A key the user sets
  explicitly always reaches the request, and wins over the value nslang would map into the same
  field (``max_completion_tokens``, Gemini's ``maxOutputTokens``, …); only the fields nslang builds
  itself (the model, the conversation, the stream switch: each module lists them) are refused with a
  clear error (issue 14 item 1).

Retry policy. An attempt is retried, up to ``max_retries`` times, when it fails with HTTP 408, 409,
429 or any 5xx status, a connection error (refused, reset, DNS, protocol) or a timeout. The delay
before retry *n* (0-based) is ``min(8, retry_backoff_s * 2**n)`` seconds, shortened by a random jitter
of up to 25 %; when the provider sent ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date),
that delay is used instead, else a ``google.rpc.RetryInfo`` ``retryDelay`` in the error body (Gemini's
429). The provider's ``x-should-retry`` header, when ``true`` or ``false``, decides instead of the status
(as the official OpenAI and Anthropic SDKs do). A provider asking for more than 60 s is not waited
for: the call fails at once with its message. Other statuses (400, 401, 403, 404, …) and malformed
bodies fail at once; so does an HTTP 200 whose body is an ``{"error": …}`` object (some gateways
answer so), with the provider's own message.

Streaming (:meth:`HTTPProvider.stream`): the same retry policy applies until the first byte of a 200
body has arrived; after that nothing is retried (part of the reply may already be shown), and a broken
stream or an error event inside it fails the call with the provider's message. ``timeout_s`` then
bounds each wait for the next bytes (a long reply may take longer as a whole), the run's deadline
and :data:`MAX_RESPONSE_BYTES` bound the whole stream.

The run's deadline (``ProviderConfig.deadline``, set by the worker manager from the interpreter's
``timeout_s``) bounds the whole call, retries and waits included (issue 10 item 6): each attempt's
HTTP timeout is ``min(timeout_s, time left)``, a wait never goes past the deadline, and when it is
reached the call fails with :class:`~nslang.llm.base.LLMTimeoutError` (the manager then ends the run
with the run's own timeout error).

Errors (all :class:`~nslang.errors.NSRuntimeError`). No error text ever contains the API key or a
credential header value, in any form (raw, repr-escaped, JSON-escaped, URL-encoded: every message goes
through :func:`~nslang._redact.scrub`); a header value an HTTP header cannot carry (a control or non-ASCII
character) is refused before anything is sent, without showing it (issue 10 item 1):

* :class:`~nslang.errors.LLMHTTPError` (code 16) for an HTTP error status, with ``status``,
  ``provider`` and ``body`` (the provider's own message);
* :class:`~nslang.llm.base.LLMTimeoutError` (code 31) when the last attempt timed out;
* :class:`~nslang.llm.base.LLMConnectionError` (code 16) for a connection failure;
* :class:`~nslang.errors.LLMError` (code 16) for a malformed response;
* :class:`~nslang.llm.base.ModelSettingsError` (code 18) for a missing key, a bad setting or a header
  value that is not printable ASCII.
"""

from __future__ import annotations

import email.utils
import itertools
import json
import logging
import math
import random
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from .._redact import contains_secret, scrub
from ..errors import ErrorCode, LLMError, LLMHTTPError
from .base import LLMConnectionError, LLMTimeoutError, ModelSettingsError, ProviderConfig, check_allow_model_requests

__all__ = [
    "BACKOFF_MAX_S",
    "CREDENTIAL_HEADERS",
    "DEFAULT_BACKOFF_S",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT_S",
    "HTTPProvider",
    "NSLANG_KEYS",
    "RETRY_AFTER_MAX_S",
    "Settings",
    "backoff_delay",
    "parse_retry_after",
    "parse_settings",
    "require_key",
]

logger = logging.getLogger("nslang.llm")

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_RETRIES = 2
DEFAULT_BACKOFF_S = 0.5
#: The longest computed backoff delay (seconds).
BACKOFF_MAX_S = 8.0
#: A provider's Retry-After above this (seconds) is not waited for: the call fails at once.
RETRY_AFTER_MAX_S = 60.0
#: The largest reply body read, in bytes (a bigger one fails the attempt as a transport error).
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
#: The longest provider message kept in an error.
MAX_MESSAGE_CHARS = 500
#: Headers whose values are credentials (besides any header holding the API key): never in error text.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key",
                                "cookie"})
#: Settings nslang consumes itself; they are never passed through to a provider.
NSLANG_KEYS = frozenset({
    "temperature", "top_p", "max_tokens", "base_url", "timeout_s", "max_retries", "retry_backoff_s",
    "system_prompt", "max_history_turns", "max_prompt_chars", "custom_provider",
    "cache", "cache_ttl_s", "max_cost_usd",  # response cache and task budget (nslang.workers.cassette, .economics)
    # the tool-calling loop's options (a base_config may hold them for worker:NAME delegation, issue 13)
    "tools", "max_iterations", "task_timeout_s", "tool_timeout_s", "max_result_chars",
    "provider_tools",  # a provider's own built-in tools, sent before the offered ones (with_tools)
    "stream", "max_tokens_field",  # streaming (nslang.llm.streaming) and the OpenAI max-tokens field name
})

#: Waits between attempts (tests replace it to keep the suite fast).
sleep: Callable[[float], None] = time.sleep

_M = TypeVar("_M", bound=BaseModel)
_T = TypeVar("_T")


def _should_retry(response: httpx.Response) -> bool:
    """The SDKs' rule: ``x-should-retry: true|false`` decides; else 408, 409, 429 and 5xx are retried."""
    hint = response.headers.get("x-should-retry", "").strip().lower()
    if hint in ("true", "false"):
        return hint == "true"
    status = response.status_code
    return status in (408, 409, 429) or status >= 500


@dataclass(frozen=True)
class Settings:
    """The validated settings of one call.

    Attributes:
        temperature: sampling temperature, or None for the provider's default.
        top_p: nucleus sampling, or None.
        max_tokens: the reply's token limit, or None.
        base_url: the API root without a trailing slash, or None for the provider's default.
        timeout_s: seconds for each HTTP attempt.
        max_retries: extra attempts after a retryable failure.
        backoff_s: the first backoff delay (seconds).
        stream: ``base_config.stream`` (True, False, or None when unset).
        extra: every other key, to pass through into the request body.
        provider_tools: ``base_config.provider_tools``, a provider's own built-in tools (see
            :func:`with_tools`).
    """

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    base_url: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_s: float = DEFAULT_BACKOFF_S
    stream: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    provider_tools: list[Any] = field(default_factory=list)


def _number(settings: Mapping[str, Any], key: str, who: str, *, positive: bool = False) -> float | None:
    v = settings.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 or (positive and v == 0):
        need = "a positive number" if positive else "a non-negative number"
        raise ModelSettingsError(f"{who}: base_config.{key} must be {need}, got {v!r}")
    return float(v)


def _integer(settings: Mapping[str, Any], key: str, who: str, *, positive: bool = False) -> int | None:
    v = _number(settings, key, who, positive=positive)
    if v is None:
        return None
    if v != int(v):
        raise ModelSettingsError(f"{who}: base_config.{key} must be an integer, got {settings[key]!r}")
    return int(v)


def parse_settings(settings: Mapping[str, Any], who: str) -> Settings:
    """Validate the keys every provider understands and collect the rest for pass-through.

    Args:
        settings: ``base_config`` ⊕ overrides.
        who: names the provider and worker in error messages.

    Raises:
        ModelSettingsError: a value of the wrong type or range, or a base_url that is not http(s) (code 18).
    """
    base_url = settings.get("base_url")
    if base_url is not None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ModelSettingsError(f"{who}: base_config.base_url must be an http:// or https:// URL, "
                                     f"got {base_url!r}")
        base_url = base_url.rstrip("/")
    timeout = _number(settings, "timeout_s", who, positive=True)
    retries = _integer(settings, "max_retries", who)
    backoff = _number(settings, "retry_backoff_s", who)
    stream = settings.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise ModelSettingsError(f"{who}: base_config.stream must be true or false, got {stream!r}")
    native = settings.get("provider_tools")
    if native is not None and not isinstance(native, list):
        raise ModelSettingsError(f"{who}: base_config.provider_tools must be a list of tool entries, "
                                 f"got {type(native).__name__}")
    return Settings(
        temperature=_number(settings, "temperature", who),
        top_p=_number(settings, "top_p", who),
        max_tokens=_integer(settings, "max_tokens", who, positive=True),
        base_url=base_url or None,
        timeout_s=DEFAULT_TIMEOUT_S if timeout is None else timeout,
        max_retries=DEFAULT_MAX_RETRIES if retries is None else retries,
        backoff_s=DEFAULT_BACKOFF_S if backoff is None else backoff,
        stream=stream,
        extra={k: v for k, v in settings.items() if k not in NSLANG_KEYS and not k.startswith("test_")},
        provider_tools=list(native or ()),
    )


def require_key(config: ProviderConfig, env_var: str) -> str:
    """The API key of ``config``, or a clear error naming the definition and the usual variable.

    Raises:
        ModelSettingsError: the definition resolves to no key (code 18).
    """
    if config.api_key:
        return config.api_key
    raise ModelSettingsError(
        f"AI worker definition '{config.definition_name}': provider '{config.provider}' needs an API key; "
        f"give the definition auth {{\"method\": \"env_var\", \"value\": \"{env_var}\"}} and set {env_var} "
        "(or use provider 'test' to run offline)"
    )


def backoff_delay(attempt: int, base: float) -> float:
    """The delay before retry ``attempt`` (0-based): ``min(8, base * 2**attempt)`` minus up to 25 % jitter."""
    delay = min(BACKOFF_MAX_S, base * (2 ** min(attempt, 30)))
    return float(delay * (1 - 0.25 * random.random()))


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the provider asks to wait: ``retry-after-ms``, else ``Retry-After`` (seconds or HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            value = float(ms) / 1000
            if math.isfinite(value):
                return max(0.0, value)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        value = float(raw)
        return max(0.0, value) if math.isfinite(value) else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = datetime.now(timezone.utc).timestamp() if now is None else now
    return max(0.0, when.timestamp() - current)


def retry_info_delay(data: Any) -> float | None:
    """Seconds from a ``google.rpc.RetryInfo`` detail of an error body (``{"error": {"details": [{"@type":
    "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]}}``, Gemini's 429), or None."""
    if isinstance(data, list) and data:
        data = data[0]
    err = data.get("error") if isinstance(data, dict) else None
    details = err.get("details") if isinstance(err, dict) else None
    for d in details if isinstance(details, list) else ():
        if isinstance(d, dict) and str(d.get("@type", "")).endswith("google.rpc.RetryInfo"):
            raw = d.get("retryDelay")
            if isinstance(raw, str) and raw.endswith("s"):
                try:
                    value = float(raw[:-1])
                except ValueError:
                    return None
                return max(0.0, value) if math.isfinite(value) else None
    return None


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def error_payload(data: Any) -> bool:
    """True when a JSON body is an error object rather than an answer: a top-level ``error`` key (OpenAI,
    Gemini, Ollama, gateways) or Anthropic's ``{"type": "error"}``."""
    if isinstance(data, list) and data:
        data = data[0]
    return isinstance(data, dict) and (bool(data.get("error")) or data.get("type") == "error")


def provider_message(response: httpx.Response | Any, secrets: Sequence[str | None] = ()) -> str:
    """The provider's own error message: ``error.message`` (OpenAI, Anthropic, Gemini), ``error``
    (Ollama), ``message``, else the start of the body; ``secrets`` are redacted before it is cut to
    :data:`MAX_MESSAGE_CHARS` (so that no cut-off secret survives). ``response`` may also be an
    already-decoded JSON value (an error event of a stream)."""
    data: Any
    if isinstance(response, httpx.Response):
        data = _json(response)
        raw = response.text
    else:
        data, raw = response, json.dumps(response, ensure_ascii=False)
    if isinstance(data, list) and data:
        data = data[0]
    msg = ""
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            text = err.get("message")
            kind = err.get("type") or err.get("status") or err.get("code")
            if isinstance(text, str):
                msg = f"{kind}: {text}" if isinstance(kind, str) and kind and kind not in text else text
        elif isinstance(err, str):
            msg = err
        if not msg:
            for k in ("message", "detail"):
                if isinstance(data.get(k), str):
                    msg = data[k]
                    break
    # redact before collapsing whitespace and cutting, either of which could hide a secret's form
    msg = scrub(msg, secrets) if msg else " ".join(scrub(raw, secrets).split())
    if len(msg) > MAX_MESSAGE_CHARS:
        msg = msg[: MAX_MESSAGE_CHARS - 3] + "..."
    return msg


def _describe(exc: ValidationError) -> str:
    """A pydantic error as ``loc: message`` items, without echoing input values."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:3]:
        loc = ".".join(str(x) for x in err.get("loc", ())) or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def _transport_reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError):
        text = str(exc).lower()
        if "refused" in text:
            return "connection refused"
        return f"cannot connect ({str(exc) or type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class HTTPProvider:
    """One provider endpoint: its base URL, auth headers and the shared HTTP client (pydantic-ai's
    ``Provider``). Thread-safe; the wire-format modules create one per call.

    Args:
        config: the factory's configuration (provider name, model, key, shared client).
        base_url: the API root, without a trailing slash.
        headers: headers sent with every request (auth included).
    """

    def __init__(self, config: ProviderConfig, base_url: str, headers: Mapping[str, str]) -> None:
        self.name = config.provider
        self.base_url = base_url.rstrip("/")
        self._config = config
        self._headers = {"content-type": "application/json", "accept": "application/json", **headers}
        key = config.api_key
        #: what no error text may contain: the key and every credential header value (issue 10 item 1)
        self._secrets = tuple({key, *(v for k, v in self._headers.items()
                                      if k.lower() in CREDENTIAL_HEADERS or (key and key in v))} - {None, ""})
        for name, value in self._headers.items():
            if not (value.isascii() and value.isprintable()):
                raise ModelSettingsError(f"{self.who}: the value of header '{name}' holds a character an HTTP "
                                         "header cannot carry (control or non-ASCII); check the API key "
                                         "(the value is not shown)")

    @property
    def who(self) -> str:
        """``provider 'openai' (model 'gpt-4o', worker 'w')`` for error messages."""
        parts = [f"model '{self._config.model_name}'"]
        if self._config.definition_name:
            parts.append(f"worker '{self._config.definition_name}'")
        return f"provider '{self.name}' ({', '.join(parts)})"

    def url(self, path: str) -> str:
        """The full URL of ``path`` under the base URL."""
        return f"{self.base_url}/{path.lstrip('/')}"

    def _client(self) -> tuple[httpx.Client, httpx.Client | None]:
        """The shared client, or a new one (returned second, to close) when the config has none."""
        factory = self._config.http_client
        if factory is not None:
            return factory(), None
        own = httpx.Client()
        return own, own

    def post(self, path: str, body: BaseModel, response_model: type[_M], settings: Settings) -> _M:
        """POST ``body`` as JSON to ``path`` with retries, and validate the answer as ``response_model``.

        Raises:
            UsageError: model requests are switched off (:data:`~nslang.llm.base.ALLOW_MODEL_REQUESTS`).
            LLMHTTPError, LLMTimeoutError, LLMError: see the module docstring (an HTTP 200 whose body
                is an error object is an LLMError with the provider's message).
        """
        check_allow_model_requests()
        url = self.url(path)
        payload = body.model_dump(mode="json", by_alias=True, exclude_none=True)
        client, own = self._client()
        try:
            response, _ = self._send(client, url, payload, settings, self._config.deadline)
        finally:
            if own is not None:
                own.close()
        if error_payload(_json(response)):
            raise self._error(LLMError, f"{self.who}: HTTP {response.status_code} with an error body: "
                                        f"{provider_message(response, self._secrets)}")
        try:
            return response_model.model_validate_json(response.content)
        except ValidationError as e:
            raise self._error(LLMError, f"{self.who}: malformed response from {url} (HTTP {response.status_code}): "
                                        f"{_describe(e)}") from None

    def stream(self, path: str, body: BaseModel, settings: Settings, read: Callable[[Iterator[bytes]], _T],
               params: Mapping[str, str] | None = None) -> _T:
        """POST ``body`` and hand the 200 answer's raw byte chunks to ``read`` as they arrive.

        Retries (module docstring) happen only until the first byte of the body has arrived; a
        failure after that is not retried. ``read`` parses the chunks (:mod:`~nslang.llm.streaming`)
        and returns the folded reply.

        Raises:
            UsageError: model requests are switched off.
            LLMHTTPError, LLMTimeoutError, LLMError: as :meth:`post`. After the first byte (never retried,
                never a reason for a ``fallback`` to serve): LLMError when the stream breaks or grows past
                :data:`MAX_RESPONSE_BYTES`, LLMError with code 31 when it stalls for ``timeout_s``,
                LLMTimeoutError when the run's deadline passes.
        """
        check_allow_model_requests()
        url = self.url(path)
        payload = body.model_dump(mode="json", by_alias=True, exclude_none=True)
        deadline = self._config.deadline
        client, own = self._client()
        try:
            response, chunks = self._send(client, url, payload, settings, deadline, stream=True, params=params)
            try:
                assert chunks is not None
                guarded = self._guard(chunks, url, settings, deadline)
                if response.headers.get("content-type", "").startswith("application/json"):
                    # a server that ignored the stream switch, or an HTTP 200 carrying an error object
                    data = b"".join(guarded)
                    decoded = _loads(data)
                    if error_payload(decoded):
                        raise self._error(LLMError, f"{self.who}: HTTP {response.status_code} with an error body: "
                                                    f"{provider_message(decoded, self._secrets)}")
                    guarded = iter([data])
                return read(guarded)
            finally:
                response.close()
        finally:
            if own is not None:
                own.close()

    def event(self, data: str, model: type[_M]) -> _M:
        """One JSON document of a stream (an SSE ``data`` field or an NDJSON line) as ``model``.

        Raises:
            LLMError: an error object inside the stream (the provider's message), or malformed JSON.
        """
        decoded = _loads(data.encode())
        if decoded is None:
            raise self._error(LLMError, f"{self.who}: malformed stream event (not JSON): {data[:200]!r}")
        if error_payload(decoded):
            raise self._error(LLMError, f"{self.who}: error inside the stream: "
                                        f"{provider_message(decoded, self._secrets)}")
        try:
            return model.model_validate(decoded)
        except ValidationError as e:
            raise self._error(LLMError, f"{self.who}: malformed stream event: {_describe(e)}") from None

    def _guard(self, chunks: Iterator[bytes], url: str, settings: Settings, deadline: float | None
               ) -> Iterator[bytes]:
        """``chunks`` after the first byte: a transport failure, a body over :data:`MAX_RESPONSE_BYTES`
        or the run's deadline becomes an error (not retried: the reply had started)."""
        size = 0
        try:
            for chunk in chunks:
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise self._error(LLMError, f"{self.who}: the stream from {url} is larger than "
                                                f"{MAX_RESPONSE_BYTES} bytes (not retried: the reply had started)")
                if deadline is not None and time.monotonic() > deadline:
                    raise self._error(LLMTimeoutError, f"{self.who}: the run's time limit was reached while {url} "
                                                       "was streaming its reply")
                yield chunk
        except httpx.TimeoutException as e:
            # code 31, but not an LLMTimeoutError: the reply had started, so no retry and no fallback
            failure = LLMError(scrub(f"{self.who}: the stream from {url} stalled for more than timeout_s="
                                     f"{settings.timeout_s:g} s (not retried: the reply had started)", self._secrets),
                               code=ErrorCode.TIMEOUT)
            raise failure from self._cause(e)
        except httpx.TransportError as e:
            failure: LLMError = self._error(LLMError, f"{self.who}: the stream from {url} broke: "
                                                      f"{_transport_reason(e)} (not retried: the reply had started)")
            raise failure from self._cause(e)

    def _error(self, cls: type[LLMError], message: str) -> LLMError:
        return cls(scrub(message, self._secrets))

    def _cause(self, exc: Exception) -> Exception | None:
        """``exc`` to chain as the cause of an error, or None when its text holds a secret (a traceback
        shows the cause)."""
        return None if contains_secret(f"{exc}\n{exc!r}", self._secrets) else exc

    def _send(self, client: httpx.Client, url: str, payload: dict[str, Any], settings: Settings,
              deadline: float | None, *, stream: bool = False, params: Mapping[str, str] | None = None
              ) -> tuple[httpx.Response, Iterator[bytes] | None]:
        attempts = settings.max_retries + 1
        for attempt in range(attempts):
            wait: float | None = None
            limit = settings.timeout_s
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self._error(LLMTimeoutError, f"{self.who}: the run's time limit was reached before "
                                                       f"{url} answered (attempt {attempt + 1})")
                limit = min(limit, left)
            try:
                response, chunks = self._attempt(client, url, payload, limit, stream, params)
            except httpx.TimeoutException as e:
                failure: LLMError = self._error(
                    LLMTimeoutError, f"{self.who}: no answer from {url} within {limit:g} s"
                                     + (f" (timeout_s={settings.timeout_s:g})" if limit == settings.timeout_s
                                        else " (the run's remaining time)"))
                failure.__cause__ = self._cause(e)
            except httpx.TransportError as e:
                failure = self._error(LLMConnectionError, f"{self.who}: cannot reach {url}: {_transport_reason(e)}")
                failure.__cause__ = self._cause(e)
            else:
                if response.status_code < 300:
                    return response, chunks
                failure = self._http_error(response)
                if not _should_retry(response):
                    raise failure
                wait = parse_retry_after(response.headers)
                if wait is None:
                    wait = retry_info_delay(_json(response))
                if wait is not None and wait > RETRY_AFTER_MAX_S:
                    failure.message += f" (the provider asks to retry after {wait:g} s; not waiting that long)"
                    failure.args = (failure.message,)
                    raise failure
            if attempt + 1 >= attempts:
                if attempts > 1:
                    failure.message += f" (gave up after {attempts} attempts)"
                    failure.args = (failure.message,)
                raise failure
            delay = backoff_delay(attempt, settings.backoff_s) if wait is None else wait
            if deadline is not None and time.monotonic() + delay >= deadline:
                # the retry could not start in time: wait out the run's deadline and give up
                sleep(max(0.0, deadline - time.monotonic()))
                failure.message += " (the run's time limit was reached before a retry)"
                failure.args = (failure.message,)
                raise failure
            logger.info("%s: attempt %d of %d failed (%s); retrying in %.2f s", self.who, attempt + 1, attempts,
                        failure.message, delay)
            sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(self, client: httpx.Client, url: str, payload: dict[str, Any], limit: float, stream: bool = False,
                 params: Mapping[str, str] | None = None) -> tuple[httpx.Response, Iterator[bytes] | None]:
        """One POST whose whole exchange, body included, takes at most ``limit`` seconds and whose body
        is at most :data:`MAX_RESPONSE_BYTES` (a server dripping bytes or sending a huge reply is cut off).

        With ``stream``, a 200 answer is returned open with its chunks, the first already read (so a
        failure before the first byte is still retried); ``limit`` then bounds each read.

        Raises:
            httpx.TimeoutException: the exchange took longer than ``limit``.
            httpx.TransportError: the connection failed, or the body was too large.
        """
        end = time.monotonic() + limit
        request = client.build_request("POST", url, json=payload, headers=self._headers, params=params,
                                       timeout=httpx.Timeout(limit))
        r = client.send(request, stream=True)
        try:
            if stream and r.status_code < 300:
                body = r.iter_bytes()
                first = next(body, b"")
                return r, itertools.chain([first], body)
            chunks: list[bytes] = []
            size = 0
            for chunk in r.iter_bytes():
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise httpx.DecodingError(f"the reply is larger than {MAX_RESPONSE_BYTES} bytes")
                chunks.append(chunk)
                if time.monotonic() > end:
                    raise httpx.ReadTimeout(f"the reply took longer than {limit:g} s")
        except BaseException:
            r.close()
            raise
        r.close()
        # the body is decoded already: the copy must not decode it again
        headers = [(k, v) for k, v in r.headers.multi_items() if k.lower() != "content-encoding"]
        return httpx.Response(r.status_code, headers=headers, content=b"".join(chunks), request=r.request,
                              extensions=r.extensions), None

    def _http_error(self, response: httpx.Response) -> LLMHTTPError:
        status = response.status_code
        body = provider_message(response, self._secrets)
        phrase = response.reason_phrase or ""
        text = f"{self.who}: HTTP {status}{' ' + phrase if phrase else ''}"
        if body:
            text += f": {body}"
        return LLMHTTPError(scrub(text, self._secrets), status=status, provider=self.name, body=body)


def join_system(messages: list[Any]) -> str:
    """The ``system`` messages' texts joined by blank lines (for wire formats with one system field)."""
    return "\n\n".join(m.content for m in messages if m.role == "system" and m.content)


def request_fields(fields: Mapping[str, Any], extra: Mapping[str, Any], reserved: Collection[str],
                   who: str) -> dict[str, Any]:
    """The request body's fields: what nslang mapped (``fields``), then every pass-through key the user
    set (``extra``), which wins over a mapped value of the same name (issue 14 item 1: an explicit key
    always reaches the request). None (null) means unset, on either side.

    Raises:
        ModelSettingsError: ``extra`` names a field nslang builds itself (``reserved``: the model, the
            conversation, the stream switch) (code 18).
    """
    clash = sorted(k for k in extra if k in reserved)
    if clash:
        raise ModelSettingsError(f"{who}: base_config.{clash[0]} is a request field nslang fills itself; remove it"
                                 + (" (use base_config.stream to choose streaming)" if "stream" in clash[0] else ""))
    return {k: v for k, v in {**fields, **{k: v for k, v in extra.items() if v is not None}}.items()
            if v is not None}


def with_tools(extra: Mapping[str, Any], declared: Sequence[Mapping[str, Any]],
               native: Sequence[Any] = ()) -> dict[str, Any]:
    """The pass-through keys with the ``tools`` field nslang builds: ``native``, the entries of
    ``base_config.provider_tools`` as written (a provider's built-in tools, e.g. Gemini's
    ``{"googleSearch": {}}``), then ``declared``, the tools offered to the model in the wire format's
    shape (issue 12). ``base_config.tools`` is not sent: it names NeuroScript tools a task grants (as in
    ``ask … with {"tools": […]}``). With neither, ``extra`` is unchanged.
    """
    if not declared and not native:
        return dict(extra)
    return {**extra, "tools": [*native, *declared]}


def build(model: type[_M], who: str, fields: Mapping[str, Any]) -> _M:
    """The request body ``model(**fields)``; a pass-through value of the wrong type is a settings error.

    Raises:
        ModelSettingsError: a field's value does not fit the request (code 18).
    """
    try:
        return model(**fields)
    except ValidationError as e:
        raise ModelSettingsError(f"{who}: base_config does not fit the request: {_describe(e)}") from None


def _loads(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None
