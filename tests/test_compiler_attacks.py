"""Attacks on the generated code (issue 16): inputs where the Python the compiler writes out differed
from the language rules or from the closure compiler it replaced (differential fuzzing, by hand). Each
test replays one defect."""

from __future__ import annotations

import io
import warnings

import pytest

from nslang import Interpreter
from nslang.errors import NSRuntimeError
from tests.test_compiler import _fails, _run

# ---- the returns clause ------------------------------------------------------------------------------


def test_a_bare_return_is_counted_against_the_returns_clause() -> None:
    e = _fails("func main(returns r1, r2) means\n  return\nendfunc\n")
    assert e.code == 2 and "returned 1 value" in e.message


def test_the_returns_count_is_not_handled_by_the_procedures_own_handler() -> None:
    src = ('func main(returns r1, r2) means\n  on error do\n    emit "handler"\n    clear_error\n  endon\n'
           "  return 1\nendfunc\n")
    with pytest.raises(NSRuntimeError) as e:
        _run(src)
    assert e.value.code == 2
    src_ok = ('func main(returns r1, r2) means\n  on error do\n    emit "handler"\n    clear_error\n  endon\n'
              '  return 1, fail_here()\n  return 3, 4\nendfunc\n')
    assert _run(src_ok) == ([3, 4], "handler\n")  # an error in a returned value still runs the handler


# ---- expressions used in place are evaluated once -------------------------------------------------


def test_last_after_set_is_the_value_assigned_not_a_second_evaluation() -> None:
    src = ("func main() means\n  set i = 0\n  while i < 2\n    set i = i + 1\n    emit last\n  endwhile\n"
           "  set i = i - 1\n  return last\nendfunc\n")
    assert _run(src) == (1, "1\n2\n")


@pytest.mark.parametrize("expr", ["(1 + 2)[0]", "-1[0]", "(1 < 2)[0]"])
def test_indexing_a_constant_expression_is_a_type_error_without_a_python_warning(expr: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Python's compiler warns about ``(1 + 2)[0]`` in source
        e = _fails(f"func main() means\n  set x = {expr}\nendfunc\n")
    assert e.code == 7 and "cannot index" in e.message


@pytest.mark.parametrize("value", ["1 + 2", "false", "nil", "-1"])
def test_several_targets_from_a_constant_are_a_type_error(value: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        e = _fails(f"func main() means\n  set a, b = {value}\nendfunc\n")
    assert e.code == 7 and "needs a list" in e.message


def test_a_failing_path_assignment_still_sets_last() -> None:
    src = ('func main() means\n  on error do\n    emit "last=" + last\n    clear_error\n  endon\n'
           "  set xs = [1]\n  set q = 1\n  set xs.f = 5\n  return last\nendfunc\n")
    assert _run(src)[1] == "last=5\n"  # not "last=1" (the set before)


# ---- redefinition -------------------------------------------------------------------------------------


def test_an_event_handler_compiled_before_a_redefinition_sees_the_new_arity() -> None:
    out, err = io.StringIO(), io.StringIO()
    it = Interpreter(stdout=out, stderr=err, load_stdlib=False)
    it.load('func g(needs x) means\n  emit "g " + x\nendfunc\non event "go" do\n  call g(1)\nendon\n', name="a.ns")
    it.emit_event("go")
    it.load('func g(needs x, y) means\n  emit "g2 " + x + y\nendfunc\n', name="b.ns", replace=True)
    it.emit_event("go")  # was a Python TypeError: the handler called the new g directly with one argument
    assert out.getvalue() == "g 1\n"
    assert "error 2" in err.getvalue() and "takes 2 arguments, got 1" in err.getvalue()
    it.load('func g(needs x) means\n  emit "g3 " + x\nendfunc\n', name="b.ns", replace=True)
    it.emit_event("go")
    assert out.getvalue() == "g 1\ng3 1\n"


# ---- limits of Python's compiler ------------------------------------------------------------------------


def _nested_loops(depth: int, handler: bool) -> str:
    head = "".join("  " * (i + 1) + f"for each v{i} in [1]\n" for i in range(depth))
    tail = "".join("  " * (i + 1) + "endfor\n" for i in reversed(range(depth)))
    h = "  on error do\n    clear_error\n  endon\n" if handler else ""
    return "func main() means\n" + h + head + "  " * (depth + 1) + "emit 1\n" + tail + "endfunc\n"


@pytest.mark.parametrize("handler", [False, True])
def test_the_loop_nesting_the_error_promises_compiles(handler: bool) -> None:
    """Error 38 says Python's compiler takes about 17 loops inside each other: so many compile, with
    ``on error`` too (its try blocks count against Python's 20 nested blocks); 21 are error 38."""
    assert _run(_nested_loops(17, handler))[1] == "1\n"
    e = _fails(_nested_loops(21, handler))
    assert e.code == 38 and "about 17 loops" in e.message


# ---- evaluation order in a chain of joins ------------------------------------------------------------

_BIG = ('  set big = []\n  set i = 0\n  while i < 30\n    set big[i] = "' + "x" * 100 + '"\n    set i = i + 1\n'
        "  endwhile\n")


@pytest.mark.parametrize("operand", ["side()", "nope"])
def test_a_join_is_displayed_and_checked_before_the_next_operand_runs(operand: str) -> None:
    """``big + "a" + side()`` is ``(big + "a") + side()``: the display of ``big`` is too large (37)
    before ``side()`` runs (it emitted first) or ``nope`` is read (it was error 9 instead)."""
    src = ('func side() means\n  emit "side effect"\n  return "s"\nendfunc\n'
           f'func main() means\n{_BIG}  set r = big + "a" + {operand} + "b"\n  return len(r)\nendfunc\n')
    stdout = io.StringIO()
    it = Interpreter(stdout=stdout, stderr=io.StringIO(), load_stdlib=False, max_value_bytes=2048)
    it.load(src)
    with pytest.raises(NSRuntimeError) as e:
        it.call("main")
    assert e.value.code == 37 and "display string" in e.value.message
    assert stdout.getvalue() == ""
