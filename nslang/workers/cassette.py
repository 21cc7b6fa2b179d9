"""Model exchanges kept for later: the response cache, and record / replay (issue 14 items 6 and 7).

**Request hash** (:func:`request_key`): SHA-256 of the canonical JSON of the provider, the model name,
the messages (as :meth:`~nslang.llm.messages.Message.to_dict` gives them: tool turns included), the
tool declarations (when any) and the request parameters: the effective settings
without what does not change the answer (:data:`TRANSPORT_KEYS`: timeouts, retries, cache and budget
options; ``system_prompt`` / ``max_history_turns`` are already part of the messages) and without any
credential (keys named like an auth header or ``api_key``, at any depth). The API key is never part of
the hash input, and every text stored is passed through :func:`~nslang._redact.scrub` with the key.

**Response cache** (:class:`ResponseCache`): with ``base_config.cache: true`` an identical request
is answered from ``<sandbox>/.nslang-cache/responses/<hash>.json`` when that answer is younger than
``base_config.cache_ttl_s`` seconds (default :data:`DEFAULT_CACHE_TTL_S`; 0 never expires). Only
successful, non-empty answers are stored. The directory falls under the sandbox's protected
``.nslang*`` pattern (:mod:`.sandbox_files`), so scripts can read but never write it. A hit is
recorded with cost 0 and ``llm_metrics.cached: true``.

**Record / replay** (:class:`Recorder`, :class:`Replayer`): ``nslang run --record FILE.jsonl`` (or
``Interpreter(record=…)``) writes one JSON line per model exchange::

    {"version": 1, "key": "<sha256>", "worker": "<definition name>", "cached": false,
     "request": {"provider": …, "model": …, "messages": […], "params": {…}, "tools": …},
     "response": {"text": …, "finish_reason": …, "model": …, "tool_calls": [{"id", "name", "arguments"}]}
                 | null,
     "usage": {"input_tokens": …, "output_tokens": …, "cache_read_tokens": …, …} | null,
     "error": {"kind": "http" | "timeout" | "connection" | "error", "message": …, "code": …,
               "status": …} | null}

``--replay FILE.jsonl`` answers every request from the file, in recorded order per request hash (the
last answer of a hash repeats once its answers are used up), with no network: failures replay as the
same error (so fallbacks replay too). A request the file does not hold is refused with
:class:`~nslang.workers.errors.ReplayMissError` (code 9) naming the worker, model, hash and prompt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

from .._record import Record
from .._redact import scrub
from ..errors import LLMError, LLMHTTPError, NSRuntimeError, UsageError
from ..llm._http import CREDENTIAL_HEADERS
from ..llm.base import LLMConnectionError, LLMTimeoutError, Message, ModelResponse
from ..llm.messages import parse_arguments
from .errors import ReplayMissError
from .store import atomic_write

__all__ = [
    "CACHE_DIR",
    "DEFAULT_CACHE_TTL_S",
    "TRANSPORT_KEYS",
    "Exchange",
    "Recorder",
    "Replayer",
    "ResponseCache",
    "request_key",
]

logger = logging.getLogger("nslang.workers")

#: The response cache's directory inside the sandbox (protected by the ``.nslang*`` pattern).
CACHE_DIR = Path(".nslang-cache") / "responses"
#: Seconds a cached answer stays valid when ``base_config.cache_ttl_s`` is not set (one day).
DEFAULT_CACHE_TTL_S = 86400.0
#: Settings that do not change the answer: never part of the request hash.
TRANSPORT_KEYS = frozenset({"timeout_s", "max_retries", "retry_backoff_s", "cache", "cache_ttl_s", "max_cost_usd",
                            "stream", "system_prompt", "max_history_turns"})
_SECRET_NAMES = CREDENTIAL_HEADERS | {"api_key", "apikey", "key"}
VERSION = 1


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    if isinstance(value, Record):
        return _jsonable(value.as_dict())
    if hasattr(value, "model_dump"):
        return _jsonable(value.model_dump(mode="json"))
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items() if str(k).lower() not in _SECRET_NAMES}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def request_key(provider: str, model: str, messages: Sequence[Message], settings: Mapping[str, Any],
                tools: Any = None, *, key: str | None = None) -> tuple[str, dict[str, Any]]:
    """The hash of one request and the request as stored (scrubbed of ``key``); see the module docstring.

    Args:
        provider, model: the definition's provider and model name.
        messages: the messages sent.
        settings: the effective settings.
        tools: the tool declarations sent, if any (JSON-like).
        key: the call's API key, scrubbed from the stored request (never hashed).

    Returns:
        (hex SHA-256, request dict).
    """
    request: dict[str, Any] = {
        "provider": provider, "model": model, "messages": _jsonable([m.to_dict() for m in messages]),
        "params": _jsonable({k: v for k, v in settings.items() if k not in TRANSPORT_KEYS}),
    }
    if tools:
        request["tools"] = _jsonable(tools)
    text = scrub(json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":")), [key])
    return hashlib.sha256(text.encode()).hexdigest(), json.loads(text)


def _response_json(resp: ModelResponse, key: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    response: dict[str, Any] = {"text": scrub(resp.text, [key]), "finish_reason": scrub(resp.finish_reason, [key]),
                                "model": scrub(resp.model, [key])}
    if resp.tool_calls:  # as sent: a replayed call decodes (or fails to decode) exactly the same way
        response["tool_calls"] = [{"id": scrub(c.id, [key]), "name": scrub(c.name, [key]),
                                   "arguments": scrub(c.raw_arguments, [key])} for c in resp.tool_calls]
    usage = {k: getattr(resp, k) for k in ("input_tokens", "output_tokens", "cache_read_tokens",
                                           "cache_write_tokens", "reasoning_tokens")}
    return response, usage


def _response_from(response: Mapping[str, Any], usage: Mapping[str, Any] | None) -> ModelResponse:
    u = usage or {}

    def count(k: str) -> int | None:
        v = u.get(k)
        return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None

    calls = tuple(parse_arguments(str(c["id"]), str(c["name"]), str(c.get("arguments") or ""))
                  for c in response.get("tool_calls") or ())
    return ModelResponse(text=str(response.get("text") or ""), input_tokens=count("input_tokens"),
                         output_tokens=count("output_tokens"), finish_reason=str(response.get("finish_reason") or ""),
                         model=str(response.get("model") or ""), cache_read_tokens=count("cache_read_tokens"),
                         cache_write_tokens=count("cache_write_tokens"), reasoning_tokens=count("reasoning_tokens"),
                         tool_calls=calls)


def _error_json(err: NSRuntimeError, key: str | None) -> dict[str, Any]:
    kind = ("timeout" if isinstance(err, LLMTimeoutError) else "connection" if isinstance(err, LLMConnectionError)
            else "http" if isinstance(err, LLMHTTPError) else "error")
    out: dict[str, Any] = {"kind": kind, "message": scrub(err.message, [key]), "code": int(err.code)}
    if isinstance(err, LLMHTTPError):
        out.update(status=err.status, provider=err.provider, body=scrub(err.body, [key]))
    return out


def _error_from(data: Mapping[str, Any]) -> NSRuntimeError:
    message = str(data.get("message") or "recorded failure")
    code = data.get("code") if isinstance(data.get("code"), int) else None
    kind = data.get("kind")
    if kind == "http":
        status = data.get("status")
        return LLMHTTPError(message, status=status if isinstance(status, int) else 0,
                            provider=str(data.get("provider") or ""), body=str(data.get("body") or ""), code=code)
    cls = {"timeout": LLMTimeoutError, "connection": LLMConnectionError}.get(str(kind), LLMError)
    return cls(message, code=code)


@dataclass(frozen=True)
class Exchange:
    """One answer, from the cache or a recording: a response or an error, and whether it was a cache hit."""

    response: ModelResponse | None
    error: NSRuntimeError | None
    cached: bool = False


class ResponseCache:
    """The response cache of one sandbox (module docstring). Thread-safe; files are written atomically.

    Args:
        sandbox_dir: the sandbox directory.
        clock: wall-clock seconds (``time.time``), injectable for tests.
    """

    def __init__(self, sandbox_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.directory = sandbox_dir / CACHE_DIR
        self._clock = clock

    def get(self, key: str, ttl_s: float) -> ModelResponse | None:
        """The answer stored for ``key`` if younger than ``ttl_s`` seconds (0: any age), else None (also
        for an unreadable entry or one that names another request: logged as a warning)."""
        path = self.directory / f"{key}.json"
        try:
            data = json.loads(path.read_bytes())
            if data["key"] != key:  # another request's entry, copied or renamed here
                raise ValueError("entry of another request")
            stored = float(data["stored_at"])
            answer = _response_from(data["response"], data.get("usage"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
            logger.warning("response cache: ignoring unreadable entry %s (%s)", path, type(e).__name__)
            return None
        if ttl_s and self._clock() - stored > ttl_s:
            return None
        return answer

    def put(self, key: str, resp: ModelResponse, api_key: str | None) -> None:
        """Store a successful answer (scrubbed of ``api_key``). A write failure is logged, never raised."""
        response, usage = _response_json(resp, api_key)
        data = {"version": VERSION, "key": key, "stored_at": self._clock(), "response": response, "usage": usage}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            atomic_write(self.directory / f"{key}.json", json.dumps(data, ensure_ascii=False).encode(), durable=False)
        except OSError as e:
            logger.warning("response cache: cannot write %s: %s", self.directory, e.strerror or e)


class Recorder:
    """Writes model exchanges to a JSONL file, emptied when the recorder is made. Thread-safe; each line
    is appended and flushed on its own, so a run that dies keeps what it recorded.

    Raises:
        UsageError: the file cannot be written (host misuse, before anything runs).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.write_text("", encoding="utf-8")
        except OSError as e:
            raise UsageError(f"cannot write the recording {self.path}: {e.strerror or e}") from None

    def write(self, key: str, worker: str, request: Mapping[str, Any], resp: ModelResponse | None,
              err: NSRuntimeError | None, api_key: str | None, *, cached: bool = False) -> None:
        """Append one exchange (``resp`` or ``err``); every text is scrubbed of ``api_key``."""
        response, usage = _response_json(resp, api_key) if resp is not None else (None, None)
        line = {"version": VERSION, "key": key, "worker": worker, "cached": cached, "request": request,
                "response": response, "usage": usage,
                "error": _error_json(err, api_key) if err is not None else None}
        text = scrub(json.dumps(line, ensure_ascii=False, sort_keys=True), [api_key])
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(text + "\n")


