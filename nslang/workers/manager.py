"""AIWorkerManager: definitions, instances, stateless tasks, chat turns, limits, keys, cost, records.

One manager per interpreter (``Interpreter.workers``) owns everything about AI workers in one
sandbox directory (ai_workers.md Part 1). It is thread-safe, and processes sharing the sandbox
see each other's changes (files are re-read when they change; see :mod:`~nslang.workers.store` and
:mod:`~nslang.workers.perflog`).

* **Definitions** (persisted): :meth:`~AIWorkerManager.add_definition`, ``get_definition``,
  ``list_definitions``, ``update_definition``, ``remove_definition``, ``reload_definitions``,
  ``save_definitions``. Every change re-reads the file under its lock and rewrites it atomically.
* **Instances** (in memory; lifecycle events are logged): ``spawn_instance``, ``get_instance``,
  ``list_instances``, ``update_instance_status``, ``update_instance_token_usage``, ``chat``,
  ``get_history``, ``retire_instance``.
* **Stateless tasks**: ``execute_stateless_task``; and ``ask`` for the ``ask`` statement.
* **Performance**: every stateless task and every chat turn produces one
  :class:`~nslang.workers.models.PerformanceRecord`, appended to the performance log before the
  call returns and folded into its definition's summary at once; ``log_performance``,
  ``get_performance_records``, ``get_summary``, ``reload_performance_data``,
  ``save_performance_data``. Summaries are loaded from the summaries checkpoint plus the log entries
  written after it, or rebuilt from the whole log (:mod:`~nslang.workers.checkpoint`); records are
  streamed from the log when asked for, never held in memory.

Requests refused before the model is called (unknown worker, inactive definition, wrong interaction
model, missing key, rate limit, unavailable provider, cost budget, replay miss) raise and produce no
record. A model failure produces a record with ``success: false`` and then raises (code 16, or 31 for
a timeout). Each model call goes through :class:`~nslang.workers.modelcall.ModelCaller` (fallback,
replay, response cache, budgets, recording, price; issue 14).

Lock order (never taken the other way round): definitions-file lock → performance-log lock →
the manager's state lock. Model calls run without any lock held.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from .._redact import scrub_value
from ..errors import ErrorCode, LLMError, NSRuntimeError, UsageError
from ..llm.base import Message, Model, ModelSettingsError, ProviderConfig, build_messages
from ..llm.messages import ToolCall, ToolDeclaration
from ..llm.streaming import TokenRelay, TokenSink
from ._checks import (
    DEFINITION_KEYS,
    RECORD_KEYS,
    SYSTEM_FIELDS,
    canonical,
    check_definition,
    check_name,
    instance_status,
    name_key,
    usage_arg,
    validate_definition,
    validate_record,
)
from ._checks import final_status as final_status_of
from .cassette import Recorder, Replayer, ResponseCache
from .checkpoint import CHECKPOINT_FILE, SummariesCheckpoint, read_checkpoint
from .delegation import DEFAULT_MAX_DEPTH, DelegationError, chain
from .economics import DailySpend
from .errors import (
    AIWorkerError,
    ConfigurationError,
    InvalidArgumentError,
    NotFoundError,
    PreconditionFailedError,
    RateLimitedError,
    StoreError,
    describe_validation_error,
)
from .filters import definition_filter, instance_filter, record_filter
from .keys import check_key_file_location, clean_key, is_redacted, redact, resolve_api_key, sanitize_error, scrub
from .limits import NO_TICKET, LimitBackend, RateLimiter, open_backend
from .modelcall import CallOutcome, Candidate, ModelCaller
from .models import (
    RETIRED_STATUSES,
    AIWorkerDefinition,
    AIWorkerDefinitionStatus,
    AIWorkerInstance,
    AIWorkerInstanceStatus,
    AIWorkerPerformanceSummary,
    APIKeySourceMethod,
    InteractionModelType,
    PerformanceEntryKind,
    PerformanceRecord,
    RetiredInstanceInfo,
    TokenUsageMetrics,
    parse_timestamp,
    utc_now,
)
from .perflog import PERFORMANCE_FILE, LogEntry, PerformanceLog, StaleLogError
from .providers import ProviderTable
from .store import DEFINITIONS_FILE, DefinitionStore, Signature
from .summaries import SummaryAccumulator, fold_entry, record_tokens

if TYPE_CHECKING:  # pragma: no cover
    from ..interpreter import Interpreter
    from ..limits import RunDeadline
    from ..llm.testing import CustomProviderFunction
    from .agent import AgentOptions, AgentRun

__all__ = ["AIWorkerManager", "ChatReply", "StatelessTaskResult"]

logger = logging.getLogger("nslang.workers")
_T = TypeVar("_T")

SUMMARY_CHARS = 256
#: Namespace of the UUID5 given to a hand-written definition that has no ID (stable across loads).
DEFINITION_ID_NAMESPACE = uuid.UUID("5b1d0f0e-8c55-4a8e-9a1c-6e2b6c0ad1f3")
@dataclass(frozen=True)
class StatelessTaskResult:
    """The result of one stateless task.

    Attributes:
        output: the model's reply.
        record: the performance record that was logged.
        run: the tool-calling loop's trace, or None for a plain task.
    """

    output: str
    record: PerformanceRecord
    run: AgentRun | None = None

    def as_map(self) -> dict[str, Any]:
        """``{output, task_id, cost, input_tokens, output_tokens, duration_ms, iterations, tool_calls,
        finish_reason}`` (Part 1 and issue 12; USD, ms; ``iterations`` counts model calls)."""
        tin, tout = _tokens_of(self.record)
        return {
            "output": self.output,
            "task_id": self.record.task_id,
            "cost": self.record.cost_incurred,
            "input_tokens": tin,
            "output_tokens": tout,
            "duration_ms": self.record.duration_ms,
            **_loop_fields(self.record, self.run),
        }


def _loop_fields(record: PerformanceRecord, run: AgentRun | None) -> dict[str, Any]:
    """``iterations``, ``tool_calls`` and ``finish_reason`` of a result map (issue 12 item 4)."""
    if run is None:
        return {"iterations": 1, "tool_calls": [], "finish_reason": record.llm_metrics.get("finish_reason", "")}
    return {"iterations": run.iterations, "tool_calls": run.tool_calls, "finish_reason": run.finish_reason}


@dataclass(frozen=True)
class ChatReply:
    """The result of one chat turn.

    Attributes:
        text: the assistant's reply.
        record: the performance record that was logged.
        instance: a copy of the instance after the turn.
        run: the tool-calling loop's trace, or None for a plain turn.
    """

    text: str
    record: PerformanceRecord
    instance: AIWorkerInstance
    run: AgentRun | None = None

    def as_map(self) -> dict[str, Any]:
        """``{output, task_id, cost, input_tokens, output_tokens, duration_ms, iterations, tool_calls,
        finish_reason}``, what ``AIWorkerInstance.Chat`` returns when given ``tools``."""
        return StatelessTaskResult(self.text, self.record, self.run).as_map()


@dataclass
class _Live:
    """An active instance with what is not part of its model: history and logged task ids."""

    model: AIWorkerInstance
    history: list[Message] = field(default_factory=list)
    initial_file_contexts: list[str] = field(default_factory=list)
    task_ids: set[str] = field(default_factory=set)


@dataclass
class _Change:
    """What a definitions-file change does besides the list itself."""

    file_secrets: dict[str, str]
    secrets_set: dict[str, str] = field(default_factory=dict)
    secrets_drop: set[str] = field(default_factory=set)
    write: bool = True


def _tokens_of(record: PerformanceRecord) -> tuple[int, int]:
    return record_tokens({"llm_metrics": record.llm_metrics})


def _own_tokens(record: PerformanceRecord) -> tuple[int, int]:
    """The tokens the record's own definition used: none when a fallback definition served the call
    (its tokens count under its own rate limits)."""
    return (0, 0) if "served_by_id" in record.llm_metrics else _tokens_of(record)


def _summarize(text: str) -> str:
    """The reply cut to 256 characters (253 + ``...``), by characters, never mid-character (§6 V6)."""
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 3] + "..."


class AIWorkerManager:
    """Manages the AI workers of one sandbox directory. Thread-safe.

    Args:
        sandbox_dir: directory holding ``ai_worker_definitions.json`` and
            ``ai_worker_performance_data.json`` (created on first write).
        http_client_factory: returns the ``httpx.Client`` HTTP providers share (default: a new
            ``httpx.Client``); called at most once, on the first HTTP request.
        environ: where ``env_var`` keys are looked up (default ``os.environ``).
        clock: wall-clock seconds for the rate-limit windows (default ``time.time``).
        limits: where rate windows, token reservations and live-instance counts live (a
            :class:`~nslang.workers.limits.LimitBackend`); default: chosen by ``$NSLANG_LIMITS_URL`` (read
            from ``environ``) or the sandbox's ``ai_worker_limits.json``, else the SQLite file
            ``ai_worker_limits.sqlite3`` in the sandbox, opened on the first limited call.
        durable: ``fsync`` every write (default True).
        lock_timeout: seconds to wait for another process's file lock (default 30).
        default_worker: definition name (or instance id) ``ask`` uses when given no worker.
        max_cost_usd: the run budget in USD (issue 14 item 4), or None.
        recorder: records every model exchange (``nslang run --record``), or None.
        replayer: answers every model call from a recording (``nslang run --replay``), or None.
        deadline: the run's deadline (:class:`~nslang.limits.RunDeadline`, the interpreter's
            ``--timeout``): model calls end by it, retries and waits included, and a call that reaches it
            ends the run with the run's timeout error (code 31) after its record is logged (issue 10
            item 6); ``on_limit: "wait"`` never waits past it. None: no limit.

    Attributes:
        default_worker: settable; see ``ask``.
        max_delegation_depth: settable (default 3): how deep tasks delegating to ``worker:NAME``
            tools nest, the top task included (:mod:`~nslang.workers.delegation`).
    """

    def __init__(self, sandbox_dir: str | os.PathLike[str], *,
                 http_client_factory: Callable[[], Any] | None = None,
                 environ: Mapping[str, str] | None = None, clock: Callable[[], float] | None = None,
                 durable: bool = True, lock_timeout: float = 30.0, default_worker: str | None = None,
                 limits: LimitBackend | None = None, deadline: RunDeadline | None = None,
                 max_cost_usd: float | None = None, recorder: Recorder | None = None,
                 replayer: Replayer | None = None) -> None:
        self.sandbox_dir = Path(sandbox_dir)
        self._deadline = deadline
        self.default_worker = default_worker
        #: how deep ``worker:NAME`` delegations nest (the top task counts; issue 13 item 2)
        self.max_delegation_depth = DEFAULT_MAX_DEPTH
        self.definitions_path = self.sandbox_dir / DEFINITIONS_FILE
        self.performance_path = self.sandbox_dir / PERFORMANCE_FILE
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        self.checkpoint_path = self.sandbox_dir / CHECKPOINT_FILE
        self.durable = durable
        self._checkpoint = SummariesCheckpoint(self.checkpoint_path, durable)
        self._store = DefinitionStore(self.definitions_path, durable=durable, lock_timeout=lock_timeout)
        self._log = PerformanceLog(self.performance_path, durable=durable, lock_timeout=lock_timeout,
                                   companions=(self.checkpoint_path,))
        self._limiter = RateLimiter(
            limits or (lambda: open_backend(self.sandbox_dir, environ=self._environ, clock=clock,
                                            lock_timeout=lock_timeout)),
            time_left=deadline.remaining_time if deadline is not None else None)
        self._clock = clock or time.time
        self._daily = DailySpend(self._clock, scan=self._scan_spend)
        #: the per-call path: fallback, replay, response cache, budgets, recording, price (issue 14)
        self.calls = ModelCaller(ResponseCache(self.sandbox_dir, self._clock), self._daily, max_cost_usd=max_cost_usd,
                                 recorder=recorder, replayer=replayer)
        self._providers = ProviderTable()
        self._http_client_factory = http_client_factory
        self._http_client: Any = None
        self._state = threading.RLock()
        self._load_lock = threading.Lock()  # first full read of the log happens once
        self._defs: dict[str, AIWorkerDefinition] = {}
        self._defs_sig: Signature | None = None
        self._defs_loaded = False
        self._secrets: dict[str, str] = {}  # definition id -> inline key (memory only)
        self._file_secrets: dict[str, str] = {}  # inline keys that a user wrote into the file
        self._instances: dict[str, _Live] = {}
        self._summaries: dict[str, SummaryAccumulator] = {}
        self._log_loaded = False
        #: receives each piece of every streamed reply (``Interpreter(on_token=…)``; issue 14 item 2)
        self.on_token: TokenSink | None = None
        #: whether a call streams when its ``base_config.stream`` is unset (the Interpreter says: its
        #: output is an interactive terminal, or an ``on_token`` callback listens)
        self.stream_default: Callable[[], bool] = lambda: self.on_token is not None

    # ============================================================================ providers

    def register_custom_provider(self, name: str, fn: CustomProviderFunction) -> None:
        """Register ``fn(messages, settings) -> str | dict`` as the ``custom`` provider ``name``.

        Definitions with provider ``custom`` choose it with ``base_config.custom_provider``
        (default ``"default"``). See :mod:`nslang.llm.testing` for the call shape.

        Raises:
            UsageError: bad name or not callable.
        """
        self._providers.register_custom(name, fn)

    def register_provider_factory(self, provider: str, factory: Callable[[ProviderConfig], Model]) -> None:
        """Build models of ``provider`` with ``factory(config) -> Model`` (overrides the built-in)."""
        self._providers.register_factory(provider, factory)

    def _http(self) -> Any:
        with self._state:
            if self._http_client is None:
                if self._http_client_factory is not None:
                    self._http_client = self._http_client_factory()
                else:
                    import httpx

                    self._http_client = httpx.Client(timeout=httpx.Timeout(60.0))
            return self._http_client

    def close(self) -> None:
        """Close the shared HTTP client (if one was created) and the data files' descriptors, and give
        back this process's rate-limit reservations and live-instance slots."""
        with self._state:
            client, self._http_client = self._http_client, None
        if client is not None:
            client.close()
        self._store.close()
        self._log.close()
        self._limiter.close()

    # ============================================================================ loading

    def _ensure_loaded(self) -> None:
        self._sync_definitions()
        self._ensure_log()

    def _ensure_log(self) -> None:
        if not self._log_loaded:
            with self._load_lock:
                if not self._log_loaded:
                    self._load_log(use_checkpoint=True)
        elif self._log.changed():
            try:
                self._log.sync(self._on_log_reset, self._on_log_entry)
            except StoreError:
                self._log_loaded = False
                raise
            self._refresh_checkpoint()

    def _load_log(self, *, use_checkpoint: bool) -> None:
        """Build the summaries: from the summaries checkpoint plus the log entries after it when the
        checkpoint is there and still matches the log, else from the whole log (issue 11 item 5)."""
        found = read_checkpoint(self.checkpoint_path) if use_checkpoint else None
        self._log_loaded = False

        def install() -> None:  # under the log's lock, like every fold
            assert found is not None
            with self._state:
                self._summaries = found[1]

        resumed = self._log.reload(self._on_log_reset, self._on_log_entry,
                                   resume=(found[0], install) if found is not None else None)
        # (the rate limiter is seeded only from entries read here, i.e. after the checkpoint: the
        # shared limits backend of issue 11 items 1-4 keeps usage across processes instead)
        self._checkpoint.covered = found[0].offset if found is not None and resumed else 0
        self._log_loaded = True
        self._refresh_checkpoint()

    def _refresh_checkpoint(self) -> None:
        self._checkpoint.refresh(self._log, lambda: self._summaries, self._state)

    def _scan_spend(self, fold: Callable[[Mapping[str, Any]], None]) -> None:
        """Every log entry to ``fold`` (the daily cost budgets' first look at entries older than the
        summaries checkpoint; a log replaced meanwhile is re-read by the reload that follows)."""
        try:
            self._log.each_entry(lambda e: fold(e.data))
        except StaleLogError:
            logger.info("performance log %s was replaced while its spend was read", self.performance_path)

    def _on_log_reset(self) -> None:
        with self._state:
            self._summaries = {}
        self._daily.reset()

    def _on_log_entry(self, entry: LogEntry) -> None:
        data = entry.data
        with self._state:
            fold_entry(data, self._summaries)
        self._daily.observe(data)

    def _sync_definitions(self, force: bool = False) -> None:
        sig = self._store.signature()
        if not force and self._defs_loaded and sig == self._defs_sig:
            return

        def consume(raw: list[dict[str, Any]], sig: Signature | None) -> None:
            defs, file_secrets = self._parse_definitions(raw)
            self._install(defs, file_secrets, sig, {}, set())

        self._store.read(consume)

    def _parse_definitions(self, raw: list[dict[str, Any]]) -> tuple[dict[str, AIWorkerDefinition], dict[str, str]]:
        path = self.definitions_path
        hint = "the file was left untouched: fix it or move it aside"
        defs: dict[str, AIWorkerDefinition] = {}
        file_secrets: dict[str, str] = {}
        for i, obj in enumerate(raw):
            label = f"definition {i}" + (f" ('{obj['name']}')" if isinstance(obj.get("name"), str) else "")
            try:
                d = AIWorkerDefinition.model_validate(obj)
            except ValidationError as e:
                raise StoreError(f"AI worker definitions file {path}: {label} is invalid: "
                                 f"{describe_validation_error(e)}; {hint}", path=path) from None
            if not d.name.strip():
                raise StoreError(f"AI worker definitions file {path}: {label} has no name; {hint}", path=path)
            if not d.definition_id:
                d.definition_id = str(uuid.uuid5(DEFINITION_ID_NAMESPACE, d.name))
            if d.auth.method is APIKeySourceMethod.INLINE and d.auth.value and not is_redacted(d.auth.value):
                file_secrets[d.definition_id] = d.auth.value
                d.auth.value = redact(d.auth.value)
            d.aggregate_performance_summary = None
            if d.definition_id in defs:
                logger.warning("AI worker definitions file %s: definition ID %s appears twice; the last one wins",
                               path, d.definition_id)
                del defs[d.definition_id]
            defs[d.definition_id] = d
        names: dict[str, int] = {}
        for d in defs.values():
            names[d.name] = names.get(d.name, 0) + 1
        for name, n in names.items():
            if n > 1:
                logger.warning("AI worker definitions file %s: %d definitions are named %r; refer to them by ID",
                               path, n, name)
        return defs, file_secrets

    def _install(self, defs: dict[str, AIWorkerDefinition], file_secrets: dict[str, str], sig: Signature | None,
                 secrets_set: dict[str, str], secrets_drop: set[str]) -> None:
        with self._state:
            for def_id in secrets_drop:
                self._secrets.pop(def_id, None)
            self._secrets.update(secrets_set)
            self._secrets.update(file_secrets)
            for def_id in list(self._secrets):
                d = defs.get(def_id)
                if (d is None or d.auth.method is not APIKeySourceMethod.INLINE
                        or (def_id not in file_secrets and redact(self._secrets[def_id]) != d.auth.value)):
                    del self._secrets[def_id]
            self._file_secrets = file_secrets
            self._defs = defs
            self._defs_sig = sig
            self._defs_loaded = True

    def _modify_definitions(self, op: Callable[[dict[str, AIWorkerDefinition], _Change], Any]) -> Any:
        """Re-read the definitions file under its lock, apply ``op``, write atomically, install."""
        self._ensure_log()
        box: dict[str, Any] = {}

        def change(raw: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
            defs, file_secrets = self._parse_definitions(raw)
            ch = _Change(dict(file_secrets))
            box["result"] = op(defs, ch)
            box["defs"], box["change"] = defs, ch
            if not ch.write:
                return None
            with self._state:
                return [self._serialize(d, ch) for d in defs.values()]

        def after(sig: Signature | None) -> None:
            ch = box["change"]
            self._install(box["defs"], ch.file_secrets, sig, ch.secrets_set, ch.secrets_drop)

        self._store.update(change, after=after)
        return box.get("result")

    def _serialize(self, d: AIWorkerDefinition, ch: _Change) -> dict[str, Any]:
        data = d.model_dump(mode="json")
        data["aggregate_performance_summary"] = self._summary(d.definition_id, active=0).model_dump(mode="json")
        if d.auth.method is APIKeySourceMethod.INLINE:
            kept = ch.file_secrets.get(d.definition_id)
            if kept is not None and d.definition_id not in ch.secrets_set:
                data["auth"]["value"] = kept  # the user's own plain-text key stays where they put it
        return data

    # ============================================================================ definitions

    @staticmethod
    def _find(defs: Mapping[str, AIWorkerDefinition], ref: Any) -> AIWorkerDefinition:
        if not isinstance(ref, str) or not ref:
            raise InvalidArgumentError("a worker definition ID or name (a non-empty string) is required")
        d = defs.get(ref)
        if d is not None:
            return d
        nfc = unicodedata.normalize("NFC", ref)
        matches = [x for x in defs.values() if x.name in (ref, nfc)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise InvalidArgumentError(f"worker definition name '{ref}' is ambiguous ({len(matches)} definitions); "
                                       "use the definition_id")
        raise NotFoundError(f"worker definition '{ref}' not found (no definition has this ID or name)")

    def _summary(self, definition_id: str, active: int | None = None) -> AIWorkerPerformanceSummary:
        with self._state:
            acc = self._summaries.get(definition_id) or SummaryAccumulator()
            if active is None:
                active = sum(1 for i in self._instances.values() if i.model.definition_id == definition_id)
            return acc.snapshot(active)

    def _public(self, d: AIWorkerDefinition) -> AIWorkerDefinition:
        copy = d.model_copy(deep=True)
        copy.aggregate_performance_summary = self._summary(d.definition_id)
        return copy

    def add_definition(self, data: Mapping[str, Any]) -> AIWorkerDefinition:
        """Create and persist a definition.

        Args:
            data: definition fields (snake_case or camelCase). ``name`` and ``provider`` are required;
                ``model_name`` too for HTTP providers. Defaults: ``interaction_models``
                ``["both"]`` (chat and stateless tasks; upstream's historical Add used
                ``["conversational"]``, which made ``ask NAME, …`` fail on a fresh worker), status
                ``active``, auth ``none``, a new UUID4 id.
                An ``inline`` key is kept in memory only; the file gets its redacted form.
                The name is stored NFC-normalised; it must be unique ignoring case, at most 128
                characters, without control characters or path separators (``_checks.check_name``).
                No number anywhere in the definition may be infinite or NaN.

        Returns:
            A copy of the stored definition (auth redacted, summary filled).

        Raises:
            InvalidArgumentError: a bad or unknown field, a bad name, a duplicate name (ignoring case)
                or ID, an infinite or NaN number (code 4).
            NotSupportedError: auth method ``vault`` (code 30).
            ConfigurationError: a ``config_path`` key file outside the sandbox and the nslang config
                directory (code 18; :mod:`~nslang.workers.keys`).
            StoreError: the definitions file is corrupt or cannot be written (code 6; nothing written).
        """
        if not isinstance(data, Mapping):
            raise InvalidArgumentError("AIWorkerDefinition.Add needs a map of definition fields")
        fields = canonical(data, DEFINITION_KEYS, "AI worker definition")
        system = sorted(SYSTEM_FIELDS & set(fields))
        if system:
            raise InvalidArgumentError(f"AI worker definition: field(s) {', '.join(system)} are managed by nslang")
        d = validate_definition(fields, "invalid AI worker definition")
        d.name = check_name(d.name)
        if not d.interaction_models:
            d.interaction_models = [InteractionModelType.BOTH]
        check_definition(d)
        check_key_file_location(d, self.sandbox_dir)
        secret: str | None = None
        if d.auth.method is APIKeySourceMethod.INLINE:
            if not d.auth.value:
                raise InvalidArgumentError(f"AI worker definition '{d.name}': auth method 'inline' needs auth.value")
            secret = clean_key(d.auth.value, f"AI worker definition '{d.name}'", "auth.value (inline)",
                               InvalidArgumentError)
            d.auth.value = redact(secret)
        if not d.definition_id:
            d.definition_id = str(uuid.uuid4())
        d.created_timestamp = d.modified_timestamp = utc_now()

        def op(defs: dict[str, AIWorkerDefinition], ch: _Change) -> None:
            old = defs.get(d.definition_id)
            if old is not None:
                raise InvalidArgumentError(f"worker definition with ID '{d.definition_id}' (name '{old.name}') "
                                           "already exists")
            for other in defs.values():
                if name_key(other.name) == name_key(d.name):
                    raise InvalidArgumentError(f"worker definition name '{d.name}' already exists "
                                               f"(as '{other.name}', ID '{other.definition_id}'; names are "
                                               "compared ignoring case)")
            defs[d.definition_id] = d
            ch.file_secrets.pop(d.definition_id, None)
            if secret is not None:
                ch.secrets_set[d.definition_id] = secret

        self._modify_definitions(op)
        return self.get_definition(d.definition_id)

    def get_definition(self, ref: str) -> AIWorkerDefinition:
        """A copy of the definition with this ID (or unique name), its live summary filled in.

        Raises:
            NotFoundError: no such definition (code 9).
        """
        self._ensure_loaded()
        with self._state:
            return self._public(self._find(self._defs, ref))

    def list_definitions(self, filters: Mapping[str, Any] | None = None) -> list[AIWorkerDefinition]:
        """Copies of the definitions matching ``filters`` (see :mod:`~nslang.workers.filters`),
        sorted by lower-cased name, then ID.

        Raises:
            InvalidArgumentError: an unknown filter key or a wrong value type (code 4).
        """
        pred = definition_filter(filters)
        self._ensure_loaded()
        with self._state:
            found = [self._public(d) for d in self._defs.values() if pred(d)]
        return sorted(found, key=lambda d: (d.name.lower(), d.definition_id))

    def update_definition(self, ref: str, updates: Mapping[str, Any]) -> AIWorkerDefinition:
        """Change fields of a definition and persist it.

        ``auth`` and ``rate_limits`` merge per field; every other field is replaced whole (lists and
        maps included). ``definition_id``, the summary and the timestamps cannot be changed.
        ``modified_timestamp`` advances only when something changed (otherwise nothing is written).

        Raises:
            NotFoundError: no such definition (code 9).
            InvalidArgumentError: unknown or read-only field, bad value (an infinite or NaN number
                included), a new name that is invalid or taken ignoring case (code 4). A definition
                loaded from the file with a name that breaks today's rules keeps it until renamed.
            NotSupportedError: auth method ``vault`` (code 30).
            ConfigurationError: a ``config_path`` key file outside the sandbox and the nslang config
                directory (code 18; :mod:`~nslang.workers.keys`).
            StoreError: the file is corrupt or cannot be written (code 6; nothing written).
        """
        if not isinstance(updates, Mapping):
            raise InvalidArgumentError("AIWorkerDefinition.Update needs a map of fields to change")
        fields = canonical(updates, DEFINITION_KEYS, "AI worker definition update")
        frozen = sorted((SYSTEM_FIELDS | {"definition_id"}) & set(fields))
        if frozen:
            raise InvalidArgumentError(f"AI worker definition update: field(s) {', '.join(frozen)} cannot be changed")
        for key in ("auth", "rate_limits"):
            if key in fields and not isinstance(fields[key], Mapping):
                raise InvalidArgumentError(f"AI worker definition update: '{key}' must be a map")
        self._ensure_loaded()

        def op(defs: dict[str, AIWorkerDefinition], ch: _Change) -> AIWorkerDefinition:
            cur = self._find(defs, ref)
            base = cur.model_dump()
            secret: str | None = None
            for key, value in fields.items():
                if key == "auth":
                    patch = canonical(value, {"method": "method", "value": "value", "key_path": "key_path",
                                               "keyPath": "key_path"}, "auth")
                    base["auth"] = {**base["auth"], **patch}
                    new_method = str(base["auth"].get("method") or "none")
                    if new_method == APIKeySourceMethod.INLINE.value:
                        if "value" in patch:
                            secret = str(patch["value"] or "")
                            if not secret:
                                raise InvalidArgumentError(f"AI worker definition '{cur.name}': auth method "
                                                           "'inline' needs auth.value")
                            secret = clean_key(secret, f"AI worker definition '{cur.name}'",
                                               "auth.value (inline)", InvalidArgumentError)
                            base["auth"]["value"] = redact(secret)
                        elif cur.auth.method is not APIKeySourceMethod.INLINE:
                            raise InvalidArgumentError(f"AI worker definition '{cur.name}': auth method 'inline' "
                                                       "needs auth.value")
                elif key == "rate_limits":
                    base["rate_limits"] = {**base["rate_limits"], **value}
                else:
                    base[key] = value
            new = validate_definition(base, f"invalid update of AI worker definition '{cur.name}'")
            if new.name != cur.name:
                new.name = check_name(new.name)
            if not new.interaction_models:
                new.interaction_models = [InteractionModelType.BOTH]
            check_definition(new)
            check_key_file_location(new, self.sandbox_dir)
            if new.name != cur.name:
                for other in defs.values():
                    if other is not cur and name_key(other.name) == name_key(new.name):
                        raise InvalidArgumentError(f"worker definition name '{new.name}' already exists "
                                                   f"(as '{other.name}', ID '{other.definition_id}'; names are "
                                                   "compared ignoring case)")
            skip = {"modified_timestamp", "aggregate_performance_summary"}
            if secret is None and new.model_dump(exclude=skip) == cur.model_dump(exclude=skip):
                ch.write = False
                return cur
            new.modified_timestamp = utc_now()
            defs[cur.definition_id] = new
            if secret is not None:
                ch.secrets_set[cur.definition_id] = secret
                ch.file_secrets.pop(cur.definition_id, None)
            elif new.auth.method is not APIKeySourceMethod.INLINE:
                ch.secrets_drop.add(cur.definition_id)
                ch.file_secrets.pop(cur.definition_id, None)
            return new

        updated: AIWorkerDefinition = self._modify_definitions(op)
        return self.get_definition(updated.definition_id)

    def remove_definition(self, ref: str, *, retire_instances: bool = False) -> None:
        """Delete a definition (its performance records stay in the log).

        Args:
            ref: definition ID or name.
            retire_instances: retire its live instances first (status ``retired_completed``, reason
                "definition removed") instead of refusing.

        Raises:
            NotFoundError: no such definition (code 9).
            PreconditionFailedError: it has live instances and ``retire_instances`` is false (code 19).
            StoreError: the file is corrupt or cannot be written (code 6).
        """
        self._ensure_loaded()

        def op(defs: dict[str, AIWorkerDefinition], ch: _Change) -> str:
            d = self._find(defs, ref)
            with self._state:
                live = sorted(i.model.instance_id for i in self._instances.values()
                              if i.model.definition_id == d.definition_id)
            if live and not retire_instances:
                raise PreconditionFailedError(
                    f"cannot remove worker definition '{d.name}' ({d.definition_id}): it has {len(live)} active "
                    f"instance(s) ({', '.join(live)}); retire them first or pass retire_instances: true"
                )
            for instance_id in live:
                self.retire_instance(instance_id, reason="definition removed",
                                     final_status=AIWorkerInstanceStatus.RETIRED_COMPLETED.value)
            del defs[d.definition_id]
            ch.secrets_drop.add(d.definition_id)
            ch.file_secrets.pop(d.definition_id, None)
            return d.definition_id

        removed: str = self._modify_definitions(op)
        self._limiter.forget(removed)

    def reload_definitions(self) -> int:
        """Re-read the definitions file (active instances are kept). Returns how many there are.

        Raises:
            StoreError: the file is corrupt or unreadable (code 6); the definitions in memory stay.
        """
        self._sync_definitions(force=True)
        self._ensure_log()
        with self._state:
            return len(self._defs)

    def save_definitions(self) -> int:
        """Rewrite the definitions file with the current summaries. Returns how many definitions.

        Changes made by other processes are kept (the file is re-read under its lock first).
        """
        self._ensure_loaded()

        def op(defs: dict[str, AIWorkerDefinition], ch: _Change) -> int:
            return len(defs)

        count: int = self._modify_definitions(op)
        return count

    # ============================================================================ instances

    def _live(self, instance_id: Any) -> _Live:
        if not isinstance(instance_id, str) or not instance_id:
            raise InvalidArgumentError("an instance ID (a non-empty string) is required")
        live = self._instances.get(instance_id)
        if live is None:
            raise NotFoundError(f"active AI worker instance '{instance_id}' not found")
        return live

    def spawn_instance(self, ref: str, config_overrides: Mapping[str, Any] | None = None,
                       file_contexts: Sequence[str] | None = None) -> AIWorkerInstance:
        """Start a conversational instance of a definition.

        Its ``current_config`` is ``base_config`` shallowly merged with ``config_overrides``; its
        file contexts are ``file_contexts`` if given and non-empty, else the definition's defaults.

        Raises:
            NotFoundError: no such definition (code 9).
            PreconditionFailedError: definition not active, or not ``conversational``/``both`` (19).
            RateLimitedError: ``max_concurrent_active_instances`` reached (code 20).
            InvalidArgumentError: bad argument types (code 4).
        """
        if config_overrides is not None and not isinstance(config_overrides, Mapping):
            raise InvalidArgumentError("config_overrides must be a map")
        if file_contexts is not None and (isinstance(file_contexts, str)
                                          or not all(isinstance(x, str) for x in file_contexts)):
            raise InvalidArgumentError("file_contexts must be a list of strings")
        self._ensure_loaded()
        with self._state:
            d = self._find(self._defs, ref)
            self._require_active(d, "spawn an instance")
            if not d.supports(InteractionModelType.CONVERSATIONAL):
                raise PreconditionFailedError(
                    f"worker definition '{d.name}' does not support conversational interaction "
                    f"(interaction_models: {[m.value for m in d.interaction_models]}), cannot spawn an instance"
                )
        instance_id = str(uuid.uuid4())
        self._waiting(self._limiter.acquire_instance, d, instance_id)  # may wait (on_limit "wait"): no lock held
        with self._state:
            now = utc_now()
            contexts = list(file_contexts) if file_contexts else list(d.default_file_contexts)
            inst = AIWorkerInstance(
                instance_id=instance_id, definition_id=d.definition_id,
                status=AIWorkerInstanceStatus.IDLE, creation_timestamp=now, last_activity_timestamp=now,
                current_config={**d.base_config, **(config_overrides or {})}, active_file_contexts=contexts,
            )
            self._instances[inst.instance_id] = _Live(inst, [], list(contexts))
        entry = RetiredInstanceInfo(entry_kind=PerformanceEntryKind.SPAWN, instance_id=inst.instance_id,
                                    definition_id=d.definition_id, creation_timestamp=now,
                                    initial_file_contexts=contexts)
        try:
            self._append(entry)
        except BaseException:
            with self._state:
                self._instances.pop(inst.instance_id, None)
            self._limiter.release_instance(inst.instance_id)
            raise
        return inst.model_copy(deep=True)

    @staticmethod
    def _require_active(d: AIWorkerDefinition, action: str) -> None:
        if d.status is not AIWorkerDefinitionStatus.ACTIVE:
            raise PreconditionFailedError(f"worker definition '{d.name}' is not active (status: {d.status.value}), "
                                          f"cannot {action}")

    def get_instance(self, instance_id: str) -> AIWorkerInstance:
        """A copy of an active instance.

        Raises:
            NotFoundError: no such active instance (code 9).
        """
        with self._state:
            return self._live(instance_id).model.model_copy(deep=True)

    def list_instances(self, filters: Mapping[str, Any] | None = None) -> list[AIWorkerInstance]:
        """Copies of the active instances matching ``filters`` (``instance_id``, ``definition_id``,
        ``status``), oldest first.

        Raises:
            InvalidArgumentError: unknown filter key or wrong value type (code 4).
        """
        pred = instance_filter(filters)
        with self._state:
            found = [i.model.model_copy(deep=True) for i in self._instances.values() if pred(i.model)]
        return sorted(found, key=lambda i: (i.creation_timestamp or utc_now(), i.instance_id))

    def get_history(self, instance_id: str) -> list[dict[str, str]]:
        """The instance's conversation so far: ``[{role, content}, …]`` (in memory only)."""
        with self._state:
            return [m.to_dict() for m in self._live(instance_id).history]

    def update_instance_status(self, instance_id: str, status: str, last_error: str | None = None) -> None:
        """Set an instance's status (§2.5 rules): a no-op when nothing changes; ``last_error`` is kept
        only with status ``error``.

        Raises:
            NotFoundError: no such instance (code 9).
            InvalidArgumentError: unknown status, or a retired status (use retire_instance) (code 4).
        """
        new = instance_status(status)
        if new in RETIRED_STATUSES:
            raise InvalidArgumentError(f"status '{new.value}' retires an instance: use AIWorkerInstance.Retire")
        with self._state:
            m = self._live(instance_id).model
            err = last_error or ""
            if m.status is new and (new is not AIWorkerInstanceStatus.ERROR or m.last_error == err):
                return
            m.status = new
            m.last_error = err if new is AIWorkerInstanceStatus.ERROR else ""
            m.last_activity_timestamp = utc_now()

    def update_instance_token_usage(self, instance_id: str, input_tokens: int, output_tokens: int) -> None:
        """Add token counts to an instance's session usage (``total_tokens`` = input + output).

        Raises:
            NotFoundError: no such instance (code 9).
            InvalidArgumentError: a count that is not a non-negative integer (code 4).
        """
        for name, v in (("input_tokens", input_tokens), ("output_tokens", output_tokens)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise InvalidArgumentError(f"{name} must be a non-negative integer, got {v!r}")
        with self._state:
            m = self._live(instance_id).model
            u = m.session_token_usage
            u.input_tokens += input_tokens
            u.output_tokens += output_tokens
            u.total_tokens = u.input_tokens + u.output_tokens
            m.last_activity_timestamp = utc_now()

    def retire_instance(self, instance_id: str, reason: str = "", final_status: str | None = None,
                        final_usage: Mapping[str, Any] | None = None,
                        performance_records: Sequence[Mapping[str, Any]] | None = None) -> RetiredInstanceInfo:
        """Retire an instance: log a ``retired_instance`` entry, then forget the instance.

        Args:
            instance_id: the instance.
            reason: free text.
            final_status: one of ``retired_completed`` (default), ``retired_error``,
                ``retired_exhausted``, ``context_full``, ``token_limit_reached``; also
                ``completed``, ``error``, ``exhausted``, ``cancelled`` as short forms.
            final_usage: ``{input_tokens, output_tokens}``; counts higher than the manager's
                accumulated usage raise it (it is never lowered; §6 B8).
            performance_records: records of work the manager did not see; each is logged with the
                entry and feeds the summary (records of this instance's own turns are skipped).

        Returns:
            The logged entry.

        Raises:
            NotFoundError (9); InvalidArgumentError (4) for a bad status, usage or record;
            PreconditionFailedError (19) while a chat turn is running; StoreError (6) when the log
            cannot be written (the instance then stays active with its old status).
        """
        fs = final_status_of(final_status)
        if reason is None:
            reason = ""
        if not isinstance(reason, str):
            raise InvalidArgumentError("reason must be a string")
        usage_in = usage_arg(final_usage)
        with self._state:
            live = self._live(instance_id)
            m = live.model
            if m.status is AIWorkerInstanceStatus.BUSY:
                raise PreconditionFailedError(f"AI worker instance '{instance_id}' is busy (a chat turn is running); "
                                              "retire it when the turn is over")
            records = self._external_records(performance_records or (), m, live.task_ids)
            u = m.session_token_usage
            tin = max(u.input_tokens, usage_in[0])
            tout = max(u.output_tokens, usage_in[1])
            previous = m.status
            m.status = AIWorkerInstanceStatus.BUSY  # no chat turn may start while retiring
            entry = RetiredInstanceInfo(
                entry_kind=PerformanceEntryKind.RETIRED_INSTANCE, instance_id=m.instance_id,
                definition_id=m.definition_id, creation_timestamp=m.creation_timestamp,
                retirement_timestamp=utc_now(), final_status=fs, retirement_reason=reason,
                session_token_usage=TokenUsageMetrics(input_tokens=tin, output_tokens=tout, total_tokens=tin + tout),
                initial_file_contexts=list(live.initial_file_contexts), performance_records=records,
            )
        try:
            self._append(entry)
        except BaseException:
            with self._state:
                m.status = previous
            raise
        with self._state:
            self._instances.pop(instance_id, None)
        self._limiter.release_instance(instance_id)
        return entry

    def _external_records(self, raw: Sequence[Mapping[str, Any]], m: AIWorkerInstance,
                          known: set[str]) -> list[PerformanceRecord]:
        out: list[PerformanceRecord] = []
        for i, rec in enumerate(raw):
            if not isinstance(rec, Mapping):
                raise InvalidArgumentError(f"performance_records[{i}] must be a map")
            fields = canonical(rec, RECORD_KEYS, f"performance_records[{i}]")
            fields.setdefault("instance_id", m.instance_id)
            fields.setdefault("definition_id", m.definition_id)
            if not fields.get("task_id"):
                fields["task_id"] = str(uuid.uuid4())
            r = validate_record(fields, f"performance_records[{i}]")
            if r.task_id not in known:
                out.append(r)
        return out

    # ============================================================================ model calls

    def _candidate(self, d: AIWorkerDefinition, settings: Mapping[str, Any]) -> Candidate:
        """``d`` ready to serve a call: key resolved, model built (when replaying, neither is needed:
        a missing key is not an error and no model is built)."""
        self._check_deadline()
        stream = settings.get("stream")
        if stream is not None and not isinstance(stream, bool):
            raise ModelSettingsError(f"worker definition '{d.name}': base_config.stream must be true or false, "
                                     f"got {stream!r}")
        with self._state:
            secret = self._secrets.get(d.definition_id)
        replaying = self.calls.replayer is not None
        try:
            key = resolve_api_key(d, inline_secret=secret, environ=self._environ, base_dir=self.sandbox_dir)
        except ConfigurationError:
            if not replaying:
                raise
            key = None
        if replaying:
            return Candidate(d, dict(settings), key, None)
        left = None if self._deadline is None else self._deadline.remaining_time()
        config = ProviderConfig(provider=d.provider.value, model_name=d.model_name, settings=settings,
                                api_key=key, http_client=self._http, definition_name=d.name,
                                deadline=None if left is None else time.monotonic() + left)
        try:
            return Candidate(d, dict(settings), key, self._providers.create(config))
        except NSRuntimeError:
            raise
        except Exception as e:  # boundary: a provider factory's own failure
            raise AIWorkerError(f"cannot create the '{d.provider.value}' model of worker definition '{d.name}': "
                                f"{type(e).__name__}: {scrub(str(e), [key])}") from None

    def _fallback(self, messages: list[Message], overrides: Mapping[str, Any] | None) -> Callable[[str], Candidate]:
        """Builds the candidate of a ``fallback`` definition name: its ``base_config`` ⊕ the call's overrides,
        admitted under its own rate limits when it serves."""
        def build(name: str) -> Candidate:
            with self._state:
                fb = self._find(self._defs, name)
            self._require_active(fb, "serve as a fallback")
            settings = {**fb.base_config, **(overrides or {})}
            return replace(self._candidate(fb, settings), admit=lambda: self._limiter.admit(fb, messages, settings))

        return build

    def _streams(self, settings: Mapping[str, Any], on_token: TokenSink | None, stream: bool | None) -> bool:
        """Whether a call streams: ``base_config.stream`` when set, else ``stream`` when given, else
        when the caller passed ``on_token`` or :attr:`stream_default` says so (issue 14 item 2)."""
        value = settings.get("stream")
        if value is None:
            value = stream if stream is not None else (on_token is not None or self.stream_default())
        return bool(value)

    def _call(self, c: Candidate, messages: list[Message], overrides: Mapping[str, Any] | None,
              task_id: str, instance_id: str, prompt: str, on_token: TokenSink | None = None,
              stream: bool | None = None, *, tools: Sequence[ToolDeclaration] = (),
              task_spent: float = 0.0) -> tuple[PerformanceRecord, str, NSRuntimeError | None, tuple[ToolCall, ...]]:
        """Make the model call (:meth:`ModelCaller.call`; no lock held) and build the record; a model
        failure is returned, not raised (a budget refusal or a replay miss is raised: no record).

        ``on_token`` and :attr:`on_token` receive the reply's text (redacted): piece by piece when
        the call streams (:meth:`_streams`), else whole once it succeeded. ``tools`` are the
        declarations offered (issue 12); the reply's tool calls are returned last (a reply with tool
        calls may have no text; streamed, its tool calls are folded by the wire format).

        Every text that comes back (reply, finish reason, model name, error) goes through
        :func:`~nslang._redact.scrub` with the call's key here, so results, history, records and the
        log only ever hold redacted text.
        """
        d = c.definition
        start = utc_now()
        t0 = time.perf_counter()
        relay = TokenRelay([f for f in (on_token, self.on_token) if f is not None], [c.key])
        out: CallOutcome = self.calls.call(c, messages, self._fallback(messages, overrides), task_spent=task_spent,
                                           tools=tools,
                                           on_token=relay if self._streams(c.settings, on_token, stream) else None)
        served = out.served_by
        key = served.key
        err = out.error
        text = finish = ""
        model_used = served.definition.model_name
        calls: tuple[ToolCall, ...] = ()
        if out.response is not None:
            resp = out.response
            # a reply that echoes the key is redacted before anything keeps it (issue 10 item 2)
            text = scrub(resp.text, [key]) if isinstance(resp.text, str) else ""
            finish = scrub(str(resp.finish_reason or ""), [key])
            model_used = scrub(str(resp.model or ""), [key]) or model_used
            # tool calls too: their names and arguments reach tools, traces, events and the next request
            calls = tuple(_scrub_call(call, key) for call in resp.tool_calls or ())
            if not text.strip() and not calls:
                err = LLMError(f"worker definition '{served.definition.name}': the model returned an empty reply "
                               f"(finish reason: {finish or 'none'})")
        relay.finish(text if err is None else "")
        duration_ms = int((time.perf_counter() - t0) * 1000)
        end = utc_now()
        if err is not None:
            err = sanitize_error(err, key)
        u = out.usage
        tin, tout = u.input_tokens, u.output_tokens
        metrics: dict[str, Any] = {"input_tokens": tin, "output_tokens": tout, "total_tokens": tin + tout,
                                   "finish_reason": finish, "model_used_at_call": model_used,
                                   "price_source": out.cost.source}
        resp = out.response
        if resp is not None and not out.cached:
            for name in ("cache_read_tokens", "cache_write_tokens", "reasoning_tokens"):
                if getattr(resp, name) is not None:
                    metrics[name] = getattr(u, name)
        if out.estimated:
            metrics["estimated"] = True
        if out.cached:
            metrics["cached"] = True
        if served.definition.definition_id != d.definition_id:
            metrics["served_by"] = served.definition.name
            metrics["served_by_id"] = served.definition.definition_id
        if out.fallback_errors:
            metrics["fallback_errors"] = list(out.fallback_errors)
        record = PerformanceRecord(
            task_id=task_id, instance_id=instance_id, definition_id=d.definition_id, timestamp_start=start,
            timestamp_end=end, duration_ms=duration_ms, success=err is None,
            input_context={"prompt_char_length": len(prompt), "message_count": len(messages)},
            llm_metrics=metrics, cost_incurred=out.cost.usd, output_summary=_summarize(text) if err is None else "",
            error_details=err.message if err is not None else "",
        )
        return record, text, err, calls

    def _run_agent(self, host: Interpreter, options: AgentOptions, c: Candidate, messages: list[Message],
                   overrides: Mapping[str, Any] | None, task_id: str, instance_id: str, prompt: str,
                   on_token: TokenSink | None = None, stream: bool | None = None) -> AgentRun:
        """The tool-calling loop of :mod:`~nslang.workers.agent` (or a code task's loop,
        :mod:`~nslang.workers.codemode`, issue 13). Each of its model calls is one
        :meth:`_call` (so :meth:`ModelCaller.call`: fallback, replay, cache, budgets with the loop's spend
        so far as the task's, recording, price), admitted by the rate limits and settled like a plain
        request."""
        from .agent import Toolbox

        d = c.definition
        links = chain()
        if len(links) >= self.max_delegation_depth:
            # a task started from a running task's tool call (worker:NAME checks this first; a granted
            # and approved tool.AIWorker.ExecuteStatelessTask, a procedure starting a task) nests too
            raise DelegationError(f"worker '{d.name}': tool-using tasks nest at most {self.max_delegation_depth} "
                                  f"deep ({' -> '.join(link.name for link in links)})",
                                  code=ErrorCode.RESOURCE_EXHAUSTION)
        toolbox = Toolbox(host, options, d)
        toolbox.secrets = (c.key,)

        def turn(convo: list[Message], call_settings: Mapping[str, Any], tools: Sequence[ToolDeclaration],
                 spent: float) -> tuple[PerformanceRecord, str, NSRuntimeError | None, tuple[ToolCall, ...]]:
            # the loop's per-call HTTP timeout reaches a fallback definition too
            call_overrides = {**(overrides or {}), "timeout_s": call_settings["timeout_s"]}
            with self._waiting(self._limiter.admit, d, convo, call_settings) as ticket:
                record, text, err, calls = self._call(replace(c, settings=dict(call_settings)), convo, call_overrides,
                                                      task_id, instance_id, prompt, on_token, stream, tools=tools,
                                                      task_spent=spent)
                ticket.settle(*_own_tokens(record), err is None)
            return record, text, err, calls

        return options.start(turn, toolbox, messages, c.settings, task_id=task_id, instance_id=instance_id,
                             definition_id=d.definition_id, prompt=prompt)

    def _check_deadline(self) -> None:
        """The run's timeout error (code 31, not catchable) once its deadline has passed."""
        if self._deadline is not None:
            self._deadline.check_deadline()

    def _waiting(self, admit: Callable[..., _T], *args: Any) -> _T:
        """``admit(*args)``, a rate-limit admission that may wait (``on_limit: "wait"``); when the wait ran
        into the run's deadline, the run's timeout error (code 31) instead of the rate-limit error."""
        try:
            return admit(*args)
        except RateLimitedError:
            self._check_deadline()
            raise

    def _append(self, entry: RetiredInstanceInfo) -> None:
        data = entry.model_dump(mode="json")
        if not self._log_loaded:
            self._ensure_log()  # (once loaded, the append itself delivers what other processes wrote)
        try:
            self._log.append(data, self._on_log_reset, self._on_log_entry)
        except StoreError:
            self._log_loaded = False
            raise
        self._refresh_checkpoint()

    def execute_stateless_task(self, ref: str, prompt: str, config_overrides: Mapping[str, Any] | None = None, *,
                               on_token: TokenSink | None = None, stream: bool | None = None,
                               agent: AgentOptions | None = None, host: Interpreter | None = None,
                               parent_task_id: str = "") -> StatelessTaskResult:
        """Run one stateless task (ai_workers.md §2.6, fixed) and log its record.

        ``on_token`` receives the reply's text: each piece as it arrives when the call streams, else
        the whole reply once. The call streams when ``base_config.stream`` is true; when it is unset,
        when ``stream`` is true, or (``stream`` None) when ``on_token`` is given or
        :attr:`stream_default` says so (issue 14 item 2). Only a failure before the first byte of a
        streamed reply is retried.

        With ``agent`` (and the ``host`` interpreter whose tools and procedures it may call) the task
        is a tool-calling loop (:mod:`~nslang.workers.agent`, issue 12): one record for the whole
        task, and it fails with code 37 / 31 when ``max_iterations`` / ``timeout_s`` run out. Each of
        its model calls streams (or not) by the same rule; ``on_token`` receives every call's text.

        Steps: find the definition by name or ID; it must be active and support ``stateless_task``
        (or ``both``); resolve its key; build its model with ``base_config`` ⊕ ``config_overrides``;
        admit the request under the rate limits; call the model; log a ``stateless_task`` entry
        (``instance_id`` ``stateless-<uuid>``) whose record feeds the summary; return.

        ``parent_task_id`` (the delegating task, :mod:`~nslang.workers.delegation`) goes into the record.

        Returns:
            The output and the record (tokens as reported by the provider, cost in USD, duration in ms).

        Raises:
            NotFoundError (9), PreconditionFailedError (19), ConfigurationError (18, key),
            NotSupportedError (30), ProviderNotFoundError (40), RateLimitedError (20),
            InvalidArgumentError (4): before the call, with no record.
            LLMError (16) / LLMTimeoutError (31): the call failed; its record was logged.
            StoreError (6): the record could not be logged.
        """
        if not isinstance(prompt, str):
            raise InvalidArgumentError("prompt must be a string")
        if config_overrides is not None and not isinstance(config_overrides, Mapping):
            raise InvalidArgumentError("config_overrides must be a map")
        self._ensure_loaded()
        with self._state:
            d = self._find(self._defs, ref)
        self._require_active(d, "run a stateless task")
        if not d.supports(InteractionModelType.STATELESS_TASK):
            raise PreconditionFailedError(
                f"worker definition '{d.name}' does not support stateless tasks "
                f"(interaction_models: {[m.value for m in d.interaction_models]})"
            )
        settings = {**d.base_config, **(config_overrides or {})}
        messages = build_messages((), prompt, settings)  # base_config.system_prompt first
        candidate = self._candidate(d, settings)
        task_id = str(uuid.uuid4())
        instance_id = f"stateless-{uuid.uuid4()}"
        run: AgentRun | None = None
        if agent is not None:
            if host is None:
                raise UsageError("a tool-calling task needs the interpreter whose tools it may call (host=…)")
            run = self._run_agent(host, agent, candidate, messages, config_overrides, task_id, instance_id, prompt,
                                  on_token, stream)
            record, text, err = run.record, run.text, run.error
        else:
            with self._waiting(self._limiter.admit, d, messages, settings) as ticket:
                record, text, err, _calls = self._call(candidate, messages, config_overrides, task_id, instance_id,
                                                       prompt, on_token, stream)
                ticket.settle(*_own_tokens(record), err is None)
        if parent_task_id:
            record = record.model_copy(update={"parent_task_id": parent_task_id})
        tin, tout = _tokens_of(record)
        entry = RetiredInstanceInfo(
            entry_kind=PerformanceEntryKind.STATELESS_TASK, instance_id=instance_id, definition_id=d.definition_id,
            creation_timestamp=record.timestamp_start, retirement_timestamp=record.timestamp_end,
            final_status=(AIWorkerInstanceStatus.RETIRED_COMPLETED if err is None
                          else AIWorkerInstanceStatus.RETIRED_ERROR),
            retirement_reason="stateless task",
            session_token_usage=TokenUsageMetrics(input_tokens=tin, output_tokens=tout, total_tokens=tin + tout),
            performance_records=[record],
        )
        self._append(entry)
        self._check_deadline()
        if err is not None:
            raise err
        return StatelessTaskResult(text, record, run)

    def chat(self, instance_id: str, message: str, config_overrides: Mapping[str, Any] | None = None, *,
             on_token: TokenSink | None = None, stream: bool | None = None,
             agent: AgentOptions | None = None, host: Interpreter | None = None) -> ChatReply:
        """Send one user turn in an instance's conversation and return the reply (``on_token``, ``stream``:
        as :meth:`execute_stateless_task`).

        With ``agent`` and ``host`` the turn is a tool-calling loop (see :meth:`execute_stateless_task`);
        the history then keeps the user turn and the final reply (the tool turns are in the trace).

        The whole history is sent (after ``base_config.system_prompt``; only the last
        ``base_config.max_history_turns`` exchanges when that is set, see
        :func:`~nslang.llm.base.build_messages`; the instance still keeps every turn); on success
        both turns are appended, the usage the provider
        reported is added to the session, the status returns to ``idle`` and ``last_error`` is cleared.
        On failure the history is unchanged, the status becomes ``error`` and the error is raised.
        Either way one ``chat_turn`` record is logged. Chat turns count against the rate limits.

        Raises:
            NotFoundError (9): no such instance, or its definition was removed.
            PreconditionFailedError (19): busy (a turn is running), or the definition is not active.
            ConfigurationError (18), ProviderNotFoundError (40), RateLimitedError (20): no record.
            LLMError (16) / LLMTimeoutError (31): the call failed (recorded).
        """
        if not isinstance(message, str):
            raise InvalidArgumentError("message must be a string")
        if config_overrides is not None and not isinstance(config_overrides, Mapping):
            raise InvalidArgumentError("config_overrides must be a map")
        self._ensure_loaded()
        with self._state:
            live = self._live(instance_id)
            m = live.model
            if m.status is AIWorkerInstanceStatus.BUSY:
                raise PreconditionFailedError(f"AI worker instance '{instance_id}' is busy with another message")
            d = self._defs.get(m.definition_id)
            if d is None:
                raise NotFoundError(f"worker definition '{m.definition_id}' of instance '{instance_id}' "
                                    "no longer exists")
            self._require_active(d, "chat")
            settings = {**m.current_config, **(config_overrides or {})}
            # system prompt + the history, bounded by base_config.max_history_turns + the new turn
            messages = build_messages(live.history, message, settings)
            previous = m.status
            m.status = AIWorkerInstanceStatus.BUSY
        task_id = str(uuid.uuid4())
        run: AgentRun | None = None
        try:
            if agent is not None and host is None:
                raise UsageError("a tool-calling chat turn needs the interpreter whose tools it may call (host=…)")
            candidate = self._candidate(d, settings)
            ticket = self._waiting(self._limiter.admit, d, messages, settings) if agent is None else NO_TICKET
        except BaseException:
            with self._state:
                m.status = previous
            raise
        try:
            if agent is not None and host is not None:
                run = self._run_agent(host, agent, candidate, messages, config_overrides, task_id, instance_id,
                                      message, on_token, stream)
                record, text, err = run.record, run.text, run.error
            else:
                with ticket:
                    record, text, err, _calls = self._call(candidate, messages, config_overrides, task_id,
                                                           instance_id, message, on_token, stream)
                    ticket.settle(*_own_tokens(record), err is None)
        except BaseException:  # e.g. KeyboardInterrupt inside the provider: do not leave the instance busy
            with self._state:
                m.status = previous
            raise
        tin, tout = _tokens_of(record)
        with self._state:
            if err is None:
                live.history += [Message("user", message), Message("assistant", text)]
                m.status = AIWorkerInstanceStatus.IDLE
                m.last_error = ""
            else:
                m.status = AIWorkerInstanceStatus.ERROR
                m.last_error = err.message
            u = m.session_token_usage
            u.input_tokens += tin
            u.output_tokens += tout
            u.total_tokens = u.input_tokens + u.output_tokens
            m.last_activity_timestamp = record.timestamp_end
            live.task_ids.add(task_id)
            entry = RetiredInstanceInfo(
                entry_kind=PerformanceEntryKind.CHAT_TURN, instance_id=instance_id, definition_id=m.definition_id,
                creation_timestamp=m.creation_timestamp, final_status=m.status,
                session_token_usage=u.model_copy(), performance_records=[record],
            )
            snapshot = m.model_copy(deep=True)
        self._append(entry)
        self._check_deadline()
        if err is not None:
            raise err
        return ChatReply(text, record, snapshot, run)

    def ask(self, worker: str | None, prompt: str, options: Mapping[str, Any] | None = None, *,
            on_token: TokenSink | None = None, stream: bool | None = None,
            host: Interpreter | None = None) -> str:
        """Back end of the ``ask`` statement.

        Args:
            worker: an active instance ID (one chat turn), a definition name or ID (one stateless
                task), or None for :attr:`default_worker`.
            prompt: the prompt.
            options: per-call config overrides (``with`` clause), or None. The keys ``tools``,
                ``max_iterations``, ``task_timeout_s``, ``tool_timeout_s`` and ``max_result_chars``
                make it a tool-calling task (:func:`~nslang.workers.agent.split_options`).
            on_token, stream: see :meth:`execute_stateless_task`.
            host: the interpreter whose tools and procedures a tool-calling ``ask`` may call.

        Returns:
            The reply text.

        Raises:
            ConfigurationError: no worker given and no default worker set (code 18).
            NotFoundError: no such instance or definition (code 9); and every error of
                :meth:`execute_stateless_task` / :meth:`chat`.
        """
        if worker is None or worker == "":
            worker = self.default_worker
            if not worker:
                raise ConfigurationError("ask: no AI worker given and no default worker is set (use "
                                         "'ask WORKER, PROMPT', Interpreter(default_worker=...) or --worker)")
        if not isinstance(worker, str):
            raise InvalidArgumentError("ask: the worker must be a string (a definition name or ID, or an "
                                       "instance ID)")
        if options is not None and not isinstance(options, Mapping):
            raise InvalidArgumentError("ask: the 'with' options must be a map")
        if not isinstance(prompt, str):
            from ..values import display

            prompt = display(prompt)
        self._ensure_loaded()
        with self._state:
            is_instance = worker in self._instances
            if not is_instance:
                try:
                    self._find(self._defs, worker)
                except NotFoundError:
                    raise NotFoundError(f"ask: no AI worker definition (name or ID) or active instance "
                                        f"'{worker}'") from None
        from .agent import split_options

        settings, agent = split_options(options)
        if is_instance:
            return self.chat(worker, prompt, settings, on_token=on_token, stream=stream, agent=agent, host=host).text
        return self.execute_stateless_task(worker, prompt, settings, on_token=on_token, stream=stream, agent=agent,
                                           host=host).output

    # ============================================================================ performance

    def log_performance(self, record: Mapping[str, Any]) -> PerformanceRecord:
        """Log a record of work done outside the manager; it feeds the definition's summary.

        Args:
            record: PerformanceRecord fields; ``task_id``, ``instance_id``, ``definition_id`` (ID or
                name), ``timestamp_start``, ``timestamp_end`` (RFC 3339), ``duration_ms`` (ms) and
                ``success`` are required; ``cost_incurred`` is in USD.

        Returns:
            The logged record.

        Raises:
            InvalidArgumentError: missing or bad field, bad timestamp (code 4).
            NotFoundError: no such definition (code 9).
        """
        if not isinstance(record, Mapping):
            raise InvalidArgumentError("a performance record must be a map")
        fields = canonical(record, RECORD_KEYS, "performance record")
        for key in ("task_id", "instance_id", "definition_id"):
            if not isinstance(fields.get(key), str) or not fields[key]:
                raise InvalidArgumentError(f"performance record: '{key}' is required (a non-empty string)")
        for key in ("timestamp_start", "timestamp_end"):
            value = fields.get(key)
            try:
                ts = parse_timestamp(value)
            except ValueError:
                ts = None
            if ts is None:
                raise InvalidArgumentError(f"invalid {key} format '{value}' (expected RFC 3339, e.g. "
                                           "2025-01-02T03:04:05Z)")
            fields[key] = ts
        for key in ("duration_ms", "success"):
            if key not in fields:
                raise InvalidArgumentError(f"performance record: '{key}' is required")
        self._ensure_loaded()
        with self._state:
            d = self._find(self._defs, fields["definition_id"])
        fields["definition_id"] = d.definition_id
        rec = validate_record(fields, "performance record")
        entry = RetiredInstanceInfo(entry_kind=PerformanceEntryKind.RECORD, instance_id=rec.instance_id,
                                    definition_id=d.definition_id, creation_timestamp=rec.timestamp_start,
                                    performance_records=[rec])
        self._append(entry)
        with self._state:
            live = self._instances.get(rec.instance_id)
            if live is not None:
                live.task_ids.add(rec.task_id)
        return rec

    def get_performance_records(self, ref: str, filters: Mapping[str, Any] | None = None) -> list[PerformanceRecord]:
        """The records of a definition, in log order, matching ``filters`` (see
        :func:`~nslang.workers.filters.record_filter`). Reads only that definition's entries.

        Raises:
            NotFoundError: no such definition (code 9).
            InvalidArgumentError: bad filters (code 4).
            StoreError: the log is corrupt or unreadable (code 6).
        """
        pred = record_filter(filters)
        self._ensure_loaded()
        with self._state:
            def_id = self._find(self._defs, ref).definition_id
        out: list[PerformanceRecord] = []

        def collect(entry: LogEntry) -> None:
            e = entry.data
            records = e.get("performance_records")
            if not isinstance(records, list):  # a hand-edited log (issue 10 item 5)
                return
            for raw in records:
                if not isinstance(raw, dict) or (raw.get("definition_id") or e.get("definition_id")) != def_id:
                    continue
                try:
                    r = PerformanceRecord.model_validate({**raw, "definition_id": def_id})
                except ValidationError as err:
                    logger.warning("performance log %s: skipping an unreadable record: %s", self.performance_path,
                                   describe_validation_error(err))
                    continue
                if pred(r):
                    out.append(r)

        for attempt in range(3):
            try:
                self._log.each_entry(collect)  # streamed: memory stays flat whatever the log's size
                return out
            except StaleLogError:
                if attempt == 2:
                    raise StoreError(f"performance log {self.performance_path} keeps changing under the reader",
                                     path=self.performance_path) from None
                out.clear()
                with self._load_lock:
                    self._load_log(use_checkpoint=True)
        raise AssertionError("unreachable")  # pragma: no cover

    def get_summary(self, ref: str) -> AIWorkerPerformanceSummary:
        """The live performance summary of a definition (``active_instances_count`` included).

        Raises:
            NotFoundError: no such definition (code 9).
        """
        self._ensure_loaded()
        with self._state:
            return self._summary(self._find(self._defs, ref).definition_id)

    def rate_limit_usage(self, ref: str) -> dict[str, int]:
        """``{requests_last_minute, tokens_last_minute, tokens_last_day, live_instances}`` of a definition,
        counted in every process sharing its limits (tokens include calls in flight at their estimate);
        zeros for a definition without limits (its usage is not recorded)."""
        self._ensure_loaded()
        with self._state:
            d = self._find(self._defs, ref)
        return self._limiter.usage(d)

    def reload_performance_data(self) -> tuple[int, int]:
        """Re-read the whole performance log and rebuild every summary (and the summaries checkpoint).

        Returns:
            (entries read, definitions with records).

        Raises:
            StoreError: the log is corrupt or unreadable (code 6).
        """
        self._sync_definitions()
        with self._load_lock:
            self._load_log(use_checkpoint=False)
        with self._state:
            return self._log.entry_count, sum(1 for k in self._summaries if k in self._defs)

    def save_performance_data(self) -> tuple[int, int]:
        """Make sure everything is on disk: records are appended as they happen, so this only
        rewrites the definitions file with the current summaries.

        Returns:
            (log entries, definitions saved).
        """
        self._ensure_loaded()
        count = self.save_definitions()
        return self._log.entry_count, count


def _scrub_call(call: ToolCall, key: str | None) -> ToolCall:
    """``call`` with the key redacted from its id, name and arguments (a reply that echoes the key,
    issue 10 item 2, applied to tool calls, issue 12)."""
    secrets = [key]
    scrubbed = ToolCall(scrub(call.id, secrets), scrub(call.name, secrets), scrub_value(call.arguments, secrets),
                        scrub(call.raw_arguments, secrets), scrub(call.error, secrets))
    return call if scrubbed == call else scrubbed
