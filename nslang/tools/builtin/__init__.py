"""The built-in tool groups every Interpreter registers: one module per group.

=============  =========  ==============================================================
module         group      tools
=============  =========  ==============================================================
``fs``         ``fs``     Read Write Append List Walk Mkdir Delete Move Stat Hash LineCount
                          SanitizeFilename (confined to the sandbox directory)
``strings``    ``str``    Length Substring Split SplitWords Join Concat Replace Contains
                          HasPrefix HasSuffix IndexOf ToUpper ToLower TrimSpace LineCount
                          Format Match FindAll ReplaceRegex
``math_``      ``math``   Add Subtract Multiply Divide Modulo Abs Min Max Round Floor Ceil
                          Sqrt Pow Random
``lists``      ``list``   Length Append Prepend Get Slice Contains IndexOf Reverse Sort Head
                          Rest Tail IsEmpty Concat Unique
``maps``       ``map``    Keys Values HasKey Get Merge Set Delete Len
``json_``      ``json``   Parse Stringify
``time_``      ``time``   Now Format Parse Sleep Since Diff Add
``io``         ``io``     Print Input
``meta``       ``meta``   ListTools ToolsHelp GetToolSpecificationsJSON
=============  =========  ==============================================================

Each module exposes ``TOOLS``, a list of functions decorated with
:func:`nslang.tools.registry.tool`. Error-code conventions are in :mod:`._common`.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing stays off the start-up path (issue 16 item 3)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any


__all__ = ["LAZY_PREFIXES", "MODULES", "all_tools"]

#: Module names of the built-in groups, in registration order.
MODULES: tuple[str, ...] = ("fs", "strings", "math_", "lists", "maps", "json_", "time_", "io", "meta")

#: For lazy registration (``ToolRegistry.register_lazy(group, loader, aliases=...)``): per module, the
#: lower-case first segments of alias names that are not the module's group, i.e. the upstream
#: ungrouped names (``Length``, ``Add``, ``Print`` ...). Without them, ``tool.Length`` would not
#: trigger loading the ``str`` group. Kept in sync with the specs by a test.
LAZY_PREFIXES: dict[str, tuple[str, ...]] = {
    "fs": (),
    "strings": ("concat", "contains", "hasprefix", "hassuffix", "join", "length", "linecount", "replace", "split",
                "splitwords", "substring", "tolower", "toupper", "trimspace"),
    "math_": ("add", "divide", "modulo", "multiply", "subtract"),
    "lists": (),
    "maps": (),
    "json_": (),
    "time_": (),
    "io": ("input", "print"),
    "meta": (),
}


def all_tools() -> list[Any]:
    """Every built-in tool function (each carries its ``__ns_tool_spec__``), module by module."""
    import importlib

    out: list[Any] = []
    for name in MODULES:
        out.extend(importlib.import_module(f"{__name__}.{name}").TOOLS)
    return out
