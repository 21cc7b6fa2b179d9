"""The one back end (issue 16 items 1-2): generated code keeps every language rule where it takes its
shortcuts: locals that fall back to the globals, kinds inferred through loops, parameters checked
once on entry, direct calls after a redefinition, ``on error`` around statements and loop heads."""

from __future__ import annotations

import io
import sys

import pytest

from nslang import Interpreter
from nslang import values as V
from nslang.errors import NSRuntimeError


def _run(src: str, *args: object, target: str = "main", **kw: object) -> tuple[object, str]:
    out = io.StringIO()
    it = Interpreter(stdout=out, stderr=io.StringIO(), load_stdlib=False, **kw)  # type: ignore[arg-type]
    it.load(src, name="c.ns")
    return it.call(target, *args), out.getvalue()


def _fails(src: str, *args: object, **kw: object) -> NSRuntimeError:
    with pytest.raises(NSRuntimeError) as e:
        _run(src, *args, **kw)
    return e.value


# ---- variables are locals; an unassigned one reads the globals (spec §4.7) -------------------------


def test_a_variable_assigned_on_one_branch_reads_the_global_on_the_other() -> None:
    src = ('func p(needs flag) means\n  if flag\n    set g = "local"\n  endif\n  emit g\nendfunc\n'
           "func main() means\n  call p(true)\n  call p(false)\nendfunc\n")
    out = io.StringIO()
    it = Interpreter(stdout=out, load_stdlib=False)
    it.load(src)
    it.set_global("g", "global")
    it.call("main")
    assert out.getvalue() == "local\nglobal\n"


def test_a_loop_variable_after_a_loop_that_did_not_run_reads_the_global() -> None:
    src = ("func main() means\n  for each v in []\n    set w = 1\n  endfor\n  emit typeof v\n  emit typeof w\n"
           "  set n = 0\n  while n < 0\n    set u = 1\n  endwhile\n  emit typeof u\nendfunc\n")
    _, out = _run(src)
    assert out == "nil\nnil\nnil\n"


def test_interpolation_and_eval_see_locals_and_last() -> None:
    src = ('func main() means\n  set name = "ana"\n  set n = 3\n  emit eval("{{name}}:{{n}}")\n'
           '  set r = ```x={{name}} last={{last}} none={{nope}}```\nendfunc\n')
    e = _fails(src)
    assert "nope" in e.message
    src = src.replace(" none={{nope}}", "") + ""
    src = src.replace("endfunc", "  emit r\nendfunc")
    _, out = _run(src)
    assert out == "ana:3\nx=ana last=ana:3\n"  # emit sets last too


# ---- kinds: inferred ints and strings keep the slow rules where the kind changes ----------------------


def test_a_variable_that_becomes_a_string_in_a_loop_is_not_an_int() -> None:
    src = ('func main() means\n  set x = 0\n  set n = 0\n  while n < 3\n    set x = x + 1\n    if n == 1\n'
           '      set x = "s"\n    endif\n    set n = n + 1\n  endwhile\n  return x\nendfunc\n')
    assert _run(src)[0] == "s1"


def test_concatenations_that_read_as_numbers_still_add() -> None:
    src = ('func main() means\n  set a = "1" + "e5"\n  set b = "na" + "n"\n  set c = "x" + "y"\n'
           "  return [a + 1, c + 1, typeof (b + 1)]\nendfunc\n")
    got = _run(src)[0]
    assert got == [V.add(V.add("1", "e5"), 1), "xy1", V.type_name(V.add("nan", 1))]
    assert got[0] == 100001


def test_string_equality_keeps_numeric_readings() -> None:
    src = ('func eq(needs a, b) means\n  set n = 0\n  for each c in a\n    if c == b\n      set n = n + 1\n'
           "    endif\n  endfor\n  return n\nendfunc\n")
    assert _run(src, "1a1", "1", target="eq")[0] == 2
    assert _run(src, "1a1", "1.0", target="eq")[0] == 2  # "1" == "1.0" numerically
    assert _run(src, ["1", 1.0, "x"], 1, target="eq")[0] == 2


@pytest.mark.parametrize(("arg", "want"), [(10, 55), ("10", 55), (10.0, 55), (True, 1)])
def test_a_procedure_checked_for_int_parameters_runs_on_other_kinds(arg: object, want: object) -> None:
    src = ("func fib(needs n returns r) means\n  if n < 2\n    return n\n  endif\n"
           "  return fib(n - 1) + fib(n - 2)\nendfunc\n")
    got = _run(src, arg, target="fib")[0]
    assert got == want


