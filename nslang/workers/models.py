"""Pydantic models and enums of the AI worker subsystem (ai_workers.md §1, fixed per Part 1).

* JSON keys are snake_case; on load the camelCase keys of the Go era (``modelName``,
  ``baseConfig``, ``definitionID``, …) are accepted as aliases (fixes §6 B1).
* Enums have the exact upstream string values and are validated: an unknown value is a clear error.
* Timestamps are timezone-aware UTC datetimes, written as RFC 3339 (``2025-01-02T03:04:05.123456Z``);
  any offset is accepted on load, and Go's zero time ``0001-01-01T00:00:00Z`` reads as None.
* Models that validate user input (definitions, API key sources, rate limits) forbid unknown fields.
  Models read back from the performance log ignore unknown fields, so a newer nslang's log still loads.

Units: durations in milliseconds, costs in USD, token counts in tokens.
"""

from __future__ import annotations

import datetime as _dt
import enum
import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AliasChoices,
    AliasGenerator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PlainSerializer,
)

__all__ = [
    "AIWorkerDefinition",
    "AIWorkerDefinitionStatus",
    "AIWorkerInstance",
    "AIWorkerInstanceStatus",
    "AIWorkerPerformanceSummary",
    "AIWorkerProvider",
    "APIKeySource",
    "APIKeySourceMethod",
    "APIKeyStatus",
    "InteractionModelType",
    "OnLimit",
    "PerformanceEntryKind",
    "PerformanceRecord",
    "RateLimitPolicy",
    "RetiredInstanceInfo",
    "Role",
    "SupervisorFeedback",
    "TokenUsageMetrics",
    "format_timestamp",
    "utc_now",
]


def round_usd(value: float) -> float:
    """A USD amount rounded to 12 decimal places (a millionth of a micro-dollar), so float noise never
    shows: ``3 * 0.003`` is ``0.009``, not ``0.009000000000000001`` (issue 15)."""
    return round(value, 12)


#: a cost in USD, rounded by :func:`round_usd` whenever a model is built
USD = Annotated[float, AfterValidator(round_usd)]


# ----------------------------------------------------------------------------------------------
# Enums (§1.1, exact values)


class _StrEnum(str, enum.Enum):
    """A str-valued enum whose str() and format() are the plain value (``enum.StrEnum`` on 3.11+)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class InteractionModelType(_StrEnum):
    """How a definition may be used: chat instances, stateless tasks, or both."""

    CONVERSATIONAL = "conversational"
    STATELESS_TASK = "stateless_task"
    BOTH = "both"


class APIKeySourceMethod(_StrEnum):
    """Where a definition's API key comes from (``vault`` is refused with code 30)."""

    ENV_VAR = "env_var"
    INLINE = "inline"
    CONFIG_PATH = "config_path"
    VAULT = "vault"
    NONE = "none"


class AIWorkerProvider(_StrEnum):
    """The LLM provider of a definition (Part 1 adds ``test``, the offline non-LLM)."""

    GOOGLE = "google"
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    OLLAMA = "ollama"
    LOCAL = "local"
    CUSTOM = "custom"
    TEST = "test"


class AIWorkerDefinitionStatus(_StrEnum):
    """Only ``active`` definitions run tasks or spawn instances."""

    ACTIVE = "active"
    DISABLED = "disabled"
    ARCHIVED = "archived"


class AIWorkerInstanceStatus(_StrEnum):
    """Lifecycle status of an instance (§1.1)."""

    INITIALIZING = "initializing"
    IDLE = "idle"
    BUSY = "busy"
    CONTEXT_FULL = "context_full"
    RATE_LIMITED = "rate_limited"
    TOKEN_LIMIT_REACHED = "token_limit_reached"
    RETIRED_COMPLETED = "retired_completed"
    RETIRED_EXHAUSTED = "retired_exhausted"
    RETIRED_ERROR = "retired_error"
    ERROR = "error"


