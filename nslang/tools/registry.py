"""Tool plumbing: ToolSpec/ArgSpec, the per-interpreter ToolRegistry, argument validation, ``@tool``.

A tool is a Python function plus a :class:`ToolSpec` (spec/language.md §8). Scripts call it as
``tool.<group>.<name>(…)``; look-up is case-insensitive and the upstream 0.4.2 flat names (``FS.Read``,
``LoadScript``, ``Length``) are registered as aliases. Every call is validated and coerced against the
spec: positional arguments fill ArgSpecs in order, named arguments (an nslang extension) by name;
a wrong type, a missing required argument, too many arguments or an unknown name is a
:class:`~nslang.errors.ToolError` with code 4 (ArgMismatch) that names the tool and the argument.
Anything else a tool raises becomes code 21 (ToolExecutionFailed) unless it is already an NSError or
one of the Python exceptions of extreme input that :func:`nslang.errors.python_error` translates
(overflow 17, division by zero 14, out of memory 37…).

The :func:`tool` decorator builds the spec from a Python function's signature, type hints and Google-style
docstring, so host applications add tools with one line.
"""

from __future__ import annotations

import sys

from .._record import Record
from ..errors import ErrorCode, NSError, NSRuntimeError, ToolError, python_error
from ..limits import value_limit, value_size, value_too_large
from ..values import from_python, number_or_none, short_repr, type_name

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing, inspect and datetime stay off the start-up path (issue 16 item 3)
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any

    # pragma: no cover
    from ..interpreter import Interpreter

__all__ = ["ArgSpec", "Tool", "ToolContext", "ToolRegistry", "ToolSpec", "tool"]

#: Argument type names of spec §8.2 (plus ``number``/``boolean``/``list``, which upstream specs use).
ARG_TYPES = (
    "any", "string", "int", "float", "number", "bool", "boolean", "map", "list", "slice_any",
    "slice_string", "slice_int", "slice_float", "slice_bool", "slice_map", "nil", "error", "timedate",
)


class ArgSpec(Record):
    """One argument of a tool (immutable, hashable).

    Attributes:
        name: argument name, used for named arguments and in error messages.
        type: one of ``ARG_TYPES``; values are coerced to it (spec §8.3).
        description: one line for help text.
        required: a missing required argument is error code 4.
        default: value used when an optional argument is missing (None means nil).
    """

    _fields = __slots__ = ("name", "type", "description", "required", "default")
    _frozen = True
    name: str
    type: str
    description: str
    required: bool
    default: Any

    def __init__(self, name: str, type: str = "any", description: str = "", required: bool = True,  # noqa: A002
                 default: Any = None) -> None:
        self._set(name=name, type=type, description=description, required=required, default=default)


class ToolSpec(Record):
    """A tool's full description, visible to scripts through ``tool.meta.ToolsHelp`` (immutable,
    hashable; ``spec.replace(**changes)`` copies).

    Attributes:
        group: tool group, e.g. ``fs`` (case-insensitive in look-ups).
        name: tool name inside the group, e.g. ``Read``.
        description: what it does.
        args: the arguments in positional order.
        return_type: an ARG_TYPES name, or ``nil``.
        return_help: what the result holds.
        variadic: extra positional arguments are passed through as a list in the last parameter.
        example: a one-line NeuroScript example.
        error_conditions: when it fails and with which code.
        aliases: other accepted names (upstream flat names such as ``FS.Read`` or ``LoadScript``).
        needs_approval: a model's call of it needs approval (side effects; issue 12 item 3,
            see :mod:`nslang.workers.policy`). Scripts call it freely.
    """

    _fields = __slots__ = ("group", "name", "description", "args", "return_type", "return_help", "variadic",
                           "example", "error_conditions", "aliases", "needs_approval")
    _frozen = True
    group: str
    name: str
    description: str
    args: tuple[ArgSpec, ...]
    return_type: str
    return_help: str
    variadic: bool
    example: str
    error_conditions: str
    aliases: tuple[str, ...]
    needs_approval: bool

    def __init__(self, group: str, name: str, description: str = "", args: tuple[ArgSpec, ...] = (),
                 return_type: str = "any", return_help: str = "", variadic: bool = False, example: str = "",
                 error_conditions: str = "", aliases: tuple[str, ...] = (), needs_approval: bool = False) -> None:
        self._set(group=group, name=name, description=description, args=args, return_type=return_type,
                  return_help=return_help, variadic=variadic, example=example, error_conditions=error_conditions,
                  aliases=aliases, needs_approval=needs_approval)

    @property
    def full_name(self) -> str:
        """``group.Name`` as scripts write it after ``tool.``."""
        return f"{self.group}.{self.name}" if self.group else self.name

    def signature(self) -> str:
        """E.g. ``tool.fs.List(path?: string = ".", recursive?: bool = false) -> slice_any``."""
        parts = []
        for a in self.args:
            opt = "" if a.required else "?"
            default = "" if a.required or a.default is None else f" = {default_literal(a.default)}"
            parts.append(f"{a.name}{opt}: {a.type}{default}")
        if self.variadic:
            parts.append("...")
        return f"tool.{self.full_name}({', '.join(parts)}) -> {self.return_type}"