def test_int_overflow_is_still_checked_on_inferred_ints() -> None:
    src = ("func main() means\n  set x = 10\n  set i = 0\n  while i < 20\n    set x = x * x\n    set i = i + 1\n"
           "  endwhile\nendfunc\n")
    assert _fails(src).code == 37


# ---- calls -------------------------------------------------------------------------------------------


def test_redefining_a_procedure_reaches_callers_compiled_before() -> None:
    out = io.StringIO()
    it = Interpreter(stdout=out, load_stdlib=False)
    it.load("func g(needs x) means\n  return x + 1\nendfunc\nfunc f() means\n  return g(1)\nendfunc\n", name="a.ns")
    assert it.call("f") == 2
    it.load("func g(needs x, y) means\n  return x + y\nendfunc\n", name="a.ns", replace=True)
    with pytest.raises(NSRuntimeError) as e:
        it.call("f")
    assert e.value.code == 2 and "takes 2 arguments" in e.value.message
    it.load("func g(needs x) means\n  return x * 10\nendfunc\n", name="a.ns", replace=True)
    assert it.call("f") == 10


def test_a_procedure_defined_after_its_caller_was_compiled() -> None:
    it = Interpreter(stdout=io.StringIO(), load_stdlib=False)
    it.load("func f() means\n  return later(2)\nendfunc\n")
    with pytest.raises(NSRuntimeError) as e:
        it.call("f")
    assert e.value.code == 2 and [f.procedure for f in e.value.stack] == ["f"]
    it.load("func later(needs x) means\n  return x * 3\nendfunc\n")
    assert it.call("f") == 6


def test_calls_through_a_tool_count_the_depth() -> None:
    src = ('func down(needs n) means\n  if n == 0\n    return 0\n  endif\n'
           '  return 1 + tool.script.Call("down", [n - 1])\nendfunc\n')
    assert _run(src, 50, target="down", max_call_depth=200)[0] == 50
    e = _fails(src, 50, target="down", max_call_depth=20)
    assert e.code == 37 and "call depth limit of 20" in e.message


def test_deep_direct_recursion_keeps_the_recursion_limit() -> None:
    src = "func r(needs n) means\n  if n == 0\n    return 0\n  endif\n  return 1 + r(n - 1)\nendfunc\n"
    before = sys.getrecursionlimit()
    assert _run(src, 20_000, target="r", max_call_depth=30_000)[0] == 20_000
    assert sys.getrecursionlimit() == before


def test_multi_value_returns_are_counted() -> None:
    src = "func two(returns a, b) means\n  return 1\nendfunc\nfunc main() means\n  set x, y = two()\nendfunc\n"
    e = _fails(src)
    assert e.code == 2 and "declares 2 return values" in e.message
    ok = ("func two(returns a, b) means\n  return 1, 2\nendfunc\n"
          "func main() means\n  set x, y = two()\n  return x + y\nendfunc\n")
    assert _run(ok)[0] == 3


# ---- on error around statements and loop heads (spec §5.3) ------------------------------------------


def test_a_handler_clears_inside_a_loop_and_the_loop_goes_on() -> None:
    src = ('func main() means\n  on error do\n    set errors = errors + 1\n    clear_error\n  endon\n'
           '  set errors = 0\n  set out = []\n  for each x in [1, 0, 2]\n    set out[len(out)] = 10 / x\n'
           "  endfor\n  return [errors, out]\nendfunc\n")
    assert _run(src)[0] == [1, [10, 5]]


def test_a_failing_loop_head_skips_the_loop() -> None:
    src = ('func main() means\n  on error do\n    emit "caught " + system_error_code\n    clear_error\n  endon\n'
           '  for each x in 5\n    emit "no"\n  endfor\n  set n = 0\n  while n < "a"\n    emit "no"\n  endwhile\n'
           '  if nope\n    emit "no"\n  else\n    emit "no"\n  endif\n  emit "end"\nendfunc\n')
    _, out = _run(src)
    assert out.splitlines()[-1] == "end" and "no" not in out and out.count("caught") == 3


def test_the_loop_limit_inside_a_handled_body_is_catchable_and_exact() -> None:
    src = ('func main() means\n  on error do\n    emit "limit " + system_error_code\n    clear_error\n  endon\n'
           "  set n = 0\n  while true\n    set n = n + 1\n  endwhile\n  return n\nendfunc\n")
    assert _run(src, max_loop_iterations=5) == (5, "limit 37\n")
    exact = "func main() means\n  set n = 0\n  while n < 5\n    set n = n + 1\n  endwhile\n  return n\nendfunc\n"
    assert _run(exact, max_loop_iterations=5)[0] == 5
    assert _fails(exact.replace("n < 5", "n < 6"), max_loop_iterations=5).code == 37


