"""Parallel fan-out: one stateless task per prompt, with bounded concurrency (issue 13 item 3).

``tool.AIWorker.Map(name, prompts, max_concurrency: N, tools: […], on_error: "collect" | "fail")``
runs :meth:`~nslang.workers.manager.AIWorkerManager.execute_stateless_task` for every prompt on at
most ``max_concurrency`` threads (default 4, at most :data:`MAX_CONCURRENCY`) and returns the
results **in input order**, each the map ``ExecuteStatelessTask`` returns. Each task is an ordinary
stateless task: its own performance record, its own admission by the rate limits.

* ``on_error: "collect"`` (default): a failed item becomes an error value in its slot
  (``{"code", "message"}``, ``is_error`` true); the others go on.
* ``on_error: "fail"``: the first failure (in input order) is raised once the tasks already running
  have ended; items not started yet are not run.
* Rate limits: an item refused by a rate limit (code 20) waits for it to free
  (``retry_after``) and tries again, whatever the definition's ``on_limit``; it waits at most the
  definition's ``rate_limits.max_wait_s`` (0: no bound of its own) and never past the run's
  ``--timeout`` (then the refusal is the item's error).
* Errors that stop the run (its ``--timeout``, its step budget) are raised at once, never collected.

With ``tools`` each task is a tool-calling task; the tools run on the calling interpreter, one at a
time (``Interpreter.tool_lock``), while the model calls overlap. Called while its thread holds that
lock (a procedure offered as a tool, or an event handler, runs Map), the tasks run one by one in the
calling thread: threads could not take the lock.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..errors import NSRuntimeError
from .errors import InvalidArgumentError, RateLimitedError

if TYPE_CHECKING:  # pragma: no cover
    from ..interpreter import Interpreter
    from .agent import AgentOptions

__all__ = ["DEFAULT_CONCURRENCY", "MAX_CONCURRENCY", "ON_ERROR", "run_map"]

DEFAULT_CONCURRENCY = 4
MAX_CONCURRENCY = 64
ON_ERROR = ("collect", "fail")

#: How an item waits for a rate limit (tests replace it to count the waits).
sleep: Callable[[float], None] = time.sleep
#: The monotonic clock the run's deadline uses.
clock: Callable[[], float] = time.monotonic


def run_map(host: Interpreter, ref: str, prompts: Sequence[Any], *, max_concurrency: int | None = None,
            on_error: str = "collect", config_overrides: Mapping[str, Any] | None = None,
            agent: AgentOptions | None = None) -> list[Any]:
    """Run one stateless task per prompt (module docstring) and return the result maps in input order.

    Args:
        host: the calling interpreter (its worker manager; its tools for ``agent``; its deadline).
        ref: the worker definition's name or ID.
        prompts: the prompts (strings; other values are shown as text).
        max_concurrency: tasks at once (1 … 64; default 4).
        on_error: ``"collect"`` or ``"fail"``.
        config_overrides: settings merged over the definition's base_config for every task.
        agent: the tool-calling options (tools …) of every task, or None.

    Raises:
        InvalidArgumentError: bad prompts, concurrency or on_error (code 4), before any task runs.
        NotFoundError etc.: the definition cannot run tasks (checked by the first item), and with
            ``"fail"`` the first failed item's error.
    """
    if not isinstance(prompts, (list, tuple)):
        raise InvalidArgumentError("prompts must be a list")
    n = DEFAULT_CONCURRENCY if max_concurrency is None else max_concurrency
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CONCURRENCY:
        raise InvalidArgumentError(f"max_concurrency must be an integer from 1 to {MAX_CONCURRENCY}, got {n!r}")
    if on_error not in ON_ERROR:
        raise InvalidArgumentError(f"on_error must be \"collect\" or \"fail\", got {on_error!r}")
    from ..values import display

    texts = [p if isinstance(p, str) else display(p) for p in prompts]
    mgr = host.workers
    mgr.get_definition(ref)  # NotFoundError (9) before any thread starts
    results: list[Any] = [None] * len(texts)
    failures: list[BaseException | None] = [None] * len(texts)
    stop = threading.Event()

    def one(i: int) -> None:
        if stop.is_set():
            results[i] = _error_value(InvalidArgumentError("not run: an earlier item failed (on_error \"fail\")"))
            return
        try:
            results[i] = _with_waits(host, ref, lambda: mgr.execute_stateless_task(
                ref, texts[i], config_overrides, agent=agent, host=host if agent is not None else None).as_map())
        except NSRuntimeError as e:
            if not e.catchable or on_error == "fail":
                stop.set()
                failures[i] = e
            results[i] = _error_value(e)
        except BaseException as e:  # e.g. KeyboardInterrupt in a provider: stop everything
            stop.set()
            failures[i] = e

    if texts and host.tool_lock._is_owned():  # type: ignore[attr-defined]
        # called from a model's tool call or an event handler (a procedure offered as a tool runs Map):
        # this thread holds the tool lock, so threads of ours could never run a tool or a handler
        for i in range(len(texts)):
            one(i)
    elif texts:
        with ThreadPoolExecutor(max_workers=min(n, len(texts)), thread_name_prefix="nslang-map") as pool:
            # each thread runs in a copy of the caller's context (the delegation chain)
            futures = [pool.submit(contextvars.copy_context().run, one, i) for i in range(len(texts))]
            for f in futures:
                f.result()
    uncatchable = next((e for e in failures if e is not None and not getattr(e, "catchable", True)), None)
    first = uncatchable or next((e for e in failures if e is not None), None)
    if first is not None:
        raise first
    return results


def _with_waits(host: Interpreter, ref: str, task: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``task()``, waiting and trying again while a rate limit refuses it (module docstring)."""
    waited = 0.0
    while True:
        try:
            return task()
        except RateLimitedError as e:
            policy = host.workers.get_definition(ref).rate_limits
            pause = e.retry_after if e.retry_after is not None else 0.05
            pause = max(pause, 0.001)
            budget = policy.max_wait_s - waited if policy.max_wait_s else None
            left = None if host._deadline is None else host._deadline - clock()
            if left is not None and (budget is None or left < budget):
                budget = left
            if budget is not None and pause > budget:
                raise
            sleep(pause)
            waited += pause


def _error_value(e: NSRuntimeError) -> Any:
    from ..values import ErrorValue

    return ErrorValue(code=int(e.code), message=e.message)
