"""The Pygments lexer for NeuroScript (nslang.highlight)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.token import Comment, Error, Keyword, Name, Number, Operator, String, Token

from nslang.highlight import NeuroScriptLexer

REPO = Path(__file__).resolve().parents[1]
UPSTREAM = REPO.parent / "shared" / "conformance" / "upstream"
SOURCES = sorted((REPO / "examples").glob("*.ns")) + sorted((REPO / "stdlib").glob("*.ns")) + (
    sorted(UPSTREAM.glob("**/*.ns.txt")) if UPSTREAM.is_dir() else [])


def tokens(text: str) -> list[tuple[object, str]]:
    return [(t, v) for t, v in NeuroScriptLexer().get_tokens(text) if v.strip()]


def kind(text: str, value: str) -> object:
    """The token type of the first token whose text is ``value``."""
    for t, v in tokens(text):
        if v == value:
            return t
    raise AssertionError(f"{value!r} not among {tokens(text)}")


def test_keywords_names_and_procedure_names() -> None:
    src = "func greet(needs who returns msg) means\n  set msg = who\n  return msg\nendfunc\n"
    assert kind(src, "func") is Keyword.Declaration
    assert kind(src, "greet") is Name.Function
    assert kind(src, "needs") is Keyword.Declaration
    assert kind(src, "set") is Keyword
    assert kind(src, "who") is Name.Variable
    assert kind(src, "endfunc") is Keyword.Declaration
    assert kind("emit helper(1)", "helper") is Name.Function
    assert kind("emit x and not y", "and") is Operator.Word
    assert kind("emit len(x)", "len") is Name.Builtin
    assert kind("emit nil", "nil") is Keyword.Constant
    assert kind("emit TYPE_STRING", "TYPE_STRING") is Name.Constant


def test_names_that_start_with_keywords_are_names() -> None:
    assert kind("set settle = caller + iffy", "settle") is Name.Variable
    assert kind("set settle = caller + iffy", "caller") is Name.Variable
    assert kind("set x = clear_error_count", "clear_error_count") is Name.Variable


def test_tool_paths() -> None:
    toks = tokens('emit tool.fs.Read("a.txt")')
    assert toks[1:6] == [(Keyword.Namespace, "tool"), (Token.Punctuation, "."), (Name.Namespace, "fs"),
                         (Token.Punctuation, "."), (Name.Function, "Read")]


def test_strings_escapes_raw_strings_and_placeholders() -> None:
    src = 'set s = "a \\"q\\" \\n" + \'b\' + ```hi {{who}}``` + \'\'\'raw\'\'\' + {{x}}'
    toks = tokens(src)
    assert (String.Escape, '\\"') in toks and (String.Escape, "\\n") in toks
    assert (String.Single, "b") in toks
    assert (String.Interpol, "{{who}}") in toks
    assert (String.Heredoc, "'''raw'''") in toks
    assert (Name.Variable, "x") in toks and (String.Interpol, "{{") in toks


def test_comments_metadata_and_numbers() -> None:
    src = ":: description: demo file\n# one\n-- two\n// three\nemit 1.5e-3 ** 2 -- trailing\n"
    toks = tokens(src)
    assert (Comment.Special, "::") in toks and (Name.Attribute, "description") in toks
    assert [v for t, v in toks if t is Comment.Single] == ["# one", "-- two", "// three", "-- trailing"]
    assert (Number, "1.5e-3") in toks and (Operator, "**") in toks


def test_incomplete_input_still_lexes() -> None:
    for text in ['emit "unterminated', "emit ```open raw\nstill", "set x = {{", "emit tool.", "if x >"]:
        toks = list(NeuroScriptLexer().get_tokens(text))
        assert "".join(v for _t, v in toks) == text + "\n"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_real_scripts_lex_without_errors_and_losslessly(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    toks = list(NeuroScriptLexer().get_tokens_unprocessed(text))
    assert "".join(v for _i, _t, v in toks) == text
    assert not [v for _i, t, v in toks if t is Error]


def test_usable_by_pygments_formatters_and_guessing() -> None:
    html = highlight('func main() means\n  emit "hi"\nendfunc\n', NeuroScriptLexer(), HtmlFormatter())
    assert "func" in html and "<span" in html
    assert NeuroScriptLexer.analyse_text("func f() means\n  emit 1\nendfunc\n") > 0.5
    assert NeuroScriptLexer.analyse_text("def f():\n    pass\n") == 0.0
    assert "neuroscript" in NeuroScriptLexer.aliases and "*.ns" in NeuroScriptLexer.filenames
