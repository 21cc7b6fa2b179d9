"""The ``json``, ``time`` and ``io`` tools."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from nslang.errors import ErrorCode, ResourceLimitError
from nslang.tools.builtin import time_
from nslang.values import ErrorValue, Fuzzy, ProcedureRef, display

UTC = dt.timezone.utc

# ----------------------------------------------------------------------------------------------
# json


@pytest.mark.parametrize("text,expected", [
    ('{"a": 1, "b": [true, null, 2.5, "x"]}', {"a": 1, "b": [True, None, 2.5, "x"]}),
    ("[]", []),
    ('"héllo"', "héllo"),
    ("12345678901234567890", 12345678901234567890),
    ("null", None),
    ('{"a": 1, "a": 2}', {"a": 2}),
])
def test_json_parse(call: Any, text: str, expected: Any) -> None:
    result = call("json.Parse", text)
    assert result == expected and type(result) is type(expected)


def test_json_parse_keeps_key_order(call: Any) -> None:
    assert list(call("json.Parse", '{"z": 1, "a": 2, "m": 3}')) == ["z", "a", "m"]


@pytest.mark.parametrize("text,where", [
    ('{"a": 1,}', "line 1 column 9"),
    ('{\n  "a": [1, 2\n}', "line 3 column 1"),
    ("", "line 1 column 1"),
    ("NaN", None),
    ("[Infinity]", None),
])
def test_json_parse_errors(fails: Any, text: str, where: str | None) -> None:
    err = fails("json.Parse", text)
    assert err.code == ErrorCode.ARG_MISMATCH
    assert "not valid JSON" in err.message and "'json_string'" in err.message
    if where:
        assert where in err.message


def test_json_parse_deep_nesting_is_an_error_not_a_crash(fails: Any) -> None:
    err = fails("json.Parse", "[" * 100_000 + "]" * 100_000)
    assert err.code == ErrorCode.ARG_MISMATCH


def test_json_stringify(call: Any) -> None:
    v = {"b": [1, 2.5, True, None, "é"], "a": {"x": "y"}}
    assert call("json.Stringify", v) == '{"b":[1,2.5,true,null,"é"],"a":{"x":"y"}}'
    pretty = call("json.Stringify", v, True)
    assert pretty.startswith('{\n  "b": [\n    1,') and json.loads(pretty) == v
    assert call("json.Stringify") == "null"
    assert call("json.Stringify", "x") == '"x"'
    t = dt.datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    assert call("json.Stringify", {"t": t, "f": Fuzzy(0.25)}) == '{"t":"2024-05-01T12:30:00Z","f":0.25}'
    assert call("json.Stringify", ErrorValue({"code": 1, "message": "m"})) == '{"code":1,"message":"m"}'


def test_json_round_trip(call: Any) -> None:
    v = {"list": [1, [2, {"deep": None}]], "s": 'quote " and \\ backslash', "n": -0.5}
    assert call("json.Parse", call("json.Stringify", v)) == v


@pytest.mark.parametrize("value,what", [
    (float("nan"), "nan"),
    ({"x": [1, float("inf")]}, 'value["x"][1]'),
    ([ProcedureRef("main")], "function"),
    (b"bytes", "bytes"),
])
def test_json_stringify_errors(fails: Any, value: Any, what: str) -> None:
    err = fails("json.Stringify", value)
    assert err.code == ErrorCode.ARG_MISMATCH and "'value'" in err.message and what in err.message


def test_json_stringify_cycle_is_an_error(fails: Any) -> None:
    a: list[Any] = [1]
    a.append(a)
    err = fails("json.Stringify", a)
    assert err.code == ErrorCode.ARG_MISMATCH and "cycle" in err.message


def test_json_stringify_shared_but_acyclic_is_fine(call: Any) -> None:
    shared = [1]
    assert call("json.Stringify", [shared, shared]) == "[[1],[1]]"


# ----------------------------------------------------------------------------------------------
# time


def test_now_is_utc_and_injectable(call: Any, interp: Any) -> None:
    t = call("time.Now")
    assert isinstance(t, dt.datetime) and t.utcoffset() == dt.timedelta(0)
    assert abs((dt.datetime.now(UTC) - t).total_seconds()) < 5
    fixed = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    interp.clock = lambda: fixed
    assert call("Time.Now") == fixed
    assert call("time.Since", "2030-01-02T03:04:00Z") == 5.0


def test_format_and_parse(call: Any) -> None:
    t = dt.datetime(2024, 5, 1, 12, 30, 0, tzinfo=UTC)
    assert call("time.Format", t) == "2024-05-01T12:30:00Z"
    assert call("time.Format", t, "%Y-%m-%d %H:%M") == "2024-05-01 12:30"
    assert call("time.Format", "2024-05-01T12:30:00Z", "%d/%m") == "01/05"
    assert call("time.Parse", "2024-05-01T12:30:00Z") == t
    assert call("time.Parse", "2024-05-01T14:30:00+02:00") == t
    assert call("time.Parse", "2024-05-01") == dt.datetime(2024, 5, 1, tzinfo=UTC)
    assert call("time.Parse", "01/05/2024 12:30", "%d/%m/%Y %H:%M") == t
    assert display(call("time.Parse", "2024-05-01T12:30:00.5Z")) == "2024-05-01T12:30:00.500000Z"
    assert call("time.Parse", "2024-05-01T12:30:00.123456789z").microsecond == 123456


def test_diff_and_add(call: Any) -> None:
    a = dt.datetime(2024, 1, 1, tzinfo=UTC)
    b = dt.datetime(2024, 1, 2, 0, 0, 1, tzinfo=UTC)
    assert call("time.Diff", a, b) == 86401.0
    assert call("time.Diff", b, a) == -86401.0
    assert call("time.Add", a, 86401) == b
    assert call("time.Add", b, -0.5) == dt.datetime(2024, 1, 2, 0, 0, 0, 500000, tzinfo=UTC)


@pytest.mark.parametrize("name,args,arg", [
    ("time.Parse", ["yesterday"], "text"),
    ("time.Parse", ["2024-05-01", "%d/%m/%Y"], "text"),
    ("time.Format", ["not a time"], "time"),
    ("time.Format", [5], "time"),
    ("time.Diff", ["2024-01-01T00:00:00Z"], "end"),
    ("time.Add", ["9999-12-31T23:59:59Z", 10], "seconds"),
    ("time.Sleep", [-1], "duration_seconds"),
    ("time.Sleep", [61], "duration_seconds"),
    ("time.Sleep", [float("nan")], "duration_seconds"),
    ("time.Sleep", ["soon"], "duration_seconds"),
    ("time.Sleep", [], "duration_seconds"),
])
def test_time_bad_input(fails: Any, name: str, args: list[Any], arg: str) -> None:
    err = fails(name, *args)
    assert err.code == ErrorCode.ARG_MISMATCH
    assert f"tool.{name}" in err.message and f"'{arg}'" in err.message


def test_sleep_uses_the_interpreter_sleep_and_checks_the_deadline(call: Any, interp: Any) -> None:
    slept: list[float] = []
    interp.sleep = slept.append
    assert call("time.Sleep", 0.2) is True
    assert sum(slept) == pytest.approx(0.2)
    assert max(slept) <= time_.SLEEP_SLICE_S
    assert interp.deadline_checks >= len(slept)


def test_sleep_zero_and_real_sleep(call: Any) -> None:
    assert call("time.Sleep", 0) is True
    assert call("Time.Sleep", 0.01) is True


def test_sleep_stops_at_the_deadline(fails: Any, interp: Any) -> None:
    slept: list[float] = []
    interp.sleep = slept.append
    interp.deadline_after = 3
    err = fails("time.Sleep", 30)
    assert isinstance(err, ResourceLimitError) and err.code == ErrorCode.TIMEOUT
    assert sum(slept) < 1


# ----------------------------------------------------------------------------------------------
# io


def test_print_prints_every_argument(call: Any, interp: Any) -> None:
    assert call("io.Print", "total:", 42, 2.5, True, [1, "x"], {"k": "v"}) is None
    call("Print")
    call("Print", "one")
    assert interp.stdout.getvalue() == 'total: 42 2.5 true [1, x] {"k": v}\n\none\n'


def test_print_of_a_single_list_prints_its_elements(call: Any, interp: Any) -> None:
    call("Print", ["a", 1, [2]])
    call("Print", [])
    assert interp.stdout.getvalue() == "a 1 [2]\n\n"


def test_input_reads_lines_then_nil(make_call: Any) -> None:
    it, call = make_call("first line\r\nsecond\nlast without newline")
    assert call("io.Input", "Name? ") == "first line"
    assert call("Input") == "second"
    assert call("io.Input", message="> ") == "last without newline"
    assert call("io.Input") is None
    assert it.stdout.getvalue() == "Name? > "


def test_input_empty_line_is_empty_string(make_call: Any) -> None:
    _it, call = make_call("\n")
    assert call("io.Input") == ""
    assert call("io.Input") is None


def test_input_bad_prompt(fails: Any) -> None:
    err = fails("io.Input", 5)
    assert err.code == ErrorCode.ARG_MISMATCH and "'message'" in err.message
