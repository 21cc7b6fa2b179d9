"""Run-time support of generated code (part of the compiler, :mod:`nslang.compiler`).

Generated functions keep the common cases inline (two ints, a string and a number, a list index in
range) and call the functions here for everything else, so that every rule of the language has one
implementation: the slow paths of the operators (:mod:`nslang.values`), indexing and auto-vivifying
assignment (spec §3, §4.5), ``for each``, interpolation (spec §4.9), tool calls, ``ask``, ``on error``
(spec §5.3) and the value-size limit (:mod:`nslang.limits`).

:func:`codespace` builds, once per :class:`~nslang.interpreter.Interpreter`, the dictionary that is the
global namespace of all of its generated code: these helpers bound to the interpreter, and one name
``P_<procedure>`` per procedure that generated code calls directly.
"""

from __future__ import annotations

import _thread

from . import values as V
from ._stack import deep_call
from .builtins import BUILTINS
from .errors import CallFrame, ErrorCode, NSRuntimeError, out_of_memory, python_error
from .limits import ELEMENT_BYTES, checked_add, checked_display, display_size, value_too_large
from .source import Span
from .values import ErrorValue, display, interpolation_display, type_name

TYPE_CHECKING = False  # typing stays off the start-up path (issue 16 item 3)
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable
    from typing import Any, NoReturn

    from .interpreter import Interpreter

__all__ = ["SLOW", "UNSET", "call_error", "codespace", "iter_items", "loop_error"]


