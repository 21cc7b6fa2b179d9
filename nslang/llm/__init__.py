"""LLM clients behind one small, provider-neutral interface.

:mod:`nslang.llm.base` defines :class:`Model`, :class:`Message`, :class:`ModelResponse` and
:class:`ProviderConfig`; :mod:`nslang.llm.testing` holds the offline ``test`` provider and the
``custom`` (Python callable) adapter. HTTP providers are one module per wire format beside them.
Importing this package imports neither httpx nor pydantic.
"""

from __future__ import annotations

from .base import (
    LLMTimeoutError,
    Message,
    Model,
    ModelResponse,
    ProviderConfig,
    check_allow_model_requests,
    override_allow_model_requests,
)

__all__ = [
    "LLMTimeoutError",
    "Message",
    "Model",
    "ModelResponse",
    "ProviderConfig",
    "check_allow_model_requests",
    "override_allow_model_requests",
]
