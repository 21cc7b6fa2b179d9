"""What a model call costs, and the budgets that cap it (issue 14 items 3 and 4).

**Usage.** A call's :class:`Usage` splits the provider's counts: ``input_tokens`` (the whole prompt,
cached parts included), ``cache_read_tokens`` and ``cache_write_tokens`` (parts of the input),
``output_tokens`` (reasoning included) and ``reasoning_tokens`` (part of the output). Each provider
module fills them from its own usage shape (:class:`~nslang.llm.base.ModelResponse`).

**Prices** (:func:`price_call`), in USD, from the first that applies:

1. the definition's ``cost_metrics``, when it has any (``"price_source": "cost_metrics"``)::

       cost = (input - cache_read - cache_write) * input_cost_per_token
            + cache_read  * cache_read_cost_per_token    (default: input_cost_per_token)
            + cache_write * cache_write_cost_per_token   (default: input_cost_per_token)
            + output      * output_cost_per_token        (reasoning tokens are output tokens)
            + per_call                                   (when the call succeeded or used tokens)

2. the ``genai-prices`` package for providers ``openai``, ``anthropic`` and ``google`` and a model it
   knows (``"price_source": "genai-prices <version>"``), prompt-cache discounts included; the package is
   imported on the first call that needs it, never when a script starts;
3. otherwise the call costs 0 (``"price_source": "unknown"``; the ``test``, ``custom``, ``local`` and
   ``ollama`` providers always land here unless their definition has ``cost_metrics``).

**Worst case** (:func:`worst_case`): the input estimated from the messages (characters / 4, plus 4 per
message) at the input price, plus ``max_tokens`` (else :data:`DEFAULT_WORST_OUTPUT_TOKENS`; at most
:data:`MAX_PRICED_TOKENS`, which a NaN or infinite ``max_tokens`` also counts as) at the
output price, plus ``per_call``.

**Budgets** (:func:`check_budget`): before each model call the worst case is added to what was spent
under each budget; when the sum exceeds the limit the call is refused with
:class:`~nslang.workers.errors.BudgetExceededError` (code 37), naming the budget, the spend and the
limit. The budgets: ``task`` (``max_cost_usd`` in ``base_config`` or the call's options, spend of
the task so far), ``definition`` (``rate_limits.max_cost_usd_per_day``, spend in the last 24 h from
the performance log, :class:`DailySpend`) and ``run`` (``nslang run --max-cost``,
``Interpreter(max_cost_usd=…)``, spend of this interpreter's manager).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from ..llm.base import Message
from .errors import BudgetExceededError, InvalidArgumentError
from .models import AIWorkerDefinition, parse_timestamp

__all__ = [
    "DEFAULT_WORST_OUTPUT_TOKENS",
    "Cost",
    "DailySpend",
    "Usage",
    "check_budget",
    "estimate_input_tokens",
    "price_call",
    "task_limit",
    "worst_case",
]

logger = logging.getLogger("nslang.workers")

#: Output tokens the worst case assumes when ``max_tokens`` is not set (Anthropic's default in nslang).
DEFAULT_WORST_OUTPUT_TOKENS = 4096
#: Token counts are priced at most this many (10**15): a ``max_tokens`` above it, infinite or NaN prices the
#: worst case here (no sensible budget admits it), and a provider reporting more (an int past a float's
#: range cannot be priced) is charged this.
MAX_PRICED_TOKENS = 10**15
#: nslang provider name -> genai-prices provider id.
GENAI_PROVIDERS = {"openai": "openai", "anthropic": "anthropic", "google": "google"}
DAY = 86400.0


@dataclass(frozen=True)
class Usage:
    """Token counts of one call (see the module docstring for what includes what)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True)
class Cost:
    """A price in USD and where it came from (``cost_metrics``, ``genai-prices <version>``, ``unknown``)."""

    usd: float
    source: str


