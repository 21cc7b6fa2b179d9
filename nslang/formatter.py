"""``nslang fmt``: canonical layout that keeps the author's comments, blank lines and continuations.

The AST has no comments, so :func:`nslang.unparse.unparse` alone would drop them. This module walks the
AST in source order and lays each statement out as :mod:`nslang.unparse` does (two-space indentation,
canonical spacing), while it takes from the source text what the AST leaves out (issue 15 item 2):

* **comments** (``#``, ``--``, ``//``): a comment alone on its line stays on its own line, indented
  like the code that follows it; a comment after code stays after that code (two spaces before it);
* **blank lines**: a run of blank lines between statements becomes one blank line (none at the start
  or end of a block; exactly one between top-level items);
* **continuations**: a statement written over several lines with ``\\`` (or holding a multi-line raw
  string) is kept as written, only its first line is re-indented;
* **order**: top-level items stay in source order, and an ``on event`` written inside a procedure stays
  there (the parser hoists it either way).

Every result is checked before it is returned: it must parse to the same AST (positions aside) and
hold the same comments in the same order, else :class:`FormatError` is raised and nothing is
written. Formatting a formatted text changes nothing.

>>> print(format_source("func f() means  # entry\\n set x=1 -- one\\n\\n\\n emit x\\nendfunc"), end="")
func f() means  # entry
  set x = 1  -- one
<BLANKLINE>
  emit x
endfunc
"""

from __future__ import annotations

import re
from typing import Any

from . import ast as A
from .errors import NSError
from .parser import parse
from .source import Span
from .unparse import _stmt, _string, unparse_expr

__all__ = ["FormatError", "format_source"]

_LINES = re.compile(r"\r\n|\r|\n")
_HOISTABLE = (A.If, A.While, A.ForEach, A.OnError, A.EventHandler)


class FormatError(NSError):
    """Raised when a file cannot be laid out without changing its meaning or losing a comment (a
    formatter bug: the file is left as it is)."""


def _comments(text: str) -> list[tuple[int, int, str]]:
    """``(line, column0, text)`` of every comment, in order (the lexer of :mod:`nslang.highlight`)."""
    from pygments.token import Comment  # type: ignore[import-untyped,unused-ignore]

    from .highlight import NeuroScriptLexer

    starts = [0] + [m.end() for m in _LINES.finditer(text)]
    out = []
    line = 0
    for offset, tok, value in NeuroScriptLexer().get_tokens_unprocessed(text):
        if tok in Comment.Single or tok is Comment.Single:
            while line + 1 < len(starts) and starts[line + 1] <= offset:
                line += 1
            out.append((line + 1, offset - starts[line], value.rstrip()))
    return out


def _shape(node: Any) -> Any:
    """An AST without positions, for "same meaning" checks (numbers keep their type)."""
    if isinstance(node, Span):
        return None
    if isinstance(node, (tuple, list)):
        return tuple(_shape(x) for x in node)
    if isinstance(node, A.Node):
        return (type(node).__name__,) + tuple(
            _shape(getattr(node, f)) for f in A.fields(node) if f not in ("span", "source"))
    if isinstance(node, (bool, int, float)):
        return (type(node).__name__, node)
    return node


