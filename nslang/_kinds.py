"""Kinds: what the compiler proves about the values of variables and expressions (part of the compiler).

A kind is ``"int"``, ``"str"``, ``"nstr"`` (a string with no numeric reading: ``+`` with it always
concatenates, ``==`` compares the text) or ``"bool"``; the generator (:mod:`nslang.compiler`) drops the
type tests of the operators on values of a known kind (issue 16 item 2, "ints inferred through
loops"). :func:`infer_kinds` finds the local variables whose every assignment gives one kind and that
are read only where certainly assigned; :func:`param_uses` picks the parameters worth checking once on
entry; :func:`recur_kind` types a self-recursive call in a procedure's checked copy.
"""

from __future__ import annotations

from . import ast as A
from . import values as V
from ._astfacts import walk

TYPE_CHECKING = False  # typing stays off the start-up path (issue 16 item 3)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

__all__ = ["BOOL", "INT", "NSTR", "STR", "STRS", "concat_kind", "infer_kinds", "literal_kind", "maybe_str",
           "param_uses", "plain_str", "recur_kind"]

INT = "int"
STR = "str"
#: a string with no numeric reading (``+`` with it always concatenates; ``==`` is string equality)
NSTR = "nstr"
STRS = (STR, NSTR)
BOOL = "bool"
#: the last characters a string with a numeric reading can have (digits, ".", inf, infinity, nan)
_NUM_END = frozenset("0123456789.fFyYnN")


def literal_kind(v: Any) -> str | None:
    """The kind of a constant (None: no kind the generator uses)."""
    t = type(v)
    if t is str:
        return NSTR if V.string_number(v) is None else STR
    return INT if t is int else BOOL if t is bool else None


def concat_kind(suffix: str) -> str:
    """The kind of ``x + suffix`` for a string literal ``suffix`` with no numeric reading."""
    return NSTR if suffix and suffix[-1] not in _NUM_END else STR


def plain_str(e: A.Expr) -> str | None:
    """The text of a string literal that has no numeric reading (``+`` with it always concatenates)."""
    if isinstance(e, A.Literal) and type(e.value) is str and V.string_number(e.value) is None:
        return e.value
    return None


def maybe_str(kind: str | None, e: A.Expr) -> bool:
    """Can this operand be a string at run time (and is it not a Python literal in the source)?"""
    return (kind is None or kind in STRS) and not isinstance(e, A.Literal)


# =============================================================================================
# Kinds of local variables and parameters


def infer_kinds(body: tuple[A.Stmt, ...], params: set[str], locals_: set[str], ints: set[str],
                 strs: set[str], recur: Any = None) -> tuple[dict[str, str], set[str | None]]:
    """Kinds of the variables of a body without ``on error``: those whose every assignment gives an
    int (or a string, or a string with no numeric reading) and that are read only where certainly
    assigned. The compiler then drops the type tests on them (issue 16 item 2: "ints inferred
    through loops"). ``locals_``: the variables it assigns (not parameters); ``ints``/``strs``:
    parameters taken to be ints/strings on entry (checked there); ``recur``: the kind a self-recursive
    call gives (see :func:`recur_kind`). Returns the kinds and the kinds of the ``return`` values.

    One monotone pass per kind: start from every candidate and drop those with an assignment of
    another kind until none changes; later kinds see the variables earlier ones settled.
    """
    known: dict[str, str] = {}
    for kind, assume in ((INT, ints), (NSTR, strs), (STR, strs)):
        cands = {n: kind for n in (locals_ | assume) if n not in known}
        while True:
            found: dict[str, set[str | None]] = {}
            KindWalk({**known, **cands}, found, recur).block(body, set(params))
            new = {n: kind for n in cands if all(fits(k, kind) for k in found.get(n, ()))}
            if new == cands:
                break
            cands = new
        known.update(cands)
    walk = KindWalk(known, {}, recur)
    walk.block(body, set(params))
    return known, walk.returns


def recur_kind(recur: Any, name: str, arg_kinds: list[str | None]) -> str | None:
    """The kind of a call to ``name`` with arguments of ``arg_kinds`` when it is the procedure whose
    checked copy is being written (``recur``) and the arguments pass its entry checks."""
    if recur is None or name != recur[0] or len(arg_kinds) != len(recur[1]):
        return None
    entry = recur[2]
    if all(fits(k, entry[p]) for p, k in zip(recur[1], arg_kinds) if p in entry):
        return recur[3]  # type: ignore[no-any-return]
    return None


def fits(k: str | None, kind: str) -> bool:
    return k == kind or (kind == STR and k == NSTR)


