"""Syntax highlighting of NeuroScript source: a Pygments lexer, reusable outside nslang.

The REPL uses it through prompt-toolkit's ``PygmentsLexer``; editors, documentation builds (Sphinx,
MkDocs) and ``pygmentize`` can use it too::

    from pygments import highlight
    from pygments.formatters import TerminalFormatter
    from nslang.highlight import NeuroScriptLexer

    print(highlight(source, NeuroScriptLexer(), TerminalFormatter()))

To make ``pygmentize -l neuroscript`` find it, register it as a Pygments plugin in the packaging
metadata::

    [project.entry-points."pygments.lexers"]
    neuroscript = "nslang.highlight:NeuroScriptLexer"

The lexer follows the token rules of spec/language.md §1: ``#``, ``--`` and ``//`` comments, ``::``
metadata lines, ``"…"``/``'…'`` strings with escapes, ```` ```…``` ```` raw strings with ``{{name}}``
interpolation, ``'''…'''`` raw strings, ``{{name}}`` placeholders, numbers with an optional exponent,
the 60 lower-case keywords, ``tool.group.Name`` paths and ``\\``-newline continuations. It is purely
lexical (regular expressions, no parsing), so it colours incomplete or invalid input too, as a REPL
needs.
"""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, include, words  # type: ignore[import-untyped,unused-ignore]
from pygments.token import (  # type: ignore[import-untyped,unused-ignore]
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Text,
    Whitespace,
)

__all__ = ["NeuroScriptLexer", "BLOCK_OPENERS", "BLOCK_CLOSERS"]

#: Keywords that declare top-level items and procedure signatures.
_DECLARATIONS = ("func", "means", "endfunc", "needs", "optional", "returns", "command", "endcommand")
#: Control-flow keywords.
_CONTROL = ("if", "else", "endif", "while", "endwhile", "for", "each", "in", "endfor", "break", "continue",
            "return", "on", "error", "event", "do", "endon", "named", "as")
#: Statement keywords.
_STATEMENTS = ("set", "call", "emit", "mustbe", "must", "fail", "clear_error", "clear", "ask", "into", "with")
#: Word operators.
_WORD_OPS = ("and", "or", "not", "no", "some", "typeof")
#: Built-in functions and expression keywords.
_BUILTINS = ("len", "ln", "log", "sin", "cos", "tan", "asin", "acos", "atan", "eval")
#: Reserved words used by no rule.
_RESERVED = ("fuzzy", "timedate")

#: First words of a line that open a block (the REPL indents the next line after them).
BLOCK_OPENERS = frozenset({"func", "command", "if", "else", "while", "for", "on"})
#: First words of a line that close a block (the REPL dedents them).
BLOCK_CLOSERS = frozenset({"endfunc", "endcommand", "endif", "else", "endwhile", "endfor", "endon"})

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


