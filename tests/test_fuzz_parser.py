"""Fuzzing the parser with hypothesis: random text, random token soup, and mutations of every golden
script, example and upstream corpus file. The only exception that may escape ``parse`` is our syntax
error (NSSyntaxError, or NSValidationError for text that parses but cannot be built), never a Python
exception such as IndexError or RecursionError. Mutants that still parse are also run under tight
limits: only an NSError may escape the interpreter.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nslang import Interpreter
from nslang.errors import NSError, NSSyntaxError, NSValidationError
from nslang.parser import parse

ROOT = Path(__file__).parents[1]
UPSTREAM = ROOT.parent / "shared" / "conformance" / "upstream"


def _corpus() -> list[str]:
    files = sorted((ROOT / "tests" / "scripts").rglob("*.ns")) + sorted((ROOT / "examples").glob("*.ns"))
    if UPSTREAM.is_dir():
        files += sorted(UPSTREAM.rglob("*.ns.txt"))
    return [f.read_text(encoding="utf-8") for f in files]


CORPUS = _corpus()

_TOKEN = re.compile(r"\s+|[A-Za-z_][A-Za-z0-9_]*|[0-9.]+|```|'''|\*\*|==|!=|<=|>=|\{\{|\}\}|::|--|//|.", re.S)

VOCAB = (
    "func means endfunc needs optional returns command endcommand set call return emit must mustbe fail "
    "clear_error clear event on error do endon if else endif while endwhile for each in endfor break "
    "continue ask into with named as and or not no some typeof last eval tool len nil true false "
    "( ) [ ] { } {{ }} , : . = + - * / % ** == != < > <= >= & | ^ ~ \\ \\\n \n \n\n # -- // :: "
    "\" ' ``` ''' x y main 1 2.5 1e3 \"s\" 'c' \"\\n\" \"\\x41\" ```t{{x}}``` '''r'''"
).split(" ")
VOCAB += ["\\\n", "\n", "  ", "\t", "\r\n", '"unterminated', "```open", "\\u12", "é", "\x00"]

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check_parse(text: str) -> None:
    """``parse`` either succeeds or raises our syntax/validation error, with a position."""
    try:
        parse(text, name="fuzz.ns", use_cache=False)
    except (NSSyntaxError, NSValidationError) as e:
        assert e.code in (15, 38, 42), e
        assert e.span is None or e.span.line >= 1
        e.render()  # rendering the error must not fail either


def mutate(text: str, data: st.DataObject) -> str:
    """Apply 1-4 random token or character edits: delete, insert, duplicate, swap."""
    tokens = _TOKEN.findall(text) or [""]
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        op = data.draw(st.sampled_from(["del", "ins", "dup", "swap", "chardel", "charins"]), label="op")
        i = data.draw(st.integers(0, len(tokens) - 1), label="at")
        if op == "del" and len(tokens) > 1:
            del tokens[i]
        elif op == "ins":
            tokens.insert(i, data.draw(st.sampled_from(VOCAB), label="token"))
        elif op == "dup":
            tokens.insert(i, tokens[i])
        elif op == "swap":
            j = data.draw(st.integers(0, len(tokens) - 1), label="with")
            tokens[i], tokens[j] = tokens[j], tokens[i]
        else:
            s = "".join(tokens)
            k = data.draw(st.integers(0, max(0, len(s) - 1)), label="char at")
            if op == "chardel":
                s = s[:k] + s[k + 1 :]
            else:
                s = s[:k] + data.draw(st.characters(), label="char") + s[k:]
            tokens = _TOKEN.findall(s) or [""]
    return "".join(tokens)


@SETTINGS
@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    check_parse(text)


@SETTINGS
@given(st.lists(st.sampled_from(VOCAB), max_size=60).map(" ".join))
def test_random_token_soup(text: str) -> None:
    check_parse(text)


@SETTINGS
@given(
    st.lists(st.sampled_from(VOCAB), max_size=40).map(lambda ts: "func main() means\n  " + " ".join(ts) + "\nendfunc\n")
)
def test_token_soup_in_a_procedure(text: str) -> None:
    check_parse(text)


@SETTINGS
@given(st.data())
def test_mutated_corpus(data: st.DataObject) -> None:
    text = data.draw(st.sampled_from(CORPUS), label="source")
    check_parse(mutate(text, data))


def _run_limited(text: str, sandbox: Path) -> None:
    try:
        prog = parse(text, name="fuzz.ns", use_cache=False)
    except (NSSyntaxError, NSValidationError):
        return
    interp = Interpreter(
        sandbox_dir=sandbox,
        stdout=io.StringIO(),
        stderr=io.StringIO(),
        stdin=io.StringIO(),
        max_steps=20_000,
        timeout_s=2,
        max_call_depth=200,
        max_loop_iterations=10_000,
        load_stdlib=False,
    )
    try:
        interp.load_program(prog)
        if prog.commands:
            interp.run()
        elif "main" in interp.procedures and not interp.procedures["main"].needs:
            interp.run("main")
    except NSError:
        pass


_UNSAFE = re.compile(r"Sleep|Input|\bask\b|Shell|Git|Go\.|worker|LoadScript|http", re.I)


@settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_mutants_that_parse_also_run_cleanly(data: st.DataObject, tmp_path: Path) -> None:
    text = mutate(data.draw(st.sampled_from(CORPUS), label="source"), data)
    if _UNSAFE.search(text):
        return
    _run_limited(text, tmp_path)


# ---- deep nesting: a clean NSError, never RecursionError ---------------------------------------------


def _in_main(expr: str) -> str:
    return f"func main() means\n  set x = [0]\n  emit {expr}\nendfunc\n"


DEEP = {
    "5000 parentheses": _in_main("(" * 5000 + "1" + ")" * 5000),
    "3000 nested lists": _in_main("[" * 3000 + "]" * 3000),
    "3000 nested maps": _in_main('{"k": ' * 3000 + "1" + "}" * 3000),
    "5000 unary minus": _in_main("- " * 5000 + "1"),
    "5000 not": _in_main("not " * 5000 + "true"),
    "5000 powers": _in_main(" ** ".join(["2"] * 5000)),
    "5000 indexes": _in_main("x" + "[0]" * 5000),
    "5000 sums": _in_main(" + ".join(["1"] * 5000)),
    "50000 sums": _in_main(" + ".join(["1"] * 50000)),
    "2000 nested ifs": "func main() means\n" + "if true\n" * 2000 + "emit 1\n" + "endif\n" * 2000 + "endfunc\n",
    "unclosed 5000 parentheses": _in_main("(" * 5000 + "1"),
}


@pytest.mark.parametrize("name", sorted(DEEP))
def test_deep_nesting_is_handled_cleanly(name: str, tmp_path: Path) -> None:
    """Deeply nested code either works or fails with an NSError (e.g. code 38, nested too deeply)."""
    text = DEEP[name]
    try:
        prog = parse(text, name="deep.ns", use_cache=False)
    except (NSSyntaxError, NSValidationError) as e:
        assert e.code in (15, 38), e
        return
    interp = Interpreter(sandbox_dir=tmp_path, stdout=io.StringIO(), stderr=io.StringIO(), load_stdlib=False)
    try:
        interp.load_program(prog)
        interp.run()
    except NSError as e:
        assert e.code != 0, e  # any clean NeuroScript error (2 ** 2 ** ... overflows: code 17)
    except RecursionError:  # pragma: no cover - the failure this test exists to catch
        pytest.fail("RecursionError escaped")


def test_unclosed_deep_parentheses_is_a_syntax_error() -> None:
    with pytest.raises(NSSyntaxError):
        parse(DEEP["unclosed 5000 parentheses"], name="deep.ns", use_cache=False)


def test_moderate_nesting_parses_and_runs() -> None:
    out = io.StringIO()
    interp = Interpreter(stdout=out, load_stdlib=False)
    interp.load(_in_main("(" * 150 + "1" + ")" * 150 + " + " + "[" * 100 + "2" + "]" * 100 + "[0]" * 100))
    interp.run()
    assert out.getvalue() == "3\n"
