"""Source positions and the one function that renders an error with a caret under it.

Every AST node and every user-facing error carries a :class:`Span`. The text of each loaded source is
kept in a small registry (keyed by source name) so errors can echo the offending line.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing stays off the start-up path (issue 16 item 3)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

    from .errors import NSError

__all__ = ["Span", "remember_source", "render_error", "source_line"]


class Span:
    """A region of one source: 1-based line and column of its start and end (``end_line`` and
    ``end_column`` 0 when unknown).

    Immutable, hashable, compared field by field, with a dataclass-like ``repr``: what
    ``@dataclass(frozen=True, slots=True)`` gave, without generating six methods with ``exec`` at
    every start-up (~1.3 ms, issue 16 item 3). :meth:`replace` stands in for ``dataclasses.replace``.
    """

    __slots__ = ("source", "line", "column", "end_line", "end_column")
    __match_args__ = __slots__

    source: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __init__(self, source: str, line: int, column: int, end_line: int = 0, end_column: int = 0) -> None:
        _set = object.__setattr__
        _set(self, "source", source)
        _set(self, "line", line)
        _set(self, "column", column)
        _set(self, "end_line", end_line)
        _set(self, "end_column", end_column)

    def _key(self) -> tuple[str, int, int, int, int]:
        return (self.source, self.line, self.column, self.end_line, self.end_column)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"Span(source={self.source!r}, line={self.line!r}, column={self.column!r}, "
                f"end_line={self.end_line!r}, end_column={self.end_column!r})")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r} of a Span")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} of a Span")

    def __reduce__(self) -> tuple[type[Span], tuple[str, int, int, int, int]]:
        return (Span, self._key())

    def replace(self, **changes: Any) -> Span:
        """A copy with some fields changed, e.g. ``span.replace(line=3)``.

        Raises:
            TypeError: a name in ``changes`` is not a field.
        """
        return Span(**{**dict(zip(self.__slots__, self._key())), **changes})

    def location(self) -> str:
        """``file:line:col``."""
        return f"{self.source}:{self.line}:{self.column}"


# Source name -> text, for echoing lines in error messages. Bounded: sources are few per process.
_SOURCES: dict[str, str] = {}


def remember_source(name: str, text: str) -> None:
    """Keep ``text`` so errors in source ``name`` can show their line."""
    _SOURCES[name] = text


def source_line(span: Span) -> str | None:
    """The physical line ``span`` starts on, or None when the text is not known."""
    text = _SOURCES.get(span.source)
    if text is None:
        return None
    lines = text.splitlines()
    if 1 <= span.line <= len(lines):
        return lines[span.line - 1]
    return None


def render_error(err: NSError) -> str:
    """Render an error for a person::

        error 9 (KeyNotFound): variable 'x' not found
          --> script.ns:3:8
           |
         3 |   emit x + 1
           |        ^
        call stack (innermost first):
          in helper, called at script.ns:10:3
    """
    out = [f"error {err.code} ({err.code_name}): {err.message}"]
    span = err.span
    if span is not None:
        out.append(f"  --> {span.location()}")
        line = source_line(span)
        if line is not None:
            num = str(span.line)
            pad = " " * len(num)
            shown = line.replace("\t", " ")
            width = 1
            if span.end_line == span.line and span.end_column > span.column:
                width = span.end_column - span.column
            width = max(1, min(width, len(shown) - span.column + 1))
            out.append(f"   {pad} |")
            out.append(f"   {num} | {shown}")
            out.append(f"   {pad} | {' ' * (span.column - 1)}{'^' * width}")
    stack = getattr(err, "stack", None)
    if stack:
        out.append("call stack (innermost first):")
        shown = list(stack)
        if len(shown) > 14:
            omitted = len(shown) - 12
            shown = shown[:8] + [None] + shown[-4:]
        for frame in shown:
            if frame is None:
                out.append(f"  ... {omitted} more calls ...")
                continue
            where = f", called at {frame.call_site.location()}" if frame.call_site else ""
            out.append(f"  in {frame.procedure}{where}")
    return "\n".join(out)
