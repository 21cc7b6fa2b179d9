"""LLM clients behind one small, provider-neutral interface.

:mod:`nslang.llm.base` defines :class:`Model`, :class:`Message`, :class:`ModelResponse` and
:class:`ProviderConfig`; :mod:`nslang.llm.testing` holds the offline ``test`` provider and the
``custom`` (Python callable) adapter. HTTP providers are one module per wire format beside them
(:mod:`~nslang.llm.openai` for ``openai`` and ``local``, :mod:`~nslang.llm.anthropic`,
:mod:`~nslang.llm.gemini` for ``google``, :mod:`~nslang.llm.ollama`), sharing the retry and error
machinery of :mod:`nslang.llm._http` and the stream readers of :mod:`nslang.llm.streaming`. Importing
this package imports neither httpx nor pydantic.
"""

from __future__ import annotations

from .base import (
    LLMRefusalError,
    LLMTimeoutError,
    Message,
    Model,
    ModelResponse,
    ModelSettingsError,
    ProviderConfig,
    build_messages,
    check_allow_model_requests,
    override_allow_model_requests,
)

__all__ = [
    "LLMRefusalError",
    "LLMTimeoutError",
    "Message",
    "Model",
    "ModelResponse",
    "ModelSettingsError",
    "ProviderConfig",
    "build_messages",
    "check_allow_model_requests",
    "override_allow_model_requests",
]