class NeuroScriptLexer(RegexLexer):  # type: ignore[misc,unused-ignore]
    """Pygments lexer for NeuroScript (``.ns`` files; NeuroScript 0.4.2 plus the nslang extensions)."""

    name = "NeuroScript"
    aliases = ["neuroscript", "nslang", "ns"]
    filenames = ["*.ns", "*.ns.txt"]
    mimetypes = ["text/x-neuroscript"]
    url = "https://github.com/aprice2704/neuroscript"

    tokens = {
        "root": [
            (r"[ \t]+", Whitespace),
            (r"\r?\n|\r", Whitespace),
            (r"\\(?=\r?\n)", Text),  # line continuation
            (r"(#|--|//).*?$", Comment.Single),
            # `:: key: value` metadata lines (at least one space after ::)
            (r"(::)([ \t]+)([^:\r\n]*)(:?)([^\r\n]*)",
             bygroups(Comment.Special, Whitespace, Name.Attribute, Punctuation, String.Doc)),
            # `func name`: the procedure name
            (r"(func)(\s+)(" + _IDENT + ")", bygroups(Keyword.Declaration, Whitespace, Name.Function)),
            # `tool.group.Name(`: the tool path
            (r"(tool)(\s*)(\.)", bygroups(Keyword.Namespace, Whitespace, Punctuation), "toolpath"),
            include("strings"),
            (r"\{\{", String.Interpol, "placeholder"),
            (r"[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?", Number),
            (words(("true", "false", "nil"), suffix=r"\b"), Keyword.Constant),
            (words(("last",), suffix=r"\b"), Name.Builtin.Pseudo),
            (words(_DECLARATIONS, suffix=r"\b"), Keyword.Declaration),
            (words(_CONTROL, suffix=r"\b"), Keyword),
            (words(_STATEMENTS, suffix=r"\b"), Keyword),
            (words(_WORD_OPS, suffix=r"\b"), Operator.Word),
            (words(_BUILTINS, suffix=r"\b"), Name.Builtin),
            (words(_RESERVED, suffix=r"\b"), Keyword.Reserved),
            (r"TYPE_[A-Z]+\b", Name.Constant),
            (r"system_error_(message|code)\b", Name.Builtin.Pseudo),
            (_IDENT + r"(?=\s*\()", Name.Function),
            (_IDENT, Name.Variable),
            (r"\*\*|==|!=|<=|>=|[-+*/%<>=&|^~]", Operator),
            (r"[()\[\]{},:.]", Punctuation),
            (r".", Text),  # anything else (the parser reports it)
        ],
        "strings": [
            (r"```", String.Backtick, "rawstring"),
            (r"'''(.|\n)*?'''", String.Heredoc),
            (r"'''", String.Heredoc, "rawstring3"),  # unterminated (REPL input in progress)
            (r'"', String.Double, "dqs"),
            (r"'", String.Single, "sqs"),
        ],
        "escape": [
            (r"\\(u[0-9A-Fa-f]{4}|[btnfrv~`\"'\\]|\r?\n)", String.Escape),
            (r"\\.", String.Escape),  # invalid escapes still look like escapes; the parser says why
        ],
        "dqs": [
            include("escape"),
            (r'[^"\\\r\n]+', String.Double),
            (r'"', String.Double, "#pop"),
            (r"(?=\r?\n)", Text, "#pop"),  # unterminated at end of line
        ],
        "sqs": [
            include("escape"),
            (r"[^'\\\r\n]+", String.Single),
            (r"'", String.Single, "#pop"),
            (r"(?=\r?\n)", Text, "#pop"),
        ],
        "rawstring": [
            (r"```", String.Backtick, "#pop"),
            (r"\{\{\s*" + _IDENT + r"\s*\}\}", String.Interpol),
            (r"[^`{]+|`|\{", String.Backtick),
        ],
        "rawstring3": [
            (r"'''", String.Heredoc, "#pop"),
            (r"[^']+|'", String.Heredoc),
        ],
        "placeholder": [
            (r"\s+", Whitespace),
            (r"last\b", Name.Builtin.Pseudo),
            (_IDENT, Name.Variable),
            (r"\}\}", String.Interpol, "#pop"),
            (r"(?=.)", Text, "#pop"),
        ],
        "toolpath": [
            (r"(" + _IDENT + r")(\s*)(\.)", bygroups(Name.Namespace, Whitespace, Punctuation)),
            (_IDENT, Name.Function, "#pop"),
            (r"(?=.|\n)", Text, "#pop"),
        ],
    }

    def analyse_text(text: str) -> float:  # type: ignore[misc,unused-ignore]  # noqa: N805 (no self: pygments)
        """Guess: high for text with NeuroScript's distinctive block keywords."""
        score = 0.0
        if "endfunc" in text or "endcommand" in text:
            score += 0.5
        if "func " in text and " means" in text:
            score += 0.3
        return min(score, 1.0)