#: Statuses Retire accepts as final (§1.1).
FINAL_STATUSES = frozenset({
    AIWorkerInstanceStatus.RETIRED_COMPLETED, AIWorkerInstanceStatus.RETIRED_ERROR,
    AIWorkerInstanceStatus.RETIRED_EXHAUSTED, AIWorkerInstanceStatus.CONTEXT_FULL,
    AIWorkerInstanceStatus.TOKEN_LIMIT_REACHED,
})
#: Statuses that mean "retired".
RETIRED_STATUSES = frozenset({
    AIWorkerInstanceStatus.RETIRED_COMPLETED, AIWorkerInstanceStatus.RETIRED_ERROR,
    AIWorkerInstanceStatus.RETIRED_EXHAUSTED,
})


class OnLimit(_StrEnum):
    """What a request does when a rate limit of its definition is reached (issue 11 item 4)."""

    ERROR = "error"
    """Fail at once with code 20 (RateLimited), naming the limit and when it frees."""
    WAIT = "wait"
    """Wait until the window (or an instance slot) frees, at most ``max_wait_s`` and never past the
    run's time limit; then fail with code 20."""


class APIKeyStatus(_StrEnum):
    """Display-only status of a definition's key (§1.1)."""

    UNKNOWN = "Unknown"
    FOUND = "Found"
    NOT_FOUND = "Not Found"
    NOT_CONFIGURED = "Not Configured"
    ERROR_RESOLVING = "Error Resolving"


