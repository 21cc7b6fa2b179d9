"""Fixtures for the built-in tool tests: a minimal interpreter double and a ``call`` helper.

The double has exactly what the tools use (the interpreter contract of issue 3): ``sandbox_dir``,
``stdout``, ``stdin``, ``tools`` (a :class:`ToolRegistry` with every built-in group),
``limits.max_file_bytes`` / ``limits.timeout_s`` and ``check_deadline()``. Calls go through
``ToolRegistry.invoke`` so argument validation and error wrapping are exercised as in a script.
"""

from __future__ import annotations

import io
import pathlib
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from nslang.errors import ErrorCode, NSError, ResourceLimitError
from nslang.tools.builtin import all_tools
from nslang.tools.registry import ToolContext, ToolRegistry


class FakeInterpreter:
    """The attributes and methods of ``nslang.Interpreter`` that the built-in tools use."""

    def __init__(self, sandbox_dir: pathlib.Path, stdin_text: str = "") -> None:
        self.sandbox_dir = sandbox_dir
        self.stdout = io.StringIO()
        self.stdin = io.StringIO(stdin_text)
        self.limits = SimpleNamespace(max_file_bytes=10 * 1024 * 1024, timeout_s=None)
        self.tools = ToolRegistry()
        for f in all_tools():
            self.tools.register(f)
        self.deadline_checks = 0
        #: check_deadline() raises once it has been called this many times (None: never).
        self.deadline_after: int | None = None

    def check_deadline(self) -> None:
        self.deadline_checks += 1
        if self.deadline_after is not None and self.deadline_checks > self.deadline_after:
            raise ResourceLimitError("time limit exceeded", code=ErrorCode.TIMEOUT)


Call = Callable[..., Any]


@pytest.fixture
def sandbox(tmp_path: pathlib.Path) -> pathlib.Path:
    """The sandbox directory (a sibling ``outside`` directory holds files scripts must not reach)."""
    d = tmp_path / "sandbox"
    d.mkdir()
    return d


@pytest.fixture
def outside(tmp_path: pathlib.Path) -> pathlib.Path:
    """A directory next to the sandbox with a secret file."""
    d = tmp_path / "outside"
    d.mkdir()
    (d / "secret.txt").write_text("top secret")
    return d


@pytest.fixture
def interp(sandbox: pathlib.Path) -> FakeInterpreter:
    return FakeInterpreter(sandbox)


@pytest.fixture
def call(interp: FakeInterpreter) -> Call:
    """``call("fs.Read", "a.txt", named=...)``: invoke a tool through the registry like a script."""

    def _call(name: str, *args: Any, **named: Any) -> Any:
        t = interp.tools.lookup(name)
        assert t is not None, f"no tool {name}"
        return interp.tools.invoke(ToolContext(interp), t, list(args), named)  # type: ignore[arg-type]

    return _call


@pytest.fixture
def fails(call: Call) -> Callable[..., NSError]:
    """``fails("fs.Read", "../x")`` returns the NSError the call raised (and fails if it did not)."""

    def _fails(name: str, *args: Any, **named: Any) -> NSError:
        with pytest.raises(NSError) as info:
            call(name, *args, **named)
        return info.value

    return _fails


@pytest.fixture
def make_call(sandbox: pathlib.Path) -> Callable[..., tuple[FakeInterpreter, Call]]:
    """``interp, call = make_call(stdin_text="...")``: a fresh interpreter double with its own input."""

    def _make(stdin_text: str = "") -> tuple[FakeInterpreter, Call]:
        it = FakeInterpreter(sandbox, stdin_text)

        def _call(name: str, *args: Any, **named: Any) -> Any:
            t = it.tools.lookup(name)
            assert t is not None, f"no tool {name}"
            return it.tools.invoke(ToolContext(it), t, list(args), named)  # type: ignore[arg-type]

        return it, _call

    return _make
