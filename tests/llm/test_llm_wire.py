"""Wire fixes (issue 14 item 1), against loopback servers in each provider's documented shapes:
explicit base_config keys reach the request, the max_tokens field is selectable, Gemini's own
generationConfig keys, Ollama's host rules, refusals, Anthropic's stop reasons and sampling rule,
HTTP 200 error bodies, ``x-should-retry`` and Gemini's ``RetryInfo``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from llm_helpers import SPECS, ToolCaller
from pytest_httpserver import HTTPServer

from nslang.errors import LLMError, LLMHTTPError
from nslang.llm import _http, ollama
from nslang.llm.base import LLMRefusalError, ModelSettingsError
from nslang.workers import AIWorkerManager


def _sent(server: HTTPServer, i: int = -1) -> dict[str, Any]:
    return json.loads(server.log[i][0].get_data())


# ----------------------------------------------------------------------------- explicit keys reach the request


@pytest.mark.parametrize("provider", ["openai", "local"])
def test_max_completion_tokens_written_in_base_config_is_sent(provider: str, server: HTTPServer,
                                                              manager: AIWorkerManager) -> None:
    spec = SPECS[provider]
    server.expect_request(spec.path).respond_with_json(spec.ok("ok", 1, 1))
    manager.add_definition(spec.definition(server, "w", max_completion_tokens=100))
    manager.execute_stateless_task("w", "hi")
    assert _sent(server)["max_completion_tokens"] == 100 and "max_tokens" not in _sent(server)
    # the portable max_tokens goes to the field max_tokens_field names; an explicit raw key still wins
    manager.update_definition("w", {"base_config": {**spec.definition(server)["base_config"], "max_tokens": 50,
                                                    "max_tokens_field": "max_completion_tokens"}})
    manager.execute_stateless_task("w", "hi")
    assert _sent(server)["max_completion_tokens"] == 50 and "max_tokens" not in _sent(server)
    assert "max_tokens_field" not in _sent(server)
    manager.execute_stateless_task("w", "hi", {"max_completion_tokens": 7})
    assert _sent(server)["max_completion_tokens"] == 7
    manager.execute_stateless_task("w", "hi", {"max_tokens_field": "max_tokens"})
    assert _sent(server)["max_tokens"] == 50 and "max_completion_tokens" not in _sent(server)
    assert len(server.log) == 4


def test_bad_max_tokens_field_and_reserved_keys_are_clear_errors(server: HTTPServer,
                                                                 manager: AIWorkerManager) -> None:
    spec = SPECS["local"]
    manager.add_definition(spec.definition(server, "w"))
    with pytest.raises(ModelSettingsError, match='max_tokens_field must be "max_tokens" or "max_completion_tokens"'):
        manager.execute_stateless_task("w", "hi", {"max_tokens_field": "tokens"})
    for provider, key in [("local", "messages"), ("local", "stream_options"), ("anthropic", "system"),
                          ("google", "contents"), ("ollama", "model")]:
        s = SPECS[provider]
        manager.add_definition(s.definition(server, f"{provider}-{key}", **{key: "x"}))
        with pytest.raises(ModelSettingsError, match=f"base_config.{key} is a request field nslang fills itself"):
            manager.execute_stateless_task(f"{provider}-{key}", "hi")
    with pytest.raises(ModelSettingsError, match="does not fit the request: max_completion_tokens"):
        manager.execute_stateless_task("w", "hi", {"max_completion_tokens": "lots"})
    with pytest.raises(ModelSettingsError, match="stream must be true or false"):
        manager.execute_stateless_task("w", "hi", {"stream": "yes"})
    assert server.log == []  # nothing was sent


def test_gemini_generation_config_keys_written_in_base_config_are_sent(server: HTTPServer,
                                                                       manager: AIWorkerManager) -> None:
    spec = SPECS["google"]
    server.expect_request(spec.path).respond_with_json(spec.ok("ok", 1, 1))
    manager.add_definition(spec.definition(server, "w", maxOutputTokens=256, topP=0.5, topK=3))
    manager.execute_stateless_task("w", "hi")
    assert _sent(server)["generationConfig"] == {"maxOutputTokens": 256, "topP": 0.5, "topK": 3}
    manager.execute_stateless_task("w", "hi", {"max_tokens": 9, "top_p": 0.1, "maxOutputTokens": None})
    assert _sent(server)["generationConfig"] == {"maxOutputTokens": 9, "topP": 0.5, "topK": 3}


# ----------------------------------------------------------------------------- Ollama's host rules


@pytest.mark.parametrize("value, url", [
    # the cases of ollama-python's _parse_host doctests
    (None, "http://127.0.0.1:11434"), ("", "http://127.0.0.1:11434"), ("1.2.3.4", "http://1.2.3.4:11434"),
    (":56789", "http://127.0.0.1:56789"), ("1.2.3.4:56789", "http://1.2.3.4:56789"),
    ("http://1.2.3.4", "http://1.2.3.4:80"), ("https://1.2.3.4", "https://1.2.3.4:443"),
    ("https://1.2.3.4:56789", "https://1.2.3.4:56789"), ("example.com", "http://example.com:11434"),
    ("example.com:56789", "http://example.com:56789"), ("http://example.com", "http://example.com:80"),
    ("https://example.com", "https://example.com:443"), ("https://example.com:56789", "https://example.com:56789"),
    ("example.com/", "http://example.com:11434"), ("example.com:56789/", "http://example.com:56789"),
    ("example.com/path", "http://example.com:11434/path"), ("example.com:56789/path", "http://example.com:56789/path"),
    ("https://example.com:56789/path", "https://example.com:56789/path"),
    ("example.com:56789/path/", "http://example.com:56789/path"),
    ("[0001:002:003:0004::1]", "http://[0001:002:003:0004::1]:11434"),
    ("[0001:002:003:0004::1]:56789", "http://[0001:002:003:0004::1]:56789"),
    ("http://[0001:002:003:0004::1]", "http://[0001:002:003:0004::1]:80"),
    ("https://[0001:002:003:0004::1]", "https://[0001:002:003:0004::1]:443"),
    ("https://[0001:002:003:0004::1]:56789", "https://[0001:002:003:0004::1]:56789"),
    ("[0001:002:003:0004::1]/", "http://[0001:002:003:0004::1]:11434"),
    ("[0001:002:003:0004::1]:56789/", "http://[0001:002:003:0004::1]:56789"),
    ("[0001:002:003:0004::1]/path", "http://[0001:002:003:0004::1]:11434/path"),
    ("[0001:002:003:0004::1]:56789/path", "http://[0001:002:003:0004::1]:56789/path"),
    ("https://[0001:002:003:0004::1]:56789/path", "https://[0001:002:003:0004::1]:56789/path"),
    ("[0001:002:003:0004::1]:56789/path/", "http://[0001:002:003:0004::1]:56789/path"),
])
def test_ollama_host_follows_ollama_python(value: str | None, url: str) -> None:
    assert ollama.host_url(value) == url


def test_ollama_host_with_a_scheme_uses_the_scheme_port(monkeypatch: pytest.MonkeyPatch, server: HTTPServer,
                                                        manager: AIWorkerManager) -> None:
    server.expect_request("/api/chat").respond_with_json(SPECS["ollama"].ok("ok", 1, 1))
    manager.add_definition({"name": "o", "provider": "ollama", "model_name": "llama3.2",
                            "base_config": {"max_retries": 0}})
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{server.port}")
    assert manager.execute_stateless_task("o", "hi").output == "ok"
    # http://host (no port) means port 80, not 11434: nothing listens there in the test, so the
    # error names the URL it tried
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1")
    with pytest.raises(LLMError, match=r"http://127\.0\.0\.1:80/api/chat"):
        manager.execute_stateless_task("o", "hi")
    for bad in ("ftp://host", "host:port"):
        monkeypatch.setenv("OLLAMA_HOST", bad)
        with pytest.raises(ModelSettingsError, match="OLLAMA_HOST"):
            manager.execute_stateless_task("o", "hi")


# ----------------------------------------------------------------------------- refusals and stop reasons


def test_openai_refusal_is_an_error_the_script_sees(server: HTTPServer, manager: AIWorkerManager, sandbox: Any) -> None:
    spec = SPECS["openai"]
    body = spec.ok("", 9, 3)
    body["choices"][0]["message"] = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
    server.expect_request(spec.path).respond_with_json(body)
    manager.add_definition(spec.definition(server, "w"))
    with pytest.raises(LLMRefusalError, match="the model refused: I can't help with that.") as ei:
        ToolCaller(sandbox, manager)("AIWorker.ExecuteStatelessTask", "w", "hi")
    assert ei.value.code == 16
    rec, = manager.get_performance_records("w")
    assert not rec.success and "refused" in rec.error_details


def test_anthropic_refusal_context_window_and_sampling_rule(server: HTTPServer, manager: AIWorkerManager) -> None:
    spec = SPECS["anthropic"]
    manager.add_definition(spec.definition(server, "w"))
    server.expect_oneshot_request(spec.path).respond_with_json(spec.ok("Partial", 5, 2,
                                                                       "model_context_window_exceeded"))
    assert manager.execute_stateless_task("w", "hi").record.llm_metrics["finish_reason"] == "length"
    server.expect_oneshot_request(spec.path).respond_with_json(spec.ok("", 5, 0, "refusal"))
    with pytest.raises(LLMRefusalError, match="stop_reason 'refusal'"):
        manager.execute_stateless_task("w", "hi")
    with pytest.raises(ModelSettingsError, match="both temperature and top_p.*keep only one"):
        manager.execute_stateless_task("w", "hi", {"temperature": 0.2, "top_p": 0.9})
    assert len(server.log) == 2  # the refused pair was never sent


# ----------------------------------------------------------------------------- error bodies and retry hints


@pytest.mark.parametrize("provider", list(SPECS))
def test_http_200_with_an_error_body_shows_the_provider_message(provider: str, server: HTTPServer,
                                                                manager: AIWorkerManager) -> None:
    spec = SPECS[provider]
    server.expect_request(spec.path).respond_with_json(spec.err("Upstream provider quota exceeded", "quota"))
    manager.add_definition(spec.definition(server, "w"))
    with pytest.raises(LLMError, match="HTTP 200 with an error body: .*Upstream provider quota exceeded"):
        manager.execute_stateless_task("w", "hi")
    assert len(server.log) == 1


def test_x_should_retry_decides_over_the_status(server: HTTPServer, manager: AIWorkerManager,
                                                sleeps: list[float]) -> None:
    spec = SPECS["openai"]
    manager.add_definition(spec.definition(server, "w", max_retries=3))
    server.expect_request(spec.path).respond_with_json(spec.err("busy", "server_error"), status=503,
                                                       headers={"x-should-retry": "false"})
    with pytest.raises(LLMHTTPError, match="HTTP 503") as ei:
        manager.execute_stateless_task("w", "hi")
    assert ei.value.status == 503 and len(server.log) == 1 and sleeps == []
    server.clear()
    server.expect_oneshot_request(spec.path).respond_with_json(spec.err("try again"), status=400,
                                                               headers={"x-should-retry": "true"})
    server.expect_oneshot_request(spec.path).respond_with_json(spec.ok("second time", 1, 1))
    assert manager.execute_stateless_task("w", "hi").output == "second time"
    assert len(server.log) == 2 and len(sleeps) == 1


def _gemini_429(delay: str) -> dict[str, Any]:
    return {"error": {"code": 429, "message": "You exceeded your current quota.", "status": "RESOURCE_EXHAUSTED",
                      "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
                                  {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}]}}


def test_gemini_retry_info_delay_is_waited(server: HTTPServer, manager: AIWorkerManager, sleeps: list[float]) -> None:
    spec = SPECS["google"]
    manager.add_definition(spec.definition(server, "w", max_retries=2))
    server.expect_oneshot_request(spec.path).respond_with_json(_gemini_429("37s"), status=429)
    server.expect_oneshot_request(spec.path).respond_with_json(spec.ok("ok", 1, 1))
    assert manager.execute_stateless_task("w", "hi").output == "ok"
    assert sleeps == [37.0]
    server.expect_oneshot_request(spec.path).respond_with_json(_gemini_429("3600s"), status=429)
    with pytest.raises(LLMHTTPError, match="retry after 3600 s; not waiting that long"):
        manager.execute_stateless_task("w", "hi")
    assert sleeps == [37.0] and len(server.log) == 3
    assert _http.retry_info_delay(_gemini_429("0.250s")) == 0.25
    assert _http.retry_info_delay({"error": {"details": [{"@type": "x.RetryInfo", "retryDelay": "soon"}]}}) is None
