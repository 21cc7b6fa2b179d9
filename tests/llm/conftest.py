"""Fixtures for the HTTP provider tests: a real HTTP server on 127.0.0.1, model requests switched on
(only loopback servers or httpx MockTransports are ever reached), and instant retry waits."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_helpers import ENV
from pytest_httpserver import HTTPServer

from nslang.llm import _http
from nslang.llm.base import override_allow_model_requests
from nslang.workers import AIWorkerManager


@pytest.fixture(scope="module")
def _server() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def server(_server: HTTPServer) -> Iterator[HTTPServer]:
    """A threaded loopback HTTP server, emptied of handlers and log before each test."""
    _server.clear()
    yield _server
    _server.check_assertions()


@pytest.fixture(autouse=True)
def _allow_loopback_requests() -> Iterator[None]:
    """The suite switches model requests off; these tests talk to loopback servers, so they opt in."""
    with override_allow_model_requests(True):
        yield


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The delays the retry loop asked for; nothing actually waits."""
    delays: list[float] = []
    monkeypatch.setattr(_http, "sleep", delays.append)
    return delays


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    return tmp_path / "sandbox"


@pytest.fixture
def manager(sandbox: Path) -> Iterator[AIWorkerManager]:
    m = AIWorkerManager(sandbox, environ=ENV)
    yield m
    m.close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