class Replayer:
    """Answers requests from a recording (module docstring). Thread-safe.

    Raises:
        UsageError: the file cannot be read or a line is not a recorded exchange (names the line).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._answers: dict[str, deque[Exchange]] = {}
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"cannot read the recording {self.path}: {getattr(e, 'strerror', None) or e}") from None
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                key = data["key"]
                if not isinstance(key, str):
                    raise TypeError("key")
                if data.get("error"):
                    ex = Exchange(None, _error_from(data["error"]), bool(data.get("cached")))
                else:
                    ex = Exchange(_response_from(data["response"], data.get("usage")), None,
                                  bool(data.get("cached")))
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
                raise UsageError(f"{self.path}:{n}: not a recorded model exchange "
                                 "(see 'nslang run --record')") from None
            self._answers.setdefault(key, deque()).append(ex)

    def peek(self, key: str) -> Exchange | None:
        """The next answer for ``key`` without using it up, or None when the file holds none."""
        with self._lock:
            queue = self._answers.get(key)
            return queue[0] if queue else None

    def take(self, key: str) -> None:
        """Use up the answer :meth:`peek` returned (the last one of a hash stays for repeats)."""
        with self._lock:
            queue = self._answers.get(key)
            if queue and len(queue) > 1:
                queue.popleft()

    def miss(self, key: str, worker: str, provider: str, model: str, messages: Sequence[Message]) -> ReplayMissError:
        """The error for a request the recording does not hold."""
        prompt = next((m.content for m in reversed(messages) if m.role == "user"), "")
        short = prompt if len(prompt) <= 80 else prompt[:77] + "..."
        return ReplayMissError(
            f"replay {self.path}: no recorded answer for worker '{worker}' (provider '{provider}', model "
            f"'{model}', request {key[:12]}, prompt {short!r}); record it again with 'nslang run --record'")
