"""The errors the AI worker subsystem raises, each a NeuroScript runtime error with its upstream code.

Every error that can reach a script is an :class:`~nslang.errors.NSRuntimeError` subclass, so
``on error`` handlers see it with the code of ai_workers.md §2.12::

    AIWorkerError (NSRuntimeError)
    ├── InvalidArgumentError    4  bad or missing argument, unknown field or enum value, duplicate name
    ├── StoreError              6  a worker data file is corrupt, unreadable, unwritable or locked
    ├── NotFoundError           9  no such definition or active instance
    ├── ReplayMissError         9  ``--replay`` has no recorded answer for a request
    ├── ConfigurationError     18  API key missing or unreadable, no default worker
    ├── PreconditionFailedError 19 definition not active, wrong interaction model, instance busy
    ├── RateLimitedError       20  a RateLimitPolicy limit is reached (names limit and wait time)
    ├── NotSupportedError      30  API key method ``vault``
    ├── BudgetExceededError    37  a cost budget (task, definition per day, run) would be exceeded
    └── ProviderNotFoundError  40  provider not available, or no such custom provider registered

Model failures are :class:`~nslang.errors.LLMError` (16) and
:class:`~nslang.llm.base.LLMTimeoutError` (31). No message ever contains an API key.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ErrorCode, NSRuntimeError

if TYPE_CHECKING:  # pragma: no cover
    from pydantic import ValidationError

__all__ = [
    "AIWorkerError",
    "BudgetExceededError",
    "ConfigurationError",
    "InvalidArgumentError",
    "NotFoundError",
    "NotSupportedError",
    "PreconditionFailedError",
    "ProviderNotFoundError",
    "RateLimitedError",
    "ReplayMissError",
    "StoreError",
    "describe_validation_error",
]


class AIWorkerError(NSRuntimeError):
    """Root of the AI worker errors (code 6, Internal, unless a subclass says otherwise)."""

    default_code = ErrorCode.INTERNAL


class InvalidArgumentError(AIWorkerError):
    """Raised when an argument, field or enum value is invalid, or a name is taken (code 4)."""

    default_code = ErrorCode.ARG_MISMATCH


class StoreError(AIWorkerError):
    """Raised when a worker data file is corrupt, unreadable, unwritable or stays locked (code 6).

    Attributes:
        path: the file concerned.
    """

    default_code = ErrorCode.INTERNAL

    def __init__(self, message: str, *, path: Path, code: int | None = None) -> None:
        super().__init__(message, code=code)
        self.path = path


class NotFoundError(AIWorkerError):
    """Raised when a definition or active instance does not exist (code 9, KeyNotFound)."""

    default_code = ErrorCode.KEY_NOT_FOUND


class ConfigurationError(AIWorkerError):
    """Raised when an API key cannot be found or read, or no default worker is set (code 18)."""

    default_code = ErrorCode.CONFIGURATION


class PreconditionFailedError(AIWorkerError):
    """Raised when a definition is not active, lacks an interaction model, or an instance is busy (19)."""

    default_code = ErrorCode.PRECONDITION_FAILED


class RateLimitedError(AIWorkerError):
    """Raised when a rate limit of a definition is reached (code 20, RateLimited).

    Attributes:
        definition_id: the definition whose limit it is.
        limit: the RateLimitPolicy field, e.g. ``max_requests_per_minute``.
        retry_after: seconds until the limit frees, or None when only a retire frees it.
    """

    default_code = ErrorCode.RATE_LIMITED

    def __init__(self, message: str, *, definition_id: str, limit: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.definition_id = definition_id
        self.limit = limit
        self.retry_after = retry_after


class BudgetExceededError(AIWorkerError):
    """Raised before a model call whose worst-case cost would take spending past a budget (code 37,
    ResourceExhaustion; issue 14 item 4). Nothing is sent and no record is logged.

    The ``task`` budget (``max_cost_usd`` option) and the ``definition`` budget
    (``rate_limits.max_cost_usd_per_day``) are catchable by ``on error``, like a rate limit; the
    ``run`` budget (``nslang run --max-cost``, ``Interpreter(max_cost_usd=…)``) is a limit of the
    whole run and is not.

    Attributes:
        budget: ``task``, ``definition`` or ``run``.
        spent: USD spent so far under that budget.
        limit: the budget in USD.
        worst_case: the refused call's worst-case cost in USD.
    """

    default_code = ErrorCode.RESOURCE_EXHAUSTION

    def __init__(self, message: str, *, budget: str, spent: float, limit: float, worst_case: float) -> None:
        super().__init__(message)
        self.budget = budget
        self.spent = spent
        self.limit = limit
        self.worst_case = worst_case
        self.catchable = budget != "run"


class ReplayMissError(AIWorkerError):
    """Raised when ``--replay`` has no recorded exchange for a request (code 9, KeyNotFound;
    issue 14 item 7). The message names the worker, provider, model, request hash and prompt start."""

    default_code = ErrorCode.KEY_NOT_FOUND


class NotSupportedError(AIWorkerError):
    """Raised for a feature nslang deliberately does not support, e.g. ``vault`` keys (code 30)."""

    default_code = ErrorCode.NOT_IMPLEMENTED


class ProviderNotFoundError(AIWorkerError):
    """Raised when a definition's provider is not available, or a custom provider is unknown (40)."""

    default_code = ErrorCode.PROVIDER_NOT_FOUND


def describe_validation_error(exc: ValidationError, *, prefix: str = "") -> str:
    """One line per problem of a pydantic error, naming the field, never echoing input values.

    Only the offending value of an enum error is shown (it is a short code such as a provider name);
    everything else is left out so that a key passed in the wrong place can never leak.
    """
    parts: list[str] = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(x) for x in err.get("loc", ())) or "value"
        if prefix:
            loc = f"{prefix}.{loc}" if loc != "value" else prefix
        msg = str(err.get("msg", "invalid"))
        if err.get("type") == "enum" and "auth" not in err.get("loc", ()):
            given: Any = err.get("input")
            if isinstance(given, str) and len(given) <= 40:
                msg += f" (got {given!r})"
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)
