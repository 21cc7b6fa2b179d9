"""The ``str`` tools: normal use, Unicode, formatting, regular expressions and bad input."""

from __future__ import annotations

from typing import Any

import pytest

from nslang.errors import ErrorCode
from nslang.tools.builtin import strings


@pytest.mark.parametrize("name,args,expected", [
    ("str.Length", ["héllo"], 5),
    ("str.Length", ["😀a"], 2),
    ("Length", [""], 0),
    ("str.Substring", ["hello world", 6, 5], "world"),
    ("str.Substring", ["héllo", 1, 3], "éll"),
    ("str.Substring", ["hello", 3], "lo"),
    ("str.Substring", ["hello", 10, 2], ""),
    ("str.Substring", ["hello", 2, 100], "llo"),
    ("Substring", ["hello", "1", 2.0], "el"),  # int coercion of "1" and 2.0 (spec §8.3)
    ("str.Split", ["a,b,,c", ","], ["a", "b", "", "c"]),
    ("str.Split", ["", ","], [""]),
    ("str.Split", ["añb", ""], ["a", "ñ", "b"]),
    ("str.SplitWords", ["  the quick\tfox\n "], ["the", "quick", "fox"]),
    ("str.SplitWords", ["   "], []),
    ("str.Join", [["a", "b", "c"], "-"], "a-b-c"),
    ("str.Join", [["a", 1, True, None, [2]], ","], "a,1,true,,[2]"),
    ("str.Join", [["x", "y"]], "xy"),
    ("str.Concat", [["ab", "cd", 3]], "abcd3"),
    ("str.Replace", ["a-b-c", "-", "+"], "a+b+c"),
    ("str.Replace", ["a-b-c", "-", "+", 1], "a+b-c"),
    ("str.Replace", ["aaa", "a", "b", 0], "aaa"),
    ("str.Contains", ["hello", "ell"], True),
    ("str.Contains", ["hello", "xyz"], False),
    ("str.Contains", ["hello", ""], True),
    ("str.HasPrefix", ["hello", "he"], True),
    ("str.HasPrefix", ["hello", "lo"], False),
    ("str.HasSuffix", ["hello", "lo"], True),
    ("str.HasSuffix", ["hello", "he"], False),
    ("str.IndexOf", ["héllo", "l"], 2),
    ("str.IndexOf", ["hello", "z"], -1),
    ("str.ToUpper", ["straße"], "STRASSE"),
    ("str.ToLower", ["HéLLO"], "héllo"),
    ("str.TrimSpace", ["\u00a0 x y \n\t"], "x y"),
    ("str.LineCount", [""], 0),
    ("str.LineCount", ["a"], 1),
    ("str.LineCount", ["a\n"], 1),
    ("str.LineCount", ["a\nb"], 2),
    ("LineCount", ["a\n\nb\n"], 3),
])
def test_string_tools(call: Any, name: str, args: list[Any], expected: Any) -> None:
    assert call(name, *args) == expected


def test_upstream_flat_names_are_aliases(interp: Any) -> None:
    for flat in ["Length", "Substring", "ToUpper", "ToLower", "TrimSpace", "Split", "SplitWords", "Join",
                 "Concat", "Replace", "Contains", "HasPrefix", "HasSuffix", "LineCount"]:
        t = interp.tools.lookup(flat)
        assert t is not None and t.spec.group == "str" and t.spec.name == flat


@pytest.mark.parametrize("name,args,code,arg", [
    ("str.Substring", ["abc", -1, 1], ErrorCode.BOUNDS, "start_index"),
    ("str.Substring", ["abc", 0, -1], ErrorCode.BOUNDS, "length"),
    ("str.Substring", ["abc", 1.5, 1], ErrorCode.ARG_MISMATCH, "start_index"),
    ("str.Length", [5], ErrorCode.ARG_MISMATCH, "input_string"),
    ("str.Length", [], ErrorCode.ARG_MISMATCH, "input_string"),
    ("str.Split", ["a,b"], ErrorCode.ARG_MISMATCH, "delimiter"),
    ("str.Join", ["not a list", ","], ErrorCode.ARG_MISMATCH, "string_list"),
    ("str.Replace", ["a", "a", "b", -2], ErrorCode.ARG_MISMATCH, "count"),
    ("str.ToUpper", [None], ErrorCode.ARG_MISMATCH, "input_string"),
])
def test_bad_input(fails: Any, name: str, args: list[Any], code: int, arg: str) -> None:
    err = fails(name, *args)
    assert err.code == code
    assert f"tool.{name}" in err.message and f"'{arg}'" in err.message


