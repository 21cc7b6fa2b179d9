"""Rate limiting per worker definition: the four RateLimitPolicy limits (ai_workers.md Part 1).

* ``max_requests_per_minute``: requests (stateless tasks and chat turns) in a sliding 60 s window.
  A request is counted when it is admitted, before the model call, so N threads never exceed it.
* ``max_tokens_per_minute`` / ``max_tokens_per_day``: input+output tokens recorded in a sliding
  60 s / 24 h window. Checked before the call against usage already recorded; the call's real usage
  is recorded after it.
* ``max_concurrent_active_instances``: checked at spawn against the live instances.

A limit of 0 means unlimited. Usage found in the shared performance log (other processes, earlier
runs) is folded in through :meth:`RateLimiter.observe`, de-duplicated by task id, so a new process
starts with the last 24 hours' usage. Exceeding a limit raises
:class:`~nslang.workers.errors.RateLimitedError` (code 20) naming the definition, the limit and the
seconds until it frees. Times are wall-clock seconds (``time.time``), injectable for tests.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import RateLimitedError
from .models import RateLimitPolicy

__all__ = ["MINUTE", "DAY", "RateLimiter"]

MINUTE = 60.0
DAY = 86400.0


class _Window:
    """Events ``(time, amount)`` of one sliding window, kept sorted by time, with a running total."""

    __slots__ = ("span", "events", "total")

    def __init__(self, span: float) -> None:
        self.span = span
        self.events: deque[tuple[float, int]] = deque()
        self.total = 0

    def prune(self, now: float) -> None:
        cutoff = now - self.span
        ev = self.events
        while ev and ev[0][0] <= cutoff:
            self.total -= ev.popleft()[1]

    def add(self, t: float, amount: int) -> None:
        if amount <= 0:
            return
        ev = self.events
        if not ev or ev[-1][0] <= t:
            ev.append((t, amount))
        else:  # an older event (from the log): insert in order, scanning from the newest end
            i = len(ev)
            while i > 0 and ev[i - 1][0] > t:
                i -= 1
            ev.insert(i, (t, amount))
        self.total += amount

    def seconds_until_below(self, limit: int, now: float) -> float:
        """Seconds until the total drops below ``limit`` as old events leave the window."""
        remaining = self.total
        for t, amount in self.events:
            remaining -= amount
            if remaining < limit:
                return max(0.0, t + self.span - now)
        return 0.0


@dataclass
class _Tracker:
    requests_minute: _Window = field(default_factory=lambda: _Window(MINUTE))
    tokens_minute: _Window = field(default_factory=lambda: _Window(MINUTE))
    tokens_day: _Window = field(default_factory=lambda: _Window(DAY))
    seen: dict[str, float] = field(default_factory=dict)  # task id -> time it can be forgotten

    def prune(self, now: float) -> None:
        self.requests_minute.prune(now)
        self.tokens_minute.prune(now)
        self.tokens_day.prune(now)
        if len(self.seen) > 4096:
            self.seen = {k: v for k, v in self.seen.items() if v > now}


class RateLimiter:
    """Thread-safe sliding-window usage per definition id.

    Args:
        clock: returns the current wall-clock time in seconds (``time.time``).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._trackers: dict[str, _Tracker] = {}

    def _tracker(self, definition_id: str) -> _Tracker:
        t = self._trackers.get(definition_id)
        if t is None:
            t = self._trackers[definition_id] = _Tracker()
        return t

    def check_spawn(self, definition_id: str, name: str, policy: RateLimitPolicy, active: int) -> None:
        """Refuse a spawn when ``active`` instances already reach ``max_concurrent_active_instances``.

        Raises:
            RateLimitedError: code 20; it frees when an instance of the definition is retired.
        """
        cap = policy.max_concurrent_active_instances
        if cap and active >= cap:
            raise RateLimitedError(
                f"AI worker definition '{name}' ({definition_id}): limit max_concurrent_active_instances="
                f"{cap} reached ({active} active); it frees when an instance is retired",
                definition_id=definition_id, limit="max_concurrent_active_instances", retry_after=None,
            )

    def reserve(self, definition_id: str, name: str, policy: RateLimitPolicy, task_id: str) -> None:
        """Admit one request (counting it at once) or refuse it.

        Raises:
            RateLimitedError: code 20, naming the definition, the limit and the seconds until it frees.
        """
        with self._lock:
            now = self._clock()
            tr = self._tracker(definition_id)
            tr.prune(now)
            checks = (
                ("max_requests_per_minute", policy.max_requests_per_minute, tr.requests_minute, "requests"),
                ("max_tokens_per_minute", policy.max_tokens_per_minute, tr.tokens_minute, "tokens"),
                ("max_tokens_per_day", policy.max_tokens_per_day, tr.tokens_day, "tokens"),
            )
            for limit_name, cap, window, unit in checks:
                if cap and window.total >= cap:
                    wait = window.seconds_until_below(cap, now)
                    span = "60 s" if window.span == MINUTE else "24 h"
                    raise RateLimitedError(
                        f"AI worker definition '{name}' ({definition_id}): rate limit {limit_name}={cap} "
                        f"reached ({window.total} {unit} in the last {span}); it frees in {wait:.1f} s",
                        definition_id=definition_id, limit=limit_name, retry_after=wait,
                    )
            tr.requests_minute.add(now, 1)
            tr.seen[task_id] = now + DAY

    def commit(self, definition_id: str, task_id: str, tokens: int) -> None:
        """Record the real token usage of an admitted request, at the current time."""
        with self._lock:
            now = self._clock()
            tr = self._tracker(definition_id)
            tr.tokens_minute.add(now, tokens)
            tr.tokens_day.add(now, tokens)
            tr.seen[task_id] = now + DAY

    def observe(self, definition_id: str, task_id: str, started: float | None, ended: float | None,
                tokens: int) -> None:
        """Fold in a request found in the performance log (ignored if already counted or too old)."""
        with self._lock:
            now = self._clock()
            end = ended if ended is not None else started
            if end is None or end <= now - DAY:
                return
            tr = self._tracker(definition_id)
            if task_id and task_id in tr.seen:
                return
            start = started if started is not None else end
            if start > now - MINUTE:
                tr.requests_minute.add(start, 1)
            tr.tokens_minute.add(end, tokens)
            tr.tokens_day.add(end, tokens)
            tr.prune(now)
            if task_id:
                tr.seen[task_id] = end + DAY

    def knows(self, definition_id: str, task_id: str) -> bool:
        """True when the request ``task_id`` is already counted (admitted here, or observed)."""
        with self._lock:
            tr = self._trackers.get(definition_id)
            return tr is not None and task_id in tr.seen

    def usage(self, definition_id: str) -> dict[str, int]:
        """``{requests_last_minute, tokens_last_minute, tokens_last_day}`` for a definition."""
        with self._lock:
            tr = self._tracker(definition_id)
            tr.prune(self._clock())
            return {
                "requests_last_minute": tr.requests_minute.total,
                "tokens_last_minute": tr.tokens_minute.total,
                "tokens_last_day": tr.tokens_day.total,
            }

    def forget(self, definition_id: str) -> None:
        """Drop a removed definition's usage."""
        with self._lock:
            self._trackers.pop(definition_id, None)
