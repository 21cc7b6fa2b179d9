"""Parser tests: the grammar, spans on AST nodes, syntax-error messages, and the unparse round trip."""

from __future__ import annotations

import doctest
from pathlib import Path
from typing import Any

import pytest

import nslang.parser
import nslang.unparse
from nslang import ast as A  # noqa: N812
from nslang._lark import get_parser
from nslang.errors import NSError, NSSyntaxError, NSValidationError
from nslang.parser import parse
from nslang.source import Span
from nslang.unparse import unparse, unparse_expr

ROOT = Path(__file__).parents[1]
UPSTREAM = ROOT.parent / "shared" / "conformance" / "upstream"


def p(src: str) -> A.Program:
    return parse(src, name="t.ns", use_cache=False)


def expr(src: str) -> Any:
    """The AST of one expression (as the value of ``emit``)."""
    prog = p(f"func main() means\n  emit {src}\nendfunc\n")
    stmt = prog.procedures[0].body[0]
    assert isinstance(stmt, A.Emit)
    return stmt.value


def strip(node: Any) -> Any:
    """An AST as nested tuples without spans, for comparisons modulo positions."""
    if isinstance(node, Span):
        return None
    if isinstance(node, A.Node):
        return (type(node).__name__,) + tuple(
            strip(getattr(node, f)) for f in A.fields(node) if f not in ("span", "source")
        )
    if isinstance(node, (tuple, list)):
        return tuple(strip(x) for x in node)
    if isinstance(node, (int, float)) and not isinstance(node, bool):
        return (type(node).__name__, node)  # 1 == 1.0 in Python; literals must keep their kind
    return node


# ---- the grammar --------------------------------------------------------------------------------


def test_grammar_is_collision_free_under_strict() -> None:
    pytest.importorskip("interegular")
    parser = get_parser(strict=True)
    assert parser.options.parser == "lalr"


def test_parser_is_memoized() -> None:
    assert get_parser() is get_parser()


# ---- spans ----------------------------------------------------------------------------------------

SPAN_SRC = """\
func main(needs a) means
  set total = a + 10
  if total > 3
    emit tool.str.ToUpper("x")
  endif
endfunc
"""


def test_spans_on_nodes() -> None:
    prog = p(SPAN_SRC)
    proc = prog.procedures[0]
    assert (proc.span.source, proc.span.line, proc.span.column) == ("t.ns", 1, 1)
    set_stmt, if_stmt = proc.body
    assert (set_stmt.span.line, set_stmt.span.column) == (2, 3)
    assert isinstance(set_stmt.value, A.BinOp)
    assert (set_stmt.value.span.line, set_stmt.value.span.column) == (2, 15)
    assert (set_stmt.value.right.span.line, set_stmt.value.right.span.column) == (2, 19)
    assert set_stmt.targets[0].span.column == 7
    assert (if_stmt.span.line, if_stmt.span.column) == (3, 3)
    emit = if_stmt.body[0]
    assert (emit.span.line, emit.span.column) == (4, 5)
    assert (emit.value.span.line, emit.value.span.column) == (4, 10)
    assert emit.value.span.end_line == 4 and emit.value.span.end_column > emit.value.span.column


def test_every_node_has_a_span() -> None:
    prog = p(SPAN_SRC)
    seen = 0
    stack: list[Any] = [prog]
    while stack:
        n = stack.pop()
        if isinstance(n, A.Node):
            assert isinstance(n.span, Span), type(n).__name__
            assert n.span.line >= 1 and n.span.column >= 1
            seen += 1
            stack.extend(getattr(n, f) for f in A.fields(n))
        elif isinstance(n, tuple):
            stack.extend(n)
    assert seen > 10


# ---- syntax errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "line", "col", "fragments"),
    [
        ("func main() means\n  set x = \nendfunc\n", 2, 11, ["unexpected end of line", "expected", "a number"]),
        ("func main() means\n  emit 1\n", 2, 9, ["end of file", "'endfunc'"]),
        ("func main() means\n  SET x = 1\nendfunc\n", 2, 3, ["'SET'", "lower-case"]),
        ("func main() means\n  emit m.a\nendfunc\n", 2, 9, ["'.'", "dot access"]),
        ("func f(a) means\n  emit 1\nendfunc\n", 1, 8, ["'a'", "needs"]),
        ("func main() means\n  emit 1 @ 2\nendfunc\n", 2, 10, ["'@'"]),
    ],
)
def test_syntax_error_message(src: str, line: int, col: int, fragments: list[str]) -> None:
    with pytest.raises(NSSyntaxError) as info:
        p(src)
    err = info.value
    assert err.code == 15
    assert err.span is not None and (err.span.line, err.span.column) == (line, col), err.message
    for frag in fragments:
        assert frag in err.message, err.message
    rendered = err.render()
    assert f"t.ns:{line}:{col}" in rendered
    assert "^" in rendered


def test_keyword_as_name_is_a_syntax_error() -> None:
    with pytest.raises(NSSyntaxError, match="'last' is a keyword"):
        p("func main() means\n  set last = 1\nendfunc\n")


def test_bad_escape_is_a_validation_error() -> None:
    with pytest.raises(NSValidationError, match="escape"):
        p('func main() means\n  emit "\\x41"\nendfunc\n')


def test_duplicate_procedure_is_code_42() -> None:
    with pytest.raises(NSValidationError) as info:
        p("func a() means\n  emit 1\nendfunc\nfunc a() means\n  emit 2\nendfunc\n")
    assert info.value.code == 42


