"""Shared pytest fixtures: a ready Interpreter, and a per-test sandbox so no test writes to the real
user data directory."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_USER_DIRS_ROOT: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    """Point every platformdirs user directory (cache, data, config, state) at a private temporary
    tree for the whole run, subprocesses included, so the suite never touches the real user
    directories (issue 10, item 8)."""
    global _USER_DIRS_ROOT
    if _USER_DIRS_ROOT is not None:
        return
    _USER_DIRS_ROOT = tempfile.mkdtemp(prefix="nslang-test-home-")
    for var in ("XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR"):
        d = os.path.join(_USER_DIRS_ROOT, var.lower())
        os.makedirs(d, mode=0o700)
        os.environ[var] = d
    os.environ.pop("NSLANG_HISTORY", None)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _USER_DIRS_ROOT is not None:
        shutil.rmtree(_USER_DIRS_ROOT, ignore_errors=True)


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
