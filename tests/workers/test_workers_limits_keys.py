"""Rate limiter windows (with a fake clock) and API key resolution."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from workers_helpers import add_test_worker

from nslang.workers import (
    AIWorkerDefinition,
    AIWorkerManager,
    ConfigurationError,
    InvalidArgumentError,
    NotSupportedError,
    RateLimitedError,
)
from nslang.workers.keys import redact, resolve_api_key, scrub
from nslang.workers.models import RateLimitPolicy
from nslang.workers.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_requests_per_minute_slide() -> None:
    clock = Clock()
    rl = RateLimiter(clock)
    policy = RateLimitPolicy(max_requests_per_minute=2)
    rl.reserve("d", "n", policy, "t1")
    clock.now += 30
    rl.reserve("d", "n", policy, "t2")
    clock.now += 10
    with pytest.raises(RateLimitedError) as ei:
        rl.reserve("d", "n", policy, "t3")
    e = ei.value
    assert e.limit == "max_requests_per_minute" and e.retry_after == pytest.approx(20)
    assert "'n'" in e.message and "max_requests_per_minute=2" in e.message and "20.0 s" in e.message
    clock.now += 20.001  # the first request left the 60 s window
    rl.reserve("d", "n", policy, "t3")
    with pytest.raises(RateLimitedError):
        rl.reserve("d", "n", policy, "t4")


def test_tokens_per_minute_and_day() -> None:
    clock = Clock()
    rl = RateLimiter(clock)
    policy = RateLimitPolicy(max_tokens_per_minute=100, max_tokens_per_day=250)
    rl.reserve("d", "n", policy, "a")
    rl.commit("d", "a", 60)
    rl.reserve("d", "n", policy, "b")  # 60 < 100: allowed
    rl.commit("d", "b", 60)
    with pytest.raises(RateLimitedError) as ei:
        rl.reserve("d", "n", policy, "c")
    assert ei.value.limit == "max_tokens_per_minute" and ei.value.retry_after == pytest.approx(60)
    clock.now += 61
    rl.reserve("d", "n", policy, "c")
    rl.commit("d", "c", 100)
    clock.now += 61
    rl.reserve("d", "n", policy, "d")  # 220 < 250 in the day, nothing this minute
    rl.commit("d", "d", 40)  # now 260 >= 250 in 24 h
    with pytest.raises(RateLimitedError) as ei:
        rl.reserve("d", "n", policy, "e")
    assert ei.value.limit == "max_tokens_per_day" and "24 h" in ei.value.message
    assert ei.value.retry_after is not None and 86000 < ei.value.retry_after <= 86400
    clock.now += 86400
    rl.reserve("d", "n", policy, "f")


def test_zero_means_unlimited_and_observed_usage_is_deduplicated() -> None:
    clock = Clock()
    rl = RateLimiter(clock)
    for i in range(1000):
        rl.reserve("d", "n", RateLimitPolicy(), f"t{i}")
    rl2 = RateLimiter(clock)
    rl2.observe("d", "x", clock.now - 5, clock.now - 4, 7)
    rl2.observe("d", "x", clock.now - 5, clock.now - 4, 7)  # same task: counted once
    rl2.observe("d", "old", clock.now - 90000, clock.now - 90000, 1000)  # older than a day: ignored
    assert rl2.usage("d") == {"requests_last_minute": 1, "tokens_last_minute": 7, "tokens_last_day": 7}


def test_concurrency_limit_message() -> None:
    rl = RateLimiter(Clock())
    rl.check_spawn("d", "n", RateLimitPolicy(max_concurrent_active_instances=2), 1)
    with pytest.raises(RateLimitedError, match="frees when an instance is retired"):
        rl.check_spawn("d", "n", RateLimitPolicy(max_concurrent_active_instances=2), 2)


def test_chat_turns_count_against_the_limits(manager: AIWorkerManager) -> None:
    add_test_worker(manager, "c", rate_limits={"max_requests_per_minute": 2})
    iid = manager.spawn_instance("c").instance_id
    manager.chat(iid, "one")
    manager.execute_stateless_task("c", "two")
    with pytest.raises(RateLimitedError):
        manager.chat(iid, "three")
    assert manager.get_instance(iid).status == "idle"  # refused before the call: status restored
    assert len(manager.get_performance_records("c")) == 2  # refusals are not records


# ----------------------------------------------------------------------------- keys


def _def(**auth: str) -> AIWorkerDefinition:
    return AIWorkerDefinition.model_validate({"name": "k", "provider": "test", "auth": auth})


def test_env_var_keys(tmp_path: Path) -> None:
    d = _def(method="env_var", value="THE_KEY")
    assert resolve_api_key(d, inline_secret=None, environ={"THE_KEY": "abc"}, base_dir=tmp_path) == "abc"
    for env in ({}, {"THE_KEY": ""}):
        with pytest.raises(ConfigurationError, match="'THE_KEY' is not set or empty"):
            resolve_api_key(d, inline_secret=None, environ=env, base_dir=tmp_path)
    with pytest.raises(InvalidArgumentError):
        resolve_api_key(_def(method="env_var"), inline_secret=None, environ={}, base_dir=tmp_path)


def test_config_path_keys(tmp_path: Path) -> None:
    (tmp_path / "plain.key").write_text("  sk-plain \n")
    (tmp_path / "keys.json").write_text(json.dumps({"a": {"b": "sk-json"}}))
    (tmp_path / "empty.key").write_text("\n")
    (tmp_path / "bad.json").write_text("{not json sk-hidden")
    env: dict[str, str] = {}
    assert resolve_api_key(_def(method="config_path", value="plain.key"), inline_secret=None, environ=env,
                           base_dir=tmp_path) == "sk-plain"
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "keys.json").write_text(json.dumps({"a": {"b": "sk-json"}}))
    d = AIWorkerDefinition.model_validate({"name": "k", "provider": "test", "auth": {
        "method": "config_path", "value": str(config_dir / "keys.json"), "key_path": "a.b"}})
    assert resolve_api_key(d, inline_secret=None, environ=env, base_dir=tmp_path, config_dir=config_dir) == "sk-json"
    cases = [("missing.key", "", "cannot be read"), ("empty.key", "", "is empty"),
             ("keys.json", "a.c", "not found"), ("bad.json", "a", "not valid JSON")]
    for value, key_path, match in cases:
        dd = AIWorkerDefinition.model_validate({"name": "k", "provider": "test", "auth": {
            "method": "config_path", "value": value, "key_path": key_path}})
        with pytest.raises(ConfigurationError, match=match) as ei:
            resolve_api_key(dd, inline_secret=None, environ=env, base_dir=tmp_path)
        assert "sk-hidden" not in ei.value.message


def test_inline_none_and_vault(tmp_path: Path) -> None:
    assert resolve_api_key(_def(method="inline", value="****abcd"), inline_secret="sk-x", environ={},
                           base_dir=tmp_path) == "sk-x"
    with pytest.raises(ConfigurationError, match="memory only"):
        resolve_api_key(_def(method="inline", value="****abcd"), inline_secret=None, environ={}, base_dir=tmp_path)
    assert resolve_api_key(_def(method="none"), inline_secret=None, environ={}, base_dir=tmp_path) is None
    with pytest.raises(NotSupportedError) as ei:
        resolve_api_key(_def(method="vault", value="x"), inline_secret=None, environ={}, base_dir=tmp_path)
    assert ei.value.code == 30


def test_redact_and_scrub() -> None:
    assert redact("sk-1234567890abcd") == "****abcd"
    assert redact("short") == "****"
    assert scrub("key=sk-1234567890abcd!", ["sk-1234567890abcd", None]) == "key=****abcd!"


def test_env_var_manager_path(sandbox: Path) -> None:
    m = AIWorkerManager(sandbox, environ={"K": "sk-value"})
    add_test_worker(m, "e", auth={"method": "env_var", "value": "K"})
    assert m.execute_stateless_task("e", "hi").output
    assert m.get_definition("e").auth.value == "K"