def default_literal(v: Any) -> str:
    """A default value written as NeuroScript source (``nil``, ``true``, ``"text"``, ``[1, 2]``…)."""
    if isinstance(v, list):
        return "[" + ", ".join(default_literal(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{default_literal(str(k))}: {default_literal(x)}" for k, x in v.items()) + "}"
    from ..unparse import _literal

    try:
        return _literal(v)
    except (TypeError, ValueError):
        return repr(v)


class ToolContext:
    """What a tool function receives as its first argument when that parameter is named ``ctx``.

    Attributes:
        interpreter: the calling :class:`~nslang.Interpreter` (sandbox, output stream, loader, workers).
    """

    __slots__ = ("interpreter",)

    def __init__(self, interpreter: Interpreter) -> None:
        self.interpreter = interpreter


if TYPE_CHECKING:
    Converter = Callable[[Any], Any]


class Tool(Record):
    """A registered tool: its spec, its Python function and the prepared argument converters."""

    _fields = __slots__ = ("spec", "func", "takes_ctx", "converters")
    _hidden = ("converters",)
    _frozen = True
    spec: ToolSpec
    func: Callable[..., Any]
    takes_ctx: bool
    converters: tuple[Converter, ...]

    def __init__(self, spec: ToolSpec, func: Callable[..., Any], takes_ctx: bool = False,
                 converters: tuple[Converter, ...] = ()) -> None:
        self._set(spec=spec, func=func, takes_ctx=takes_ctx, converters=converters)

    @property
    def key(self) -> str:
        return self.spec.full_name.lower()


# ----------------------------------------------------------------------------------------------
# Coercion (spec §8.3, the full table applied on every call)


class _Bad(Exception):
    """Internal: a converter rejects a value; the registry turns it into a ToolError naming the tool."""


def _conv_any(v: Any) -> Any:
    return v


def _conv_string(v: Any) -> Any:
    if type(v) is str:
        return v
    raise _Bad("a string")


#: Range of the ``int`` argument type: upstream's I(x) is an int64 (spec/language.md §4.2).
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def _conv_int(v: Any) -> Any:
    n = number_or_none(v) if type(v) is not bool else None
    if n is None:
        raise _Bad("an integer")
    if isinstance(n, float):
        if not n.is_integer():
            raise _Bad("an integer")
        n = int(n)
    if not _INT64_MIN <= n <= _INT64_MAX:
        raise _Bad("an integer within the 64-bit range")
    return n


def _conv_float(v: Any) -> Any:
    n = number_or_none(v) if type(v) is not bool else None
    if n is None:
        raise _Bad("a number")
    return n


def _conv_bool(v: Any) -> Any:
    if type(v) is bool:
        return v
    if type(v) in (int, float):
        return v != 0
    if type(v) is str:
        low = v.strip().lower()
        if low in ("true", "1"):
            return True
        if low in ("false", "0"):
            return False
    raise _Bad("a boolean")


def _conv_map(v: Any) -> Any:
    if isinstance(v, dict):
        return v
    raise _Bad("a map")


def _conv_list(v: Any) -> Any:
    if type(v) is list:
        return v
    raise _Bad("a list")


def _slice_of(elem: Converter, what: str) -> Converter:
    def conv(v: Any) -> Any:
        if type(v) is not list:
            raise _Bad(f"a list of {what}")
        try:
            return [elem(x) for x in v]
        except _Bad:
            raise _Bad(f"a list of {what}") from None

    return conv


def _conv_timedate(v: Any) -> Any:
    import datetime as _dt

    if type(v) is _dt.datetime:
        return v
    if type(v) is str:
        try:
            return _dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            pass
    raise _Bad("a timedate (or an RFC 3339 string)")


_CONVERTERS: dict[str, Converter] = {
    "any": _conv_any,
    "nil": _conv_any,
    "error": _conv_any,
    "string": _conv_string,
    "int": _conv_int,
    "float": _conv_float,
    "number": _conv_float,
    "bool": _conv_bool,
    "boolean": _conv_bool,
    "map": _conv_map,
    "list": _conv_list,
    "slice_any": _conv_list,
    "slice_string": _slice_of(_conv_string, "strings"),
    "slice_int": _slice_of(_conv_int, "integers"),
    "slice_float": _slice_of(_conv_float, "numbers"),
    "slice_bool": _slice_of(_conv_bool, "booleans"),
    "slice_map": _slice_of(_conv_map, "maps"),
    "timedate": _conv_timedate,
}


# ----------------------------------------------------------------------------------------------
# The registry


class ToolRegistry:
    """The tools one interpreter can call, keyed case-insensitively by ``group.name`` and aliases.

    Groups may be registered lazily (``register_lazy``) so that start-up does not import what a
    script never uses (e.g. the AI worker tools and pydantic).
    """

    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}
        self._aliases: dict[str, str] = {}
        self._lazy: dict[str, Callable[[ToolRegistry], None]] = {}

    # -- registration --------------------------------------------------------------------------

    def register(self, spec_or_func: ToolSpec | Callable[..., Any], func: Callable[..., Any] | None = None, *,
                 replace: bool = False, needs_approval: bool = False) -> Tool:
        """Register a tool.

        Args:
            spec_or_func: a :class:`ToolSpec` (then ``func`` is its implementation), or a function
                decorated with :func:`tool` (or a plain function: its spec is derived, group ``host``).
            func: the implementation when a spec is given. It receives the coerced arguments in
                spec order, preceded by a :class:`ToolContext` if its first parameter is named ``ctx``.
            replace: allow replacing a tool of the same name.
            needs_approval: mark the tool as having side effects (a model's call needs approval).

        Returns:
            The registered :class:`Tool`.

        Raises:
            UsageError: the name is taken (and ``replace`` is false) or a spec names an unknown type.
        """
        from ..errors import UsageError

        if isinstance(spec_or_func, ToolSpec):
            if func is None:
                raise UsageError("register(spec, func): func is required with a ToolSpec")
            spec = spec_or_func
        else:
            func = spec_or_func
            spec = getattr(func, "__ns_tool_spec__", None) or build_spec(func, group="host")
        if needs_approval and not spec.needs_approval:
            spec = spec.replace(needs_approval=True)
        for a in spec.args:
            if a.type not in _CONVERTERS:
                raise UsageError(f"tool {spec.full_name}: argument {a.name!r} has unknown type {a.type!r}")
        t = Tool(spec, func, _takes_ctx(func), tuple(_CONVERTERS[a.type] for a in spec.args))
        key = t.key
        if not replace and (key in self._tools or key in self._aliases):
            raise UsageError(f"a tool named tool.{spec.full_name} is already registered")
        self._tools[key] = t
        for alias in spec.aliases:
            self._aliases.setdefault(alias.lower(), key)
        return t

    def register_lazy(self, group: str, loader: Callable[[ToolRegistry], None],
                      aliases: Iterable[str] = ()) -> None:
        """Register a group whose tools are created on first look-up (or listing) by ``loader``.

        ``aliases`` are lower-case key prefixes (e.g. ``aiworkerdefinition``) that also trigger it.
        """
        self._lazy[group.lower()] = loader
        for a in aliases:
            self._lazy[a.lower()] = loader

    def _load_lazy(self, prefix: str | None = None) -> None:
        loaders = list(self._lazy.items()) if prefix is None else [(prefix, self._lazy[prefix])]
        done: set[int] = set()
        for _key, loader in loaders:
            for k in [k for k, v in self._lazy.items() if v is loader]:
                del self._lazy[k]
            if id(loader) not in done:
                done.add(id(loader))
                loader(self)

    # -- look-up ---------------------------------------------------------------------------------

    def lookup(self, name: str) -> Tool | None:
        """The tool called ``name`` (``fs.Read``, ``FS.Read``, ``LoadScript``…), case-insensitively."""
        key = name.lower()
        t = self._tools.get(key)
        if t is not None:
            return t
        target = self._aliases.get(key)
        if target is not None:
            return self._tools[target]
        if self._lazy:
            prefix = key.split(".", 1)[0]
            if prefix in self._lazy:
                self._load_lazy(prefix)
            else:  # a flat alias (``Length``, ``LoadScript``) may live in any group
                self._load_lazy()
            return self.lookup(name)
        return None

    def all(self) -> list[Tool]:
        """Every tool (lazy groups are loaded), sorted by group and name."""
        if self._lazy:
            self._load_lazy()
        return sorted(self._tools.values(), key=lambda t: (t.spec.group.lower(), t.spec.name.lower()))

    def __contains__(self, name: str) -> bool:
        return self.lookup(name) is not None

    def __len__(self) -> int:
        return len(self.all())

    # -- calling ---------------------------------------------------------------------------------

    def bind_arguments(self, t: Tool, args: list[Any], named: Mapping[str, Any] | None = None) -> list[Any]:
        """Validate and coerce positional and named arguments against ``t``'s spec.

        Returns:
            The argument list in spec order (missing optional arguments get their defaults; for a
            variadic tool, extra positional arguments are appended).

        Raises:
            ToolError: code 4 (ArgMismatch) naming the tool and the argument.
        """
        spec = t.spec
        specs = spec.args
        n = len(specs)
        tname = f"tool.{spec.full_name}"
        if len(args) > n and not spec.variadic:
            raise ToolError(
                f"{tname} takes at most {n} argument{'s' if n != 1 else ''}, got {len(args)}",
                code=ErrorCode.ARG_MISMATCH,
            )
        values: list[Any] = list(args[:n])
        extra = list(args[n:])
        filled = [True] * len(values) + [False] * (n - len(values))
        values += [None] * (n - len(values))
        if named:
            index = {a.name: i for i, a in enumerate(specs)}
            lower = {a.name.lower(): i for i, a in enumerate(specs)}
            for key, val in named.items():
                i = index.get(key, lower.get(key.lower()))
                if i is None:
                    known = ", ".join(a.name for a in specs) or "none"
                    raise ToolError(f"{tname} has no argument named '{key}' (arguments: {known})",
                                    code=ErrorCode.ARG_MISMATCH)
                if filled[i]:
                    raise ToolError(f"{tname}: argument '{specs[i].name}' given twice",
                                    code=ErrorCode.ARG_MISMATCH)
                values[i] = val
                filled[i] = True
        convs = t.converters
        for i, a in enumerate(specs):
            v = values[i]
            if v is None:
                if a.required:
                    why = "is missing" if not filled[i] else "must not be nil"
                    raise ToolError(f"{tname}: required argument '{a.name}' ({a.type}) {why}",
                                    code=ErrorCode.ARG_MISMATCH)
                values[i] = a.default
                continue
            try:
                values[i] = convs[i](v)
            except _Bad as bad:
                raise ToolError(
                    f"{tname}: argument '{a.name}' must be {bad}, got {type_name(v)} {short_repr(v)}",
                    code=ErrorCode.ARG_MISMATCH,
                ) from None
        if spec.variadic:
            values.append(extra)
        return values

    def invoke(self, ctx: ToolContext, t: Tool, args: list[Any], named: Mapping[str, Any] | None = None) -> Any:
        """Validate, coerce, call ``t`` and convert its result to a NeuroScript value.

        Raises:
            ToolError: bad arguments (code 4), a failure inside the tool (code 21; 14, 17 or 37 for the
                Python exceptions of extreme input that :func:`nslang.errors.python_error` translates),
                or a result that is not a NeuroScript value. NSErrors raised by the tool pass through
                with the tool named.
            NSRuntimeError: code 37 when the result is larger than ``limits.max_value_bytes``
                (:mod:`nslang.limits`).
            NSRuntimeError: code 38 (NestingDepthExceeded) when the tool hit Python's recursion limit.
        """
        values = self.bind_arguments(t, args, named)
        tname = f"tool.{t.spec.full_name}"
        try:
            result = t.func(ctx, *values) if t.takes_ctx else t.func(*values)
        except NSRuntimeError as e:
            if not e.message.startswith(tname) and e.catchable:
                e.message = f"{tname}: {e.message}"
                e.args = (e.message,)
            raise
        except NSError:
            raise
        except RecursionError:  # data nested deeper than Python's recursion limit (issue 10 item 4)
            raise NSRuntimeError(f"{tname}: its data is nested too deeply (Python's recursion limit is "
                                 f"{sys.getrecursionlimit()} frames)", code=ErrorCode.NESTING_DEPTH_EXCEEDED) from None
        except Exception as e:  # a tool's own failure, at the tool boundary: becomes code 21
            known = python_error(e)
            if known is not None:
                raise ToolError(f"{tname}: {known.message}", code=known.code) from None
            raise ToolError(f"{tname} failed: {_describe(e)}", code=ErrorCode.TOOL_EXECUTION_FAILED) from e
        try:
            value = from_python(result)
        except TypeError as e:
            raise ToolError(f"{tname} returned an unsupported value: {e}") from None
        limit = value_limit(ctx.interpreter)
        if value_size(value) > limit:
            raise value_too_large(f"the result of {tname}", value_size(value), limit)
        return value


