"""Fuzzing the generated code (issue 16) with hypothesis: random procedures in the shapes the compiler
takes shortcuts on (inferred int and string kinds, parameters checked on entry, expressions used in
place, ``on error`` around statements and loop heads, multi-target and path assignments, ``returns``
clauses, direct calls and recursion) must end with a result or an NSError, never another Python
exception, and Python's compiler must not warn about the source written out (a ``SyntaxWarning``
printed ``'int' object is not subscriptable`` for ``-1[0]``; a constant as the value of a multi-target
``set`` did the same). The differential run against the closure compiler this grammar comes from found
the defects replayed in tests/test_compiler_attacks.py.

The default run draws a couple of hundred programs; ``NSLANG_FUZZ_EXAMPLES`` sets more.
"""

from __future__ import annotations

import io
import os
import warnings

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nslang import Interpreter
from nslang.errors import NSError, NSRuntimeError

EXAMPLES = int(os.environ.get("NSLANG_FUZZ_EXAMPLES", "200"))

SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

INTS = ["i", "j", "n", "0", "1", "2", "-1", "9223372036854775807", "4611686018427387904", "1" + "0" * 30]
STRS = ["s", '"a"', '""', '"1"', '"e5"', '"1e"', '"nan"', '"x1"', '"."']
OTHER = ["true", "false", "nil", "1.5", "[1, 2]", '{"k": 1}', "xs", "last", "p"]
ATOMS = st.sampled_from(INTS + STRS + OTHER)
BINARY = ["+", "+", "-", "*", "%", "==", "!=", "<", ">=", "/", "&"]


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(inner, st.sampled_from(BINARY), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})")
    unary = st.tuples(st.sampled_from(["-", "not", "typeof", "~"]), inner).map(lambda t: f"({t[0]} {t[1]})")
    index = st.tuples(inner, inner).map(lambda t: f"{t[0]}[{t[1]}]")
    call = inner.map(lambda x: f"f({x})")
    other = st.sampled_from(['eval("{{s}}{{i}}")', "len(s)", "len(xs)", "-1", "(1 + 2)", "(1 < 2)"])
    return st.one_of(binary, binary, unary, index, call, other)


EXPR = st.recursive(ATOMS, _extend, max_leaves=6)
TARGET = st.one_of(st.sampled_from(["i", "j", "n", "s", "xs", "p"]),
                   st.tuples(st.sampled_from(["xs", "m"]), EXPR).map(lambda t: f"{t[0]}[{t[1]}]"),
                   st.just("m.f[0]"))


def _block(depth: int) -> st.SearchStrategy[list[str]]:
    simple = st.one_of(
        st.tuples(TARGET, EXPR).map(lambda t: f"set {t[0]} = {t[1]}"),
        st.tuples(TARGET, TARGET, EXPR).map(lambda t: f"set {t[0]}, {t[1]} = {t[2]}"),
        EXPR.map(lambda e: f"emit {e}"),
        EXPR.map(lambda e: f"must {e}"),
        EXPR.map(lambda e: f"call f({e})"),
        EXPR.map(lambda e: f"return {e}"),
        st.sampled_from(["break", "continue", "clear_error", "return", 'fail "x"', "set i = i + 1",
                         'set s = s + "a"', "set n = n * 3"]),
    )
    if depth == 0:
        return st.lists(simple, min_size=1, max_size=3)
    inner = _block(depth - 1)
    compound = st.one_of(
        st.tuples(EXPR, inner, inner).map(lambda t: ["if " + t[0], *_ind(t[1]), "else", *_ind(t[2]), "endif"]),
        st.tuples(st.sampled_from(["i", "j"]), st.sampled_from(["3", "n", "p"]), inner).map(
            lambda t: [f"set {t[0]} = 0", f"while {t[0]} < {t[1]}", f"  set {t[0]} = {t[0]} + 1", *_ind(t[2]),
                       "endwhile"]),
        st.tuples(st.sampled_from(["c", "s", "i"]), EXPR, inner).map(
            lambda t: [f"for each {t[0]} in {t[1]}", *_ind(t[2]), "endfor"]),
    )
    return st.lists(st.one_of(simple.map(lambda s: [s]), compound), min_size=1, max_size=3).map(
        lambda blocks: [line for b in blocks for line in b])


def _ind(lines: list[str]) -> list[str]:
    return ["  " + x for x in lines]


@st.composite
def programs(draw: st.DrawFn) -> str:
    body = draw(_block(2))
    handler = draw(st.sampled_from(["", "  on error do\n    emit system_error_code\n    clear_error\n  endon\n",
                                    "  on error do\n    set i = i + 1\n  endon\n"]))
    returns = draw(st.sampled_from(["", " returns a, b"]))
    recurse = draw(st.booleans())
    head = "  if p > 0\n    call g(p - 1)\n  endif\n" if recurse else ""
    init = '  set i = 0\n  set j = 1\n  set n = 2\n  set s = "a"\n  set xs = [1, 2, 3]\n  set m = {}\n'
    src = (f"func g(needs p{returns}) means\n{handler}{head}{init}" + "".join(f"  {x}\n" for x in body)
           + "endfunc\nfunc f(needs x) means\n  return x\nendfunc\n")
    return src


@SETTINGS
@given(src=programs(), arg=st.sampled_from([0, 2, "2", 2.0, True, None, "x", [1]]))
def test_generated_code_raises_nothing_but_nserror_and_python_does_not_warn(src: str, arg: object) -> None:
    it = Interpreter(stdout=io.StringIO(), stderr=io.StringIO(), load_stdlib=False, max_loop_iterations=50,
                     max_call_depth=8, max_steps=20_000, timeout_s=20)
    it.load(src, name="fuzz_compiler.ns")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            it.call("g", arg)
        except NSRuntimeError as e:
            e.render()
        except NSError:
            pass
    assert [str(w.message) for w in caught] == []