@cache
def _genai_prices() -> tuple[Any, Any, str] | None:
    """``(calc_price, Usage, version)`` of genai-prices, imported on first use; None when not installed."""
    try:
        import genai_prices
    except ImportError:  # pragma: no cover - a declared dependency
        return None
    return genai_prices.calc_price, genai_prices.Usage, genai_prices.__version__


def _from_genai(provider: str, model_names: Sequence[str], usage: Usage) -> Cost | None:
    provider_id = GENAI_PROVIDERS.get(provider)
    lib = _genai_prices() if provider_id else None
    if lib is None:
        return None
    calc_price, gp_usage, version = lib
    counts = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
              "cache_read_tokens": usage.cache_read_tokens, "cache_write_tokens": usage.cache_write_tokens}
    for name in dict.fromkeys(n for n in model_names if n):
        try:
            price = calc_price(gp_usage(**counts), name, provider_id=provider_id)
        except LookupError:
            continue
        return Cost(float(price.total_price), f"genai-prices {version}")
    return None


def price_call(d: AIWorkerDefinition, usage: Usage, *, model_used: str = "", succeeded: bool = True) -> Cost:
    """The cost of one call of definition ``d`` (module docstring, "Prices").

    Args:
        d: the definition that served the call (its ``cost_metrics``, provider and model name).
        usage: the call's token counts.
        model_used: the model the provider reported, tried after ``d.model_name`` in genai-prices.
        succeeded: whether the call succeeded (``per_call`` is charged when it did or used tokens).
    """
    if max(usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens) > \
            MAX_PRICED_TOKENS:
        usage = Usage(*(min(n, MAX_PRICED_TOKENS) for n in (usage.input_tokens, usage.output_tokens,
                                                             usage.cache_read_tokens, usage.cache_write_tokens,
                                                             usage.reasoning_tokens)))
    prices = d.cost_metrics
    if prices:
        read = min(usage.cache_read_tokens, usage.input_tokens)
        write = min(usage.cache_write_tokens, usage.input_tokens - read)
        p_in = prices.get("input_cost_per_token", 0.0)
        usd = ((usage.input_tokens - read - write) * p_in
               + read * prices.get("cache_read_cost_per_token", p_in)
               + write * prices.get("cache_write_cost_per_token", p_in)
               + usage.output_tokens * prices.get("output_cost_per_token", 0.0))
        if succeeded or usage.input_tokens or usage.output_tokens:
            usd += prices.get("per_call", 0.0)
        return Cost(usd, "cost_metrics")
    if usage.input_tokens or usage.output_tokens:
        found = _from_genai(d.provider.value, (d.model_name, model_used), usage)
        if found is not None:
            return found
    return Cost(0.0, "unknown")


def estimate_input_tokens(messages: Sequence[Message]) -> int:
    """Input tokens of ``messages`` estimated as characters / 4 (rounded up) plus 4 per message."""
    return sum(math.ceil(len(m.content) / 4) + 4 for m in messages)


def worst_case(d: AIWorkerDefinition, messages: Sequence[Message], settings: Mapping[str, Any]) -> Cost:
    """The most one call of ``d`` with ``messages`` may cost (module docstring, "Worst case")."""
    max_out = settings.get("max_tokens")
    if isinstance(max_out, bool) or not isinstance(max_out, (int, float)) or max_out <= 0:
        max_out = DEFAULT_WORST_OUTPUT_TOKENS
    elif not max_out <= MAX_PRICED_TOKENS:  # NaN, infinity, 10**400
        max_out = MAX_PRICED_TOKENS
    return price_call(d, Usage(input_tokens=estimate_input_tokens(messages), output_tokens=int(max_out)))


def task_limit(settings: Mapping[str, Any], who: str) -> float | None:
    """The ``max_cost_usd`` task budget in ``settings`` (USD), or None when unset.

    Raises:
        InvalidArgumentError: not a non-negative number (code 4).
    """
    v = settings.get("max_cost_usd")
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise InvalidArgumentError(f"{who}: max_cost_usd must be a non-negative number of USD, got {v!r}")
    return float(v)