def test_an_error_is_handled_once_per_call_and_again_by_the_caller() -> None:
    src = ('func inner(needs n) means\n  on error do\n    emit "inner " + n\n  endon\n  fail "boom"\nendfunc\n'
           'func main() means\n  on error do\n    emit "outer"\n    clear_error\n  endon\n  call inner(1)\n'
           '  emit "after"\nendfunc\n')
    _, out = _run(src)
    assert out == "inner 1\nouter\nafter\n"


def test_control_flow_in_handlers_is_refused() -> None:
    ret = 'func main() means\n  on error do\n    return 1\n  endon\n  fail "x"\nendfunc\n'
    assert _fails(ret).code == 12
    brk = 'func main() means\n  on error do\n    break\n  endon\n  while true\n    fail "x"\n  endwhile\nendfunc\n'
    e = _fails(brk)
    assert "'break' outside a loop" in e.message


def test_a_handler_sees_and_changes_the_procedures_variables() -> None:
    src = ('func main(needs x) means\n  on error do\n    set x = x * 2\n    set seen = system_error_message\n'
           '    clear_error\n  endon\n  fail "bad " + x\n  return [x, seen]\nendfunc\n')
    assert _run(src, 4)[0] == [8, "bad 4"]


# ---- limits of the generated code ------------------------------------------------------------------


def test_blocks_nested_beyond_pythons_compiler_are_error_38() -> None:
    depth = 120
    src = "func main() means\n" + "if true\n" * depth + "emit 1\n" + "endif\n" * depth + "endfunc\n"
    e = _fails(src)
    assert e.code == 38 and "too deeply to compile" in e.message
    ok = "func main() means\n" + "if true\n" * 40 + "emit 1\n" + "endif\n" * 40 + "endfunc\n"
    assert _run(ok)[1] == "1\n"


def test_generated_code_sees_no_python_names() -> None:
    """Script names never reach Python's namespace: ``len``, ``type``, ``rt`` are plain variables."""
    src = ('func main(needs type) means\n  set rt = 1\n  set U = "u"\n  set K = [type, rt, U]\n'
           "  set __import__ = 2\n  return K\nendfunc\n")
    assert _run(src, "t")[0] == ["t", 1, "u"]


def test_a_self_recursive_call_is_an_int_only_when_every_return_is() -> None:
    mixed = ('func f(needs n) means\n  if n < 1\n    return "s"\n  endif\n  return f(n - 1) + 1\nendfunc\n')
    assert _run(mixed, 3, target="f")[0] == "s111"
    ints = "func f(needs n) means\n  if n < 1\n    return 0\n  endif\n  return f(n - 1) + n\nendfunc\n"
    assert _run(ints, 4, target="f")[0] == 10
    assert _run(ints, "4", target="f")[0] == 10  # the unchecked copy: "4" - 1 is 3, then ints


def test_a_joined_chain_keeps_the_value_size_limit_and_display_rules() -> None:
    grow = ('func main() means\n  set s = "x"\n  set n = 0\n  while n < 100\n    set s = s + "ab" + s + "c" + n\n'
            "    set n = n + 1\n  endwhile\nendfunc\n")
    e = _fails(grow, max_value_bytes=4096)
    assert e.code == 37 and e.span is not None and e.span.line == 5
    shown = ('func main() means\n  set l = [1, "a"]\n  return "l=" + l + ";" + nil + "|" + 1.5 + "|" + true + '
             '"|" + {"k": 2}\nendfunc\n')
    assert _run(shown)[0] == "l=" + V.display([1, "a"]) + ";|1.5|true|" + V.display({"k": 2})


def test_deadlines_reach_code_compiled_without_limits() -> None:
    """Code compiled when no limit was in force still stops at a deadline set later: a run's
    ``timeout_s`` set after the first call, and a tool call's own deadline (``narrowed_deadline``)."""
    import time

    src = ("func spin(needs n) means\n  set i = 0\n  while i < n\n    set k = 0\n    while k < 1000\n"
           "      set k = k + 1\n    endwhile\n    set i = i + 1\n  endwhile\n  return i\nendfunc\n")
    it = Interpreter(stdout=io.StringIO(), load_stdlib=False, max_loop_iterations=0)
    it.load(src)
    assert it.call("spin", 2) == 2  # compiled with no limit in force
    it.limits.timeout_s = 0.2
    with pytest.raises(NSRuntimeError) as e:
        it.call("spin", 10**9)
    assert e.value.code == 31
    it.limits.timeout_s = None
    with it.narrowed_deadline(time.monotonic() + 0.2), pytest.raises(NSRuntimeError) as e:
        it.call("spin", 10**9)
    assert e.value.code == 31
    assert it.call("spin", 3) == 3  # and no deadline once it is over
