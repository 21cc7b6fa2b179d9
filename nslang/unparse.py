"""AST → canonical NeuroScript text (the formatter behind ``nslang fmt``, and expression echo in errors).

Canonical form: two-space indentation, one blank line between top-level items, signatures in
parentheses, minimal parentheses in expressions (by precedence), strings double-quoted with escapes.
``parse(unparse(parse(x)))`` gives the same AST as ``parse(x)`` (up to positions).

>>> from nslang.parser import parse
>>> print(unparse(parse('func  f( needs a ) means\\n emit a+1\\nendfunc', use_cache=False)), end="")
func f(needs a) means
  emit a + 1
endfunc
"""

from __future__ import annotations

from typing import Any

from . import ast as A
from .values import format_number

__all__ = ["unparse", "unparse_expr"]

# binding power of each binary operator (higher binds tighter), spec §4.1
_PREC = {"or": 1, "and": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6, "<": 7, "<=": 7, ">": 7, ">=": 7,
         "+": 8, "-": 8, "*": 9, "/": 9, "%": 9}
_UNARY = 10
_POW = 11
_POSTFIX = 12

_ESC = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f", "\v": "\\v"}


def _string(s: str) -> str:
    out = []
    for ch in s:
        if ch in _ESC:
            out.append(_ESC[ch])
        elif ord(ch) < 32 or 0xD800 <= ord(ch) < 0xE000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _literal(v: Any) -> str:
    if v is None:
        return "nil"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        if v == float("inf"):
            return "1e999"  # what a too-large literal (1e999, a 5000-digit integer) parsed to; reads back the same
        if isinstance(v, float) and (v != v or v == float("-inf")):
            raise ValueError("non-finite literal")
        if isinstance(v, float) and "e" in repr(v):
            return repr(v)  # 1e+21, 5e-07: scientific notation reads back as the same float
        text = format_number(v)
        if isinstance(v, float) and "." not in text and "e" not in text and abs(v) < 1e16:
            return text + ".0" if v.is_integer() else text
        return text
    return _string(str(v))


def _prec(e: A.Expr) -> int:
    if isinstance(e, A.Or):
        return 1
    if isinstance(e, A.And):
        return 2
    if isinstance(e, A.BinOp):
        return _POW if e.op == "**" else _PREC[e.op]
    if isinstance(e, A.UnaryOp):
        return _UNARY
    if isinstance(e, A.Literal) and isinstance(e.value, (int, float)) and not isinstance(e.value, bool) \
            and e.value < 0:
        return _UNARY
    return _POSTFIX + 1


def _wrap(e: A.Expr, min_prec: int) -> str:
    s = unparse_expr(e)
    return f"({s})" if _prec(e) < min_prec else s


def unparse_expr(e: A.Expr) -> str:
    """One expression as source text."""
    if isinstance(e, A.Literal):
        return _literal(e.value)
    if isinstance(e, A.RawString):
        return f"```{e.text}```" if e.interpolate else f"'''{e.text}'''"
    if isinstance(e, A.Placeholder):
        return "{{" + e.name + "}}"
    if isinstance(e, A.Variable):
        return e.name
    if isinstance(e, A.Last):
        return "last"
    if isinstance(e, (A.And, A.Or)):
        op = "and" if isinstance(e, A.And) else "or"
        p = _prec(e)
        return f"{_wrap(e.left, p)} {op} {_wrap(e.right, p + 1)}"
    if isinstance(e, A.BinOp):
        if e.op == "**":
            # right-associative; the right operand may not start with a unary operator
            right = _wrap(e.right, _POW)
            if isinstance(e.right, A.UnaryOp) or right.startswith("-"):
                right = f"({unparse_expr(e.right)})"
            return f"{_wrap(e.left, _POSTFIX)} ** {right}"
        p = _PREC[e.op]
        return f"{_wrap(e.left, p)} {e.op} {_wrap(e.right, p + 1)}"
    if isinstance(e, A.UnaryOp):
        inner = _wrap(e.operand, _UNARY)
        sep = "" if e.op in ("-", "~") else " "
        if e.op == "-" and inner.startswith("-"):
            inner = f"({inner})"
        return f"{e.op}{sep}{inner}"
    if isinstance(e, A.Index):
        return f"{_wrap(e.target, _POSTFIX)}[{unparse_expr(e.index)}]"
    if isinstance(e, A.ProcCall):
        return f"{e.name}({', '.join(unparse_expr(a) for a in e.args)})"
    if isinstance(e, A.ToolCall):
        args = [unparse_expr(a) for a in e.args] + [f"{k}: {unparse_expr(v)}" for k, v in e.named]
        return f"tool.{e.path}({', '.join(args)})"
    if isinstance(e, A.Eval):
        return f"eval({unparse_expr(e.expr)})"
    if isinstance(e, A.ListLit):
        return "[" + ", ".join(unparse_expr(x) for x in e.items) + "]"
    if isinstance(e, A.MapLit):
        inner = ", ".join(f"{unparse_expr(k)}: {unparse_expr(v)}" for k, v in e.entries)
        return "{" + inner + "}" if not inner.startswith("{") else "{ " + inner + "}"
    raise TypeError(f"not an expression: {type(e).__name__}")  # pragma: no cover


