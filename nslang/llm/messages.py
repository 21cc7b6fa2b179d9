"""Conversation data shared by every wire format: turns, tool declarations, tool calls, tool results.

A conversation is a list of :class:`Message`. Besides ``system``/``user``/``assistant`` text turns it
holds the two tool turns of a tool-calling loop (issue 12 item 1):

* an ``assistant`` turn whose :attr:`Message.tool_calls` lists the :class:`ToolCall` objects the model
  asked for (its ``content`` may be empty or hold text the model said besides);
* one ``tool`` turn per call, answering it: :attr:`Message.tool_call_id` is the call's ``id``,
  :attr:`Message.name` the tool's wire name, ``content`` the result text (data, never instructions)
  and :attr:`Message.is_error` true when the call failed or was refused.

Each provider module maps these to its own shapes (OpenAI ``tool_calls`` / ``role: "tool"``,
Anthropic ``tool_use`` / ``tool_result`` blocks, Gemini ``functionCall`` / ``functionResponse`` parts,
Ollama ``tool_calls`` with object arguments). The tools a request offers are :class:`ToolDeclaration`
objects built by :mod:`nslang.llm.schema`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_ARGUMENT_DEPTH", "Message", "ToolCall", "ToolDeclaration", "parse_arguments"]

#: How deeply a tool call's arguments may nest (maps and lists); deeper ones are refused as malformed
#: (a hostile reply must not exhaust the Python stack when the conversation is hashed or sent back).
MAX_ARGUMENT_DEPTH = 64


@dataclass(frozen=True, slots=True)
class ToolDeclaration:
    """A tool offered to a model.

    Attributes:
        name: the wire name (``^[A-Za-z0-9_-]{1,64}$``, accepted by every provider), e.g. ``fs_Read``.
        description: what the tool does (shown to the model).
        parameters: a JSON Schema object (``{"type": "object", "properties": …, "required": […]}``).
    """

    name: str
    description: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call a model asked for.

    Attributes:
        id: the provider's call id (generated as ``call_<n>`` when the wire format has none, e.g.
            Gemini and Ollama); tool results answer it.
        name: the tool's name as the model wrote it (normally a declaration's wire name).
        arguments: the decoded arguments, or None when they were not a JSON object.
        raw_arguments: the arguments as sent (a JSON string for OpenAI; JSON-encoded otherwise).
        error: why ``arguments`` is None (malformed JSON, not an object), else ``""``.
    """

    id: str
    name: str
    arguments: dict[str, Any] | None
    raw_arguments: str = ""
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        """``{"id", "name", "arguments"}`` (arguments as decoded, else the raw text)."""
        return {"id": self.id, "name": self.name,
                "arguments": self.arguments if self.arguments is not None else self.raw_arguments}


def parse_arguments(call_id: str, name: str, raw: Any) -> ToolCall:
    """A :class:`ToolCall` from arguments as a wire format carries them: a JSON string or an object.

    Malformed JSON, JSON that is not an object, or arguments nested deeper than
    :data:`MAX_ARGUMENT_DEPTH` give ``arguments=None`` and an ``error`` (the loop answers the model with
    that error; it is never a script error, issue 12 item 2). ``None`` or an empty string means no
    arguments.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return ToolCall(call_id, name, {}, "" if raw is None else raw)
    if not isinstance(raw, str):
        if _too_deep(raw):
            return ToolCall(call_id, name, None, "", f"arguments nest deeper than {MAX_ARGUMENT_DEPTH} levels")
        text = json.dumps(raw, ensure_ascii=False, default=str)
        if isinstance(raw, Mapping):
            return ToolCall(call_id, name, dict(raw), text)
        return ToolCall(call_id, name, None, text, f"arguments must be a JSON object, got {type(raw).__name__}")
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as e:
        return ToolCall(call_id, name, None, raw, f"arguments are not valid JSON: {e}")
    if not isinstance(value, dict):
        return ToolCall(call_id, name, None, raw, f"arguments must be a JSON object, got {type(value).__name__}")
    if _too_deep(value):
        return ToolCall(call_id, name, None, raw, f"arguments nest deeper than {MAX_ARGUMENT_DEPTH} levels")
    return ToolCall(call_id, name, value, raw)


def _too_deep(value: Any) -> bool:
    """True when ``value`` nests maps and lists deeper than :data:`MAX_ARGUMENT_DEPTH` (checked without
    recursion; a cycle counts as too deep)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, Mapping):
            items: Any = v.values()
        elif isinstance(v, (list, tuple)):
            items = v
        else:
            continue
        if depth > MAX_ARGUMENT_DEPTH:
            return True
        stack.extend((x, depth + 1) for x in items)
    return False


@dataclass(frozen=True, slots=True)
class Message:
    """One turn of a conversation sent to a model.

    Attributes:
        role: ``system``, ``user``, ``assistant`` or ``tool``.
        content: the turn's text (a tool turn: the result text).
        tool_calls: an ``assistant`` turn's tool calls (empty for a text turn).
        tool_call_id: a ``tool`` turn: the id of the call it answers.
        name: a ``tool`` turn: the tool's wire name.
        is_error: a ``tool`` turn: the call failed or was refused.
    """

    role: str
    content: str
    tool_calls: tuple[ToolCall, ...] = field(default=())
    tool_call_id: str = ""
    name: str = ""
    is_error: bool = False

    def to_dict(self) -> dict[str, Any]:
        """``{"role": …, "content": …}``, the shape custom providers and ``GetHistory`` use; tool turns
        add ``tool_calls`` (assistant) or ``tool_call_id``, ``name`` and ``is_error`` (tool)."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [c.to_dict() for c in self.tool_calls]
        if self.role == "tool":
            out.update(tool_call_id=self.tool_call_id, name=self.name, is_error=self.is_error)
        return out
