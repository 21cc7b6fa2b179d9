"""Per-definition performance summaries, folded record by record (ai_workers.md §1.7, §2.8 fixed).

Every field is maintained (Part 1): counts, success rate (fraction 0..1), mean duration
(milliseconds), tokens, cost (USD), mean non-zero supervisor rating, last activity and instances
spawned. The accumulator works on raw JSON dicts as they come out of the performance log, so
rebuilding the summaries of a large log at start-up does not validate every record with pydantic.
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any

from .models import AIWorkerPerformanceSummary, PerformanceEntryKind, parse_timestamp

__all__ = ["SummaryAccumulator", "fold_entry", "record_tokens"]


def _int(value: Any) -> int:
    """An integer token count, or 0 when the value does not convert to an integer (§1.7) of 64 bits (a
    hand-edited 400-digit duration must not overflow the averages, issue 10 item 5)."""
    n = 0
    if isinstance(value, (bool, int)):
        n = int(value)
    elif isinstance(value, float) and value.is_integer():
        n = int(value)
    elif isinstance(value, str):
        try:
            n = int(value)
        except ValueError:
            return 0
    return n if -(1 << 63) <= n < (1 << 63) else 0


def _float(value: Any) -> float:
    """A cost or score, or 0.0 when the value does not convert to a float (an int past the float range
    included: a hand-edited log must not stop the summary, issue 10 item 5)."""
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return 0.0


def record_tokens(record: dict[str, Any]) -> tuple[int, int]:
    """(input_tokens, output_tokens) of a raw record's ``llm_metrics``."""
    metrics = record.get("llm_metrics")
    if not isinstance(metrics, dict):
        return 0, 0
    return _int(metrics.get("input_tokens")), _int(metrics.get("output_tokens"))


class SummaryAccumulator:
    """Running totals for one definition; :meth:`snapshot` gives the summary model."""

    __slots__ = ("attempted", "successful", "duration_ms", "tokens", "cost", "quality_sum", "rated",
                 "last_activity", "spawned")

    def __init__(self) -> None:
        self.attempted = 0
        self.successful = 0
        self.duration_ms = 0
        self.tokens = 0
        self.cost = 0.0
        self.quality_sum = 0.0
        self.rated = 0
        self.last_activity: _dt.datetime | None = None
        self.spawned = 0

    def add_record(self, record: dict[str, Any]) -> None:
        """Fold one raw performance record (§1.7 rules, with duration and quality averaged)."""
        self.attempted += 1
        if record.get("success") is True:
            self.successful += 1
        self.duration_ms += max(0, _int(record.get("duration_ms")))
        tin, tout = record_tokens(record)
        self.tokens += tin + tout
        self.cost += _float(record.get("cost_incurred"))
        feedback = record.get("supervisor_feedback")
        if isinstance(feedback, dict):
            rating = _float(feedback.get("rating"))
            if rating:
                self.quality_sum += rating
                self.rated += 1
        self.touch(record.get("timestamp_end"))

    def touch(self, value: Any) -> None:
        """Advance ``last_activity_timestamp`` to ``value`` (RFC 3339 string or datetime) if later."""
        try:
            ts = parse_timestamp(value)
        except ValueError:
            return
        if ts is not None and (self.last_activity is None or ts > self.last_activity):
            self.last_activity = ts

    def to_json(self) -> dict[str, Any]:
        """The running totals as a JSON object (for the checkpoint; :meth:`from_json` reads it back)."""
        return {
            "attempted": self.attempted, "successful": self.successful, "duration_ms": self.duration_ms,
            "tokens": self.tokens, "cost": self.cost, "quality_sum": self.quality_sum, "rated": self.rated,
            "last_activity": self.last_activity.isoformat() if self.last_activity is not None else None,
            "spawned": self.spawned,
        }

    @classmethod
    def from_json(cls, data: Any) -> SummaryAccumulator:
        """The accumulator :meth:`to_json` wrote.

        Raises:
            ValueError: ``data`` is not such an object (a missing field, a wrong type, a negative count,
                a cost that is negative or not finite).
        """
        if not isinstance(data, dict):
            raise ValueError("not an object")
        acc = cls()
        for name in ("attempted", "successful", "duration_ms", "tokens", "rated", "spawned"):
            v = data.get(name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} is not a count")
            setattr(acc, name, v)
        for name in ("cost", "quality_sum"):
            v = data.get(name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or (
                    name == "cost" and v < 0):  # JSON from outside may say NaN, Infinity or -1
                raise ValueError(f"{name} is not a number")
            setattr(acc, name, float(v))
        last = data.get("last_activity")
        if last is not None:
            if not isinstance(last, str):
                raise ValueError("last_activity is not a timestamp")
            acc.last_activity = parse_timestamp(last)
        if acc.successful > acc.attempted:
            raise ValueError("more successful tasks than attempted")
        return acc

    def snapshot(self, active_instances: int = 0) -> AIWorkerPerformanceSummary:
        """The summary as a model (``active_instances_count`` is filled by the caller)."""
        n = self.attempted
        return AIWorkerPerformanceSummary(
            total_tasks_attempted=n,
            successful_tasks=self.successful,
            failed_tasks=n - self.successful,
            average_success_rate=self.successful / n if n else 0.0,
            average_duration_ms=self.duration_ms / n if n else 0.0,
            total_duration_ms=self.duration_ms,
            total_tokens_processed=self.tokens,
            total_cost_incurred=self.cost,
            average_quality_score=self.quality_sum / self.rated if self.rated else 0.0,
            rated_tasks=self.rated,
            last_activity_timestamp=self.last_activity,
            total_instances_spawned=self.spawned,
            active_instances_count=active_instances,
        )


def fold_entry(entry: dict[str, Any], accumulators: dict[str, SummaryAccumulator]) -> None:
    """Fold a raw log entry into the accumulators of the definitions it concerns.

    Spawn entries (and Go-era retired entries, which have no spawn entry) count one instance
    spawned; every record counts towards its own ``definition_id`` (or the entry's).
    """
    def_id = entry.get("definition_id")
    kind = entry.get("entry_kind")
    if isinstance(def_id, str) and def_id:
        if kind == PerformanceEntryKind.SPAWN or kind is None:
            acc = accumulators.get(def_id)
            if acc is None:
                acc = accumulators[def_id] = SummaryAccumulator()
            acc.spawned += 1
            if kind is not None:
                acc.touch(entry.get("creation_timestamp"))
    records = entry.get("performance_records")
    if isinstance(records, list):
        for rec in records:
            if not isinstance(rec, dict):
                continue
            rid = rec.get("definition_id") or def_id
            if not isinstance(rid, str) or not rid:
                continue
            acc = accumulators.get(rid)
            if acc is None:
                acc = accumulators[rid] = SummaryAccumulator()
            acc.add_record(rec)