def _lvalue(lv: A.LValue) -> str:
    out = [lv.name]
    for step in lv.path:
        out.append(f".{step.name}" if isinstance(step, A.Field) else f"[{unparse_expr(step)}]")
    return "".join(out)


def _meta(md: tuple[tuple[str, str], ...], ind: str) -> list[str]:
    return [f"{ind}:: {k}: {v}" if v else f"{ind}:: {k}" for k, v in md]


def _stmts(body: tuple[A.Stmt, ...], depth: int) -> list[str]:
    out: list[str] = []
    for s in body:
        out.extend(_stmt(s, depth))
    return out


def _stmt(s: A.Stmt, depth: int) -> list[str]:
    ind = "  " * depth
    if isinstance(s, A.Set):
        return [f"{ind}set {', '.join(_lvalue(t) for t in s.targets)} = {unparse_expr(s.value)}"]
    if isinstance(s, A.Call):
        return [f"{ind}call {unparse_expr(s.call)}"]
    if isinstance(s, A.Return):
        vals = ", ".join(unparse_expr(v) for v in s.values)
        return [f"{ind}return{' ' + vals if vals else ''}"]
    if isinstance(s, A.Emit):
        return [f"{ind}emit {unparse_expr(s.value)}"]
    if isinstance(s, A.Must):
        return [f"{ind}{s.keyword} {unparse_expr(s.value)}"]
    if isinstance(s, A.Fail):
        return [f"{ind}fail{' ' + unparse_expr(s.value) if s.value is not None else ''}"]
    if isinstance(s, A.ClearError):
        return [f"{ind}clear_error"]
    if isinstance(s, A.ClearEvent):
        what = f"named {_string(s.handler_name)}" if s.handler_name is not None else unparse_expr(s.event)  # type: ignore[arg-type]
        return [f"{ind}clear event {what}"]
    if isinstance(s, A.Ask):
        parts = [f"{ind}ask "]
        if s.worker is not None:
            parts.append(unparse_expr(s.worker) + ", ")
        parts.append(unparse_expr(s.prompt))
        if s.options is not None:
            parts.append(" with " + unparse_expr(s.options))
        if s.target is not None:
            parts.append(" into " + _lvalue(s.target))
        return ["".join(parts)]
    if isinstance(s, A.Break):
        return [f"{ind}break"]
    if isinstance(s, A.Continue):
        return [f"{ind}continue"]
    if isinstance(s, A.If):
        out = [f"{ind}if {unparse_expr(s.cond)}", *_stmts(s.body, depth + 1)]
        if s.orelse:
            out += [f"{ind}else", *_stmts(s.orelse, depth + 1)]
        return out + [f"{ind}endif"]
    if isinstance(s, A.While):
        return [f"{ind}while {unparse_expr(s.cond)}", *_stmts(s.body, depth + 1), f"{ind}endwhile"]
    if isinstance(s, A.ForEach):
        return [f"{ind}for each {s.var} in {unparse_expr(s.iterable)}", *_stmts(s.body, depth + 1),
                f"{ind}endfor"]
    if isinstance(s, A.OnError):
        return [f"{ind}on error do", *_stmts(s.body, depth + 1), f"{ind}endon"]
    raise TypeError(f"not a statement: {type(s).__name__}")  # pragma: no cover


def _event(h: A.EventHandler) -> list[str]:
    head = f"on event {unparse_expr(h.event)}"
    if h.handler_name is not None:
        head += f" named {_string(h.handler_name)}"
    if h.var is not None:
        head += f" as {h.var}"
    return [head + " do", *_stmts(h.body, 1), "endon"]


def unparse(prog: A.Program) -> str:
    """A whole program in canonical form (ends with a newline)."""
    blocks: list[list[str]] = []
    if prog.metadata:
        blocks.append(_meta(prog.metadata, ""))
    for p in prog.procedures:
        clauses = []
        if p.needs:
            clauses.append("needs " + ", ".join(p.needs))
        if p.optional:
            clauses.append("optional " + ", ".join(p.optional))
        if p.returns:
            clauses.append("returns " + ", ".join(p.returns))
        blocks.append([f"func {p.name}({' '.join(clauses)}) means", *_meta(p.metadata, "  "),
                       *_stmts(p.body, 1), "endfunc"])
    for h in prog.event_handlers:
        blocks.append(_event(h))
    for c in prog.commands:
        blocks.append(["command", *_meta(c.metadata, "  "), *_stmts(c.body, 1), "endcommand"])
    return "\n\n".join("\n".join(b) for b in blocks) + "\n" if blocks else ""