class _Unset:
    """A local variable not assigned yet: a read falls back to the globals (spec §4.7)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unset>"


UNSET = _Unset()

_PLACEHOLDERS: list[Any] = []  # the ``{{name}}`` pattern, compiled on first use (``re`` stays off start-up)


def placeholder_re() -> Any:
    """The compiled ``{{name}}`` placeholder pattern (spec §4.9)."""
    if not _PLACEHOLDERS:
        import re

        _PLACEHOLDERS.append(re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}"))
    return _PLACEHOLDERS[0]

#: an int this far from zero always converts with str(), whatever digit limit the host set (>= 640)
STR_SAFE = 10**600

SLOW: dict[str, Callable[[Any, Any], Any]] = {
    "+": V.add,
    "-": V.sub,
    "*": V.mul,
    "/": V.div,
    "%": V.mod,
    "**": V.power,
    "<": lambda a, b: V.compare("<", a, b),
    "<=": lambda a, b: V.compare("<=", a, b),
    ">": lambda a, b: V.compare(">", a, b),
    ">=": lambda a, b: V.compare(">=", a, b),
    "==": V.equal,
    "!=": lambda a, b: not V.equal(a, b),
    "&": V.bit_and,
    "|": V.bit_or,
    "^": V.bit_xor,
}


def _at(e: NSRuntimeError, span: Span | None) -> NSRuntimeError:
    if e.span is None:
        e.span = span
    return e


def err(msg: str, code: int, span: Span | None) -> NSRuntimeError:
    """A runtime error with its code and position."""
    return NSRuntimeError(msg, code=code, span=span)


def call_error(e: NSRuntimeError, name: str, span: Span | None) -> NSRuntimeError:
    """An error leaving procedure ``name`` called at ``span``: one more NeuroScript call-stack line."""
    e.stack.append(CallFrame(name, span))
    return _at(e, span)


def loop_error(limit: int, span: Span) -> NSRuntimeError:
    """Error 37 for a loop past ``max_loop_iterations``."""
    return NSRuntimeError(
        f"loop ran more than {limit} iterations (raise the limit with --max-loop-iterations N, or "
        "Interpreter(max_loop_iterations=N); 0 for no limit)",
        code=ErrorCode.RESOURCE_EXHAUSTION, span=span,
    )


def iter_items(coll: Any, limit: int, span: Span) -> Any:
    """What ``for each`` walks: a snapshot of a list, a map's values, a string's characters (§3)."""
    t = type(coll)
    if t is list:
        items: Any = coll[:]
    elif t is str:
        items = coll
    elif isinstance(coll, dict):
        items = list(coll.values())
    else:
        raise err(f"for each needs a list, map or string, got {type_name(coll)}", ErrorCode.TYPE, span)
    if len(items) > limit:
        raise loop_error(limit, span)
    return items


def nonnum(s: str) -> bool:
    """Has the string no numeric reading (``+`` with it concatenates, ``==`` compares the text)?"""
    return not s or s[0] not in V._NUM_START or V.string_number(s) is None


def slow(fn: Callable[[Any, Any], Any], a: Any, b: Any, span: Span) -> Any:
    """An operator's full rules (:data:`SLOW`), with the operator's position on errors; a Python
    exception on extreme input becomes its NeuroScript error (:func:`nslang.errors.python_error`)."""
    try:
        return fn(a, b)
    except NSRuntimeError as e:
        raise _at(e, span) from None
    except (ArithmeticError, ValueError, MemoryError) as e:
        ns = python_error(e)
        if ns is None:
            raise
        raise _at(ns, span) from None


def unop(fn: Callable[[Any], Any], v: Any, span: Span) -> Any:
    """Unary ``-`` / ``~`` beyond the inline int and float case."""
    try:
        return fn(v)
    except NSRuntimeError as e:
        raise _at(e, span) from None


def index_slow(c: Any, i: Any, span: Span) -> Any:
    """``c[i]`` for every case the inline path did not take (spec §4.5); errors carry ``span``."""
    if c is None:
        raise err("cannot index nil", ErrorCode.EVALUATION, span)
    if i is None:
        raise err("index is nil", ErrorCode.EVALUATION, span)
    tc = type(c)
    if tc is list:
        try:
            k = V.to_int(i, "list index")
        except NSRuntimeError as e:
            raise _at(e, span) from None
        if 0 <= k < len(c):
            return c[k]
        raise err(f"list index {V.short_repr(k)} out of range (list has {len(c)} element{'s' if len(c) != 1 else ''})",
                  ErrorCode.BOUNDS, span)
    if isinstance(c, dict):
        key = i if type(i) is str else display(i)
        if key in c:
            return c[key]
        if tc is V.EventValue:
            return None
        raise err(f"key {key!r} not found in map", ErrorCode.KEY_NOT_FOUND, span)
    hint = " (use tool.str.Substring)" if tc is str else ""
    raise err(f"cannot index a {type_name(c)}{hint}", ErrorCode.TYPE, span)


# ---------------------------------------------------------------------------------------------------
# Assignment targets (auto-vivification, spec §3); each returns the variable's (possibly new) value

_MAX_PAD = 1_000_000


def _list_store(c: list[Any], k: Any, v: Any, span: Span, limit: int) -> None:
    if type(k) is not int:
        if type(k) is float and k.is_integer():
            k = int(k)
        else:
            raise err(f"list index must be a non-negative integer, got {type_name(k)} {V.short_repr(k)}",
                      ErrorCode.TYPE, span)
    if k < 0:
        raise err(f"list index must not be negative, got {V.short_repr(k)}", ErrorCode.BOUNDS, span)
    n = len(c)
    if k < n:
        c[k] = v
        return
    if (k + 1) * ELEMENT_BYTES > limit:
        raise _at(value_too_large("the list", (k + 1) * ELEMENT_BYTES, limit), span)
    if k == n:
        c.append(v)
    elif k - n > _MAX_PAD:
        raise err(f"list index {V.short_repr(k)} is too far past the end (length {n})", ErrorCode.BOUNDS, span)
    else:
        c.extend([None] * (k - n))
        c.append(v)


def _map_store(c: dict[str, Any], key: str, v: Any, span: Span, limit: int) -> None:
    if (len(c) + 1) * ELEMENT_BYTES > limit and key not in c:
        raise _at(value_too_large("the map", (len(c) + 1) * ELEMENT_BYTES, limit), span)
    c[key] = v


def _is_index(k: Any) -> bool:
    return type(k) is int or (type(k) is float and k.is_integer())


def _new_container(k: Any, is_field: bool = False) -> Any:
    return [] if not is_field and _is_index(k) and k >= 0 else {}


def _child(c: Any, is_field: bool, k: Any, span: Span) -> Any:
    if type(c) is list:
        if is_field:
            raise err(f"cannot use .{k} on a list", ErrorCode.TYPE, span)
        if not _is_index(k):
            raise err(f"list index must be a non-negative integer, got {type_name(k)} {V.short_repr(k)}",
                      ErrorCode.TYPE, span)
        i = int(k)
        if i < 0:
            raise err(f"list index must not be negative, got {V.short_repr(i)}", ErrorCode.BOUNDS, span)
        return c[i] if i < len(c) else None
    return c.get(k if type(k) is str else display(k))


def _store(c: Any, k: Any, v: Any, span: Span, limit: int, is_field: bool = False) -> None:
    """``c[k] = v`` for an assignment path; lists and maps stay within the value-size limit ``limit``."""
    if type(c) is list:
        if is_field:
            raise err(f"cannot use .{k} on a list", ErrorCode.TYPE, span)
        _list_store(c, k, v, span, limit)
    else:
        _map_store(c, k if type(k) is str else display(k), v, span, limit)


def _fits(c: Any) -> bool:
    # an existing list is never replaced: a bad step on it is an error (spec §3), raised by _child/_store
    return type(c) is list or isinstance(c, dict)


# ---------------------------------------------------------------------------------------------------
# The namespace of an interpreter's generated code


_BUILDING = _thread.allocate_lock()


def codespace(rt: Interpreter) -> dict[str, Any]:
    """The globals of ``rt``'s generated code (built on first use, kept on the interpreter; one per
    interpreter even when threads compile their first procedures at once)."""
    ns = rt.codespace
    if ns is not None:
        return ns
    with _BUILDING:
        if rt.codespace is None:
            rt.codespace = ns = _build(rt)
            ns["CPV"] = rt.depth_checkpoint  # (set meanwhile by another thread's run)
            ns["BUDGET"] = rt.counts_steps()
        return rt.codespace


def _build(rt: Interpreter) -> dict[str, Any]:
    limit = rt.limits.max_value_bytes
    max_entries = limit // ELEMENT_BYTES
    lookup = rt.lookup_global

    def show(v: Any, span: Span | None) -> str:
        """The display string of a non-string value within the value-size limit (code 37 at ``span``)."""
        if type(v) is not list and not isinstance(v, dict):
            return display(v)
        try:
            return checked_display(v, limit)
        except NSRuntimeError as e:
            raise (e if span is None else _at(e, span)) from None

    def too_large(v: str, span: Span) -> None:
        raise _at(value_too_large("the string", len(v), limit), span)

    add = checked_add(limit)

    def store_index(c: Any, k: Any, v: Any, span: Span) -> Any:
        """``set x[k] = v`` where ``c`` is x's value (None when unset); returns x's new value."""
        tc = type(c)
        if tc is list:
            _list_store(c, k, v, span, limit)
        elif tc is dict:
            key = k if type(k) is str else display(k)
            if len(c) < max_entries:
                c[key] = v
            else:
                _map_store(c, key, v, span, limit)
        else:
            c = _new_container(k)
            _store(c, k, v, span, limit)
        return c

    def store_path(c: Any, keys: list[tuple[bool, Any, Span]], v: Any) -> Any:
        """``set x[a].b[c] = v`` (steps ``(is_field, key, span)``); returns x's new value."""
        first_field, first_key, _sp = keys[0]
        root = c if _fits(c) else _new_container(first_key, first_field)
        c = root
        for i in range(len(keys) - 1):
            is_field, k, sp = keys[i]
            nf, nk, _nsp = keys[i + 1]
            child = _child(c, is_field, k, sp)
            if not _fits(child):
                child = _new_container(nk, nf)
                _store(c, k, child, sp, limit, is_field)
            c = child
        is_field, k, sp = keys[-1]
        _store(c, k, v, sp, limit, is_field)
        return root

    def unpack(v: Any, n: int, span: Span) -> None:
        """``set a, b = v``: v must be a list of n values."""
        if type(v) is not list:
            raise err(f"assigning to {n} targets needs a list, got {type_name(v)}", ErrorCode.TYPE, span)
        if len(v) != n:
            raise err(f"assigning to {n} targets needs a list of {n} values, got {len(v)}",
                      ErrorCode.COUNT_MISMATCH, span)

    def interp(text: str, scope: dict[str, Any], span: Span) -> str:
        """``{{name}}`` placeholders of ``text`` filled from ``scope`` (local variables; ``last``), else
        the globals (spec §4.9); the result obeys the value-size limit."""
        size = len(text)  # an upper bound of the result's length so far

        def sub(m: Any) -> str:
            nonlocal size
            n = m.group(1)
            v = scope.get(n, UNSET)
            if v is UNSET:
                if n == "last":
                    v = None
                else:
                    try:
                        v = lookup(n, span)
                    except NSRuntimeError as e:
                        raise err(f"placeholder {{{{{n}}}}}: {e.message}", ErrorCode.EVALUATION, span) from None
            if (type(v) is list or isinstance(v, dict)) and v:
                size += display_size(v, limit - size)
                if size > limit:
                    raise _at(value_too_large("the interpolated string", size, limit), span)
            out = interpolation_display(v)
            size += len(out)
            if size > limit:
                raise _at(value_too_large("the interpolated string", size, limit), span)
            return out

        result: str = placeholder_re().sub(sub, text)
        return result

    def typeof_global(name: str, span: Span) -> str:
        try:
            return type_name(lookup(name, span))
        except NSRuntimeError:
            return "nil"

    def must_check(text: str, keyword: str, span: Span) -> Callable[[Any], None]:
        def fail(v: Any) -> None:
            if type(v) is ErrorValue:
                code = v.get("code")
                raise err(f"{keyword} {text}: got an error value (code {display(code)}): {v.message}",
                          ErrorCode.MUST_FAILED, span)
            if not v:
                raise err(f"{keyword} condition failed: {text}", ErrorCode.MUST_FAILED, span)

        return fail

    def fail_error(value: Any, has_value: bool, span: Span) -> NSRuntimeError:
        return err(display(value) if has_value else "fail statement executed", ErrorCode.FAIL_STATEMENT, span)

    def call_tool(cell: list[Any], path: str, span: Span, args: list[Any], named: dict[str, Any] | None) -> Any:
        if not cell:
            cell.append(rt.resolve_tool(path, span))
        try:
            return rt.invoke_tool(cell[0], args, named)
        except NSRuntimeError as e:
            raise _at(e, span) from None

    def ask(worker: Any, prompt: Any, options: Any, show_reply: bool, span: Span) -> Any:
        if options is not None and not isinstance(options, dict):
            raise err(f"ask ... with OPTIONS needs a map, got {type_name(options)}", ErrorCode.TYPE, span)
        try:
            return rt.ask(None if worker is None else display(worker), checked_display(prompt, limit), options,
                          show=show_reply)
        except NSRuntimeError as e:
            raise _at(e, span) from None

    def call_builtin(fn: Callable[[Any], Any], v: Any, span: Span) -> Any:
        try:
            return fn(v)
        except NSRuntimeError as e:
            raise _at(e, span) from None

    def call_dyn(name: str, span: Span, d: int, args: list[Any]) -> Any:
        """A call to a procedure not known when the caller was compiled (stdlib, or defined later), or
        with a number of arguments its definition does not take (error 2)."""
        p = rt.resolve_procedure(name, span)
        fn = p.compiled(d - 1)
        if not p.nreq <= len(args) <= p.nmax:
            raise call_error(p.arity_error(len(args)), name, span)
        try:
            return fn(d, *args)
        except NSRuntimeError as e:
            raise call_error(e, name, span) from None
        except RecursionError:
            raise rt.recursion_error(name, span) from None

    def deep(fn: Callable[..., Any], name: str, d: int, args: tuple[Any, ...]) -> Any:
        return deep_call(rt, fn, name, d, args)

    def guard(caught: BaseException, tok: object, handler: Callable[[NSRuntimeError], None]) -> None:
        """A statement of a body with an ``on error`` handler failed: run the handler once (spec §5.3).
        Returns when the handler ran ``clear_error`` (execution goes on with the next statement);
        otherwise re-raises. An error is handled once per call (``tok``); the handler's own errors
        are not handled again."""
        e = caught if isinstance(caught, NSRuntimeError) else out_of_memory()
        if e.handled_in is not tok and e.catchable:
            e.handled_in = tok
            saved = rt.handler_cleared
            rt.handler_cleared = False
            try:
                try:
                    handler(e)
                except NSRuntimeError as new:
                    new.handled_in = tok
                    raise
                if rt.handler_cleared:
                    return
            finally:
                rt.handler_cleared = saved
        if e is caught:
            raise caught
        raise e from None

    def bad_returns(name: str, returns: tuple[str, ...], v: Any, span: Span) -> NoReturn:
        got = f"{len(v)} values" if type(v) is list else "1 value"
        raise err(f"procedure '{name}' declares {len(returns)} return values ({', '.join(returns)}) but "
                   f"returned {got}", ErrorCode.PROC_NOT_FOUND, span)

    return {
        "rt": rt, "U": UNSET, "CPV": rt.depth_checkpoint, "lookup": lookup, "write": rt.write, "show": show,
        "too_large": too_large, "add": add, "slow": slow, "unop": unop, "index_slow": index_slow,
        "store_index": store_index, "store_path": store_path, "unpack": unpack, "interp": interp,
        "typeof_global": typeof_global, "type_name": type_name, "must_check": must_check,
        "fail_error": fail_error, "call_tool": call_tool, "ask": ask, "call_builtin": call_builtin,
        "call_dyn": call_dyn, "deep": deep, "guard": guard, "bad_returns": bad_returns,
        "call_error": call_error, "recursion_error": rt.recursion_error, "loop_error": loop_error,
        "iter_items": iter_items, "charge": rt.charge, "err": err, "display": display,
        "idisplay": interpolation_display, "clear_events": rt.clear_event_handlers,
        "NSRuntimeError": NSRuntimeError, "LEN_TYPES": (str, list, dict), "builtin_len": BUILTINS["len"],
        "INT_LOW": V._INT_LOW, "INT_BOUND": V._INT_BOUND, "STR_SAFE": STR_SAFE, "NUMSTART": V._NUM_START,
        "nonnum": nonnum, "NEG": V.negate, "BITNOT": V.bit_not, "LIMIT": limit, "MAXE": max_entries,
    }
