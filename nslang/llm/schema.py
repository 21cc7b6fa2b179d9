"""JSON Schema for tool declarations: from a :class:`~nslang.tools.registry.ToolSpec` or a procedure.

Type mapping (ToolSpec argument types, spec language.md §8.2):

=====================================  ==============================================
``string``                             ``{"type": "string"}``
``int``                                ``{"type": "integer"}``
``float``, ``number``                  ``{"type": "number"}``
``bool``, ``boolean``                  ``{"type": "boolean"}``
``map``                                ``{"type": "object"}``
``list``, ``slice_any``                ``{"type": "array"}``
``slice_string`` … ``slice_map``       ``{"type": "array", "items": {"type": …}}``
``timedate``                           ``{"type": "string", "format": "date-time"}``
``any``, ``nil``, ``error``            ``{}`` (any JSON value)
=====================================  ==============================================

Each property carries the argument's ``description`` and, for an optional argument with a
default, ``default``; required arguments are listed in ``required``.

A NeuroScript procedure offered as a tool (issue 12 item 1) gets its schema from its signature:
``needs`` parameters are required, ``optional`` ones are not. Its metadata (``:: key: value`` lines
in the body) describes it:

* ``:: description: …`` — the tool's description (else ``purpose``, else the signature);
* ``:: param.<name>: …`` — a parameter's description;
* ``:: type.<name>: …`` — a parameter's type, one of the ToolSpec types above (default ``string``).

Wire names: OpenAI and Anthropic accept only ``[A-Za-z0-9_-]{1,64}``, so ``fs.Read`` is declared
as ``fs_Read`` (:func:`wire_name`); the loop maps the names back, and also accepts the dotted name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .messages import ToolDeclaration

if TYPE_CHECKING:  # pragma: no cover
    from ..ast import Procedure
    from ..tools.registry import ToolSpec

__all__ = ["PROCEDURE_DEFAULT_TYPE", "procedure_declaration", "tool_declaration", "type_schema", "wire_name"]

#: The type of a procedure parameter without ``:: type.<name>:`` metadata.
PROCEDURE_DEFAULT_TYPE = "string"

_SCALARS = {
    "string": {"type": "string"}, "int": {"type": "integer"}, "float": {"type": "number"},
    "number": {"type": "number"}, "bool": {"type": "boolean"}, "boolean": {"type": "boolean"},
    "map": {"type": "object"}, "list": {"type": "array"}, "slice_any": {"type": "array"},
    "timedate": {"type": "string", "format": "date-time"},
}
_SLICES = {"slice_string": "string", "slice_int": "int", "slice_float": "float", "slice_bool": "bool",
           "slice_map": "map"}


def type_schema(arg_type: str) -> dict[str, Any]:
    """The JSON Schema of one ToolSpec argument type (table in the module docstring)."""
    if arg_type in _SLICES:
        return {"type": "array", "items": dict(_SCALARS[_SLICES[arg_type]])}
    return dict(_SCALARS.get(arg_type, {}))


def wire_name(full_name: str) -> str:
    """``fs.Read`` → ``fs_Read``: a name every provider accepts (other characters become ``_``; ≤ 64)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", full_name)[:64] or "tool"


def _json_default(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_json_default(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json_default(v) for k, v in value.items()}
    return str(value)


def tool_declaration(spec: ToolSpec) -> ToolDeclaration:
    """The declaration of a tool: wire name, description (with the return help) and parameters."""
    props: dict[str, Any] = {}
    required: list[str] = []
    for a in spec.args:
        p = type_schema(a.type)
        if a.description:
            p["description"] = a.description
        if a.required:
            required.append(a.name)
        elif a.default is not None:
            p["default"] = _json_default(a.default)
        props[a.name] = p
    desc = spec.description or f"tool.{spec.full_name}"
    if spec.return_help:
        desc += f" Returns: {spec.return_help}"
    return ToolDeclaration(wire_name(spec.full_name), desc, _object(props, required))


def procedure_declaration(proc: Procedure) -> ToolDeclaration:
    """The declaration of a procedure (schema from its signature and metadata, module docstring).

    Raises:
        ValueError: a ``:: type.<name>:`` names an unknown type.
    """
    meta = dict(proc.metadata)
    props: dict[str, Any] = {}
    for name in (*proc.needs, *proc.optional):
        t = meta.get(f"type.{name}", PROCEDURE_DEFAULT_TYPE).strip()
        if t not in _SCALARS and t not in _SLICES and t not in ("any", "nil", "error"):
            raise ValueError(f"procedure '{proc.name}': ':: type.{name}: {t}' is not a tool argument type")
        p = type_schema(t)
        if meta.get(f"param.{name}"):
            p["description"] = meta[f"param.{name}"]
        props[name] = p
    desc = meta.get("description") or meta.get("purpose") or proc.signature()
    return ToolDeclaration(wire_name(proc.name), desc, _object(props, list(proc.needs)))


def _object(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    return out