def test_too_many_arguments(fails: Any) -> None:
    err = fails("str.ToUpper", "a", "b")
    assert err.code == ErrorCode.ARG_MISMATCH and "at most 1" in err.message


# ----------------------------------------------------------------------------------------------
# Format


def test_format_fills_placeholders(call: Any) -> None:
    assert call("str.Format", "Hello {{name}}, {{ age }}!", {"name": "Ada", "age": 36}) == "Hello Ada, 36!"
    assert call("str.Format", "{{a}}{{a}}", {"a": [1, "x", None]}) == "[1, x, nil][1, x, nil]"
    assert call("str.Format", "nil is {{v}}", {"v": None}) == "nil is nil"
    assert call("str.Format", "{{user.name}}", {"user": {"name": "Bo"}}) == "Bo"
    assert call("str.Format", "{{a.b}}", {"a.b": 1, "a": {"b": 2}}) == "1"
    assert call("str.Format", "no placeholders { } {x}") == "no placeholders { } {x}"
    assert call("str.Format", "{{x}}", values={"x": 1.5}) == "1.5"


def test_format_unknown_placeholder_is_a_clear_error(fails: Any) -> None:
    err = fails("str.Format", "Hi {{name}} {{missing}}", {"name": "x"})
    assert err.code == ErrorCode.KEY_NOT_FOUND
    assert "{{missing}}" in err.message and "keys: name" in err.message and "tool.str.Format" in err.message
    assert fails("str.Format", "{{ }}", {}).code == ErrorCode.ARG_MISMATCH
    assert fails("str.Format", "x", "not a map").code == ErrorCode.ARG_MISMATCH


# ----------------------------------------------------------------------------------------------
# Regular expressions


def test_regex_tools(call: Any) -> None:
    assert call("str.Match", "abc123", "[0-9]+") is True
    assert call("str.Match", "abc", "^[0-9]+$") is False
    assert call("str.Match", "héllo", "^h.llo$") is True
    assert call("str.FindAll", "a1 b22 c333", "[0-9]+") == ["1", "22", "333"]
    assert call("str.FindAll", "a1 b22 c333", "([a-z])([0-9]+)") == ["a1", "b22", "c333"]
    assert call("str.FindAll", "a1 b22 c333", "[0-9]+", 2) == ["1", "22"]
    assert call("str.FindAll", "abc", "[0-9]") == []
    assert call("str.ReplaceRegex", "2024-01-31", r"(\d+)-(\d+)-(\d+)", r"\3.\2.\1") == "31.01.2024"
    assert call("str.ReplaceRegex", "a1b2c3", "[0-9]", "#", 2) == "a#b#c3"
    assert call("str.ReplaceRegex", "x", "(?P<w>x)", r"<\g<w>>") == "<x>"


@pytest.mark.parametrize("name,args,arg", [
    ("str.Match", ["abc", "(unclosed"], "pattern"),
    ("str.FindAll", ["abc", "[z-a]"], "pattern"),
    ("str.ReplaceRegex", ["abc", "*", "x"], "pattern"),
    ("str.ReplaceRegex", ["abc", "(b)", r"\2"], "replacement"),
    ("str.FindAll", ["abc", "b", -5], "limit"),
])
def test_regex_errors(fails: Any, name: str, args: list[Any], arg: str) -> None:
    err = fails(name, *args)
    assert err.code == ErrorCode.ARG_MISMATCH
    assert f"'{arg}'" in err.message and f"tool.{name}" in err.message


def test_regex_pattern_length_limit(fails: Any) -> None:
    err = fails("str.Match", "abc", "a" * (strings.MAX_PATTERN_CHARS + 1))
    assert err.code == ErrorCode.ARG_MISMATCH and "limit" in err.message


def test_invalid_pattern_message_gives_position(fails: Any) -> None:
    err = fails("str.Match", "abc", "ab(c")
    assert "position" in err.message
