"""AI worker management: definitions, instances, stateless tasks, limits, keys, cost, performance.

The subsystem of ai_workers.md (Part 1 binding). Modules, one responsibility each:

=================  ===============================================================================
``models``         pydantic models and enums (definitions, instances, records, summaries, …)
``manager``        :class:`AIWorkerManager`, the thread-safe facade the interpreter owns
``store``          the definitions file: atomic writes, cross-process lock, corruption refusal
``perflog``        the performance log: an in-place appendable JSON array that survives SIGKILL
``limits``         rate limits shared by threads, processes and hosts: windows, token reservations, live
                   instances (memory, SQLite in the sandbox, Redis)
``keys``           API key resolution and redaction
``summaries``      per-definition performance summaries folded from records
``filters``        filter maps of the List / ListActive / GetPerformanceRecords tools
``providers``      provider name → model factory (``test``, ``custom``, HTTP providers)
``tools``          the NeuroScript tools ``AIWorkerDefinition.*``, ``AIWorkerInstance.*``, ``AIWorker.*``
``errors``         the errors, each an NSRuntimeError with its upstream code
``sandbox_files``  the internal files scripts may read but not change (no imports; used by the fs tools)
=================  ===============================================================================

Importing this package is cheap: its public names are imported on first use (PEP 562). Importing
``manager`` or ``models`` imports pydantic (not httpx); nslang's core never does at start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .errors import (
        AIWorkerError,
        BudgetExceededError,
        ConfigurationError,
        InvalidArgumentError,
        NotFoundError,
        NotSupportedError,
        PreconditionFailedError,
        ProviderNotFoundError,
        RateLimitedError,
        ReplayMissError,
        StoreError,
    )
    from .manager import (
        AIWorkerManager,
        ChatReply,
        StatelessTaskResult,
    )
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

#: Public name → the module that defines it (imported on first use, PEP 562: importing the package
#: alone stays cheap, so light modules such as :mod:`.sandbox_files` can be used without pydantic).
_EXPORTS: dict[str, str] = {
    "AIWorkerDefinition": "models",
    "AIWorkerDefinitionStatus": "models",
    "AIWorkerError": "errors",
    "AIWorkerInstance": "models",
    "AIWorkerInstanceStatus": "models",
    "AIWorkerManager": "manager",
    "AIWorkerPerformanceSummary": "models",
    "AIWorkerProvider": "models",
    "APIKeySource": "models",
    "APIKeySourceMethod": "models",
    "ChatReply": "manager",
    "ConfigurationError": "errors",
    "InteractionModelType": "models",
    "BudgetExceededError": "errors",
    "InvalidArgumentError": "errors",
    "NotFoundError": "errors",
    "NotSupportedError": "errors",
    "PerformanceRecord": "models",
    "PreconditionFailedError": "errors",
    "ProviderNotFoundError": "errors",
    "RateLimitPolicy": "models",
    "RateLimitedError": "errors",
    "ReplayMissError": "errors",
    "RetiredInstanceInfo": "models",
    "StatelessTaskResult": "manager",
    "StoreError": "errors",
    "SupervisorFeedback": "models",
    "TokenUsageMetrics": "models",
}


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
    "BudgetExceededError",
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
    "ReplayMissError",
    "RetiredInstanceInfo",
    "StatelessTaskResult",
    "StoreError",
    "SupervisorFeedback",
    "TokenUsageMetrics",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