class Role(_StrEnum):
    """Conversation roles."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class PerformanceEntryKind(_StrEnum):
    """What one element of the performance log records (nslang; absent in Go-era files).

    ``retired_instance`` (the default, and every Go-era entry): an instance was retired;
    ``stateless_task``: one stateless task (``instance_id`` is ``stateless-<uuid>``);
    ``spawn``: an instance was spawned (feeds ``total_instances_spawned``);
    ``chat_turn``: one turn of an instance's conversation (logged when it happened);
    ``record``: a record logged with ``AIWorker.LogPerformance``.
    Every record appears in exactly one entry.
    """

    RETIRED_INSTANCE = "retired_instance"
    STATELESS_TASK = "stateless_task"
    SPAWN = "spawn"
    CHAT_TURN = "chat_turn"
    RECORD = "record"


# ----------------------------------------------------------------------------------------------
# Timestamps

_ZERO_TIME = re.compile(r"^0001-01-01T00:00:00(\.0+)?(Z|[+-]00:00)?$")
_FRACTION = re.compile(r"\.(\d+)")


def utc_now() -> _dt.datetime:
    """The current time, timezone-aware UTC."""
    return _dt.datetime.now(_dt.timezone.utc)


def format_timestamp(ts: _dt.datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix (microsecond precision when non-zero)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=_dt.timezone.utc)
    return ts.astimezone(_dt.timezone.utc).isoformat().replace("+00:00", "Z")


def parse_timestamp(value: Any) -> _dt.datetime | None:
    """Parse an RFC 3339 string (any offset, up to nanoseconds) or a datetime into aware UTC.

    Returns None for None, ``""`` and Go's zero time. Raises ValueError for anything else.
    """
    if value is None or value == "":
        return None
    if isinstance(value, _dt.datetime):
        ts = value
    elif isinstance(value, str):
        text = value.strip()
        if _ZERO_TIME.match(text):
            return None
        text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            ts = _dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"invalid RFC 3339 timestamp {value!r}") from None
    else:
        raise ValueError(f"expected an RFC 3339 timestamp string, got {type(value).__name__}")
    if ts.year == 1 and ts.month == 1 and ts.day == 1 and ts.hour == 0 and ts.minute == 0:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=_dt.timezone.utc)
    return ts.astimezone(_dt.timezone.utc)


Timestamp = Annotated[
    _dt.datetime | None,
    BeforeValidator(parse_timestamp),
    PlainSerializer(lambda v: None if v is None else format_timestamp(v), when_used="json"),
]


def _empty_to(default: str) -> Any:
    return BeforeValidator(lambda v: default if v == "" or v is None else v)


def _none_to_list(v: Any) -> Any:
    return [] if v is None else v


def _none_to_dict(v: Any) -> Any:
    return {} if v is None else v


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


_ALIASES = AliasGenerator(validation_alias=lambda name: AliasChoices(name, _camel(name)))


class _Strict(BaseModel):
    """Base for models validating user input: unknown fields are errors, camelCase accepted."""

    model_config = ConfigDict(extra="forbid", alias_generator=_ALIASES, populate_by_name=True)


class _Lenient(BaseModel):
    """Base for models read back from the log: unknown fields are ignored, camelCase accepted."""

    model_config = ConfigDict(extra="ignore", alias_generator=_ALIASES, populate_by_name=True)


StrList = Annotated[list[str], BeforeValidator(_none_to_list)]
AnyDict = Annotated[dict[str, Any], BeforeValidator(_none_to_dict)]


# ----------------------------------------------------------------------------------------------
# Nested models


class APIKeySource(_Strict):
    """Where a definition's API key comes from (§1.3, Part 1 "API keys").

    ``value`` is the environment variable *name* for ``env_var``, the key file path for
    ``config_path`` (a relative path inside the sandbox, an absolute one inside the nslang config
    directory: :mod:`nslang.workers.keys`), and for ``inline`` only ever the
    redacted form ``****abcd`` once the manager holds it (the key itself is kept in memory).
    """

    method: Annotated[APIKeySourceMethod, _empty_to("none")] = APIKeySourceMethod.NONE
    """How to obtain the key."""
    value: str = ""
    """Env-var name, key file path, or the redacted inline key."""
    key_path: str = ""
    """``config_path`` only: dotted path of the key inside a JSON key file (e.g. ``openai.api_key``)."""


class RateLimitPolicy(_Strict):
    """Per-definition limits (§1.4); 0 means unlimited. All four are enforced (Part 1) and shared by every
    thread and process using the sandbox, or every host using the same Redis (see
    :mod:`nslang.workers.limits`, issue 11)."""

    max_requests_per_minute: NonNegativeInt = 0
    """Requests (stateless tasks and chat turns) admitted in any sliding 60 s window."""
    max_tokens_per_minute: NonNegativeInt = 0
    """Input+output tokens in any sliding 60 s window; a call reserves an estimate when it is admitted
    (prompt characters / 4 plus ``max_tokens``, else the running average of output tokens) and is
    settled to its real usage when it returns."""
    max_tokens_per_day: NonNegativeInt = 0
    """Input+output tokens in any sliding 24 h window (reserved and settled the same way)."""
    max_concurrent_active_instances: NonNegativeInt = 0
    """Live instances of the definition, in every process sharing the limits (checked at Spawn)."""
    on_limit: Annotated[OnLimit, _empty_to("error")] = OnLimit.ERROR
    """``error`` (default): a request over a limit fails with code 20; ``wait``: it waits for the window
    or a free instance slot (at most ``max_wait_s``, never past the run's time limit)."""
    max_wait_s: NonNegativeFloat = 60.0
    """With ``on_limit: "wait"``: the longest wait of one request in seconds; 0 = no bound of its own
    (the run's time limit still applies)."""
    max_cost_usd_per_day: NonNegativeFloat = 0.0
    """USD the definition may spend in any sliding 24 h window, checked before each model call against the
    logged spend plus the call's worst case (issue 14 item 4; :mod:`nslang.workers.economics`)."""


class TokenUsageMetrics(_Lenient):
    """Token counts of a session (§1.5); ``total_tokens`` = input + output."""

    input_tokens: NonNegativeInt = 0
    output_tokens: NonNegativeInt = 0
    total_tokens: NonNegativeInt = 0


class SupervisorFeedback(_Lenient):
    """A supervisor's rating of one task (§1.6); a non-zero ``rating`` feeds ``average_quality_score``."""

    rating: float | None = None
    comments: str = ""
    correction_instructions: str = ""
    supervisor_agent_id: str = ""
    feedback_timestamp: Timestamp = None


class AIWorkerPerformanceSummary(_Lenient):
    """Aggregate of a definition's performance records (§1.7; every field maintained, Part 1).

    Rebuilt from the performance log on load and updated at once by every record.
    """

    total_tasks_attempted: int = 0
    successful_tasks: int = 0
    failed_tasks: int = 0
    average_success_rate: float = 0.0
    """Fraction 0..1: successful / attempted."""
    average_duration_ms: float = 0.0
    """Mean ``duration_ms`` over all records (milliseconds)."""
    total_duration_ms: int = 0
    """Sum of ``duration_ms`` (nslang addition; milliseconds)."""
    total_tokens_processed: int = 0
    """Σ input + output tokens of all records."""
    total_cost_incurred: USD = 0.0
    """Σ ``cost_incurred`` (USD)."""
    average_quality_score: float = 0.0
    """Mean of the non-zero supervisor ratings."""
    rated_tasks: int = 0
    """How many records carry a non-zero supervisor rating (nslang addition)."""
    last_activity_timestamp: Timestamp = None
    total_instances_spawned: int = 0
    active_instances_count: int = 0
    """Live instances in this process (filled when read; written as 0)."""


class PerformanceRecord(_Lenient):
    """One task or chat turn (§1.10). ``instance_id`` is ``stateless-<uuid>`` for stateless tasks.

    ``llm_metrics`` keys: ``input_tokens``, ``output_tokens``, ``total_tokens``, ``finish_reason``,
    ``model_used_at_call``, ``price_source`` (``cost_metrics``, ``genai-prices <version>``, ``unknown``)
    and, when they apply: ``cache_read_tokens``, ``cache_write_tokens``, ``reasoning_tokens`` (as the
    provider reported them), ``estimated: true`` (the provider reported no usage), ``cached: true``
    (answered from the response cache: cost 0, ``price_source: "cache"``), ``served_by`` /
    ``served_by_id`` (the fallback definition that answered) and ``fallback_errors`` (why the earlier
    definitions did not).
    """

    task_id: str = ""
    instance_id: str = ""
    definition_id: str = ""
    timestamp_start: Timestamp = None
    timestamp_end: Timestamp = None
    duration_ms: NonNegativeInt = 0
    """Wall-clock time of the call (milliseconds)."""
    success: bool = False
    input_context: AnyDict = Field(default_factory=dict)
    llm_metrics: AnyDict = Field(default_factory=dict)
    cost_incurred: Annotated[NonNegativeFloat, AfterValidator(round_usd)] = 0.0
    """USD."""
    output_summary: str = ""
    """The reply, cut to 256 characters (253 + ``...``)."""
    error_details: str = ""
    supervisor_feedback: SupervisorFeedback | None = None


class AIWorkerDefinition(_Strict):
    """A worker definition (§1.8): provider, model, key source, limits, costs, and its summary."""

    definition_id: str = Field(
        default="", validation_alias=AliasChoices("definition_id", "definitionID", "definitionId")
    )
    """Stable UUID, generated once at Add and persisted (a hand-written entry without one gets a
    UUID5 of its name, the same on every load)."""
    name: str = ""
    """Unique, non-empty."""
    provider: AIWorkerProvider
    model_name: str = ""
    auth: Annotated[APIKeySource, BeforeValidator(lambda v: APIKeySource() if v is None else v)] = Field(
        default_factory=APIKeySource
    )
    interaction_models: Annotated[list[InteractionModelType], BeforeValidator(_none_to_list)] = Field(
        default_factory=list
    )
    capabilities: StrList = Field(default_factory=list)
    base_config: AnyDict = Field(default_factory=dict)
    """Default model settings (``temperature``, ``top_p``, ``max_tokens``, ``base_url``, ``timeout_s``,
    ``max_retries``; other keys are passed through to the provider)."""
    cost_metrics: Annotated[dict[str, NonNegativeFloat], BeforeValidator(_none_to_dict)] = Field(
        default_factory=dict
    )
    """USD prices: ``input_cost_per_token``, ``output_cost_per_token``, ``cache_read_cost_per_token`` and
    ``cache_write_cost_per_token`` (default: the input price), ``per_call``. Empty: priced from genai-prices
    when it knows the provider and model (:mod:`nslang.workers.economics`)."""
    fallback: StrList = Field(default_factory=list)
    """Names of definitions that serve a call, in order, when this one fails after its retries (HTTP
    408/409/429/5xx, timeout, connection failure; issue 14 item 5)."""
    rate_limits: Annotated[RateLimitPolicy, BeforeValidator(lambda v: RateLimitPolicy() if v is None else v)] = (
        Field(default_factory=RateLimitPolicy)
    )
    status: Annotated[AIWorkerDefinitionStatus, _empty_to("active")] = AIWorkerDefinitionStatus.ACTIVE
    default_file_contexts: StrList = Field(default_factory=list)
    data_source_refs: StrList = Field(default_factory=list)
    tool_allowlist: StrList = Field(default_factory=list)
    tool_denylist: StrList = Field(default_factory=list)
    default_supervisory_ai_ref: str = Field(
        default="",
        validation_alias=AliasChoices("default_supervisory_ai_ref", "defaultSupervisoryAIRef",
                                      "defaultSupervisoryAiRef"),
    )
    aggregate_performance_summary: AIWorkerPerformanceSummary | None = None
    """System-managed; recomputed from the performance log on load."""
    metadata: AnyDict = Field(default_factory=dict)
    created_timestamp: Timestamp = None
    modified_timestamp: Timestamp = None

    def supports(self, model: InteractionModelType) -> bool:
        """True when ``interaction_models`` contains ``model`` or ``both``."""
        return model in self.interaction_models or InteractionModelType.BOTH in self.interaction_models


class AIWorkerInstance(_Lenient):
    """A live conversational instance (§1.9); in memory only. Its history is kept by the manager."""

    instance_id: str
    definition_id: str
    status: AIWorkerInstanceStatus = AIWorkerInstanceStatus.IDLE
    creation_timestamp: Timestamp = None
    last_activity_timestamp: Timestamp = None
    session_token_usage: TokenUsageMetrics = Field(default_factory=TokenUsageMetrics)
    current_config: AnyDict = Field(default_factory=dict)
    """``base_config`` shallowly merged with the spawn's ``config_overrides``."""
    active_file_contexts: StrList = Field(default_factory=list)
    last_error: str = ""
    retirement_reason: str = ""
    pool_id: str = ""
    current_task_id: str = ""
    supervisory_ai_ref: str = ""
    data_source_refs: StrList = Field(default_factory=list)


class RetiredInstanceInfo(_Lenient):
    """One element of ``ai_worker_performance_data.json`` (§1.11, with ``entry_kind`` added).

    Go-era elements have no ``entry_kind`` and read as ``retired_instance``. A ``null``
    ``performance_records`` reads as ``[]``.
    """

    entry_kind: PerformanceEntryKind = PerformanceEntryKind.RETIRED_INSTANCE
    instance_id: str = ""
    definition_id: str = ""
    creation_timestamp: Timestamp = None
    retirement_timestamp: Timestamp = None
    final_status: AIWorkerInstanceStatus | None = None
    retirement_reason: str = ""
    session_token_usage: TokenUsageMetrics = Field(default_factory=TokenUsageMetrics)
    initial_file_contexts: StrList = Field(default_factory=list)
    performance_records: Annotated[list[PerformanceRecord], BeforeValidator(_none_to_list)] = Field(
        default_factory=list
    )