def _describe(e: BaseException) -> str:
    if isinstance(e, KeyError) and len(e.args) == 1:
        return str(e.args[0])
    if isinstance(e, OSError) and e.strerror:
        return e.strerror + (f": {e.filename}" if e.filename else "")
    text = str(e)
    return text or type(e).__name__


def _takes_ctx(func: Callable[..., Any]) -> bool:
    import inspect

    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return False
    return bool(params) and params[0].name == "ctx"


# ----------------------------------------------------------------------------------------------
# The @tool decorator: a spec from a Python signature


_LIST_OF = {str: "slice_string", int: "slice_int", float: "slice_float", bool: "slice_bool", dict: "slice_map"}


def _hint_to_type(hint: Any) -> tuple[str, bool]:
    """(ARG_TYPES name, accepts None) for a type hint."""
    import datetime
    import inspect
    import types
    import typing
    from collections.abc import Iterable, Mapping

    if hint is inspect.Parameter.empty:
        return "any", True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(hint) if a is not type(None)]
        nullable = len(members) != len(typing.get_args(hint))
        if len(members) == 1:
            return _hint_to_type(members[0])[0], nullable
        if set(members) <= {int, float}:
            return "float", nullable
        return "any", nullable
    if origin in (list, tuple, typing.Sequence, Iterable) or hint in (list, tuple):
        args = typing.get_args(hint)
        if args:
            inner = typing.get_origin(args[0]) or args[0]
            return _LIST_OF.get(inner, "slice_any"), False
        return "slice_any", False
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        return "map", False
    simple = {str: "string", int: "int", float: "float", bool: "bool", dict: "map", list: "list", typing.Any: "any",
              type(None): "nil", datetime.datetime: "timedate"}
    return simple.get(hint, "any"), hint is typing.Any


