"""The ``meta`` tool group: what tools exist, generated from their ToolSpecs.

Upstream 0.4.2 ``Meta.ListTools``, ``Meta.ToolsHelp`` and ``Meta.GetToolSpecificationsJSON``
(spec/language.md §8.5). Everything is generated from the specs in the calling interpreter's
registry (``interpreter.tools``), so host tools registered with ``@tool`` appear too.

Signatures are written ``tool.<group>.<Name>(arg: type, opt?: type = default, ...) -> type`` with
defaults as NeuroScript literals (``false``, ``nil``, ``"sha256"``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..registry import Tool, ToolContext, ToolSpec, default_literal, tool

__all__ = ["TOOLS", "render_help", "signature"]


def signature(spec: ToolSpec) -> str:
    """E.g. ``tool.fs.List(path?: string = ".", recursive?: bool = false) -> slice_any``."""
    return spec.signature()


def _extra_aliases(spec: ToolSpec) -> list[str]:
    """Aliases that differ from the canonical name (``FS.Read`` is the same as ``fs.Read``)."""
    full = spec.full_name.lower()
    return [a for a in spec.aliases if a.lower() != full]


def _matches(t: Tool, needle: str) -> bool:
    if not needle:
        return True
    names = [t.spec.full_name, f"tool.{t.spec.full_name}", t.spec.group, *t.spec.aliases]
    return any(needle in n.lower() for n in names)


def _tools(ctx: ToolContext, flt: str = "") -> list[Tool]:
    needle = flt.strip().lower()
    if needle.startswith("tool."):
        needle = needle[5:]
    return [t for t in ctx.interpreter.tools.all() if _matches(t, needle)]


def render_help(tools: Iterable[Tool], title: str = "NeuroScript tools") -> str:
    """Markdown help for ``tools``: per tool its signature, description, arguments, result, errors and example."""
    tools = list(tools)
    lines = [f"# {title}", "", f"{len(tools)} tool{'s' if len(tools) != 1 else ''}. Call them as "
             "`tool.<group>.<Name>(...)`; names are case-insensitive and arguments may be named "
             "(`name: value`).", ""]
    group = None
    for t in tools:
        s = t.spec
        if s.group != group:
            group = s.group
            lines += [f"## {group or '(no group)'}", ""]
        lines += [f"### tool.{s.full_name}", "", f"`{signature(s)}`", ""]
        if s.description:
            lines += [s.description, ""]
        aliases = _extra_aliases(s)
        if aliases:
            lines += ["Also callable as: " + ", ".join(f"`tool.{a}`" for a in aliases), ""]
        if s.args or s.variadic:
            lines.append("Arguments:")
            for a in s.args:
                req = "required" if a.required else (
                    "optional" if a.default is None else f"optional, default {default_literal(a.default)}")
                desc = f": {a.description}" if a.description else ""
                lines.append(f"- `{a.name}` ({a.type}, {req}){desc}")
            if s.variadic:
                lines.append("- `...`: any number of further arguments (see the description)")
            lines.append("")
        ret = f"Returns {s.return_type}" + (f": {s.return_help}" if s.return_help else ".")
        lines += [ret, ""]
        if s.error_conditions:
            lines += [f"Errors: {s.error_conditions}", ""]
        if s.example:
            lines += ["Example:", "", "```neuroscript", s.example, "```", ""]
    return "\n".join(lines).rstrip() + "\n"


@tool("meta", "ListTools", aliases=("Meta.ListTools",))
def list_tools(ctx: ToolContext) -> str:
    """One line per available tool: its signature, sorted by group and name.

    Upstream 0.4.2 Meta.ListTools.

    Returns:
        The signatures, one per line, e.g. "tool.fs.Read(filepath: string) -> string".

    Example:
        emit tool.meta.ListTools()
    """
    return "\n".join(signature(t.spec) for t in _tools(ctx)) + "\n"


@tool("meta", "ToolsHelp", aliases=("Meta.ToolsHelp",))
def tools_help(ctx: ToolContext, filter: str = "") -> str:  # noqa: A002 - upstream argument name
    """Readable Markdown help for every tool (or those matching a filter), generated from the specs.

    Upstream 0.4.2 Meta.ToolsHelp. For each tool: signature, description, other names, arguments
    with types, defaults and descriptions, result, error conditions and an example.

    Args:
        filter: case-insensitive text to look for in the tool's group, name or aliases
            ("fs", "str.split", "Length"); empty for all tools.

    Returns:
        Markdown text (a short note when no tool matches).

    Example:
        emit tool.meta.ToolsHelp("fs")
    """
    tools = _tools(ctx, filter)
    if not tools:
        return f"No tools match {filter!r}.\n"
    title = "NeuroScript tools" + (f" matching {filter!r}" if filter.strip() else "")
    return render_help(tools, title)


def _spec_dict(s: ToolSpec) -> dict[str, Any]:
    return {
        "name": s.full_name,
        "group": s.group,
        "signature": signature(s),
        "description": s.description,
        "args": [
            {"name": a.name, "type": a.type, "description": a.description, "required": a.required,
             "default": a.default}
            for a in s.args
        ],
        "variadic": s.variadic,
        "return_type": s.return_type,
        "return_help": s.return_help,
        "error_conditions": s.error_conditions,
        "example": s.example,
        "aliases": list(s.aliases),
    }


@tool("meta", "GetToolSpecificationsJSON", aliases=("Meta.GetToolSpecificationsJSON",))
def get_tool_specifications_json(ctx: ToolContext) -> str:
    """The specs of all tools as a JSON array (for programs and language models).

    Upstream 0.4.2 Meta.GetToolSpecificationsJSON.

    Returns:
        A JSON array of objects with name, group, signature, description, args (name, type,
        description, required, default), variadic, return_type, return_help, error_conditions,
        example and aliases.

    Example:
        set specs = tool.json.Parse(tool.meta.GetToolSpecificationsJSON())
    """
    return json.dumps([_spec_dict(t.spec) for t in _tools(ctx)], ensure_ascii=False, indent=2, default=repr)


TOOLS: list[Any] = [list_tools, tools_help, get_tool_specifications_json]