# ---- what parses to what --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "canonical"),
    [
        ("-2 ** 2", "-2 ** 2"),
        ("2 ** 3 ** 2", "2 ** 3 ** 2"),
        ("(2 ** 3) ** 2", "(2 ** 3) ** 2"),
        ("a & 1 == 1", "a & 1 == 1"),
        ("(a & 1) == 1", "(a & 1) == 1"),
        ("not a == b", "not a == b"),
        ("not (a == b)", "not (a == b)"),
        ("1 + 2 * 3", "1 + 2 * 3"),
        ("(1 + 2) * 3", "(1 + 2) * 3"),
        ("a - (b - c)", "a - (b - c)"),
        ("a or b and c", "a or b and c"),
        ("(a or b) and c", "(a or b) and c"),
        ("typeof a + 1", "typeof a + 1"),
        ('f(x)[0]["k"]', 'f(x)[0]["k"]'),
        ("2 ** (-1)", "2 ** (-1)"),
        ('{"a": {"b": 1}}', '{"a": {"b": 1}}'),
        ('tool.Error.New(code: 1, message: "m")', 'tool.Error.New(code: 1, message: "m")'),
        ("'single'", '"single"'),
    ],
)
def test_expression_structure_and_canonical_text(src: str, canonical: str) -> None:
    e = expr(src)
    assert unparse_expr(e) == canonical
    assert strip(expr(canonical)) == strip(e)


def test_precedence_shapes() -> None:
    e = expr("-2 ** 2")
    assert isinstance(e, (A.UnaryOp, A.Literal))
    if isinstance(e, A.UnaryOp):
        assert e.op == "-" and isinstance(e.operand, A.BinOp) and e.operand.op == "**"
    e = expr("2 ** 3 ** 2")
    assert isinstance(e, A.BinOp) and isinstance(e.right, A.BinOp) and e.right.op == "**"
    e = expr("a & 1 == 1")
    assert isinstance(e, A.BinOp) and e.op == "&" and isinstance(e.right, A.BinOp) and e.right.op == "=="
    e = expr("not a == b")
    assert isinstance(e, A.BinOp) and e.op == "==" and isinstance(e.left, A.UnaryOp)
    e = expr("1 < 2 < 3")
    assert isinstance(e, A.BinOp) and isinstance(e.left, A.BinOp) and e.left.op == "<"


def test_program_shapes() -> None:
    prog = p(
        ":: title: demo\n\nfunc f needs a optional b returns c means\n  :: doc: x\n  return a\nendfunc\n"
        'on event "e" named "h" as v do\n  emit v\nendon\n'
    )
    assert prog.metadata == (("title", "demo"),)
    f = prog.procedures[0]
    assert (f.needs, f.optional, f.returns, f.metadata) == (("a",), ("b",), ("c",), (("doc", "x"),))
    h = prog.event_handlers[0]
    assert (h.handler_name, h.var) == ("h", "v")


def test_event_handler_in_function_is_hoisted() -> None:
    prog = p('func f() means\n  on event "e" do\n    emit 1\n  endon\n  emit 2\nendfunc\n')
    assert len(prog.event_handlers) == 1
    assert [type(s).__name__ for s in prog.procedures[0].body] == ["Emit"]


def test_mustbe_becomes_must() -> None:
    stmt = p("func f() means\n  mustbe g()\nendfunc\n").procedures[0].body[0]
    assert isinstance(stmt, A.Must) and stmt.keyword == "mustbe"


def test_empty_and_comment_only_files_parse() -> None:
    for src in ("", "\n\n", "# just a comment\n", ":: title: header only\n", "-- a\n// b\n"):
        prog = p(src)
        assert not prog.procedures and not prog.commands


def test_crlf_line_endings() -> None:
    prog = p("func main() means\r\n  emit 1\r\nendfunc\r\n")
    assert prog.procedures[0].body[0].span.line == 2


# ---- round trip -----------------------------------------------------------------------------------


def _sources() -> list[Path]:
    files = sorted((ROOT / "tests" / "scripts").rglob("*.ns")) + sorted((ROOT / "examples").glob("*.ns"))
    if UPSTREAM.is_dir():
        files += sorted(UPSTREAM.rglob("*.ns.txt"))
    return files


def _parses(path: Path) -> A.Program | None:
    try:
        return parse(path.read_text(encoding="utf-8"), name="x", use_cache=False)
    except NSError:
        return None


def _id(path: Path) -> str:
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return path.relative_to(UPSTREAM.parent).as_posix()


@pytest.mark.parametrize("path", [s for s in _sources() if _parses(s) is not None], ids=_id)
def test_unparse_round_trip(path: Path) -> None:
    """Every example and corpus script that parses (syntax-error cases are left out)."""
    prog = _parses(path)
    assert prog is not None
    text = unparse(prog)
    again = parse(text, name="x", use_cache=False)
    assert strip(again) == strip(prog), text
    assert unparse(again) == text  # formatting twice changes nothing


def test_round_trip_covers_most_sources() -> None:
    good = [s for s in _sources() if _parses(s) is not None]
    assert len(good) >= 100


def test_doctests() -> None:
    for mod in (nslang.parser, nslang.unparse):
        failures, tried = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert tried > 0 and failures == 0, mod.__name__


def test_ask_forms() -> None:
    body = (
        p(
            'func main() means\n  ask "hi"\n  ask "hi" into answer\n'
            '  ask "summarizer", "text" with {"temperature": 0} into out["k"]\nendfunc\n'
        )
        .procedures[0]
        .body
    )
    plain, into, full = body
    assert isinstance(plain, A.Ask) and plain.worker is None and plain.target is None
    assert isinstance(into, A.Ask) and into.target is not None and into.target.name == "answer"
    assert isinstance(full, A.Ask) and isinstance(full.worker, A.Literal) and full.worker.value == "summarizer"
    assert isinstance(full.options, A.MapLit) and full.target is not None and full.target.path
    assert unparse_expr(full.prompt) == '"text"'
