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
from .tools.registry import ArgSpec, ToolContext, ToolSpec, tool

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
