"""The provider-neutral model interface, the offline models and the provider factory table."""

from __future__ import annotations

from typing import Any

import pytest

from nslang.errors import LLMError, UsageError
from nslang.llm import base
from nslang.llm.base import (
    LLMTimeoutError,
    Message,
    ModelResponse,
    ModelSettingsError,
    ProviderConfig,
    check_allow_model_requests,
)
from nslang.llm.testing import FunctionModel, TestModel
from nslang.workers import providers
from nslang.workers.errors import ProviderNotFoundError
from nslang.workers.providers import ProviderTable


def test_test_model_is_deterministic() -> None:
    m = TestModel("tiny")
    msgs = [Message("system", "be brief"), Message("user", "hello world"), Message("assistant", "x y"),
            Message("user", "again please")]
    r1 = m.request(msgs, {})
    assert r1 == m.request(msgs, {})
    assert r1 == ModelResponse("tiny reply 2: again please", 2 + 2 + 2 + 2, 5, "stop", "tiny")
    assert r1.usage_reported
    assert m.request([Message("user", "a b c d e")], {"max_tokens": 2}).finish_reason == "length"
    with pytest.raises(LLMError, match="boom"):
        m.request(msgs, {"test_error": "boom"})


def test_function_model_results_and_failures() -> None:
    def fn(messages: list[dict[str, str]], settings: dict[str, Any]) -> Any:
        kind = messages[-1]["content"]
        return {"str": "plain", "dict": {"text": "t", "input_tokens": 3, "output_tokens": 4, "model": "m9"},
                "bad": 42, "notext": {"input_tokens": 1}, "negtokens": {"text": "t", "input_tokens": -1}}[kind]

    m = FunctionModel(fn, name="p")
    assert m.request([Message("user", "str")], {}) == ModelResponse("plain", None, None, "stop", "p")
    assert m.request([Message("user", "dict")], {}).model == "m9"
    for kind in ("bad", "notext", "negtokens"):
        with pytest.raises(LLMError):
            m.request([Message("user", kind)], {})

    def slow(messages: list[dict[str, str]], settings: dict[str, Any]) -> str:
        raise TimeoutError("late")

    with pytest.raises(LLMTimeoutError) as ei:
        FunctionModel(slow).request([Message("user", "x")], {})
    assert ei.value.code == 31


def test_provider_table(monkeypatch: pytest.MonkeyPatch) -> None:
    table = ProviderTable()
    cfg = ProviderConfig("test", "t1", {})
    assert isinstance(table.create(cfg), TestModel)
    monkeypatch.setitem(providers.BUILTIN_FACTORIES, "openai", "nslang.llm.no_such_module:create_model")
    with pytest.raises(ProviderNotFoundError, match="not available") as ei:
        table.create(ProviderConfig("openai", "gpt", {}, definition_name="w"))
    assert ei.value.code == 40
    monkeypatch.undo()
    with pytest.raises(ModelSettingsError, match="needs an API key") as e2:  # the real factory: no key
        table.create(ProviderConfig("openai", "gpt", {}, definition_name="w"))
    assert e2.value.code == 18
    with pytest.raises(ProviderNotFoundError, match="no custom provider named 'default'"):
        table.create(ProviderConfig("custom", "", {}))
    table.register_custom("x", lambda m, s: "ok")
    assert table.create(ProviderConfig("custom", "", {"custom_provider": "x"})).request([], {}).text == "ok"
    table.register_factory("openai", lambda c: TestModel("fake-openai"))
    assert table.create(ProviderConfig("openai", "gpt", {})).model_name == "fake-openai"
    with pytest.raises(UsageError):
        table.register_custom("", lambda m, s: "")
    with pytest.raises(UsageError):
        table.register_custom("y", "not callable")  # type: ignore[arg-type]


def test_model_requests_guard() -> None:
    assert base.ALLOW_MODEL_REQUESTS is False  # switched off for every test (conftest)
    with pytest.raises(UsageError, match="test"):
        check_allow_model_requests()
    with base.override_allow_model_requests(True):
        check_allow_model_requests()


def test_provider_config_never_shows_the_key() -> None:
    assert "sk-secret" not in repr(ProviderConfig("openai", "m", {}, api_key="sk-secret"))