# compiled by ``re`` when a tool's docstring is first read, not at start-up
_SECTION = r"^\s*(Args|Arguments|Parameters|Returns|Raises|Example|Examples):\s*$"


def _parse_docstring(doc: str) -> tuple[str, dict[str, str], str, str, str]:
    """(description, {arg: help}, returns, raises, example) from a Google-style docstring."""
    import inspect
    import re

    lines = inspect.cleandoc(doc or "").splitlines()
    desc: list[str] = []
    sections: dict[str, list[str]] = {}
    current: str | None = None
    for line in lines:
        m = re.match(_SECTION, line)
        if m:
            current = m.group(1)
            sections[current] = []
            continue
        if current is None:
            desc.append(line)
        else:
            sections[current].append(line)
    args: dict[str, str] = {}
    last: str | None = None
    for line in sections.get("Args", sections.get("Arguments", sections.get("Parameters", []))):
        m = re.match(r"^\s{0,8}(\w+)(?:\s*\([^)]*\))?\s*:\s*(.*)$", line)
        if m and (line.startswith("    ") and not line.startswith("        ") or not line.startswith(" ")):
            last = m.group(1)
            args[last] = m.group(2).strip()
        elif last and line.strip():
            args[last] += " " + line.strip()

    def text(name: str) -> str:
        return " ".join(s.strip() for s in sections.get(name, []) if s.strip())

    def block(name: str) -> str:  # keeps line breaks (examples are code)
        return inspect.cleandoc("\n".join(sections.get(name, []))).strip()

    example = block("Example") or block("Examples")
    return " ".join(s.strip() for s in desc if s.strip()), args, text("Returns"), text("Raises"), example


