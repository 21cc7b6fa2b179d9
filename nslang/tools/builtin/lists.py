"""The ``list`` tool group: functions over lists.

Upstream 0.4.2 ``List.*`` tools (spec/language.md §8.5) plus a few nslang additions (Concat,
IndexOf, Unique). Every tool returns a **new** list and leaves its argument unchanged (lists are
shared by reference in NeuroScript, so mutating an argument would be visible to the caller).
Element comparison (Contains, IndexOf, Unique) uses the ``==`` operator's rules: numbers compare
numerically (1 == 1.0), lists and maps deeply.
"""

from __future__ import annotations

import builtins
from typing import Any

from ...errors import ErrorCode
from ...limits import ELEMENT_BYTES, check_deadline, value_limit, value_too_large
from ...values import equal, number_or_none, type_name
from ..registry import ToolContext, tool
from ._common import arg_error, describe, variadic

__all__ = ["TOOLS"]


@tool("list", "Length", aliases=("List.Length",))
def length(list: list[Any]) -> int:  # noqa: A002 - upstream argument name
    """The number of elements of a list.

    Upstream 0.4.2 List.Length.

    Args:
        list: the list.

    Returns:
        Its element count.

    Example:
        set n = tool.list.Length([1, 2, 3])
    """
    return len(list)


@tool("list", "Append", aliases=("List.Append",))
def append(list: list[Any], element: Any = None) -> list[Any]:  # noqa: A002
    """A new list with an element added at the end.

    Upstream 0.4.2 List.Append.

    Args:
        list: the list (unchanged).
        element: the value to add (nil when omitted).

    Returns:
        A new list.

    Example:
        set items = tool.list.Append(items, "next")
    """
    return [*list, element]


@tool("list", "Prepend", aliases=("List.Prepend",))
def prepend(list: list[Any], element: Any = None) -> list[Any]:  # noqa: A002
    """A new list with an element added at the front.

    Upstream 0.4.2 List.Prepend.

    Args:
        list: the list (unchanged).
        element: the value to add (nil when omitted).

    Returns:
        A new list.

    Example:
        set items = tool.list.Prepend(items, "first")
    """
    return [element, *list]


@tool("list", "Get", aliases=("List.Get",))
def get(list: list[Any], index: int, default: Any = None) -> Any:  # noqa: A002
    """The element at an index, or a default when the index is out of range.

    Upstream 0.4.2 List.Get. Negative indexes are out of range (they do not count from the end).

    Args:
        list: the list.
        index: 0-based position.
        default: returned when index < 0 or index >= length (nil when omitted).

    Returns:
        The element or the default.

    Example:
        set second = tool.list.Get(items, 1, "none")
    """
    if 0 <= index < len(list):
        return list[index]
    return default


def _clamp(i: int, n: int) -> int:
    return 0 if i < 0 else n if i > n else i


@tool("list", "Slice", aliases=("List.Slice",))
def slice_(list: list[Any], start: int, end: int | None = None) -> list[Any]:  # noqa: A002
    """The elements from start (included) to end (excluded) as a new list.

    Upstream 0.4.2 List.Slice (``end`` was required there). Indexes are clamped to 0..length, so
    out-of-range bounds never fail; end <= start gives [].

    Args:
        list: the list.
        start: first index, included.
        end: index to stop before; omitted: the end of the list.

    Returns:
        A new list.

    Example:
        set firsttwo = tool.list.Slice(items, 0, 2)
    """
    n = len(list)
    s = _clamp(start, n)
    e = n if end is None else _clamp(end, n)
    return list[s:e] if e > s else []


@tool("list", "Contains", aliases=("List.Contains",))
def contains(list: list[Any], element: Any = None) -> bool:  # noqa: A002
    """Whether a list has an element equal (==) to a value.

    Upstream 0.4.2 List.Contains.

    Args:
        list: the list.
        element: the value to look for (nil when omitted).

    Returns:
        true or false.

    Example:
        set found = tool.list.Contains(["a", "b"], "b")
    """
    return any(equal(x, element) for x in list)


@tool("list", "IndexOf")
def index_of(list: list[Any], element: Any = None) -> int:  # noqa: A002
    """Position of the first element equal (==) to a value.

    nslang addition.

    Args:
        list: the list.
        element: the value to look for.

    Returns:
        Its 0-based index, or -1 when absent.

    Example:
        set at = tool.list.IndexOf(["a", "b"], "b")
    """
    for i, x in enumerate(list):
        if equal(x, element):
            return i
    return -1


@tool("list", "Reverse", aliases=("List.Reverse",))
def reverse(list: list[Any]) -> list[Any]:  # noqa: A002
    """The elements in reverse order, as a new list.

    Upstream 0.4.2 List.Reverse.

    Args:
        list: the list (unchanged).

    Returns:
        A new list.

    Example:
        set backwards = tool.list.Reverse([1, 2, 3])
    """
    return list[::-1]