def check_budget(budget: str, label: str, spent: float, cost: Cost, limit: float | None) -> None:
    """Refuse a call whose worst case ``cost`` would take ``spent`` past ``limit`` (None: no budget).

    Args:
        budget: ``task``, ``definition`` or ``run``.
        label: how the message names the budget (e.g. ``run budget (--max-cost)``).
        spent: USD spent so far under the budget.
        cost: the call's worst case.
        limit: the budget in USD.

    Raises:
        BudgetExceededError: spent + worst case > limit (code 37).
    """
    if limit is None or spent + cost.usd <= limit + 1e-12:
        return
    raise BudgetExceededError(
        f"{label} of {limit:.6g} USD would be exceeded: {spent:.6g} USD spent so far, and this call may cost "
        f"up to {cost.usd:.6g} USD (price source: {cost.source}); the call was not made",
        budget=budget, spent=spent, limit=limit, worst_case=cost.usd)


class DailySpend:
    """USD spent per definition in a sliding 24 h window, from the performance log (every process's
    records). Thread-safe.

    Nothing is tracked until a daily budget is first checked (so loading a large log costs nothing
    extra): the first :meth:`spent` scans the whole log once (``scan``; a process may have started
    from the summaries checkpoint without reading older entries), and from then on records arrive
    through :meth:`observe` as the manager reads or appends log entries. Records are counted once
    each (by task id). A record's
    cost counts for the definition that served it (``llm_metrics.served_by_id`` after a fallback), else
    the record's definition.

    Args:
        clock: wall-clock seconds.
        scan: calls its argument with every log entry (the manager's full log read), or None.
    """

    def __init__(self, clock: Callable[[], float] = time.time,
                 scan: Callable[[Callable[[Mapping[str, Any]], None]], None] | None = None) -> None:
        self._clock = clock
        self._scan = scan
        self._active = scan is None
        self._lock = threading.Lock()
        self._events: dict[str, deque[tuple[float, float, str]]] = {}
        self._seen: set[str] = set()

    def reset(self) -> None:
        """Forget everything (the log is being re-read from the start)."""
        with self._lock:
            self._events = {}
            self._seen = set()
            self._active = self._scan is None  # the next check scans the log again

    def observe(self, entry: Mapping[str, Any]) -> None:
        """Fold the records of one performance-log entry (a record already counted is skipped)."""
        if not self._active:
            return
        now = self._clock()
        for rec in entry.get("performance_records") or ():
            if not isinstance(rec, dict):
                continue
            cost = rec.get("cost_incurred")
            metrics = rec.get("llm_metrics") if isinstance(rec.get("llm_metrics"), dict) else {}
            def_id = metrics.get("served_by_id") or rec.get("definition_id") or entry.get("definition_id")
            task = str(rec.get("task_id") or "")
            if not isinstance(cost, (int, float)) or isinstance(cost, bool) or cost <= 0 or not isinstance(def_id, str):
                continue
            try:
                end = parse_timestamp(rec.get("timestamp_end"))
            except ValueError:
                continue
            if end is None or end.timestamp() <= now - DAY:
                continue
            with self._lock:
                if task and task in self._seen:
                    continue
                self._seen.add(task)
                self._events.setdefault(def_id, deque()).append((end.timestamp(), float(cost), task))

    def spent(self, definition_id: str) -> float:
        """USD spent by ``definition_id`` in the last 24 hours."""
        if not self._active and self._scan is not None:
            self._active = True  # before the scan: entries appended meanwhile are observed too
            self._scan(self.observe)
        cutoff = self._clock() - DAY
        with self._lock:
            ev = self._events.get(definition_id)
            if not ev:
                return 0.0
            kept = deque(e for e in ev if e[0] > cutoff)
            self._seen.difference_update(e[2] for e in ev if e[0] <= cutoff)
            self._events[definition_id] = kept
            return sum(e[1] for e in kept)
