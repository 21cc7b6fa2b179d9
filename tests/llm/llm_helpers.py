"""What the provider tests share: a fake key, and per provider its documented JSON shapes.

Every shape below follows the provider's public API reference (OpenAI Chat Completions, Anthropic
Messages, Gemini generateContent, Ollama /api/chat); the loopback server answers with them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer

from nslang.tools.registry import ToolContext, ToolRegistry
from nslang.workers import AIWorkerManager
from nslang.workers.tools import register_worker_tools

#: A fake API key: it must never appear in an error, a record, a log line or a file.
KEY = "sk-nslang-test-SECRET-4f2a9c7e1b"
ENV = {"OPENAI_API_KEY": KEY, "ANTHROPIC_API_KEY": KEY, "GEMINI_API_KEY": KEY}
PRICES = {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002}


def _openai_ok(text: str, tin: int, tout: int, finish: str = "stop") -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1735689600, "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                         "logprobs": None, "finish_reason": finish}],
            "usage": {"prompt_tokens": tin, "completion_tokens": tout, "total_tokens": tin + tout},
            "system_fingerprint": "fp_1"}


def _openai_err(message: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _openai_turns(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in body["messages"]]


def _anthropic_ok(text: str, tin: int, tout: int, finish: str = "end_turn") -> dict[str, Any]:
    return {"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-3-5-haiku-20241022",
            "content": [{"type": "text", "text": text}], "stop_reason": finish, "stop_sequence": None,
            "usage": {"input_tokens": tin, "output_tokens": tout}}


def _anthropic_err(message: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def _anthropic_turns(body: dict[str, Any]) -> list[tuple[str, str]]:
    system = [("system", body["system"])] if "system" in body else []
    return system + [(m["role"], m["content"]) for m in body["messages"]]


def _gemini_ok(text: str, tin: int, tout: int, finish: str = "STOP") -> dict[str, Any]:
    return {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": finish,
                            "index": 0}],
            "usageMetadata": {"promptTokenCount": tin, "candidatesTokenCount": tout, "totalTokenCount": tin + tout},
            "modelVersion": "gemini-2.0-flash-001", "responseId": "r1"}


def _gemini_err(message: str, kind: str = "INVALID_ARGUMENT") -> dict[str, Any]:
    return {"error": {"code": 400, "message": message, "status": kind}}


def _gemini_turns(body: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    if "systemInstruction" in body:
        out.append(("system", "".join(p["text"] for p in body["systemInstruction"]["parts"])))
    for c in body["contents"]:
        role = "assistant" if c["role"] == "model" else c["role"]
        out.extend((role, p["text"]) for p in c["parts"])
    return out


def _ollama_ok(text: str, tin: int, tout: int, finish: str = "stop") -> dict[str, Any]:
    return {"model": "llama3.2", "created_at": "2025-01-01T00:00:00.000000Z",
            "message": {"role": "assistant", "content": text}, "done": True, "done_reason": finish,
            "total_duration": 5_000_000, "load_duration": 1_000, "prompt_eval_count": tin,
            "prompt_eval_duration": 1_000, "eval_count": tout, "eval_duration": 1_000}


def _ollama_err(message: str, kind: str = "") -> dict[str, Any]:
    return {"error": message}


@dataclass(frozen=True)
class Spec:
    """One provider as the tests see it.

    Attributes:
        provider: the definition's provider.
        model: the definition's model_name.
        root: the path under the loopback server that base_url points at.
        path: the path requests go to.
        ok: a success body ``(text, input_tokens, output_tokens) -> dict``.
        err: an error body ``(message, kind) -> dict``.
        turns: the (role, text) turns a request body carries, system prompt first.
        keyed: whether the definition uses an API key.
        reported_model: the model name the success body reports.
        extra: a provider-specific pass-through base_config key and value.
        params: reads (temperature, top_p, max_tokens, extra value) from a request body.
        auth: checks the request headers (and query string).
    """

    provider: str
    model: str
    root: str
    path: str
    ok: Callable[..., dict[str, Any]]
    err: Callable[..., dict[str, Any]]
    turns: Callable[[dict[str, Any]], list[tuple[str, str]]]
    keyed: bool
    reported_model: str
    extra: dict[str, Any]
    params: Callable[[dict[str, Any]], tuple[Any, Any, Any, Any]]
    auth: Callable[[Any], None] = field(repr=False)

    def definition(self, server: HTTPServer, name: str | None = None, **base_config: Any) -> dict[str, Any]:
        """A worker definition pointed at ``server``."""
        cfg = {"base_url": server.url_for(self.root).rstrip("/"), "retry_backoff_s": 0.01, **base_config}
        d: dict[str, Any] = {"name": name or f"{self.provider}-worker", "provider": self.provider,
                             "model_name": self.model, "interaction_models": ["both"], "base_config": cfg,
                             "cost_metrics": PRICES}
        if self.keyed:
            d["auth"] = {"method": "env_var", "value": self.env_var}
        return d

    @property
    def env_var(self) -> str:
        return {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "google": "GEMINI_API_KEY"}.get(
            self.provider, "")


def _bearer(headers: Any) -> None:
    assert headers.get("Authorization") == f"Bearer {KEY}"


def _no_auth(headers: Any) -> None:
    assert "Authorization" not in headers and "x-api-key" not in headers


def _anthropic_auth(headers: Any) -> None:
    assert headers.get("x-api-key") == KEY
    assert headers.get("anthropic-version") == "2023-06-01"
    assert "Authorization" not in headers


def _gemini_auth(headers: Any) -> None:
    assert headers.get("x-goog-api-key") == KEY
    assert "Authorization" not in headers


SPECS = {
    "openai": Spec("openai", "gpt-4o-mini", "/v1", "/v1/chat/completions", _openai_ok, _openai_err, _openai_turns,
                   True, "gpt-4o-mini-2024-07-18", {"seed": 7},
                   lambda b: (b.get("temperature"), b.get("top_p"), b.get("max_tokens"), b.get("seed")), _bearer),
    "local": Spec("local", "qwen2.5-0.5b-instruct", "/v1", "/v1/chat/completions", _openai_ok, _openai_err,
                  _openai_turns, False, "gpt-4o-mini-2024-07-18", {"seed": 7},
                  lambda b: (b.get("temperature"), b.get("top_p"), b.get("max_tokens"), b.get("seed")), _no_auth),
    "anthropic": Spec("anthropic", "claude-3-5-haiku-latest", "/", "/v1/messages", _anthropic_ok, _anthropic_err,
                      _anthropic_turns, True, "claude-3-5-haiku-20241022", {"top_k": 5},
                      lambda b: (b.get("temperature"), b.get("top_p"), b.get("max_tokens"), b.get("top_k")),
                      _anthropic_auth),
    "google": Spec("google", "gemini-3.5-flash", "/v1beta", "/v1beta/models/gemini-3.5-flash:generateContent",
                   _gemini_ok, _gemini_err, _gemini_turns, True, "gemini-2.0-flash-001", {"topK": 5},
                   lambda b: (b["generationConfig"].get("temperature"), b["generationConfig"].get("topP"),
                              b["generationConfig"].get("maxOutputTokens"), b["generationConfig"].get("topK")),
                   _gemini_auth),
    "ollama": Spec("ollama", "llama3.2", "/", "/api/chat", _ollama_ok, _ollama_err, lambda b: _openai_turns(b),
                   False, "llama3.2", {"num_ctx": 4096},
                   lambda b: (b["options"].get("temperature"), b["options"].get("top_p"),
                              b["options"].get("num_predict"), b["options"].get("num_ctx")), _no_auth),
}


class ToolCaller:
    """Calls worker tools by name through a real ToolRegistry, as a script would."""

    def __init__(self, sandbox: Path, manager: AIWorkerManager) -> None:
        self.registry = ToolRegistry()
        register_worker_tools(self.registry)

        class _Interp:
            sandbox_dir = sandbox
            workers = manager

        self.ctx = ToolContext(_Interp())  # type: ignore[arg-type]

    def __call__(self, tool_name: str, /, *args: Any, **named: Any) -> Any:
        t = self.registry.lookup(tool_name)
        assert t is not None, f"no tool {tool_name}"
        return self.registry.invoke(self.ctx, t, list(args), named)


def scan_for_key(*texts: object, paths: list[Path] = ()) -> None:  # type: ignore[assignment]
    """Assert the key appears in none of ``texts`` nor in any file under ``paths``."""
    for t in texts:
        assert KEY not in str(t) and KEY not in repr(t), f"API key leaked into {t!r:.200}"
    for root in paths:
        for f in ([root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]):
            assert KEY.encode() not in f.read_bytes(), f"API key leaked into {f}"


def ns_args(definition: dict[str, Any]) -> str:
    """A definition as NeuroScript named arguments (JSON values are NeuroScript literals)."""
    return ", ".join(f"{k}: {json.dumps(v)}" for k, v in definition.items())
