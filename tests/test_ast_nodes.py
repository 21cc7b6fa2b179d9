"""AST node classes (nslang.ast, issue 16 item 3): slotted, immutable, compared field by field, with a
dataclass-like repr; ``A.fields`` / ``A.replace`` in place of the dataclasses functions."""

from __future__ import annotations

import inspect

import pytest

from nslang import ast as A  # noqa: N812
from nslang.source import Span

S = Span("t.ns", 1, 2, 1, 5)
NODE_CLASSES = [c for c in vars(A).values() if isinstance(c, type) and issubclass(c, A.Node) and c is not A.Node]


def test_every_node_class_sets_exactly_its_annotated_fields() -> None:
    assert len(NODE_CLASSES) == 36
    for cls in NODE_CLASSES:
        params = list(inspect.signature(cls.__init__).parameters)[1:]
        assert tuple(params) == cls._fields == cls.__slots__ == cls.__match_args__, cls.__name__
        node = cls(*[f"v{i}" for i in range(len(params))])
        assert [getattr(node, f) for f in A.fields(node)] == [f"v{i}" for i in range(len(params))]
        assert not hasattr(node, "__dict__")


def test_nodes_are_immutable_and_compare_by_value() -> None:
    a = A.BinOp("+", A.Literal(1, S), A.Variable("x", S), S)
    b = A.BinOp("+", A.Literal(1, S), A.Variable("x", S), S)
    assert a == b and a != A.BinOp("-", a.left, a.right, S)
    assert A.And(a.left, a.right, S) != A.Or(a.left, a.right, S)  # same field names, other kind
    with pytest.raises(A.FrozenNodeError):
        a.op = "-"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del a.op
    with pytest.raises(TypeError):
        hash(a)
    assert repr(A.Literal(1, S)) == f"Literal(value=1, span={S!r})"


def test_defaults_keywords_and_replace() -> None:
    m = A.Must(A.Last(S), S)
    assert m.keyword == "must" and A.Must(value=A.Last(S), span=S, keyword="mustbe").keyword == "mustbe"
    moved = A.replace(m, span=Span("t.ns", 9, 1))
    assert moved.span.line == 9 and moved.value is m.value and moved.keyword == "must" and m.span is S
    with pytest.raises(TypeError):
        A.replace(m, nope=1)


def test_structural_pattern_matching() -> None:
    match A.BinOp("*", A.Literal(2, S), A.Literal(3, S), S):
        case A.BinOp("*", A.Literal(x), A.Literal(y)):
            assert (x, y) == (2, 3)
        case _:
            pytest.fail("no match")


def test_span_is_an_immutable_value() -> None:
    import copy
    import pickle

    s = Span("t.ns", 3, 4)
    assert s == Span("t.ns", 3, 4, 0, 0) and hash(s) == hash(Span("t.ns", 3, 4, 0, 0)) and s != Span("t.ns", 3, 5)
    assert repr(s) == "Span(source='t.ns', line=3, column=4, end_line=0, end_column=0)"
    assert s.replace(line=7) == Span("t.ns", 7, 4) and s.line == 3
    assert pickle.loads(pickle.dumps(s)) == s and copy.deepcopy(s) == s
    with pytest.raises(AttributeError):
        s.line = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.replace(row=1)
    match s:
        case Span(_, line, column):
            assert (line, column) == (3, 4)
