"""Provider details: settings validation, keys, the offline guard, retry helpers, conversation shaping,
and the per-format mappings (finish reasons, cache and thinking tokens, pass-through keys, hosts)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from llm_helpers import KEY, SPECS
from pytest_httpserver import HTTPServer

from nslang.errors import LLMError, UsageError
from nslang.llm import _http, anthropic, gemini, ollama, openai
from nslang.llm.base import (
    LLMRefusalError,
    Message,
    ModelSettingsError,
    ProviderConfig,
    build_messages,
    override_allow_model_requests,
)
from nslang.workers import AIWorkerManager


def _mock(handler: Callable[[httpx.Request], httpx.Response]) -> Callable[[], httpx.Client]:
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return lambda: client


def _capture(body: dict[str, Any], status: int = 200) -> tuple[list[httpx.Request], Callable[[], httpx.Client]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=body)

    return seen, _mock(handler)


USER = [Message("user", "hi")]

# ----------------------------------------------------------------------------- settings and keys


@pytest.mark.parametrize("settings, fragment", [
    ({"temperature": "hot"}, "temperature must be a non-negative number"),
    ({"top_p": -1}, "top_p must be a non-negative number"),
    ({"max_tokens": 0}, "max_tokens must be a positive number"),
    ({"max_tokens": 2.5}, "max_tokens must be an integer"),
    ({"timeout_s": 0}, "timeout_s must be a positive number"),
    ({"max_retries": True}, "max_retries must be a non-negative number"),
    ({"base_url": "ftp://example.org"}, "base_url must be an http:// or https:// URL"),
])
def test_bad_settings_are_configuration_errors(settings: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ModelSettingsError, match=fragment) as ei:
        openai.create_model(ProviderConfig("openai", "gpt", settings, api_key=KEY, definition_name="w"))
    assert ei.value.code == 18


def test_parse_settings_defaults_and_pass_through() -> None:
    s = _http.parse_settings({"temperature": 0, "seed": 3, "custom_provider": "x", "test_reply": "y",
                              "system_prompt": "s", "max_history_turns": 2, "base_url": "http://h/v1/"}, "who")
    assert s.temperature == 0.0 and s.base_url == "http://h/v1"
    assert (s.timeout_s, s.max_retries, s.backoff_s) == (60.0, 2, 0.5)
    assert s.extra == {"seed": 3}


@pytest.mark.parametrize("module, provider, env_var", [
    (openai, "openai", "OPENAI_API_KEY"), (anthropic, "anthropic", "ANTHROPIC_API_KEY"),
    (gemini, "google", "GEMINI_API_KEY"),
])
def test_missing_key_names_the_definition_and_variable(module: Any, provider: str, env_var: str) -> None:
    with pytest.raises(ModelSettingsError) as ei:
        module.create_model(ProviderConfig(provider, "m", {}, definition_name="mine"))
    assert ei.value.code == 18 and "'mine'" in ei.value.message and env_var in ei.value.message


def test_keyless_providers_and_local_base_url() -> None:
    assert ollama.create_model(ProviderConfig("ollama", "llama3.2", {})).provider == "ollama"
    assert openai.create_model(ProviderConfig("local", "m", {"base_url": "http://127.0.0.1:1/v1"})).provider == "local"
    # an OpenAI-compatible server other than api.openai.com may need no key
    assert openai.create_model(ProviderConfig("openai", "m", {"base_url": "http://127.0.0.1:1/v1"}))
    with pytest.raises(ModelSettingsError, match="base_url"):
        openai.create_model(ProviderConfig("local", "m", {}, definition_name="w"))


def test_missing_key_through_the_manager_leaves_no_record(manager: AIWorkerManager) -> None:
    manager.add_definition({"name": "k", "provider": "anthropic", "model_name": "claude-x"})
    with pytest.raises(ModelSettingsError, match="ANTHROPIC_API_KEY"):
        manager.execute_stateless_task("k", "hi")
    assert manager.get_performance_records("k") == []


def test_the_offline_guard_blocks_every_http_provider(server: HTTPServer, manager: AIWorkerManager) -> None:
    for spec in SPECS.values():
        manager.add_definition(spec.definition(server, spec.provider))
    with override_allow_model_requests(False):
        for spec in SPECS.values():
            with pytest.raises(UsageError, match="ALLOW_MODEL_REQUESTS"):
                manager.execute_stateless_task(spec.provider, "hi")
    assert server.log == []


# ----------------------------------------------------------------------------- retry helpers


def test_parse_retry_after() -> None:
    p = _http.parse_retry_after
    assert p({}) is None
    assert p({"retry-after": "3"}) == 3.0
    assert p({"retry-after": "0.5"}) == 0.5
    assert p({"retry-after": "-4"}) == 0.0
    assert p({"retry-after": "soon"}) is None
    assert p({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    now = datetime(2025, 1, 1, tzinfo=timezone.utc)
    date = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert p({"retry-after": date}, now=now.timestamp()) == pytest.approx(30.0)
    assert p(httpx.Headers({"Retry-After": "7"})) == 7.0  # case-insensitive headers


def test_backoff_is_exponential_capped_and_jittered() -> None:
    for attempt, full in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (10, 8.0), (100, 8.0)]:
        for _ in range(20):
            assert 0.75 * full <= _http.backoff_delay(attempt, 0.5) <= full
    assert len({_http.backoff_delay(3, 0.5) for _ in range(20)}) > 1


def test_retry_after_is_really_waited(server: HTTPServer, manager: AIWorkerManager,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_http, "sleep", time.sleep)
    spec = SPECS["openai"]
    manager.add_definition(spec.definition(server, "w"))
    server.expect_oneshot_request(spec.path).respond_with_json(spec.err("slow down"), status=429,
                                                               headers={"retry-after-ms": "200"})
    server.expect_oneshot_request(spec.path).respond_with_json(spec.ok("ok", 1, 1))
    t0 = time.perf_counter()
    assert manager.execute_stateless_task("w", "hi").output == "ok"
    assert time.perf_counter() - t0 >= 0.2


def test_non_json_error_body_and_long_messages(server: HTTPServer, manager: AIWorkerManager) -> None:
    spec = SPECS["ollama"]
    manager.add_definition(spec.definition(server, "w"))
    server.expect_oneshot_request(spec.path).respond_with_data("<html>Bad   Gateway\n</html>", status=400)
    with pytest.raises(LLMError, match=r"HTTP 400 BAD REQUEST: <html>Bad Gateway </html>"):
        manager.execute_stateless_task("w", "hi")
    server.expect_oneshot_request(spec.path).respond_with_json({"error": "x" * 2000}, status=404)
    with pytest.raises(LLMError) as ei:
        manager.execute_stateless_task("w", "hi")
    assert len(ei.value.body) == _http.MAX_MESSAGE_CHARS and ei.value.body.endswith("...")


def test_standalone_model_without_a_shared_client(server: HTTPServer) -> None:
    spec = SPECS["local"]
    server.expect_request(spec.path).respond_with_json(spec.ok("standalone", 2, 1))
    model = openai.create_model(ProviderConfig("local", "m", {"base_url": server.url_for("/v1")}))
    r = model.request(USER, {"base_url": server.url_for("/v1")})
    assert (r.text, r.input_tokens, r.output_tokens, r.finish_reason) == ("standalone", 2, 1, "stop")


# ----------------------------------------------------------------------------- conversation shaping


def test_build_messages_policy() -> None:
    hist = [Message("user", "q1"), Message("assistant", "a1"), Message("user", "q2"), Message("assistant", "a2")]
    roles = lambda ms: [(m.role, m.content) for m in ms]  # noqa: E731
    assert roles(build_messages(hist, "q3", {})) == [*roles(hist), ("user", "q3")]
    assert roles(build_messages(hist, "q3", {"system_prompt": "S", "max_history_turns": 1})) == [
        ("system", "S"), ("user", "q2"), ("assistant", "a2"), ("user", "q3")]
    assert roles(build_messages(hist, "q3", {"max_history_turns": 0})) == [("user", "q3")]
    assert roles(build_messages(hist, "q3", {"max_history_turns": 9})) == [*roles(hist), ("user", "q3")]
    assert roles(build_messages([], "q", {"system_prompt": ""})) == [("user", "q")]
    for bad in ({"max_history_turns": -1}, {"max_history_turns": "2"}, {"system_prompt": 5}):
        with pytest.raises(ModelSettingsError):
            build_messages(hist, "q", bad)


def test_bad_history_setting_on_chat_leaves_the_instance_usable(manager: AIWorkerManager) -> None:
    manager.add_definition({"name": "t", "provider": "test", "base_config": {"max_history_turns": -2}})
    iid = manager.spawn_instance("t").instance_id
    with pytest.raises(ModelSettingsError):
        manager.chat(iid, "hello")
    assert manager.get_instance(iid).status.value == "idle"
    assert manager.chat(iid, "hello", {"max_history_turns": 1}).text == "test reply 1: hello"


# ----------------------------------------------------------------------------- OpenAI


def test_openai_official_host_uses_max_completion_tokens() -> None:
    seen, client = _capture(SPECS["openai"].ok("hi", 3, 1))
    model = openai.create_model(ProviderConfig("openai", "gpt-4o", {"max_tokens": 50}, api_key=KEY,
                                               http_client=client))
    assert model.request(USER, {"max_tokens": 50, "stop": ["\n"]}).text == "hi"
    req, = seen
    assert str(req.url) == "https://api.openai.com/v1/chat/completions"
    body = json.loads(req.content)
    assert body["max_completion_tokens"] == 50 and "max_tokens" not in body and body["stop"] == ["\n"]
    assert req.headers["authorization"] == f"Bearer {KEY}"


def test_openai_refusal_length_and_missing_usage() -> None:
    body = {"id": "x", "object": "chat.completion", "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "refusal": "I can't."},
                         "finish_reason": "content_filter"}]}
    _, client = _capture(body)
    model = openai.create_model(ProviderConfig("openai", "gpt-4o", {}, api_key=KEY, http_client=client))
    with pytest.raises(LLMRefusalError, match="the model refused: I can't.") as ei:  # issue 14 item 1
        model.request(USER, {})
    assert ei.value.code == 16
    body["choices"][0]["message"] = {"role": "assistant", "content": "Partial", "refusal": None}
    body["choices"][0]["finish_reason"] = "length"
    _, client = _capture(body)
    r = openai.create_model(ProviderConfig("openai", "gpt-4o", {}, api_key=KEY, http_client=client)).request(USER, {})
    assert (r.text, r.finish_reason, r.input_tokens, r.output_tokens) == ("Partial", "length", None, None)


# ----------------------------------------------------------------------------- Anthropic


def test_anthropic_mapping_cache_tokens_and_stop_reasons() -> None:
    body = {"id": "m", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [{"type": "thinking", "thinking": "hmm", "signature": "s"}, {"type": "text", "text": "Hello"},
                        {"type": "text", "text": " world"}],
            "stop_reason": "max_tokens", "usage": {"input_tokens": 10, "output_tokens": 4,
                                                   "cache_creation_input_tokens": 100, "cache_read_input_tokens": 5}}
    seen, client = _capture(body)
    model = anthropic.create_model(ProviderConfig("anthropic", "claude-x", {}, api_key=KEY, http_client=client))
    msgs = [Message("system", "A"), Message("system", "B"), Message("user", "u"), Message("assistant", "a"),
            Message("user", "v")]
    r = model.request(msgs, {})
    assert (r.text, r.input_tokens, r.output_tokens, r.finish_reason) == ("Hello world", 115, 4, "length")
    sent = json.loads(seen[0].content)
    assert str(seen[0].url) == "https://api.anthropic.com/v1/messages"
    assert sent["system"] == "A\n\nB" and sent["max_tokens"] == anthropic.DEFAULT_MAX_TOKENS
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert "temperature" not in sent  # unset knobs are not sent
    for native, common in [("end_turn", "stop"), ("stop_sequence", "stop"), ("tool_use", "tool_calls"),
                           ("model_context_window_exceeded", "length"), ("pause_turn", "pause_turn")]:
        _, client = _capture({**body, "stop_reason": native})
        m = anthropic.create_model(ProviderConfig("anthropic", "c", {}, api_key=KEY, http_client=client))
        assert m.request(USER, {}).finish_reason == common


# ----------------------------------------------------------------------------- Gemini


def test_gemini_mapping_thoughts_and_top_level_keys() -> None:
    body = {"candidates": [{"content": {"role": "model", "parts": [{"text": "thinking...", "thought": True},
                                                                   {"text": "Answer"}]},
                            "finishReason": "MAX_TOKENS"}],
            "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 3, "thoughtsTokenCount": 20}}
    seen, client = _capture(body)
    model = gemini.create_model(ProviderConfig("google", "tunedModels/mine", {}, api_key=KEY, http_client=client))
    msgs = [Message("user", "a"), Message("user", "b"), Message("assistant", "c"), Message("user", "d")]
    settings = {"temperature": 0.5, "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT",
                                                        "threshold": "BLOCK_NONE"}], "candidateCount": 1}
    r = model.request(msgs, settings)
    assert (r.text, r.input_tokens, r.output_tokens, r.finish_reason) == ("Answer", 9, 23, "length")
    req, = seen
    assert str(req.url) == "https://generativelanguage.googleapis.com/v1beta/tunedModels/mine:generateContent"
    assert "key=" not in str(req.url) and req.headers["x-goog-api-key"] == KEY
    sent = json.loads(req.content)
    assert [(c["role"], [p["text"] for p in c["parts"]]) for c in sent["contents"]] == [
        ("user", ["a", "b"]), ("model", ["c"]), ("user", ["d"])]
    assert sent["generationConfig"] == {"temperature": 0.5, "candidateCount": 1}
    assert sent["safetySettings"][0]["threshold"] == "BLOCK_NONE" and "systemInstruction" not in sent


def test_gemini_blocked_prompt_and_safety_finish() -> None:
    _, client = _capture({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 4}})
    model = gemini.create_model(ProviderConfig("google", "g", {}, api_key=KEY, http_client=client))
    with pytest.raises(LLMError, match=r"no candidates in the response \(the prompt was blocked: SAFETY\)"):
        model.request(USER, {})
    for native, common in [("SAFETY", "content_filter"), ("RECITATION", "content_filter"), ("STOP", "stop"),
                           ("OTHER", "other"), ("FINISH_REASON_UNSPECIFIED", "")]:
        _, client = _capture({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": native}]})
        m = gemini.create_model(ProviderConfig("google", "g", {}, api_key=KEY, http_client=client))
        assert m.request(USER, {}).finish_reason == common


# ----------------------------------------------------------------------------- Ollama


def test_ollama_host_env_options_and_cached_prompt(server: HTTPServer, manager: AIWorkerManager,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{server.port}")
    body = SPECS["ollama"].ok("cached", 0, 2)
    del body["prompt_eval_count"]  # Ollama omits it when the whole prompt came from its cache
    server.expect_request("/api/chat").respond_with_json(body)
    manager.add_definition({"name": "o", "provider": "ollama", "model_name": "llama3.2",
                            "base_config": {"keep_alive": "5m", "num_ctx": 2048, "max_tokens": 9, "top_k": 3}})
    assert manager.execute_stateless_task("o", "hello there").output == "cached"
    sent = json.loads(server.log[0][0].get_data())
    assert sent["keep_alive"] == "5m" and sent["stream"] is False
    assert sent["options"] == {"num_ctx": 2048, "num_predict": 9, "top_k": 3}
    rec, = manager.get_performance_records("o")
    assert rec.llm_metrics["output_tokens"] == 2 and rec.llm_metrics["estimated"] is True


def test_ollama_defaults_and_bad_host(monkeypatch: pytest.MonkeyPatch) -> None:
    seen, client = _capture(SPECS["ollama"].ok("x", 1, 1))
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    ollama.create_model(ProviderConfig("ollama", "m", {}, http_client=client)).request(USER, {})
    assert str(seen[0].url) == "http://127.0.0.1:11434/api/chat" and "authorization" not in seen[0].headers
    assert "options" not in json.loads(seen[0].content)
    monkeypatch.setenv("OLLAMA_HOST", "ftp://nope")
    with pytest.raises(ModelSettingsError, match="OLLAMA_HOST"):
        ollama.create_model(ProviderConfig("ollama", "m", {}, http_client=client)).request(USER, {})
