"""The ``map`` tool group: functions over maps (string keys, insertion order).

nslang additions (0.4.2 had no map tools, spec/language.md §8.5). Every tool returns a **new** map
(or list) and leaves its argument unchanged; maps are shared by reference, so mutating an argument
would be visible to the caller. Error values and event values are maps too and are accepted.
"""

from __future__ import annotations

from typing import Any

from ..registry import tool
from ._common import arg_error, describe, variadic

__all__ = ["TOOLS"]


@tool("map", "Keys")
def keys(map: dict[str, Any]) -> list[str]:  # noqa: A002
    """The keys of a map, in insertion order.

    Args:
        map: the map.

    Returns:
        A list of strings.

    Example:
        set names = tool.map.Keys({"a": 1, "b": 2})
    """
    return [*map]


@tool("map", "Values")
def values(map: dict[str, Any]) -> list[Any]:  # noqa: A002
    """The values of a map, in the insertion order of their keys.

    Args:
        map: the map.

    Returns:
        A list.

    Example:
        set all = tool.map.Values({"a": 1, "b": 2})
    """
    return [*map.values()]


@tool("map", "HasKey")
def has_key(map: dict[str, Any], key: str) -> bool:  # noqa: A002
    """Whether a map has a key (even when its value is nil).

    Args:
        map: the map.
        key: the key to look for.

    Returns:
        true or false.

    Example:
        set configured = tool.map.HasKey(config, "model")
    """
    return key in map


@tool("map", "Get")
def get(map: dict[str, Any], key: str, default: Any = None) -> Any:  # noqa: A002
    """The value of a key, or a default when the map does not have it.

    Unlike ``m[key]`` (code 9 for a missing key), this never fails.

    Args:
        map: the map.
        key: the key.
        default: returned when the key is missing (nil when omitted).

    Returns:
        The value or the default.

    Example:
        set model = tool.map.Get(config, "model", "default-model")
    """
    return map.get(key, default)


@tool("map", "Merge")
def merge(map: dict[str, Any], *more: Any) -> dict[str, Any]:  # noqa: A002
    """Merge maps into a new map; for keys present in several maps the last one wins.

    A shallow merge: nested maps are not merged. Keys keep the order in which they first appear.

    Args:
        map: the first map; further maps follow as more arguments.

    Returns:
        A new map.

    Raises:
        4 an extra argument that is not a map.

    Example:
        set settings = tool.map.Merge(defaults, overrides)
    """
    out = dict(map)
    for i, extra in enumerate(variadic(more), 2):
        if not isinstance(extra, dict):
            raise arg_error(f"#{i}", f"must be a map, got {describe(extra)}")
        out.update(extra)
    return out


@tool("map", "Set")
def set_(map: dict[str, Any], key: str, value: Any = None) -> dict[str, Any]:  # noqa: A002
    """A new map with a key set to a value (added at the end if it is new).

    Args:
        map: the map (unchanged).
        key: the key.
        value: the value (nil when omitted).

    Returns:
        A new map.

    Example:
        set config = tool.map.Set(config, "retries", 3)
    """
    out = dict(map)
    out[key] = value
    return out


@tool("map", "Delete")
def delete(map: dict[str, Any], key: str) -> dict[str, Any]:  # noqa: A002
    """A new map without a key (a copy when the key is missing).

    Args:
        map: the map (unchanged).
        key: the key to leave out.

    Returns:
        A new map.

    Example:
        set public = tool.map.Delete(user, "password")
    """
    return {k: v for k, v in map.items() if k != key}


@tool("map", "Len", aliases=("map.Length",))
def len_(map: dict[str, Any]) -> int:  # noqa: A002
    """The number of entries of a map.

    Args:
        map: the map.

    Returns:
        Its entry count.

    Example:
        set n = tool.map.Len({"a": 1})
    """
    return len(map)


TOOLS: list[Any] = [keys, values, has_key, get, merge, set_, delete, len_]
