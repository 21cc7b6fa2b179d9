"""Adversarial review of issue 11 (shared limits) and issue 14 items 3-7 (budgets, cache, record/replay):
regression tests replaying the attacks that found a defect."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from nslang.errors import UsageError
from nslang.workers.cassette import Replayer, ResponseCache
from nslang.workers.errors import ConfigurationError
from nslang.workers.limits import RedisLimits, open_backend, safe_url

DEEP = "[" * 100_000 + "]" * 100_000


def test_response_cache_entry_nested_too_deeply_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A cache file replaced from outside by deeply nested JSON was a RecursionError (a crash)."""
    cache = ResponseCache(tmp_path)
    cache.directory.mkdir(parents=True)
    (cache.directory / "ab.json").write_text(DEEP)
    with caplog.at_level(logging.WARNING, logger="nslang.workers"):
        assert cache.get("ab", 0) is None
    assert "RecursionError" in caplog.text


def test_replay_file_nested_too_deeply_is_a_clear_error(tmp_path: Path) -> None:
    """A recording line of deeply nested JSON was a RecursionError instead of the line-numbered error."""
    path = tmp_path / "run.jsonl"
    path.write_text("\n" + DEEP + "\n")
    with pytest.raises(UsageError, match=r"run\.jsonl:2: not a recorded model exchange"):
        Replayer(path)


def test_redis_url_with_a_bad_port_is_a_configuration_error_without_the_password(tmp_path: Path) -> None:
    """redis-py's ValueError escaped as a Python exception; safe_url itself raised on the port."""
    url = "redis://:s3cret-passw0rd@127.0.0.1:notaport/0"
    assert "s3cret" not in safe_url(url)
    backend = open_backend(tmp_path, environ={"NSLANG_LIMITS_URL": url})
    assert isinstance(backend, RedisLimits)
    with pytest.raises(ConfigurationError) as info:
        backend.acquire("k", (1, 0, 0), 1, 1)
    assert info.value.code == 18
    assert "notaport" in str(info.value) and "s3cret" not in str(info.value)
    with pytest.raises(ConfigurationError) as info:  # the plain (non-script) path too
        backend.forget("k")
    assert "s3cret" not in str(info.value)