def build_spec(func: Callable[..., Any], *, group: str, name: str | None = None, description: str | None = None,
               aliases: Iterable[str] = (), return_type: str | None = None, example: str = "",
               error_conditions: str = "", arg_types: Mapping[str, str] | None = None,
               needs_approval: bool = False) -> ToolSpec:
    """Derive a :class:`ToolSpec` from ``func``'s signature, type hints and docstring.

    A parameter named ``ctx`` (first) is the :class:`ToolContext` and not a tool argument; a
    parameter with a default is optional; ``*args`` makes the tool variadic.
    """
    import inspect
    import typing

    sig = inspect.signature(func)
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # unresolvable forward references: fall back to "any"
        hints = {}
    desc, arg_help, ret_help, raises, doc_example = _parse_docstring(func.__doc__ or "")
    args: list[ArgSpec] = []
    variadic = False
    for i, p in enumerate(sig.parameters.values()):
        if i == 0 and p.name == "ctx":
            continue
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            variadic = True
            continue
        if p.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            continue
        t, _nullable = _hint_to_type(hints.get(p.name, inspect.Parameter.empty))
        if arg_types and p.name in arg_types:
            t = arg_types[p.name]
        required = p.default is inspect.Parameter.empty
        args.append(ArgSpec(p.name, t, arg_help.get(p.name, ""), required, None if required else p.default))
    if return_type is None:
        rhint = hints.get("return", inspect.Parameter.empty)
        return_type = "any" if rhint is inspect.Parameter.empty else _hint_to_type(rhint)[0]
    return ToolSpec(
        group=group,
        name=name or _camel(func.__name__),
        description=description if description is not None else desc,
        args=tuple(args),
        return_type=return_type,
        return_help=ret_help,
        variadic=variadic,
        example=example or doc_example,
        error_conditions=error_conditions or raises,
        aliases=tuple(aliases),
        needs_approval=needs_approval,
    )


def _camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.strip("_").split("_")) or name


def tool(group: str = "host", name: str | None = None, *, aliases: Iterable[str] = (), description: str | None = None,
         return_type: str | None = None, example: str = "", error_conditions: str = "",
         arg_types: Mapping[str, str] | None = None,
         needs_approval: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator that attaches a :class:`ToolSpec` built from the function to the function.

    Example::

        @tool("text", "Shout")
        def shout(text: str, times: int = 1) -> str:
            '''Upper-case text.

            Args:
                text: what to shout.
                times: how many exclamation marks.
            '''
            return text.upper() + "!" * times

        interp.register_tool(shout)       # scripts call tool.text.Shout("hi", times: 3)

    The function is returned unchanged (with ``__ns_tool_spec__`` set), so it stays callable from Python.
    """

    def deco(func: Callable[..., Any]) -> Callable[..., Any]:
        func.__ns_tool_spec__ = build_spec(  # type: ignore[attr-defined]
            func, group=group, name=name, description=description, aliases=aliases, return_type=return_type,
            example=example, error_conditions=error_conditions, arg_types=arg_types, needs_approval=needs_approval,
        )
        return func

    return deco
