"""nslang: a fast, complete Python implementation of NeuroScript.

Public API (see README "Embedding"): :class:`Interpreter`, :func:`parse`, :func:`tool`, the error
hierarchy rooted at :class:`NSError`, and :class:`ToolSpec`/:class:`ArgSpec`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import (
    ErrorCode,
    LLMError,
    LLMHTTPError,
    NSError,
    NSRuntimeError,
    NSSyntaxError,
    NSValidationError,
    ResourceLimitError,
    ToolError,
    UsageError,
)
from .interpreter import Interpreter, Limits, LoadResult
from .parser import parse

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from .tools.registry import ArgSpec, ToolContext, ToolSpec, tool


def __getattr__(name: str) -> object:
    """``ArgSpec``, ``ToolContext``, ``ToolSpec`` and ``tool`` load the tool registry on first use (a run
    that calls no tool does not import it; issue 16 item 3)."""
    if name in ("ArgSpec", "ToolContext", "ToolSpec", "tool"):
        from .tools import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'nslang' has no attribute {name!r}")

__all__ = [
    "ArgSpec",
    "ErrorCode",
    "Interpreter",
    "LLMError",
    "LLMHTTPError",
    "Limits",
    "LoadResult",
    "NSError",
    "NSRuntimeError",
    "NSSyntaxError",
    "NSValidationError",
    "ResourceLimitError",
    "ToolContext",
    "ToolError",
    "ToolSpec",
    "UsageError",
    "__version__",
    "parse",
    "tool",
]