@tool("list", "Sort", aliases=("List.Sort",))
def sort(list: list[Any], descending: bool = False) -> list[Any]:  # noqa: A002
    """The elements sorted, as a new list: all numbers (numerically) or all strings (by code point).

    Upstream 0.4.2 List.Sort; ``descending`` is an nslang addition. The sort is stable.

    Args:
        list: a list of numbers only, or of strings only (unchanged).
        descending: largest first.

    Returns:
        A new sorted list.

    Raises:
        7 (Type) the list mixes numbers and strings, or holds another type (nil, boolean, list,
        map ...).

    Example:
        set ordered = tool.list.Sort([3, 1, 2])
    """
    if not list:
        return []
    kinds: set[str] = set()
    for i, x in enumerate(list):
        t = type(x)
        if t is int or t is float:
            kinds.add("number")
        elif t is str:
            kinds.add("string")
        else:
            raise arg_error("list", f"can only sort numbers or strings; element {i} is {describe(x)}",
                            code=ErrorCode.TYPE)
        if len(kinds) > 1:
            raise arg_error("list", f"cannot sort a list that mixes numbers and strings (element {i} is "
                            f"{describe(x)})", code=ErrorCode.TYPE)
    return sorted(list, reverse=descending)


@tool("list", "Head", aliases=("List.Head",))
def head(list: list[Any]) -> Any:  # noqa: A002
    """The first element of a list, or nil for an empty list.

    Upstream 0.4.2 List.Head.

    Args:
        list: the list.

    Returns:
        The first element, or nil.

    Example:
        set first = tool.list.Head(items)
    """
    return list[0] if list else None


@tool("list", "Rest", aliases=("List.Rest",))
def rest(list: list[Any]) -> list[Any]:  # noqa: A002
    """All elements but the first, as a new list ([] for an empty list).

    Upstream 0.4.2 List.Rest.

    Args:
        list: the list.

    Returns:
        A new list.

    Example:
        set others = tool.list.Rest(items)
    """
    return list[1:]


@tool("list", "Tail", aliases=("List.Tail",))
def tail(list: list[Any], count: int) -> list[Any]:  # noqa: A002
    """The last count elements, as a new list (all of them when count exceeds the length).

    Upstream 0.4.2 List.Tail.

    Args:
        list: the list.
        count: how many elements to keep from the end (not negative).

    Returns:
        A new list.

    Raises:
        4 a negative count.

    Example:
        set lasttwo = tool.list.Tail(items, 2)
    """
    if count < 0:
        raise arg_error("count", f"must not be negative, got {count}")
    return list[max(0, len(list) - count) :] if count else []


@tool("list", "IsEmpty", aliases=("List.IsEmpty",))
def is_empty(list: list[Any]) -> bool:  # noqa: A002
    """Whether a list has no elements.

    Upstream 0.4.2 List.IsEmpty.

    Args:
        list: the list.

    Returns:
        true for [].

    Example:
        set done = tool.list.IsEmpty(queue)
    """
    return not list


@tool("list", "Concat")
def concat(ctx: ToolContext, list: list[Any], *more: Any) -> list[Any]:  # noqa: A002
    """Join several lists into a new list.

    nslang addition (list + list is a type error in nslang).

    Args:
        list: the first list; further lists follow as more arguments.

    Returns:
        A new list with the elements of every list, in order.

    Raises:
        4 an extra argument that is not a list; 37 the result would exceed the value-size limit.

    Example:
        set all = tool.list.Concat([1, 2], [3], [4, 5])
    """
    extras = variadic(more)
    for i, extra in enumerate(extras, 2):
        if type(extra) is not builtins.list:
            raise arg_error(f"#{i}", f"must be a list, got {describe(extra)}")
    size = ELEMENT_BYTES * (len(list) + sum(len(x) for x in extras))
    limit = value_limit(ctx.interpreter)
    if size > limit:
        raise value_too_large("the list", size, limit)
    out = [*list]
    for extra in extras:
        out.extend(extra)
    return out


def _key(v: Any) -> tuple[Any, ...] | None:
    """A hashable key with the same equality as ``==`` for scalars; None for lists and maps."""
    if v is None:
        return ("nil",)
    t = type(v)
    if t is list or isinstance(v, dict):
        return None
    n = number_or_none(v) if t in (int, float, bool, str) else None
    if n is not None:
        return ("n", n)
    if t is str:
        return ("s", v)
    try:
        hash(v)
    except TypeError:
        return None
    return (type_name(v), v)


@tool("list", "Unique")
def unique(ctx: ToolContext, list: list[Any]) -> list[Any]:  # noqa: A002
    """The list without repeated elements, keeping the first of each (a new list).

    nslang addition. Elements are compared with ==, so 1 and 1.0 (and "1") count as the same.

    Args:
        list: the list (unchanged).

    Returns:
        A new list with each distinct element once, in first-seen order.

    Raises:
        31 (Timeout) the run's time limit passed (lists and maps are compared pairwise, so a long
        list of them is slow; the deadline is checked as it goes).

    Example:
        set tags = tool.list.Unique(["a", "b", "a"])
    """
    seen: set[Any] = set()
    others: builtins.list[Any] = []
    out: builtins.list[Any] = []
    work = 0
    for x in list:
        k = _key(x)
        if k is not None:
            if k in seen:
                continue
            seen.add(k)
        else:
            work += len(others)
            if work > _CHECK_EVERY:
                check_deadline(ctx.interpreter)
                work = 0
            if any(equal(x, y) for y in others):
                continue
            others.append(x)
        out.append(x)
    return out


#: Element comparisons between two deadline checks in long tool loops.
_CHECK_EVERY = 20_000


TOOLS: list[Any] = [
    length, append, prepend, get, slice_, contains, index_of, reverse, sort, head, rest, tail, is_empty,
    concat, unique,
]
