"""The cold parser's shortcuts (issue 16 item 4) build the same AST as Lark's plain parse tree transformed
afterwards: the streamlined LALR table (``nslang._lark._streamline``), the generated node ``__init__``s
and the transformer computing positions only where used."""

from __future__ import annotations

from pathlib import Path

import lark
import pytest

from nslang import ast as A
from nslang._lark import _RuleKey, get_inline_parser, get_parser
from nslang._transformer import ToAST
from nslang.errors import NSError
from nslang.parser import parse

SCRIPTS = sorted(Path(__file__).parent.glob("scripts/**/*.ns"))
#: the upstream conformance corpus beside the project (absent: only tests/scripts)
UPSTREAM = sorted((Path(__file__).parents[1].parent / "shared" / "conformance" / "upstream").rglob("*.ns.txt"))


def test_the_inline_parser_is_streamlined() -> None:
    """With the Lark this project pins, every reduction of the inline parser uses a _RuleKey."""
    inner = get_inline_parser()[0].parser.parser.parser
    reduces = [arg for row in inner.parse_table.states.values() for action, arg in row.values()
               if not isinstance(arg, int)]
    assert reduces and all(type(arg) is _RuleKey for arg in reduces)


@pytest.mark.parametrize("path", SCRIPTS + UPSTREAM, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_same_ast_as_the_plain_parse_tree(path: Path) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        pytest.skip("not UTF-8")
    if text.endswith("\\") or text.endswith("\\\r"):
        pytest.skip("rejected before parsing")
    if not text.endswith("\n"):
        text += "\n"
    try:
        fast = parse(text, name=str(path), use_cache=False)
    except NSError as e:  # then the plain path must reject it too
        with pytest.raises(Exception) as info:
            ToAST(str(path)).transform(get_parser().parse(text))
        plain_error = info.value.orig_exc if isinstance(info.value, lark.exceptions.VisitError) else info.value
        if isinstance(plain_error, NSError):
            assert (type(plain_error), plain_error.message) == (type(e), e.message)
        else:  # a syntax error: Lark's exception, made an NSSyntaxError by nslang.parser
            assert isinstance(plain_error, lark.exceptions.UnexpectedInput) and e.code == 15
        return
    plain = ToAST(str(path)).transform(get_parser().parse(text))
    assert isinstance(plain, A.Program)
    assert fast == plain and repr(fast) == repr(plain)


BAD = [
    'func main() means\n  emit "unterminated\nendfunc\n',
    "func main() means\n  set x = 1 +\nendfunc\n",
    "func main() means\n  set x = $\nendfunc\n",
    "func main() means\n  caller(2)\nendfunc\n",
    "func main() means\n  if x\n    emit 1\nendfunc\n",
    "func main() means\n  emit [1, 2,]\nendfunc\n",
    "func main()\n  emit 1\nendfunc\n",
    "func main() means\n  emit 1\n",
    "command\n  emit 1\nendcommand\nfunc f() means\n  emit 2\nendfunc\n",
    "func main() means\n  set é = 1\nendfunc\n",
    "",
    "\n\n   \n",
]


@pytest.mark.parametrize("text", BAD)
def test_inline_loop_raises_what_lark_raises(text: str) -> None:
    """``parse_inline`` (nslang's lexer and LALR loop) and Lark's own ``parse`` of the same parser
    raise the same exception at the same place with the same expected terminals."""
    from nslang._lark import parse_inline
    from nslang._transformer import ToAST

    parser, callbacks = get_inline_parser()

    def outcome(run: object) -> object:
        callbacks.current = ToAST("t.ns")
        try:
            return ("ok", run(parser, text))  # type: ignore[operator]
        except lark.exceptions.UnexpectedInput as e:
            return (type(e).__name__, e.line, e.column, sorted(getattr(e, "expected", None) or
                                                                getattr(e, "allowed", None) or ()),
                    str(getattr(e, "token", "")))
        except NSError as e:
            return ("nserror", e.message)
        finally:
            callbacks.current = None

    assert outcome(parse_inline) == outcome(lambda p, t: p.parse(t))


def test_damaged_saved_tables_are_rebuilt() -> None:
    """The inline parser's saved LALR tables (``lark-inline-*.pickle`` in the private cache dir) are
    written on first use (those of another grammar or Lark version are then deleted); a damaged or
    truncated file is ignored and written again."""
    import os

    from nslang import _lark
    from nslang._private_paths import private_dir, user_cache_dir

    def saved() -> list[str]:
        d = user_cache_dir()
        return [os.path.join(d, f) for f in os.listdir(d) if f.startswith("lark-inline-")]

    stale = os.path.join(private_dir(user_cache_dir()), "lark-inline-0123456789abcdef0123456789abcdef.pickle")
    for p in saved():  # this grammar's tables are written again below: the stale file goes then
        os.unlink(p)
    Path(stale).write_bytes(b"tables of another grammar")
    _lark.get_inline_parser.cache_clear()
    _lark.get_inline_parser()
    assert not os.path.exists(stale)
    (path,) = saved()
    assert os.stat(path).st_mode & 0o077 == 0 or os.name != "posix"
    good = Path(path).read_bytes()
    for bad in (b"", good[: len(good) // 2], b"\x80\x05garbage", good[:100] + bytes(50) + good[150:]):
        Path(path).write_bytes(bad)
        _lark.get_inline_parser.cache_clear()
        prog = parse("func main() means\n  emit 1 + 2 * 3\nendfunc\n", name="t.ns", use_cache=False)
        assert prog.procedures[0].name == "main"
        assert Path(path).read_bytes() == good
    assert saved() == [path]