class _Layout:
    """One formatting pass over one source: output lines, each anchored to its source line."""

    def __init__(self, text: str, prog: A.Program) -> None:
        self.prog = prog
        self.lines = _LINES.split(text)
        if self.lines and self.lines[-1] == "":
            self.lines.pop()
        self.comment_at: dict[int, tuple[int, str]] = {ln: (col, t) for ln, col, t in _comments(text)}
        self.used: set[int] = set()  # lines whose comment is already in the output
        self.out: list[tuple[str, int | None]] = []
        self.cursor = 0  # last source line laid out
        self.pending_blank = False
        self.block_start = True
        self.hoisted = [h for h in prog.event_handlers
                        if any(p.span.line < h.span.line <= p.span.end_line for p in prog.procedures)]

    # -- source lines -----------------------------------------------------------------------------

    def code(self, ln: int) -> str:
        """Line ``ln`` without its comment, stripped."""
        text = self.lines[ln - 1] if 0 < ln <= len(self.lines) else ""
        c = self.comment_at.get(ln)
        return (text[:c[0]] if c else text).strip()

    def extent(self, first: int, last: int) -> int:
        """The last physical line of a logical line that starts at ``first`` and reaches ``last``."""
        ln = max(first, last)
        while ln < len(self.lines) and self.lines[ln - 1].endswith("\\") and ln not in self.comment_at:
            ln += 1
        return ln

    # -- output -----------------------------------------------------------------------------------

    def put(self, text: str, anchor: int | None) -> None:
        if self.pending_blank and not self.block_start:
            self.out.append(("", None))
        self.pending_blank = False
        self.block_start = False
        self.out.append((text.rstrip(), anchor))

    def gap(self, until: int, ind: str, closing: bool = False) -> None:
        """Lay out the lines between the cursor and ``until``: comments, metadata, blank lines."""
        ln = self.cursor + 1
        while ln < until:
            code = self.code(ln)
            if code.startswith("::"):  # metadata, kept as written (with its continuation lines)
                end = self.extent(ln, ln)
                self.put(ind + self.lines[ln - 1].strip(), ln)
                for k in range(ln + 1, end + 1):
                    self.out.append((self.lines[k - 1], k))
                self.used.update(range(ln, end + 1))
                ln = end + 1
                continue
            if code:
                raise FormatError(f"line {ln}: code the formatter did not place: {code[:40]!r}")
            if ln in self.comment_at:
                self.put(ind + self.comment_at[ln][1], ln)
                self.used.add(ln)
            else:
                self.pending_blank = True
            ln += 1
        self.cursor = max(self.cursor, until - 1)
        if closing:
            self.pending_blank = False

    def piece(self, first: int, last: int, ind: str, canonical: str) -> None:
        """A logical line: canonical text when it fits one source line, else the source lines."""
        self.gap(first, ind)
        end = self.extent(first, last)
        if end == first:
            self.put(ind + canonical, first)
        else:
            self.put(ind + self.lines[first - 1].lstrip(), first)
            for k in range(first + 1, end + 1):
                text = self.lines[k - 1]
                c = self.comment_at.get(k)
                self.out.append(((text[:c[0]] if c else text).rstrip(), k))
        self.cursor = end

    def closer(self, ln: int, ind: str, body_ind: str, word: str) -> None:
        self.gap(ln, body_ind, closing=True)
        self.put(ind + word, ln)
        self.cursor = ln

    # -- the AST ----------------------------------------------------------------------------------

    def body(self, stmts: tuple[A.Stmt, ...], ind: str, within: tuple[int, int]) -> None:
        items: list[Any] = list(stmts)
        for h in self.hoisted:
            if within[0] < h.span.line < within[1] and not any(
                    s.span.line <= h.span.line <= s.span.end_line for s in stmts if isinstance(s, _HOISTABLE)):
                items.append(h)
        items.sort(key=lambda s: s.span.line)
        self.block_start = True
        for s in items:
            self.stmt(s, ind)

    def stmt(self, s: Any, ind: str) -> None:
        sp = s.span
        inner = ind + "  "
        if isinstance(s, A.If):
            self.piece(sp.line, s.cond.span.end_line, ind, f"if {unparse_expr(s.cond)}")
            self.body(s.body, inner, (sp.line, sp.end_line))
            if s.orelse:
                start = s.orelse[0].span.line
                els = next((ln for ln in range(self.cursor + 1, start) if self.code(ln) == "else"), None)
                if els is None:
                    raise FormatError(f"line {sp.line}: 'else' not found")
                self.closer(els, ind, inner, "else")
                self.body(s.orelse, inner, (els, sp.end_line))
            self.closer(sp.end_line, ind, inner, "endif")
        elif isinstance(s, A.While):
            self.piece(sp.line, s.cond.span.end_line, ind, f"while {unparse_expr(s.cond)}")
            self.body(s.body, inner, (sp.line, sp.end_line))
            self.closer(sp.end_line, ind, inner, "endwhile")
        elif isinstance(s, A.ForEach):
            self.piece(sp.line, s.iterable.span.end_line, ind, f"for each {s.var} in {unparse_expr(s.iterable)}")
            self.body(s.body, inner, (sp.line, sp.end_line))
            self.closer(sp.end_line, ind, inner, "endfor")
        elif isinstance(s, A.OnError):
            self.piece(sp.line, sp.line, ind, "on error do")
            self.body(s.body, inner, (sp.line, sp.end_line))
            self.closer(sp.end_line, ind, inner, "endon")
        elif isinstance(s, A.EventHandler):
            head = f"on event {unparse_expr(s.event)}"
            if s.handler_name is not None:
                head += f" named {_string(s.handler_name)}"
            if s.var is not None:
                head += f" as {s.var}"
            self.piece(sp.line, s.event.span.end_line, ind, head + " do")
            self.body(s.body, inner, (sp.line, sp.end_line))
            self.closer(sp.end_line, ind, inner, "endon")
        else:
            text = _stmt(s, 0)
            self.piece(sp.line, sp.end_line, ind, text[0])

    def item(self, it: Any) -> None:
        sp = it.span
        if isinstance(it, A.Procedure):
            clauses = [f"{kw} {', '.join(names)}" for kw, names in
                       (("needs", it.needs), ("optional", it.optional), ("returns", it.returns)) if names]
            self.piece(sp.line, sp.line, "", f"func {it.name}({' '.join(clauses)}) means")
        elif isinstance(it, A.CommandBlock):
            self.piece(sp.line, sp.line, "", "command")
        else:
            self.stmt(it, "")
            return
        self.block_start = True
        self.body(it.body, "  ", (sp.line, sp.end_line))
        self.closer(sp.end_line, "", "  ", "endfunc" if isinstance(it, A.Procedure) else "endcommand")

    def run(self) -> str:
        prog = self.prog
        items: list[Any] = [*prog.procedures, *(h for h in prog.event_handlers if h not in self.hoisted),
                            *prog.commands]
        items.sort(key=lambda it: it.span.line)
        for i, it in enumerate(items):
            if i:
                self.pending_blank, self.block_start = True, False
            self.item(it)
        self.gap(len(self.lines) + 1, "", closing=True)
        last_out: dict[int, int] = {}
        for i, (_text, anchor) in enumerate(self.out):
            if anchor is not None:
                last_out[anchor] = i
        lines = [text for text, _a in self.out]
        for ln, (_col, comment) in self.comment_at.items():
            if ln in self.used:
                continue
            if ln not in last_out:
                raise FormatError(f"line {ln}: comment {comment[:40]!r} has no place")
            i = last_out[ln]
            lines[i] = f"{lines[i]}  {comment}" if lines[i].strip() else lines[i] + comment
        return "".join(line + "\n" for line in lines)


def format_source(text: str, name: str = "<fmt>") -> str:
    """``text`` in canonical layout, comments, blank-line groups and continuations kept (see module doc).

    Raises:
        NSSyntaxError: ``text`` does not parse (code 15).
        FormatError: the layout would change the AST or lose a comment (the text is not formatted).
    """
    prog = parse(text, name=name, use_cache=False)
    result = _Layout(text, prog).run()
    again = parse(result, name=name, use_cache=False)
    if _shape(again) != _shape(prog):
        raise FormatError(f"{name}: formatting would change the program; left as it is")
    if [c for _l, _c, c in _comments(result)] != [c for _l, _c, c in _comments(text)]:
        raise FormatError(f"{name}: formatting would lose or reorder a comment; left as it is")
    return result
