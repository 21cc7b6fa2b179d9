"""Helpers shared by the AI worker tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nslang.workers import AIWorkerManager


def add_test_worker(m: AIWorkerManager, name: str = "w", **fields: Any) -> str:
    """Add a definition with the offline ``test`` provider usable both ways; returns its id."""
    data: dict[str, Any] = {"name": name, "provider": "test", "interaction_models": ["both"]}
    data.update(fields)
    return m.add_definition(data).definition_id


def scripted(replies: list[Any] | Callable[..., Any]) -> Callable[..., Any]:
    """A custom provider returning the given replies in order (or computed by a function)."""
    it = iter(replies) if isinstance(replies, list) else None

    def provider(messages: list[dict[str, str]], settings: dict[str, Any]) -> Any:
        if it is None:
            return replies(messages, settings)  # type: ignore[operator]
        return next(it)

    return provider
