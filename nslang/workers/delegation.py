"""Workers calling workers (issue 13 item 2).

A task's ``tools`` may name another worker definition as ``"worker:NAME"``. The model then sees a
tool ``worker_NAME`` (named ``worker.NAME`` in traces) taking one ``prompt`` argument; calling it runs
a **stateless task** of that worker and returns its output. The nested task is an ordinary stateless
task of its own definition: its own key, provider, rate limits, cost and performance record, with
``parent_task_id`` set to the calling task's id. When the called definition's ``base_config`` holds
``tools`` (and optionally ``max_iterations``, ``task_timeout_s``, ``tool_timeout_s``,
``max_result_chars``), the nested task is itself a tool-calling task with those tools, so it may
delegate further.

Grants apply as for any tool (:mod:`~nslang.workers.policy`): the calling definition's
``tool_allowlist`` / ``tool_denylist`` patterns match ``worker:NAME`` (e.g. ``worker:*``,
``worker:summarizer``); a worker is never granted by a wildcard of the ``tools`` list. Refusals
reach the model as error results (never a script error):

* **depth**: a chain of tasks nests at most :attr:`AIWorkerManager.max_delegation_depth` deep
  (default :data:`DEFAULT_MAX_DEPTH`, 3: the top task and two levels of delegation); a deeper call
  is refused with code 37 (ResourceExhaustion). The manager applies the same depth to every
  tool-using task started inside a running task's tool call (an approved
  ``tool.AIWorker.ExecuteStatelessTask``, a procedure that starts a task), so no tool nests past it;
* **cycles**: a worker already running in the chain (the caller included) is refused with code 19
  (PreconditionFailed).

The chain of running tasks is a :class:`contextvars.ContextVar`, so concurrent tasks (``Map``'s
threads) each see their own chain.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ErrorCode
from ..tools.registry import ArgSpec, ToolRegistry, ToolSpec
from .errors import AIWorkerError, InvalidArgumentError

if TYPE_CHECKING:  # pragma: no cover
    from ..interpreter import Interpreter
    from ..tools.registry import Tool

__all__ = ["DEFAULT_MAX_DEPTH", "PREFIX", "DelegationError", "Link", "chain", "entered", "is_worker_entry",
           "worker_tool"]

DEFAULT_MAX_DEPTH = 3
#: What a ``tools`` entry starts with to name a worker.
PREFIX = "worker:"


class DelegationError(AIWorkerError):
    """A delegation was refused: too deep (code 37) or a cycle (code 19)."""


@dataclass(frozen=True)
class Link:
    """One running task of a delegation chain."""

    definition_id: str
    name: str
    task_id: str


_CHAIN: contextvars.ContextVar[tuple[Link, ...]] = contextvars.ContextVar("nslang_delegation_chain", default=())


def chain() -> tuple[Link, ...]:
    """The tasks running in this context, outermost first."""
    return _CHAIN.get()


@contextlib.contextmanager
def entered(definition_id: str, name: str, task_id: str) -> Iterator[None]:
    """Mark a task as running while its tools (or its program) run."""
    token = _CHAIN.set((*_CHAIN.get(), Link(definition_id, name, task_id)))
    try:
        yield
    finally:
        _CHAIN.reset(token)


def is_worker_entry(entry: str) -> bool:
    """True for a ``tools`` entry ``worker:NAME``."""
    return entry.strip().lower().startswith(PREFIX)


def worker_tool(host: Interpreter, entry: str) -> Tool:
    """The tool a ``worker:NAME`` entry grants: ``worker.NAME(prompt)`` → the nested task's output.

    Raises:
        InvalidArgumentError: no name after ``worker:``, or a wildcard (code 4); NotFoundError: no
            such definition (code 9).
    """
    target = entry.strip()[len(PREFIX):].strip()
    if not target:
        raise InvalidArgumentError(f"tools: '{entry}' names no worker (worker:NAME)")
    if any(ch in target for ch in "*?["):
        raise InvalidArgumentError(f"tools: '{entry}': workers are granted by name, never by a wildcard")
    mgr = host.workers
    d = mgr.get_definition(target)  # NotFoundError (9) for an unknown worker

    def run(prompt: str) -> Any:
        links = chain()
        if any(link.definition_id == d.definition_id for link in links):
            path = " -> ".join([*(link.name for link in links), d.name])
            raise DelegationError(f"worker '{d.name}' is already running in this chain ({path}): cycle refused",
                                  code=ErrorCode.PRECONDITION_FAILED)
        limit = mgr.max_delegation_depth
        if len(links) + 1 > limit:
            raise DelegationError(f"delegation to worker '{d.name}' refused: tasks nest at most {limit} deep "
                                  f"({' -> '.join(link.name for link in links)})",
                                  code=ErrorCode.RESOURCE_EXHAUSTION)
        from .agent import split_options

        current = mgr.get_definition(d.definition_id)
        _settings, agent = split_options(current.base_config)
        parent = links[-1].task_id if links else ""
        return mgr.execute_stateless_task(d.definition_id, prompt, agent=agent, host=host if agent else None,
                                          parent_task_id=parent).output

    spec = ToolSpec(group="worker", name=d.name,
                    description=f"Ask the AI worker '{d.name}' ({d.provider.value} {d.model_name}); returns its "
                                "answer as text.",
                    args=(ArgSpec("prompt", "string", "the task for the worker, self-contained", True),),
                    return_type="string")
    return ToolRegistry().register(spec, run)
