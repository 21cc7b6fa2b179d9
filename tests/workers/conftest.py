"""Fixtures for the AI worker tests: a sandbox, a manager, and tools called through a real registry.

Real model requests are switched off for every test (house rule 11); workers use the offline
``test`` provider or a ``custom`` provider whose replies the test scripts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nslang.llm.base import override_allow_model_requests
from nslang.tools.registry import ToolContext, ToolRegistry
from nslang.workers import AIWorkerManager
from nslang.workers.tools import register_worker_tools


@pytest.fixture(autouse=True)
def _no_model_requests() -> Iterator[None]:
    with override_allow_model_requests(False):
        yield


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    return tmp_path / "sandbox"


@pytest.fixture
def manager(sandbox: Path) -> Iterator[AIWorkerManager]:
    m = AIWorkerManager(sandbox, environ={})
    yield m
    m.close()


class FakeInterpreter:
    """Just what the worker tools use: ``sandbox_dir`` and ``workers``."""

    def __init__(self, sandbox: Path, manager: AIWorkerManager | None = None) -> None:
        self.sandbox_dir = sandbox
        self.workers = manager or AIWorkerManager(sandbox, environ={})


class ToolCaller:
    """Calls worker tools by name through a ToolRegistry, as a script would."""

    def __init__(self, sandbox: Path, manager: AIWorkerManager) -> None:
        self.registry = ToolRegistry()
        register_worker_tools(self.registry)
        self.interp = FakeInterpreter(sandbox, manager)
        self.ctx = ToolContext(self.interp)  # type: ignore[arg-type]

    @property
    def manager(self) -> AIWorkerManager:
        return self.interp.workers

    def __call__(self, tool_name: str, /, *args: Any, **named: Any) -> Any:
        t = self.registry.lookup(tool_name)
        assert t is not None, f"no tool {tool_name}"
        return self.registry.invoke(self.ctx, t, list(args), named)


@pytest.fixture
def call(sandbox: Path, manager: AIWorkerManager) -> ToolCaller:
    return ToolCaller(sandbox, manager)
