"""The user reference and the two NeuroScript prompts, shipped as package data in ``nslang/docs/``.

``nslang help [TOPIC]`` and the REPL's ``:help TOPIC`` show :func:`topic`; the interpreter sets the
predefined globals ``NEUROSCRIPT_DEVELOP_PROMPT`` and ``NEUROSCRIPT_EXECUTE_PROMPT`` (spec Part 2
§4.10, issue 15) from :func:`prompt`, which a code mode that teaches a model to write NeuroScript can
reuse. The ``tools`` topic is generated from a tool registry, so it lists exactly the registered tools.
"""

from __future__ import annotations

import os

from .terminal import escape_controls

TYPE_CHECKING = False  # typing stays off the start-up path (issue 16 item 3)
if TYPE_CHECKING:  # pragma: no cover
    from .tools.registry import ToolRegistry

__all__ = ["PROMPT_GLOBALS", "TOPICS", "prompt", "prompt_globals", "topic"]

_DOCS = os.path.join(os.path.dirname(os.path.realpath(__file__)), "docs")

#: help topics, in display order, with a one-line summary each
TOPICS: dict[str, str] = {
    "language": "syntax and semantics of NeuroScript as nslang runs it",
    "tools": "every built-in tool with its signature (generated from the tool registry)",
    "workers": "AI workers: definitions, instances, stateless tasks, limits, keys, costs",
    "errors": "how errors look, on error handlers, and the table of error codes",
    "cli": "the nslang command line: subcommands, options, exit codes, files and directories",
    "embedding": "using nslang from Python: Interpreter, tools, values, errors",
}


_TEXTS: dict[str, str] = {}


def _read(name: str) -> str:
    text = _TEXTS.get(name)
    if text is None:
        with open(os.path.join(_DOCS, name), encoding="utf-8") as f:
            text = _TEXTS[name] = f.read()
    return text


def prompt(kind: str) -> str:
    """The prompt text ``"develop"`` (teaches a model to write NeuroScript) or ``"execute"`` (asks it to
    carry out a procedure step by step). Raises ``KeyError`` for another kind."""
    if kind not in ("develop", "execute"):
        raise KeyError(kind)
    return _read(f"prompt_{kind}.md")


#: the predefined prompt globals (spec §4.10) and the prompt each holds; read on first use
PROMPT_GLOBALS = {"NEUROSCRIPT_DEVELOP_PROMPT": "develop", "NEUROSCRIPT_EXECUTE_PROMPT": "execute"}


def prompt_globals() -> dict[str, str]:
    """The predefined prompt globals (spec §4.10): ``{"NEUROSCRIPT_DEVELOP_PROMPT": …, …}``."""
    return {name: prompt(kind) for name, kind in PROMPT_GLOBALS.items()}


def topic(name: str = "", registry: ToolRegistry | None = None) -> str:
    """The text of help topic ``name`` (case-insensitive; ``""`` gives the index).

    ``registry`` is the tool registry the ``tools`` topic describes (default: a fresh interpreter's).
    Raises ``KeyError`` for an unknown topic.
    """
    key = name.strip().lower()
    if not key:
        width = max(map(len, TOPICS))
        lines = [f"  {t:<{width}}  {s}" for t, s in TOPICS.items()]
        return "nslang reference. Topics (nslang help TOPIC, or :help TOPIC in the REPL):\n" + "\n".join(lines) + "\n"
    if key not in TOPICS:
        raise KeyError(name)
    text = _read(f"{key}.md")
    if key == "tools":
        text += _tools_table(registry)
    return text


def _tools_table(registry: ToolRegistry | None) -> str:
    if registry is None:
        from .interpreter import Interpreter

        with Interpreter(load_stdlib=False) as interp:
            return _tools_table(interp.tools)
    out: list[str] = []
    group = None
    for t in registry.all():
        spec = t.spec
        if spec.group.lower() != group:
            group = spec.group.lower()
            out.append(f"\n## {spec.group}\n")
        summary = spec.description.strip().splitlines()[0] if spec.description.strip() else ""
        line = f"{spec.signature()}\n    {summary}" if summary else spec.signature()
        out.append(escape_controls(line, keep="\n"))  # host tools' texts reach a terminal
    return "\n".join(out) + "\n"
