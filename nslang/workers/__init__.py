"""AI worker management: definitions, instances, stateless tasks, limits, keys, cost, performance.

The subsystem of ai_workers.md (Part 1 binding). Modules, one responsibility each:

=================  ===============================================================================
``models``         pydantic models and enums (definitions, instances, records, summaries, …)
``manager``        :class:`AIWorkerManager`, the thread-safe facade the interpreter owns
``store``          the definitions file: atomic writes, cross-process lock, corruption refusal
``perflog``        the performance log: an in-place appendable JSON array that survives SIGKILL
``ratelimit``      sliding-window rate limits (requests/min, tokens/min, tokens/day, concurrency)
``keys``           API key resolution and redaction
``summaries``      per-definition performance summaries folded from records
``filters``        filter maps of the List / ListActive / GetPerformanceRecords tools
``providers``      provider name → model factory (``test``, ``custom``, HTTP providers)
``tools``          the NeuroScript tools ``AIWorkerDefinition.*``, ``AIWorkerInstance.*``, ``AIWorker.*``
``errors``         the errors, each an NSRuntimeError with its upstream code
=================  ===============================================================================

Importing this package imports pydantic (not httpx); nslang's core never imports it at start-up.
"""

from __future__ import annotations

from .errors import (
    AIWorkerError,
    ConfigurationError,
    InvalidArgumentError,
    NotFoundError,
    NotSupportedError,
    PreconditionFailedError,
    ProviderNotFoundError,
    RateLimitedError,
    StoreError,
)
from .manager import AIWorkerManager, ChatReply, StatelessTaskResult
from .models import (
    AIWorkerDefinition,
    AIWorkerDefinitionStatus,
    AIWorkerInstance,
    AIWorkerInstanceStatus,
    AIWorkerPerformanceSummary,
    AIWorkerProvider,
    APIKeySource,
    APIKeySourceMethod,
    InteractionModelType,
    PerformanceRecord,
    RateLimitPolicy,
    RetiredInstanceInfo,
    SupervisorFeedback,
    TokenUsageMetrics,
)

__all__ = [
    "AIWorkerDefinition",
    "AIWorkerDefinitionStatus",
    "AIWorkerError",
    "AIWorkerInstance",
    "AIWorkerInstanceStatus",
    "AIWorkerManager",
    "AIWorkerPerformanceSummary",
    "AIWorkerProvider",
    "APIKeySource",
    "APIKeySourceMethod",
    "ChatReply",
    "ConfigurationError",
    "InteractionModelType",
    "InvalidArgumentError",
    "NotFoundError",
    "NotSupportedError",
    "PerformanceRecord",
    "PreconditionFailedError",
    "ProviderNotFoundError",
    "RateLimitPolicy",
    "RateLimitedError",
    "RetiredInstanceInfo",
    "StatelessTaskResult",
    "StoreError",
    "SupervisorFeedback",
    "TokenUsageMetrics",
]
