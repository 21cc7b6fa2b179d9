"""The embedding API: Interpreter, load/run/call, globals, host tools, value conversion, limits, stdlib."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nslang import (
    ErrorCode,
    Interpreter,
    NSRuntimeError,
    NSSyntaxError,
    NSValidationError,
    ResourceLimitError,
    ToolError,
    UsageError,
    tool,
)

ROOT = Path(__file__).resolve().parents[1]


def make(tmp_path: Path, **kw: object) -> tuple[Interpreter, io.StringIO]:
    out = io.StringIO()
    return Interpreter(sandbox_dir=tmp_path, stdout=out, **kw), out  # type: ignore[arg-type]


def test_embed_example_runs() -> None:
    import os

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, str(ROOT / "examples" / "embed.py")], capture_output=True, text=True,
                         cwd=ROOT, timeout=60, env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        "4 x apple = 2",
        "1 x cheese = 4",
        "total 6 USD",
        "script error 21: tool.shop.Price failed: unknown item 'caviar'",
    ]


def test_load_text_and_path_then_call(tmp_path: Path) -> None:
    interp, out = make(tmp_path)
    res = interp.load("func add(needs a, b returns c) means\n  return a + b\nendfunc\n")
    assert res.functions_loaded == 1
    path = tmp_path / "lib.ns"
    path.write_text(":: title: lib\nfunc twice(needs x returns y) means\n  return add(x, x)\nendfunc\n")
    res2 = interp.load(path)
    assert res2.metadata == {"title": "lib"}
    assert interp.call("twice", 21) == 42
    assert interp.call("add", "a", "b") == "ab"


def test_values_round_trip(tmp_path: Path) -> None:
    interp, _ = make(tmp_path)
    interp.load("func same(needs v returns v2) means\n  return v\nendfunc\n")
    for value in [None, True, 0, -3, 2.5, "text", [1, [2, "x"], None], {"a": {"b": [1, 2]}, "c": None}]:
        assert interp.call("same", value) == value
    assert interp.call("same", (1, 2)) == [1, 2]
    with pytest.raises(TypeError):
        interp.call("same", object())


def test_globals_are_visible_to_procedures_and_read_only(tmp_path: Path) -> None:
    interp, out = make(tmp_path)
    interp.set_global("greeting", "hi")
    interp.load("func g(returns r) means\n  set greeting = \"local\"\n  return greeting\nendfunc\n"
                "func h(returns r) means\n  return greeting\nendfunc\n")
    assert interp.call("g") == "local"
    assert interp.call("h") == "hi"  # the procedure's write stayed local
    assert interp.get_global("greeting") == "hi"
    with pytest.raises(UsageError):
        interp.set_global("not a name", 1)


def test_host_tool_with_named_arguments_and_bad_arguments(tmp_path: Path) -> None:
    interp, out = make(tmp_path)

    @interp.tool("text")
    def shout(text: str, times: int = 1) -> str:
        """Upper-case text.

        Args:
            text: what to shout.
            times: how many exclamation marks.
        """
        return text.upper() + "!" * times

    spec = interp.tools.lookup("text.Shout").spec  # type: ignore[union-attr]
    assert [a.name for a in spec.args] == ["text", "times"]
    assert spec.args[1].required is False and spec.args[1].type == "int"
    assert spec.description == "Upper-case text."
    interp.load('command\n  emit tool.text.Shout("hey", times: 3)\n  emit tool.TEXT.shout(text: "a")\nendcommand\n')
    interp.run()
    assert out.getvalue() == "HEY!!!\nA!\n"
    interp.load('command\n  emit tool.text.Shout("hey", loud: true)\nendcommand\n')
    with pytest.raises(ToolError) as e:
        interp.run()
    assert e.value.code == ErrorCode.ARG_MISMATCH and "tool.text.Shout" in e.value.message and "loud" in e.value.message
    interp.load('command\n  emit tool.text.Shout(5)\nendcommand\n')
    with pytest.raises(ToolError) as e:
        interp.run()
    assert "argument 'text' must be a string" in e.value.message


def test_decorated_function_registered_later(tmp_path: Path) -> None:
    @tool("calc", "Square")
    def square(x: float) -> float:
        """Square a number."""
        return x * x

    interp, out = make(tmp_path)
    interp.register_tool(square)
    with pytest.raises(UsageError):
        interp.register_tool(square)
    interp.load("command\n  emit tool.calc.Square(4)\nendcommand\n")
    interp.run()
    assert out.getvalue() == "16\n"
    assert square(3) == 9  # still a plain Python function


def test_interpreters_are_independent(tmp_path: Path) -> None:
    a, out_a = make(tmp_path / "a")
    b, out_b = make(tmp_path / "b")
    a.load("func f(returns r) means\n  return 1\nendfunc\n")
    b.load("func f(returns r) means\n  return 2\nendfunc\n")
    a.set_global("x", "A")
    assert (a.call("f"), b.call("f")) == (1, 2)
    assert b.get_global("x") is None
    assert a.sandbox_dir != b.sandbox_dir


def test_errors_reach_the_host_with_code_span_and_stack(tmp_path: Path) -> None:
    interp, _ = make(tmp_path)
    interp.load("func inner() means\n  emit nope\nendfunc\nfunc outer() means\n  call inner()\nendfunc\n",
                name="demo.ns")
    with pytest.raises(NSRuntimeError) as e:
        interp.call("outer")
    err = e.value
    assert err.code == ErrorCode.KEY_NOT_FOUND
    assert err.span is not None and (err.span.source, err.span.line, err.span.column) == ("demo.ns", 2, 8)
    assert [f.procedure for f in err.stack] == ["inner", "outer"]
    text = err.render()
    assert "demo.ns:2:8" in text and "emit nope" in text and "^^^^" in text


def test_load_is_atomic(tmp_path: Path) -> None:
    interp, _ = make(tmp_path)
    interp.load("func a() means\n  emit 1\nendfunc\n")
    with pytest.raises(NSValidationError) as e:
        interp.load("func b() means\n  emit 2\nendfunc\nfunc a() means\n  emit 3\nendfunc\n")
    assert e.value.code == ErrorCode.DUPLICATE
    assert sorted(interp.procedures) == ["a"]  # b was not loaded either
    with pytest.raises(NSSyntaxError):
        interp.load("func c() means\n  emit\nendfunc\n")
    assert sorted(interp.procedures) == ["a"]


def test_nothing_to_run_is_a_usage_error(tmp_path: Path) -> None:
    interp, _ = make(tmp_path)
    interp.load("func helper() means\n  emit 1\nendfunc\n")
    with pytest.raises(UsageError):
        interp.run()


def test_timeout_ends_the_run_and_on_error_cannot_swallow_it(tmp_path: Path) -> None:
    interp, _ = make(tmp_path, timeout_s=0.3, max_loop_iterations=0)
    interp.load("func spin() means\n  on error do\n    clear_error\n  endon\n  while true\n    set x = 1\n"
                "  endwhile\nendfunc\n", )
    t0 = time.monotonic()
    with pytest.raises(ResourceLimitError) as e:
        interp.call("spin")
    assert e.value.code == ErrorCode.TIMEOUT
    assert time.monotonic() - t0 < 5


def test_max_steps_counts_loops_and_calls(tmp_path: Path) -> None:
    interp, _ = make(tmp_path, max_steps=500)
    interp.load("func r(needs n returns m) means\n  if n == 0\n    return 0\n  endif\n  return r(n - 1)\nendfunc\n"
                "func loop() means\n  for each x in [1,2,3,4,5,6,7,8,9,10]\n    set y = x\n  endfor\nendfunc\n")
    assert interp.call("r", 100) == 0
    interp.call("loop")
    with pytest.raises(ResourceLimitError) as e:
        interp.call("r", 1000)
    assert e.value.code == ErrorCode.RESOURCE_EXHAUSTION


def test_timeout_leaves_no_half_written_file(tmp_path: Path) -> None:
    interp, _ = make(tmp_path, timeout_s=0.5)
    (tmp_path / "data.txt").write_text("original")
    interp.load('func main() means\n  set big = ""\n  set i = 0\n  while true\n'
                '    call tool.fs.Write("data.txt", "version " + i)\n    set i = i + 1\n  endwhile\nendfunc\n')
    with pytest.raises(ResourceLimitError):
        interp.run()
    text = (tmp_path / "data.txt").read_text()
    assert text == "original" or text.startswith("version ")
    assert [p.name for p in tmp_path.iterdir() if p.name != "data.txt"] == []  # no temp files left


def test_stdlib_procedures_are_loaded_on_first_use(tmp_path: Path) -> None:
    interp, out = make(tmp_path)
    interp.load("func double(needs x returns y) means\n  return x * 2\nendfunc\n"
                "func str_reverse(needs s returns r) means\n  return \"mine\"\nendfunc\n")
    assert interp.call("list_map", [1, 2, 3], "double") == [2, 4, 6]
    assert interp.call("str_repeat", "1", 3) == "111"
    assert interp.call("str_pad_left", 7, 3, "0") == "007"
    assert interp.call("str_reverse", "abc") == "mine"  # the script's own procedure wins
    assert interp.call("list_sum", [1, 2, 3.5]) == 6.5
    assert interp.call("list_filter", [1, 2, 3, 4], "is_even_never_defined") if False else True
    no_std, _ = make(tmp_path, load_stdlib=False)
    with pytest.raises(NSRuntimeError) as e:
        no_std.call("list_sum", [1])
    assert e.value.code == ErrorCode.PROC_NOT_FOUND


def test_stdlib_retry_tool(tmp_path: Path) -> None:
    interp, out = make(tmp_path)
    calls = {"n": 0}

    @interp.tool("flaky")
    def sometimes() -> str:
        """Fails twice, then works."""
        calls["n"] += 1
        if calls["n"] < 3:
            raise RuntimeError(f"attempt {calls['n']} failed")
        return "ok"

    assert interp.call("retry_tool", "flaky.Sometimes", [], 5, 0.01) == "ok"
    assert calls["n"] == 3
    calls["n"] = -10
    with pytest.raises(NSRuntimeError) as e:
        interp.call("retry_tool", "flaky.Sometimes", [], 2, 0.01)
    assert "failed after 2 attempts" in e.value.message and "attempt" in e.value.message


def test_events_from_the_host(tmp_path: Path) -> None:
    interp, out = make(tmp_path)
    interp.load('on event "order" as ev do\n  emit "got " + ev["payload"]["id"]\nendon\n')
    assert interp.emit_event("order", {"id": 7}) == 1
    assert interp.emit_event("other") == 0
    assert out.getvalue() == "got 7\n"
