"""The ``list`` and ``map`` tools: results, no mutation of arguments, bad input."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from nslang.errors import ErrorCode
from nslang.values import ErrorValue

L = [3, "b", [1], {"k": 1}]


@pytest.mark.parametrize("name,args,expected", [
    ("list.Length", [[1, 2, 3]], 3),
    ("List.Length", [[]], 0),
    ("list.Append", [[1, 2], 3], [1, 2, 3]),
    ("list.Append", [[1]], [1, None]),
    ("list.Append", [[], [1]], [[1]]),
    ("list.Prepend", [[1, 2], 0], [0, 1, 2]),
    ("list.Get", [[10, 20], 1], 20),
    ("list.Get", [[10, 20], 2], None),
    ("list.Get", [[10, 20], -1, "d"], "d"),
    ("list.Get", [[10, 20], 5, "d"], "d"),
    ("list.Slice", [[0, 1, 2, 3, 4], 1, 3], [1, 2]),
    ("list.Slice", [[0, 1, 2, 3, 4], 3], [3, 4]),
    ("list.Slice", [[0, 1, 2], -5, 10], [0, 1, 2]),
    ("list.Slice", [[0, 1, 2], 2, 1], []),
    ("list.Contains", [[1, "a", [2]], "a"], True),
    ("list.Contains", [[1, "a", [2]], [2]], True),
    ("list.Contains", [[1.0], 1], True),
    ("list.Contains", [[1, 2], 3], False),
    ("list.Contains", [[None], None], True),
    ("list.IndexOf", [["a", "b", "b"], "b"], 1),
    ("list.IndexOf", [["a"], "z"], -1),
    ("list.Reverse", [[1, 2, 3]], [3, 2, 1]),
    ("list.Sort", [[3, 1.5, 2]], [1.5, 2, 3]),
    ("list.Sort", [["b", "a", "C"]], ["C", "a", "b"]),
    ("list.Sort", [[3, 1, 2], True], [3, 2, 1]),
    ("list.Sort", [[]], []),
    ("list.Head", [[7, 8]], 7),
    ("list.Head", [[]], None),
    ("list.Rest", [[7, 8, 9]], [8, 9]),
    ("list.Rest", [[]], []),
    ("list.Tail", [[1, 2, 3], 2], [2, 3]),
    ("list.Tail", [[1, 2, 3], 5], [1, 2, 3]),
    ("list.Tail", [[1, 2, 3], 0], []),
    ("list.IsEmpty", [[]], True),
    ("list.IsEmpty", [[0]], False),
    ("list.Concat", [[1], [2, 3], [], [4]], [1, 2, 3, 4]),
    ("list.Concat", [[1]], [1]),
    ("list.Unique", [["a", "b", "a", 1, 1.0, [1], [1], None, None]], ["a", "b", 1, [1], None]),
])
def test_list_tools(call: Any, name: str, args: list[Any], expected: Any) -> None:
    assert call(name, *args) == expected


@pytest.mark.parametrize("name,extra", [
    ("list.Append", [9]), ("list.Prepend", [9]), ("list.Reverse", []), ("list.Sort", []), ("list.Rest", []),
    ("list.Slice", [0, 2]), ("list.Tail", [1]), ("list.Concat", [[9]]), ("list.Unique", []),
])
def test_list_tools_return_new_lists(call: Any, name: str, extra: list[Any]) -> None:
    arg = [3, 1, 2, 1] if name == "list.Sort" or name == "list.Unique" else copy.deepcopy(L)
    before = copy.deepcopy(arg)
    result = call(name, arg, *extra)
    assert arg == before
    assert result is not arg


@pytest.mark.parametrize("name,args,code,arg", [
    ("list.Sort", [[1, "a"]], ErrorCode.TYPE, "list"),
    ("list.Sort", [[1, None]], ErrorCode.TYPE, "list"),
    ("list.Sort", [[True, False]], ErrorCode.TYPE, "list"),
    ("list.Tail", [[1], -1], ErrorCode.ARG_MISMATCH, "count"),
    ("list.Get", [[1], "x"], ErrorCode.ARG_MISMATCH, "index"),
    ("list.Length", ["abc"], ErrorCode.ARG_MISMATCH, "list"),
    ("list.Append", [{"a": 1}, 1], ErrorCode.ARG_MISMATCH, "list"),
    ("list.Concat", [[1], 2], ErrorCode.ARG_MISMATCH, "#2"),
    ("list.Slice", [[1]], ErrorCode.ARG_MISMATCH, "start"),
])
def test_list_bad_input(fails: Any, name: str, args: list[Any], code: int, arg: str) -> None:
    err = fails(name, *args)
    assert err.code == code
    assert f"tool.{name}" in err.message and f"'{arg}'" in err.message


def test_sort_mixed_message_names_the_element(fails: Any) -> None:
    err = fails("list.Sort", [1, 2, "x"])
    assert "mixes numbers and strings" in err.message and "element 2" in err.message


# ----------------------------------------------------------------------------------------------
# map


M = {"b": 1, "a": None, "c": [1]}


@pytest.mark.parametrize("name,args,expected", [
    ("map.Keys", [M], ["b", "a", "c"]),
    ("map.Values", [M], [1, None, [1]]),
    ("map.HasKey", [M, "a"], True),
    ("map.HasKey", [M, "z"], False),
    ("map.Get", [M, "b"], 1),
    ("map.Get", [M, "z"], None),
    ("map.Get", [M, "z", 5], 5),
    ("map.Get", [M, "a", 5], None),
    ("map.Merge", [{"a": 1, "b": 1}, {"b": 2, "c": 3}], {"a": 1, "b": 2, "c": 3}),
    ("map.Merge", [{"a": 1}, {"b": 2}, {"a": 3}], {"a": 3, "b": 2}),
    ("map.Merge", [{"a": 1}], {"a": 1}),
    ("map.Set", [{"a": 1}, "b", 2], {"a": 1, "b": 2}),
    ("map.Set", [{"a": 1}, "a"], {"a": None}),
    ("map.Delete", [{"a": 1, "b": 2}, "a"], {"b": 2}),
    ("map.Delete", [{"a": 1}, "zz"], {"a": 1}),
    ("map.Len", [M], 3),
    ("map.Length", [{}], 0),
])
def test_map_tools(call: Any, name: str, args: list[Any], expected: Any) -> None:
    result = call(name, *args)
    assert result == expected
    if isinstance(expected, dict):
        assert list(result) == list(expected)  # key order


def test_map_tools_return_new_maps(call: Any) -> None:
    m = {"a": 1}
    cases: list[tuple[str, list[Any]]] = [("map.Set", ["b", 2]), ("map.Delete", ["a"]), ("map.Merge", [{"c": 3}])]
    for name, extra in cases:
        result = call(name, m, *extra)
        assert m == {"a": 1} and result is not m


def test_error_values_are_maps(call: Any) -> None:
    e = ErrorValue({"code": 5, "message": "boom"})
    assert call("map.Keys", e) == ["code", "message"]
    assert call("map.Get", e, "message") == "boom"


@pytest.mark.parametrize("name,args,arg", [
    ("map.Keys", [[1]], "map"),
    ("map.Get", [{"a": 1}, 1], "key"),
    ("map.HasKey", [{"a": 1}], "key"),
    ("map.Merge", [{"a": 1}, [1]], "#2"),
    ("map.Set", ["x", "k", 1], "map"),
])
def test_map_bad_input(fails: Any, name: str, args: list[Any], arg: str) -> None:
    err = fails(name, *args)
    assert err.code == ErrorCode.ARG_MISMATCH
    assert f"tool.{name}" in err.message and f"'{arg}'" in err.message