def param_uses(body: tuple[A.Stmt, ...], name: str, params: tuple[str, ...]) -> tuple[set[str], set[str]]:
    """Parameters worth a check on entry: those a body uses, inside a loop or anywhere in a procedure
    that calls itself, as numbers (arithmetic, comparison, index) and, of the others, those it uses as
    strings (``==``, ``for each`` over them). A body without such uses is written out once."""
    recursive = any(isinstance(n, A.ProcCall) and n.name == name for n in walk(body))
    scope: Any = body if recursive else [s for s in walk(body) if isinstance(s, (A.While, A.ForEach))]
    nums: set[str] = set()
    strs: set[str] = set()
    for n in walk(scope):
        if isinstance(n, A.BinOp):
            names = {x.name for x in (n.left, n.right) if isinstance(x, A.Variable)}
            (strs if n.op in ("==", "!=") else nums).update(names)
        elif isinstance(n, A.Index) and isinstance(n.index, A.Variable):
            nums.add(n.index.name)
        elif isinstance(n, A.ForEach) and isinstance(n.iterable, A.Variable):
            strs.add(n.iterable.name)
    p = set(params)
    return nums & p, (strs - nums) & p


class KindWalk:
    """One pass of :func:`infer_kinds`: the kinds assigned to each variable, with the same definite
    assignment rules as :class:`_Gen` (an uncertain read may be a global of any type)."""

    def __init__(self, kinds: dict[str, str], found: dict[str, set[str | None]], recur: Any = None) -> None:
        self.kinds = kinds
        self.found = found
        self.recur = recur
        self.returns: set[str | None] = set()

    def note(self, name: str, kind: str | None) -> None:
        self.found.setdefault(name, set()).add(kind)

    def kind(self, e: A.Expr, defined: set[str]) -> str | None:
        """The kind the generator gives ``e`` (the same rules as :meth:`_Gen.expr`)."""
        if isinstance(e, A.Literal):
            return literal_kind(e.value)
        if isinstance(e, A.Variable):
            return self.kinds.get(e.name) if e.name in defined else None
        if isinstance(e, A.BinOp):
            ka, kb = self.kind(e.left, defined), self.kind(e.right, defined)
            if e.op in ("+", "-", "*", "%") and ka == INT and kb == INT:
                return INT
            if e.op == "+":
                suffix = plain_str(e.right)
                if suffix is not None:
                    return concat_kind(suffix)
                if plain_str(e.left) is not None or ka == NSTR:
                    return STR
            return None
        if isinstance(e, A.ProcCall):
            if e.name.lower() == "len" and len(e.args) == 1:
                return INT
            return recur_kind(self.recur, e.name, [self.kind(a, defined) for a in e.args])
        if isinstance(e, A.UnaryOp) and e.op == "-" and not isinstance(e.operand, A.Literal):
            return INT if self.kind(e.operand, defined) == INT else None
        if isinstance(e, A.UnaryOp) and e.op == "-":
            operand = e.operand
            if isinstance(operand, A.Literal) and type(operand.value) in (int, float):
                return literal_kind(-operand.value)
            return None
        if isinstance(e, A.RawString) and (not e.interpolate or "{{" not in e.text):
            return literal_kind(e.text)
        return None

    def block(self, stmts: tuple[A.Stmt, ...], defined: set[str]) -> set[str]:
        for s in stmts:
            defined = self.stmt(s, defined)
        return defined

    def stmt(self, s: A.Stmt, defined: set[str]) -> set[str]:
        """The names certainly assigned after ``s``; ``defined`` (owned by the caller's block) grows in
        place (a copy per assignment made long procedures quadratic to compile)."""
        if isinstance(s, A.Return):
            self.returns.add(self.kind(s.values[0], defined) if len(s.values) == 1 else None)
            return defined
        if isinstance(s, A.Set):
            k = self.kind(s.value, defined) if len(s.targets) == 1 else None
            for t in s.targets:
                self.note(t.name, None if t.path else k)
            defined.update(t.name for t in s.targets)
            return defined
        if isinstance(s, A.Ask):
            if s.target is not None:
                self.note(s.target.name, None)
                defined.add(s.target.name)
            return defined
        if isinstance(s, A.If):
            a = self.block(s.body, set(defined))
            b = self.block(s.orelse, set(defined)) if s.orelse else defined
            return a & b
        if isinstance(s, A.While):
            self.block(s.body, set(defined))
            return defined
        if isinstance(s, A.ForEach):
            self.note(s.var, STR if self.kind(s.iterable, defined) in STRS else None)
            self.block(s.body, defined | {s.var})
            return defined
        return defined
