"""The parse cache's entry format: a :class:`~nslang.ast.Program` as ``marshal`` data, each procedure
body a separate blob decoded on its first use (issue 16 item 3).

An entry is ``MAGIC + crc32(payload) + len(payload) + payload`` (4 + 8 bytes, little-endian), the payload
a :func:`marshal.dumps` of plain tuples, lists, strings, numbers and ``bytes``:

- a node is a tuple ``(class id, field, field, …)``; a :class:`~nslang.source.Span` is ``(0, line,
  column, end_line, end_column)`` (the source name is the entry's, stored once);
- a tuple field (statements, arguments, metadata pairs…) is a list;
- the program is ``(source, metadata, procedures, event handlers, commands, span)`` where each procedure
  is ``(name, needs, optional, returns, metadata, span, body blob)`` and the body blob is the
  ``marshal.dumps`` of the encoded body.

Loading the entry of the 11,007-line parse_big benchmark builds 500 :class:`LazyProcedure` headers and no
statement node (pickling the whole tree made a cached run unpickle 46,544 nodes: 416 ms); a body is
decoded when the compiler (or anything else) first reads ``proc.body``. Entries live in nslang's
private cache directory (mode 0700, :mod:`nslang.parser`): ``marshal`` is not meant for data someone
else wrote. A truncated or damaged entry fails the length or CRC check and :func:`decode` returns None,
so the caller parses again; a leaf value of an unexpected type is rejected the same way.
"""

from __future__ import annotations

import _thread
import marshal
from binascii import crc32

from . import ast as A
from .source import Span

TYPE_CHECKING = False  # typing stays off the start-up path (issue 16 item 3)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

__all__ = ["LazyProcedure", "decode", "encode"]

MAGIC = b"nsAST\x02\n"

#: class id -> AST class; 0 is Span. Append only (a change of order needs a new MAGIC).
_CLASSES: tuple[Any, ...] = (
    Span, A.Literal, A.RawString, A.Placeholder, A.Variable, A.Last, A.BinOp, A.And, A.Or, A.UnaryOp,
    A.Index, A.ProcCall, A.ToolCall, A.Eval, A.ListLit, A.MapLit, A.Field, A.LValue, A.Set, A.Call,
    A.Return, A.Emit, A.Must, A.Fail, A.ClearError, A.ClearEvent, A.Ask, A.Break, A.Continue, A.If,
    A.While, A.ForEach, A.OnError, A.EventHandler, A.CommandBlock,
)
_IDS = {cls: i for i, cls in enumerate(_CLASSES)}
_FIELDS = {cls: cls._fields for cls in _CLASSES if cls is not Span}
_LEAVES = (str, int, float, bool, type(None))
_BODY = A.Procedure.__dict__["body"]  # the slot of Procedure.body (a member descriptor)
_DECODING = _thread.allocate_lock()


class LazyProcedure(A.Procedure):
    """A :class:`~nslang.ast.Procedure` whose ``body`` is decoded from the cache on first access.

    Everything else (name, parameters, metadata, span) is set when the entry is loaded. Reading
    ``body`` decodes it once and keeps it (the node stays immutable: it can be set only once).
    """

    __slots__ = ("_blob", "_source")
    _blob: bytes | None
    _source: str

    @property
    def body(self) -> tuple[A.Stmt, ...]:
        try:
            return _BODY.__get__(self)  # type: ignore[no-any-return]
        except AttributeError:
            pass
        with _DECODING:  # threads reading it first get the same nodes
            try:
                return _BODY.__get__(self)  # type: ignore[no-any-return]
            except AttributeError:
                body = _decode(marshal.loads(self._blob or b""), self._source)
                _BODY.__set__(self, body)
                object.__setattr__(self, "_blob", None)  # decoded: the bytes are not needed any more
                return body  # type: ignore[no-any-return]

    @body.setter
    def body(self, value: tuple[A.Stmt, ...]) -> None:  # set by __init__ (A.replace builds a new node)
        _BODY.__set__(self, value)

    def __repr__(self) -> str:  # the same text as a parsed Procedure's
        return "Procedure" + super().__repr__().removeprefix("LazyProcedure")


# ---- encoding (on a cache miss) -------------------------------------------------------------------


def _encode(x: Any) -> Any:
    t = type(x)
    if t is tuple:
        return [_encode(v) for v in x]
    if t is Span:
        return (0, x.line, x.column, x.end_line, x.end_column)
    cid = _IDS.get(t)
    if cid is not None:
        return (cid, *[_encode(getattr(x, f)) for f in _FIELDS[t]])
    if isinstance(x, _LEAVES):
        return x
    raise TypeError(f"cannot cache a {t.__name__} in an AST")


def encode(prog: A.Program) -> bytes:
    """The cache entry of ``prog`` (bytes, with MAGIC and the CRC header)."""
    procs = [(p.name, list(p.needs), list(p.optional), list(p.returns), _encode(p.metadata), _encode(p.span),
              marshal.dumps(_encode(p.body))) for p in prog.procedures]
    payload = marshal.dumps((prog.source, _encode(prog.metadata), procs, _encode(prog.event_handlers),
                             _encode(prog.commands), _encode(prog.span)))
    return MAGIC + crc32(payload).to_bytes(4, "little") + len(payload).to_bytes(8, "little") + payload


# ---- decoding (on a cache hit) --------------------------------------------------------------------


def _decode(x: Any, source: str) -> Any:
    t = type(x)
    if t is list:
        return tuple([_decode(v, source) for v in x])
    if t is tuple:
        cid = x[0]
        if cid == 0:
            return Span(source, *x[1:])
        return _CLASSES[cid](*[_decode(v, source) for v in x[1:]])
    if t in _LEAVES:
        return x
    raise ValueError(f"unexpected {t.__name__} in a cached AST")


def _lazy(rec: tuple[object, ...], source: str) -> LazyProcedure:
    name, needs, optional, returns, metadata, span, blob = rec
    if type(name) is not str or type(blob) is not bytes:
        raise ValueError("bad procedure record in a cached AST")
    p = LazyProcedure.__new__(LazyProcedure)
    setattr_ = object.__setattr__
    setattr_(p, "name", name)
    setattr_(p, "needs", _decode(needs, source))
    setattr_(p, "optional", _decode(optional, source))
    setattr_(p, "returns", _decode(returns, source))
    setattr_(p, "metadata", _decode(metadata, source))
    setattr_(p, "span", _decode(span, source))
    setattr_(p, "_blob", blob)
    setattr_(p, "_source", source)
    return p


def decode(data: bytes) -> A.Program | None:
    """The program of a cache entry, procedure bodies lazy; None when the entry is damaged (wrong MAGIC,
    length or CRC, or content that is not an encoded program)."""
    head = len(MAGIC) + 12
    if data[: len(MAGIC)] != MAGIC or len(data) < head:
        return None
    payload = memoryview(data)[head:]
    if (int.from_bytes(data[len(MAGIC) + 4 : head], "little") != len(payload)
            or int.from_bytes(data[len(MAGIC) : len(MAGIC) + 4], "little") != crc32(payload)):
        return None
    try:
        source, metadata, procs, events, commands, span = marshal.loads(payload)
        if type(source) is not str:
            return None
        return A.Program(source, _decode(metadata, source), tuple([_lazy(p, source) for p in procs]),
                         _decode(events, source), _decode(commands, source), _decode(span, source))
    except (ValueError, TypeError, IndexError, EOFError, AttributeError, RecursionError):
        return None
