"""The ``json`` tool group: JSON text to NeuroScript values and back.

nslang additions (spec/language.md §8.5 has none; upstream HEAD has similar tools). JSON maps to
values as: object - map (insertion order; a repeated key keeps the last value), array - list,
string - string, integer - exact integer (a float beyond values.MAX_INT_DIGITS digits, like 1e999),
other number - float, true/false - boolean, null - nil.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from typing import Any

from ... import _json
from ..._json import MAX_DEPTH
from ...errors import ErrorCode
from ...limits import ELEMENT_BYTES, display_size, value_limit, value_too_large
from ...values import Fuzzy, string_number, type_name
from ..registry import ToolContext, tool
from ._common import arg_error

__all__ = ["TOOLS"]

def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


@tool("json", "Parse")
def parse(ctx: ToolContext, json_string: str) -> Any:
    """Parse JSON text into a value.

    Args:
        json_string: JSON text (any JSON value, not only objects).

    Returns:
        The value: map, list, string, number, boolean or nil.

    Raises:
        4 the text is not valid JSON (the message gives line and column), or it nests arrays and
        objects more than 500 levels deep; NaN and Infinity are refused. 37 the parsed data could
        exceed the value-size limit: the text's length plus 32 bytes per ``,`` ``:`` ``[`` ``{`` (an
        upper bound of its elements) is over ``limits.max_value_bytes`` (checked before parsing, issue
        10 item 6).

    Example:
        set data = tool.json.Parse('{"name": "Ada", "tags": ["x", "y"]}')
    """
    limit = value_limit(ctx.interpreter)
    if len(json_string) * (1 + ELEMENT_BYTES) > limit:  # a shorter text cannot reach the limit
        elements = sum(json_string.count(c) for c in ",:[{")
        size = len(json_string) + ELEMENT_BYTES * elements
        if size > limit:
            raise value_too_large("the parsed JSON", size, limit)
    try:
        return _json.loads(json_string, parse_constant=_reject_constant, parse_int=string_number)
    except json.JSONDecodeError as e:
        if e.pos == 0 and e.msg.startswith("nests"):
            raise arg_error("json_string", f"is not accepted: it {e.msg}") from None
        raise arg_error("json_string", f"is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except ValueError as e:
        raise arg_error("json_string", f"is not valid JSON: {e}") from None


def _plain(root: Any) -> Any:
    """Convert a value to JSON-serialisable Python data, with clear errors for the rest.

    Iterative (no recursion): an explicit stack of (source iterator, output container, path, depth).
    """
    out, it = _open(root, "value", 0, set())
    if it is None:
        return out
    stack = [it]
    while stack:
        src, dst, path, depth, vid, active = stack[-1]
        item = next(src, None)
        if item is None:
            active.discard(vid)
            stack.pop()
            continue
        key, x = item
        sub = f"{path}[{key}]" if type(dst) is list else f"{path}[{json.dumps(key)}]"
        y, child = _open(x, sub, depth + 1, active)
        if type(dst) is list:
            dst.append(y)
        else:
            dst[key] = y
        if child is not None:
            stack.append(child)
    return out


def _open(v: Any, path: str, depth: int, active: set[int]) -> tuple[Any, Any]:
    """(converted value, None) for a scalar; (empty container, stack entry) for a list or map."""
    t = type(v)
    if v is None or t is str or t is bool or t is int:
        return v, None
    if t is float:
        if not math.isfinite(v):
            raise arg_error("value", f"holds {v!r} at {path}, which JSON cannot represent")
        return v, None
    if t is list or isinstance(v, dict):
        if depth >= MAX_DEPTH:
            raise arg_error("value", f"nests lists and maps more than {MAX_DEPTH} levels deep")
        if id(v) in active:
            raise arg_error("value", f"contains itself at {path} (a cycle)")
        active.add(id(v))
        if t is list:
            items: list[Any] = []
            return items, (enumerate(v), items, path, depth, id(v), active)
        entries: dict[str, Any] = {}
        return entries, (((str(k), x) for k, x in v.items()), entries, path, depth, id(v), active)
    if isinstance(v, _dt.datetime):
        return v.isoformat().replace("+00:00", "Z"), None
    if t is Fuzzy:
        return v.mu, None
    raise arg_error("value", f"holds a {type_name(v)} at {path}, which JSON cannot represent",
                    code=ErrorCode.ARG_MISMATCH)


@tool("json", "Stringify")
def stringify(ctx: ToolContext, value: Any = None, pretty: bool = False) -> str:
    """Turn a value into JSON text.

    Maps keep their key order; non-ASCII text is written as is (UTF-8), not as escapes. A timedate
    becomes an RFC 3339 string, a fuzzy value its number, an error value its map.

    Args:
        value: the value (nil gives "null").
        pretty: indent with two spaces and one entry per line.

    Returns:
        The JSON text.

    Raises:
        4 the value holds something JSON cannot represent (a function or tool reference, bytes,
        NaN or an infinity), contains itself, or nests more than 500 levels; 37 the text would
        exceed the value-size limit (estimated before it is built).

    Example:
        call tool.fs.Write("data.json", tool.json.Stringify(data, true))
    """
    plain = _plain(value)
    limit = value_limit(ctx.interpreter)
    size = display_size(plain, limit) * (2 if pretty else 1)  # JSON is about as long as the display string
    if size > limit:
        raise value_too_large("the JSON text", size, limit)
    if pretty:
        return _json.dumps(plain, ensure_ascii=False, indent=2)
    return _json.dumps(plain, ensure_ascii=False, separators=(",", ":"))


TOOLS: list[Any] = [parse, stringify]
