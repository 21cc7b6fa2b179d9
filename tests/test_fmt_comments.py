"""``nslang fmt`` keeps comments (whole-line and trailing), blank-line groups and ``\\`` continuations
(issue 15 item 2): every example, golden script, stdlib file and upstream corpus script that parses
formats to text that parses to the same AST, holds the same comments, and formats to itself."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from nslang.cli import main
from nslang.errors import NSSyntaxError, NSValidationError
from nslang.formatter import _comments, format_source
from nslang.parser import parse
from tests.test_fmt import CORPUS, REPO, UPSTREAM, strip_spans

FILES = sorted([*(REPO / "examples").glob("*.ns"), *(REPO / "stdlib").glob("*.ns"),
                *(REPO / "tests" / "scripts").rglob("*.ns"), *(REPO / "tests" / "checks").glob("*.ns"), *CORPUS])


def _id(p: Path) -> str:
    return str(p.relative_to(UPSTREAM if p.is_relative_to(UPSTREAM) else REPO))


def comment_texts(text: str) -> list[str]:
    return [c for _line, _col, c in _comments(text)]


@pytest.mark.parametrize("path", FILES, ids=_id)
def test_every_file_round_trips_with_its_comments(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    try:
        original = parse(text, name="<fmt>", use_cache=False)
    except (NSSyntaxError, NSValidationError):
        pytest.skip("does not parse (a negative test)")
    once = format_source(text)
    assert format_source(once) == once, "formatting twice changed the text"
    assert strip_spans(parse(once, name="<fmt>", use_cache=False)) == strip_spans(original)
    assert comment_texts(once) == comment_texts(text)


def test_the_corpus_has_comments_to_keep() -> None:
    with_comments = [p for p in FILES if comment_texts(p.read_text(encoding="utf-8"))]
    assert len(with_comments) > 100


EVERY_POSITION = """\
# file comment
:: title: demo
   # between metadata lines
:: version: 1


// before f
func f(needs a) means   # on the header
  :: description: adds
  # first in the body
  set x=a+1    -- trailing



  if x>1 # on the condition
     emit x
     # last in the then-branch
  else   # on else
    emit [1,\\
      2]   # after a continuation
  endif // on endif
  on event "e" as ev do
    emit ev   # in a hoisted handler
  endon
  # before endfunc

endfunc   # on endfunc
# between items
func g() means
 emit 1
endfunc
command_free_text_is_not_here = 0
"""


FORMATTED = """\
# file comment
:: title: demo
# between metadata lines
:: version: 1

// before f
func f(needs a) means  # on the header
  :: description: adds
  # first in the body
  set x = a + 1  -- trailing

  if x > 1  # on the condition
    emit x
    # last in the then-branch
  else  # on else
    emit [1,\\
      2]  # after a continuation
  endif  // on endif
  on event "e" as ev do
    emit ev  # in a hoisted handler
  endon
  # before endfunc
endfunc  # on endfunc

# between items
func g() means
  emit 1
endfunc
# at the end
"""


def test_comments_in_every_position() -> None:
    src = EVERY_POSITION.replace("command_free_text_is_not_here = 0\n", "# at the end\n\n\n")
    assert format_source(src) == FORMATTED
    assert format_source(FORMATTED) == FORMATTED


@pytest.mark.parametrize("src, expected", [
    ("command\n  emit 1\n\n\n\n  emit 2\nendcommand\n", "command\n  emit 1\n\n  emit 2\nendcommand\n"),
    ("command\n\n  emit 1\n\nendcommand\n", "command\n  emit 1\nendcommand\n"),
    ("func a() means\n  emit 1\nendfunc func b() means  # b\n  emit 2\nendfunc",
     "func a() means\n  emit 1\nendfunc\n\nfunc b() means  # b\n  emit 2\nendfunc\n"),
    ("command\n  set s = ```a # not a comment\n  -- nor this```  # but this\nendcommand\n",
     "command\n  set s = ```a # not a comment\n  -- nor this```  # but this\nendcommand\n"),
    ("func f(needs a, \\\n   b) means\n  emit a\nendfunc\n", "func f(needs a, \\\n   b) means\n  emit a\nendfunc\n"),
    ("command\n  if a and \\\n  b  # c\n    emit 1\n  endif\nendcommand\n",
     "command\n  if a and \\\n  b  # c\n    emit 1\n  endif\nendcommand\n"),
    ("# only a comment\n", "# only a comment\n"),
    ("", ""),
    ("\n\n# spaced\n\n\n", "# spaced\n"),
    ("command\n  emit 'a--b'-- c\n  emit a--b\nendcommand\n",
     "command\n  emit \"a--b\"  -- c\n  emit a  --b\nendcommand\n"),
])
def test_layout_rules(src: str, expected: str) -> None:
    assert format_source(src) == expected
    assert format_source(expected) == expected


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_write_formats_every_file_that_parses(tmp_path: Path) -> None:
    good = tmp_path / "good.ns"
    good.write_text("command\n  emit 1+1  # two\nendcommand\n", encoding="utf-8")
    bad = tmp_path / "bad.ns"
    bad.write_text("command\n  emit (\nendcommand\n", encoding="utf-8")
    code, out, err = run_cli("fmt", "--write", str(bad), str(good))
    assert code == 65 and "error 15" in err
    assert out == f"{good}: reformatted\n"
    assert good.read_text(encoding="utf-8") == "command\n  emit 1 + 1  # two\nendcommand\n"
    assert run_cli("fmt", "--check", str(good)) == (0, "", "")
