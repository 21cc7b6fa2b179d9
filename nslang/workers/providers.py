"""The provider factory table: from a definition's ``provider`` to a :class:`~nslang.llm.Model`.

Each provider name maps to ``"module:function"``, a factory ``create(config: ProviderConfig) ->
Model`` imported on first use (so httpx and the HTTP modules load only when a definition needs
them). ``custom`` is special: it wraps a Python callable registered with
:meth:`ProviderTable.register_custom` (``Interpreter.register_provider``); a definition picks one
with ``base_config.custom_provider`` (default ``"default"``).

HTTP providers live in one module per wire format under :mod:`nslang.llm`: ``openai`` and
``local`` in :mod:`nslang.llm.openai`, ``anthropic`` in :mod:`nslang.llm.anthropic`, ``google`` in
:mod:`nslang.llm.gemini`, ``ollama`` in :mod:`nslang.llm.ollama`. A factory whose module cannot be
imported raises :class:`~nslang.workers.errors.ProviderNotFoundError` (code 40); a factory that finds
no key or a bad setting raises :class:`~nslang.llm.base.ModelSettingsError` (code 18). Host code may
add or replace factories with :meth:`ProviderTable.register_factory`.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import UsageError
from .errors import ProviderNotFoundError

if TYPE_CHECKING:  # pragma: no cover
    from ..llm.base import Model, ProviderConfig
    from ..llm.testing import CustomProviderFunction

__all__ = ["BUILTIN_FACTORIES", "ProviderTable"]

#: provider name -> "module:function" of its factory. ``local`` is an OpenAI-compatible server.
BUILTIN_FACTORIES: dict[str, str] = {
    "test": "nslang.llm.testing:create_test_model",
    "openai": "nslang.llm.openai:create_model",
    "local": "nslang.llm.openai:create_model",
    "anthropic": "nslang.llm.anthropic:create_model",
    "google": "nslang.llm.gemini:create_model",
    "ollama": "nslang.llm.ollama:create_model",
}


class ProviderTable:
    """Per-manager provider look-up (custom callables and factories). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._custom: dict[str, CustomProviderFunction] = {}
        self._factories: dict[str, Callable[[ProviderConfig], Model]] = {}

    def register_custom(self, name: str, fn: CustomProviderFunction) -> None:
        """Make ``fn`` the ``custom`` provider called ``name``.

        Raises:
            UsageError: ``name`` is not a non-empty string or ``fn`` is not callable.
        """
        if not isinstance(name, str) or not name:
            raise UsageError("register_provider: the name must be a non-empty string")
        if not callable(fn):
            raise UsageError(f"register_provider({name!r}): the provider must be callable")
        with self._lock:
            self._custom[name] = fn

    def custom_names(self) -> list[str]:
        """Names of the registered custom providers, sorted."""
        with self._lock:
            return sorted(self._custom)

    def register_factory(self, provider: str, factory: Callable[[ProviderConfig], Model]) -> None:
        """Use ``factory`` for definitions whose provider is ``provider`` (overrides the built-in)."""
        with self._lock:
            self._factories[provider] = factory

    def create(self, config: ProviderConfig) -> Model:
        """Build the model for one call.

        Raises:
            ProviderNotFoundError: the provider is not available in this build, or the custom
                provider named by ``custom_provider`` is not registered (code 40).
        """
        provider = config.provider
        with self._lock:
            factory = self._factories.get(provider)
            custom = self._custom.get(str(config.settings.get("custom_provider", "default")))
        if factory is not None:
            return factory(config)
        if provider == "custom":
            from ..llm.testing import FunctionModel

            name = str(config.settings.get("custom_provider", "default"))
            if custom is None:
                known = ", ".join(self.custom_names()) or "none"
                raise ProviderNotFoundError(
                    f"AI worker definition '{config.definition_name}': no custom provider named '{name}' is "
                    f"registered (registered: {known}); register one with Interpreter.register_provider"
                )
            return FunctionModel(custom, name=name, model_name=config.model_name)
        target = BUILTIN_FACTORIES.get(provider)
        if target is None:
            raise ProviderNotFoundError(f"AI worker definition '{config.definition_name}': unknown provider "
                                        f"'{provider}'")
        module_name, _, func_name = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
                raise ProviderNotFoundError(
                    f"AI worker definition '{config.definition_name}': provider '{provider}' is not available "
                    "in this nslang build yet; use provider 'test' (offline) or 'custom' (a Python callable)"
                ) from None
            raise
        created: Model = getattr(module, func_name)(config)
        return created
