"""Small value classes for the start-up path, in place of ``@dataclass`` (issue 16 item 3).

Importing :mod:`dataclasses` (and :mod:`inspect`, which it imports) and generating each class's methods
with ``exec`` costs a cached ``nslang run`` about 8 ms. The few value classes every run builds
(:class:`~nslang.interpreter.Limits`, :class:`~nslang.interpreter.LoadResult`,
:class:`~nslang.tools.registry.ToolSpec`, :class:`~nslang.tools.registry.ArgSpec`,
:class:`~nslang.tools.registry.Tool`) derive from :class:`Record` instead: each writes its own
``__init__`` (typed, with its defaults) and lists its fields in ``_fields``; :class:`Record` gives them
``repr``, ``==``, :meth:`Record.replace` (for ``dataclasses.replace``) and :meth:`Record.as_dict` (for
``dataclasses.asdict``, one level). A frozen record (``_frozen = True``) refuses attribute assignment
and is hashable.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, TypeVar

    R = TypeVar("R", bound="Record")

__all__ = ["Record"]


class Record:
    """Base of the value classes above (see the module docstring)."""

    __slots__ = ()
    #: the fields, in constructor order
    _fields: tuple[str, ...] = ()
    #: fields left out of ``==``, ``hash`` and ``repr``
    _hidden: tuple[str, ...] = ()
    _frozen = False

    def _set(self, **values: Any) -> None:
        for k, v in values.items():
            object.__setattr__(self, k, v)

    def __setattr__(self, name: str, value: Any) -> None:
        if self._frozen:
            raise AttributeError(f"cannot assign to field {name!r} of a frozen {type(self).__name__}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if self._frozen:
            raise AttributeError(f"cannot delete field {name!r} of a frozen {type(self).__name__}")
        object.__delattr__(self, name)

    def _key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f) for f in self._fields if f not in self._hidden)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        if not self._frozen:
            raise TypeError(f"unhashable type: {type(self).__name__!r}")
        return hash(self._key())

    def __repr__(self) -> str:
        inner = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields if f not in self._hidden)
        return f"{type(self).__name__}({inner})"

    def replace(self: R, **changes: Any) -> R:
        """A copy with some fields changed (as ``dataclasses.replace``)."""
        values = {f: getattr(self, f) for f in self._fields}
        unknown = set(changes) - set(values)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)[0]!r}")
        values.update(changes)
        return type(self)(**values)

    def as_dict(self) -> dict[str, Any]:
        """The fields as a dict (one level, as ``dataclasses.asdict`` of flat records)."""
        return {f: getattr(self, f) for f in self._fields}
