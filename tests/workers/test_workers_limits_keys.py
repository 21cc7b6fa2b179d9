"""Chat turns against the rate limits, and API key resolution (the limiter itself: test_workers_limits.py)."""

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
