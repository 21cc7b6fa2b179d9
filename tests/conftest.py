"""Shared pytest fixtures: a ready Interpreter, and a per-test sandbox so no test writes to the real
user data directory."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _sandbox_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point ``NSLANG_SANDBOX`` at a fresh temporary directory for every test."""
    sandbox = tmp_path_factory.mktemp("sandbox")
    monkeypatch.setenv("NSLANG_SANDBOX", str(sandbox))
    yield sandbox


@pytest.fixture(autouse=True)
def _no_model_requests() -> Iterator[None]:
    """Tests never reach a real model provider (house rule 11); loopback tests opt in explicitly."""
    from nslang.llm.base import override_allow_model_requests

    with override_allow_model_requests(False):
        yield


@pytest.fixture
def interp(tmp_path: Path) -> object:
    """An :class:`nslang.Interpreter` with a temporary sandbox and StringIO output streams.

    Read what the script emitted with ``interp.stdout.getvalue()``.
    """
    from nslang import Interpreter

    return Interpreter(
        sandbox_dir=tmp_path / "sandbox", stdout=io.StringIO(), stderr=io.StringIO(), stdin=io.StringIO()
    )
