"""``nslang fmt``: canonical formatting from the AST.

Every example and every upstream corpus script that parses must round-trip: formatting twice
changes nothing, and the formatted text parses to the same AST (positions aside).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from nslang import ast as A  # noqa: N812
from nslang.cli import main
from nslang.errors import NSError
from nslang.parser import parse
from nslang.source import Span
from nslang.unparse import unparse

REPO = Path(__file__).resolve().parents[1]
UPSTREAM = REPO.parent / "shared" / "conformance" / "upstream"

EXAMPLES = sorted((REPO / "examples").glob("*.ns"))
CORPUS = sorted(UPSTREAM.glob("**/*.ns.txt")) if UPSTREAM.is_dir() else []


def strip_spans(node: Any) -> Any:
    """An AST as nested tuples without ``span`` fields (and without the source name), so two parses
    of differently laid-out text compare equal when they mean the same. Numbers keep their type
    (``1`` and ``1.0`` differ)."""
    if isinstance(node, Span):
        return None
    if isinstance(node, (tuple, list)):
        return tuple(strip_spans(x) for x in node)
    if isinstance(node, A.Node):
        return (type(node).__name__,) + tuple(
            (f, strip_spans(getattr(node, f))) for f in A.fields(node) if f not in ("span", "source"))
    if isinstance(node, (bool, int, float)):
        return (type(node).__name__, node)
    return node


def fmt(text: str) -> str:
    return unparse(parse(text, name="<fmt>", use_cache=False))


def assert_round_trip(text: str) -> None:
    once = fmt(text)
    assert fmt(once) == once, "formatting twice changed the text"
    assert strip_spans(parse(once, name="<fmt>", use_cache=False)) == \
        strip_spans(parse(text, name="<fmt>", use_cache=False)), "formatting changed the AST"


def test_strip_spans_ignores_positions_only() -> None:
    a = parse("command\n  emit 1 + 2\nendcommand\n", use_cache=False)
    b = parse("\n\ncommand\n    emit   1+2   # note\nendcommand", use_cache=False)
    c = parse("command\n  emit 1 + 3\nendcommand\n", use_cache=False)
    assert strip_spans(a) == strip_spans(b) != strip_spans(c)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_round_trip(path: Path) -> None:
    assert_round_trip(path.read_text(encoding="utf-8"))


@pytest.mark.skipif(not CORPUS, reason="upstream conformance corpus not present")
@pytest.mark.parametrize("path", CORPUS, ids=lambda p: str(p.relative_to(UPSTREAM)))
def test_upstream_corpus_round_trips(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    try:
        parse(text, name="<fmt>", use_cache=False)
    except NSError:
        pytest.skip("does not parse (a negative test of the corpus)")
    assert_round_trip(text)


@pytest.mark.parametrize("src", [
    # precedence and associativity
    "emit (1 + 2) * 3 - (4 - 5) - 6", "emit 2 ** 3 ** 2", "emit (2 ** 3) ** 2", "emit -2 ** 2",
    "emit 2 ** (-1)", "emit (-2) ** 2", "emit - -x", "emit -(-1)", "emit not (a and b) or c", "emit a or b and c",
    "emit (a or b) and c", "emit a == (b == c)", "emit 1 - (2 + 3)", "emit 8 / (4 / 2)", "emit ~x & 3 | 4 ^ 5",
    "emit typeof x == TYPE_STRING", "emit no x", "emit some x", "emit must x", "emit a[0][1]",
    "emit (a + b)[0]", "emit f(1, g(2))", "emit len(\"abc\") + ln(2)",
    # literals
    'emit "quote \\" backslash \\\\ newline \\n tab \\t"', "emit 'single'", "emit 1.5e-3", "emit 1.0",
    "emit 0.1 + 10", "emit [1, [2, 3], {\"k\": {\"n\": nil}}]", "emit {}", "emit []", "emit true and false",
    "emit ```raw {{name}} text```", "emit '''raw three'''", "emit {{name}}", "emit {{last}}", "emit last",
    "emit eval(\"x\")", 'emit {1 + 1: "computed key"}', 'emit "\\u00e9\\u4e2d"',
    # statements
    "set a, b = f()", "set m.key = 1", 'set m["k"][0] = 2', "call tool.str.ToUpper(\"a\")",
    'call tool.AIWorkerDefinition.Add(name: "w", provider: "test")', "must x > 1", "mustbe is_string(x)",
    "fail", 'fail "bad"', 'ask "w", "prompt" with {"temperature": 0} into reply', 'ask "hi" into r',
    'clear event "e"', 'clear event named "h"',
    "if a\n  emit 1\nelse\n  if b\n    emit 2\n  endif\nendif",
    "while i < 3\n  set i = i + 1\n  if i == 2\n    continue\n  endif\n  break\nendwhile",
    "for each x in [1, 2]\n  emit x\nendfor",
    "on error do\n  emit system_error_message\n  clear_error\nendon\nfail \"x\"",
])
def test_round_trip_cases(src: str) -> None:
    body = "\n".join("  " + line for line in src.split("\n"))
    assert_round_trip(f"command\n{body}\nendcommand\n")


def test_round_trip_of_top_level_items() -> None:
    assert_round_trip(':: name: demo\n:: version: 1\n\nfunc f(needs a, b optional c returns r) means\n'
                      '  :: description: adds\n  return a + b\nendfunc\n\n'
                      'on event "tick" named "h" as ev do\n  emit ev["name"]\nendon\n')
    assert_round_trip("func g() means\n  return\nendfunc\n")


def test_canonical_layout() -> None:
    messy = "func  f( needs a )   means\n    set x=a+1   \n       emit x\nendfunc\nfunc g() means\n emit 2\nendfunc"
    assert fmt(messy) == ("func f(needs a) means\n  set x = a + 1\n  emit x\nendfunc\n\n"
                          "func g() means\n  emit 2\nendfunc\n")


# ---------------------------------------------------------------------------------------------
# the CLI


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_fmt_prints_check_and_write(tmp_path: Path) -> None:
    messy = tmp_path / "messy.ns"
    messy.write_text("command\n emit 1+2\nendcommand", encoding="utf-8")
    assert run_cli("fmt", str(messy)) == (0, "command\n  emit 1 + 2\nendcommand\n", "")
    assert run_cli("fmt", "--check", str(messy)) == (1, f"{messy}: would reformat\n", "")
    assert run_cli("fmt", "--write", str(messy)) == (0, f"{messy}: reformatted\n", "")
    assert messy.read_text(encoding="utf-8") == "command\n  emit 1 + 2\nendcommand\n"
    assert run_cli("fmt", "--check", str(messy)) == (0, "", "")
    assert run_cli("fmt", "--write", str(messy)) == (0, "", "")  # nothing to do


def test_fmt_rewrites_a_file_with_comments_keeping_them(tmp_path: Path) -> None:
    src = "command\n  # explain\n  emit 1+2 // more\nendcommand\n"
    f = tmp_path / "c.ns"
    f.write_text(src, encoding="utf-8")
    formatted = "command\n  # explain\n  emit 1 + 2  // more\nendcommand\n"
    assert run_cli("fmt", str(f)) == (0, formatted, "")
    assert run_cli("fmt", "--write", str(f)) == (0, f"{f}: reformatted\n", "")
    assert f.read_text(encoding="utf-8") == formatted


def test_fmt_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ns"
    bad.write_text("command\n  emit (\nendcommand\n", encoding="utf-8")
    code, out, err = run_cli("fmt", str(bad))
    assert code == 65 and out == "" and err.startswith("error 15")
    assert run_cli("fmt", str(tmp_path / "missing.ns"))[0] == 64
