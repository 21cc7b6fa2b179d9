"""Which tools a tool-calling task may use, and which calls need approval (issue 12 item 3).

Patterns. A tool pattern is a tool name with or without the ``tool.`` prefix, matched
case-insensitively against the tool's ``group.Name`` (and its aliases) with shell wildcards
(``fs.*``, ``*.Read``, ``*``); a procedure matches by its name. :func:`pattern_matches` is the one
matcher used by the task's ``tools`` list, a definition's ``tool_allowlist`` / ``tool_denylist`` and
``nslang run --approve``.

Grants. A task may use a tool only when its call grants it (the ``tools`` list) **and** its
definition allows it: a non-empty ``tool_allowlist`` must match it, and a matching
``tool_denylist`` entry always wins. Tools that manage workers, load or call scripts, or run the
script's event handlers (``event.Emit``: a model could fake ``aiworker.*`` events or trigger a handler's
side effects) (:data:`RESTRICTED`) are never granted by a wildcard; the call must name them exactly.

Approvals. A call with side effects (:data:`SIDE_EFFECTS`: fs writes, appends, directory creation,
moves and deletes; every change to worker definitions, instances or the performance log;
``io.Input``; ``script.LoadScript`` / ``script.Call`` / ``script.CallTool``; and every tool a host
registered with ``needs_approval=True``) runs only when the interpreter's approver says yes
(``Interpreter(approve=callable)``; ``nslang run --approve PATTERN`` / ``--approve-all``; on a terminal
the CLI and the REPL ask). Without one the call is refused and the model is told so. A procedure
offered as a tool is the script's own code: it runs without approval, its own tool calls included
(the script's author chose to offer it).
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Any

__all__ = ["RESTRICTED", "SIDE_EFFECTS", "ApprovalRequest", "Approver", "PatternApprover", "ask_on_terminal",
           "needs_approval", "normalize", "pattern_matches", "restricted"]

#: Tools never granted by a wildcard (manage workers, load or call scripts, run event handlers).
RESTRICTED = ("aiworkerdefinition.*", "aiworkerinstance.*", "aiworker.*", "script.loadscript", "script.call",
              "script.calltool", "event.emit")

#: Built-in tools with side effects: a model's call needs approval.
SIDE_EFFECTS = ("fs.write", "fs.append", "fs.mkdir", "fs.delete", "fs.move", "io.input",
                "aiworkerdefinition.add", "aiworkerdefinition.update", "aiworkerdefinition.remove",
                "aiworkerdefinition.loadall", "aiworkerdefinition.saveall", "aiworkerinstance.spawn",
                "aiworkerinstance.retire", "aiworkerinstance.updatestatus", "aiworkerinstance.updatetokenusage",
                "aiworkerinstance.chat", "aiworker.executestatelesstask", "aiworker.executecodetask", "aiworker.map",
                "aiworker.logperformance",
                "aiworker.saveperformancedata", "aiworker.loadperformancedata",
                "script.loadscript", "script.call", "script.calltool")


def normalize(name: str) -> str:
    """``tool.FS.Read`` → ``fs.read``: the form patterns and names are compared in."""
    n = name.strip().lower()
    return n[5:] if n.startswith("tool.") else n


def pattern_matches(pattern: str, names: str | Iterable[str]) -> bool:
    """True when ``pattern`` (wildcards ``*``, ``?``, ``[…]``) matches one of ``names``, case-insensitively."""
    pat = normalize(pattern)
    for n in [names] if isinstance(names, str) else names:
        if fnmatch.fnmatchcase(normalize(n), pat):
            return True
    return False


def restricted(full_name: str) -> bool:
    """True for a tool a wildcard never grants (:data:`RESTRICTED`)."""
    return any(pattern_matches(p, full_name) for p in RESTRICTED)


def needs_approval(full_name: str, host_flag: bool = False) -> bool:
    """True when a model's call of this tool needs approval (:data:`SIDE_EFFECTS`, or ``needs_approval=True``)."""
    return host_flag or normalize(full_name) in SIDE_EFFECTS


@dataclass(frozen=True)
class ApprovalRequest:
    """What an approver is asked about.

    Attributes:
        tool: the tool's name, e.g. ``fs.Write``.
        arguments: the validated arguments (NeuroScript values as Python values).
        worker: the worker definition's name.
        task_id: the task's id.
    """

    tool: str
    arguments: dict[str, Any]
    worker: str = ""
    task_id: str = ""


#: ``approve(request) -> bool``: the embedding API's approval callback.
Approver = Callable[[ApprovalRequest], bool]


@dataclass
class PatternApprover:
    """The CLI's approver: ``--approve PATTERN`` (repeatable), ``--approve-all``, else ask on a terminal.

    Args:
        patterns: tool patterns approved without asking.
        approve_all: approve every call.
        ask: called for other calls; returns ``"yes"``, ``"no"`` or ``"always"`` (always: the tool is
            approved for the rest of the run). None refuses them. One question at a time: tasks of
            ``tool.AIWorker.Map`` run in threads, and an answer must go to the call it was asked about.
    """

    patterns: list[str] = field(default_factory=list)
    approve_all: bool = False
    ask: Callable[[ApprovalRequest], str] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __call__(self, request: ApprovalRequest) -> bool:
        if self.approve_all or any(pattern_matches(p, request.tool) for p in self.patterns):
            return True
        if self.ask is None:
            return False
        with self._lock:
            if any(pattern_matches(p, request.tool) for p in self.patterns):  # "always" while we waited
                return True
            answer = self.ask(request)
            if answer == "always":
                self.patterns.append(request.tool)
        return answer in ("yes", "always")


def ask_on_terminal(request: ApprovalRequest, inp: IO[str], out: IO[str]) -> str:
    """Ask on a terminal: the tool and its arguments (control characters escaped), then
    ``[y]es / [n]o / [a]lways for this run``. End of input counts as no."""
    import json

    from ..terminal import escape_controls

    args = json.dumps(request.arguments, ensure_ascii=False, default=str)
    if len(args) > 2000:
        args = args[:2000] + f"… ({len(args)} characters)"
    out.write(f"AI worker '{escape_controls(request.worker)}' wants to call tool.{escape_controls(request.tool)}"
              f"({escape_controls(args)})\nallow? [y]es / [n]o / [a]lways for this run: ")
    out.flush()
    line = inp.readline()
    answer = line.strip().lower()
    if answer in ("a", "always"):
        return "always"
    return "yes" if answer in ("y", "yes") else "no"
