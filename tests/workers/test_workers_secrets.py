"""API keys never leak: not in tool output, log records, error messages, exception text or files."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import ToolCaller

from nslang.errors import LLMError, LLMHTTPError, NSRuntimeError
from nslang.llm.base import Message, Model, ModelResponse, ProviderConfig
from nslang.workers import AIWorkerManager
from nslang.workers.keys import redact, user_config_dir

INLINE = "sk-inline-TOPSECRET-1234567890"
INLINE2 = "sk-inline-ROTATED-0000009999"
ENV = "sk-env-ALSOSECRET-0987654321"
FILEKEY = "sk-file-SECRETFILE-5555"
SECRETS = (INLINE, INLINE2, ENV, FILEKEY)


class LeakyModel(Model):
    """A provider that sees the key and tries its best to leak it."""

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config

    @property
    def provider(self) -> str:
        return "openai"

    @property
    def model_name(self) -> str:
        return self.config.model_name

    def request(self, messages: Sequence[Message], settings: Mapping[str, Any]) -> ModelResponse:
        key = self.config.api_key or ""
        mode = messages[-1].content
        if mode == "http":
            raise LLMHTTPError(f"401 for key {key}", status=401, provider="openai",
                               body=f'{{"error": "bad key {key}"}}')
        if mode == "raw":
            try:
                raise ValueError(f"header Authorization: Bearer {key}")
            except ValueError as e:
                raise RuntimeError(f"transport failed using {key}") from e
        return ModelResponse("fine", 1, 1, "stop", "leaky")


def _texts_of(exc: BaseException) -> list[str]:
    out = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    if isinstance(exc, NSRuntimeError):
        out.append(exc.message)
    return out


def test_keys_never_appear_anywhere(sandbox: Path, caplog: pytest.LogCaptureFixture,
                                    tmp_path: Path) -> None:
    caplog.set_level(logging.DEBUG)
    key_file = user_config_dir() / "keys.json"  # the user's nslang config dir (a temporary one in tests)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(json.dumps({"openai": {"api_key": FILEKEY}}))
    manager = AIWorkerManager(sandbox, environ={"MY_PROVIDER_KEY": ENV})
    manager.register_provider_factory("openai", LeakyModel)
    call = ToolCaller(sandbox, manager)
    seen: list[str] = []

    def run(tool_name: str, /, *args: Any, **named: Any) -> Any:
        try:
            out = call(tool_name, *args, **named)
        except NSRuntimeError as e:
            seen.extend(_texts_of(e))
            return e
        seen.append(repr(out))
        seen.append(json.dumps(out, default=str))
        return out

    inline_id = run("AIWorkerDefinition.Add", name="inline", provider="test", interaction_models=["both"],
                    auth={"method": "inline", "value": INLINE})
    env_id = run("AIWorkerDefinition.Add", name="env", provider="openai", model_name="gpt-x",
                 interaction_models=["both"], auth={"method": "env_var", "value": "MY_PROVIDER_KEY"})
    run("AIWorkerDefinition.Add", name="file", provider="openai", model_name="gpt-x", interaction_models=["both"],
        auth={"method": "config_path", "value": str(key_file), "key_path": "openai.api_key"})
    # bad input that carries a key in the wrong place
    run("AIWorkerDefinition.Add", name="bad", provider="test", auth={"method": "inline", "value": INLINE, "x": INLINE})
    run("AIWorkerDefinition.Add", name="bad2", provider="test", auth={"method": INLINE, "value": INLINE})
    run("AIWorkerDefinition.Update", inline_id, {"auth": {"method": ENV}})

    assert run("AIWorkerDefinition.Get", inline_id)["auth"]["value"] == redact(INLINE) == "****7890"
    run("AIWorkerDefinition.List")
    run("AIWorkerDefinition.Update", inline_id, {"metadata": {"v": 2}})
    run("AIWorkerDefinition.SaveAll")
    run("AIWorkerDefinition.LoadAll")
    assert run("AIWorker.ExecuteStatelessTask", "inline", "hello")["output"] == "test reply 1: hello"
    assert run("AIWorker.ExecuteStatelessTask", "env", "normal")["output"] == "fine"
    assert run("AIWorker.ExecuteStatelessTask", "file", "normal")["output"] == "fine"
    for mode in ("http", "raw"):
        for name in ("env", "file"):
            err = run("AIWorker.ExecuteStatelessTask", name, mode)
            assert isinstance(err, LLMError) and err.code == 16
    inst = run("AIWorkerInstance.Spawn", env_id)
    run("AIWorkerInstance.Chat", inst["instance_id"], "hello")
    run("AIWorkerInstance.Chat", inst["instance_id"], "raw")
    run("AIWorkerInstance.Get", inst["instance_id"])
    run("AIWorkerInstance.ListActive")
    run("AIWorkerInstance.Retire", inst["instance_id"], "done")
    for ref in ("inline", "env", "file"):
        run("AIWorker.GetPerformanceRecords", ref)
        run("AIWorker.GetPerformanceSummary", ref)
    run("AIWorkerDefinition.Update", inline_id, {"auth": {"value": INLINE2}})
    assert run("AIWorker.ExecuteStatelessTask", "inline", "rotated")["output"] == "test reply 1: rotated"
    run("AIWorker.SavePerformanceData")
    run("AIWorker.LoadPerformanceData")
    # after a restart the inline key is gone (never written), and the error says so without showing it
    restarted = ToolCaller(sandbox, AIWorkerManager(sandbox, environ={}))
    try:
        restarted("AIWorker.ExecuteStatelessTask", "inline", "x")
    except NSRuntimeError as e:
        assert e.code == 18 and "inline API key is not available" in e.message
        seen.extend(_texts_of(e))
    else:  # pragma: no cover
        pytest.fail("an inline key must not survive a restart")
    seen.append(repr(ProviderConfig("openai", "m", api_key=ENV)))

    seen.extend(r.getMessage() for r in caplog.records)
    for path in sandbox.rglob("*"):
        if path.is_file():
            seen.append(path.read_bytes().decode("utf-8", "replace"))
    blob = "\n".join(seen)
    assert len(blob) > 10_000
    for secret in SECRETS:
        assert secret not in blob, secret
    assert "MY_PROVIDER_KEY" in blob  # the variable's name is fine to show


def test_a_users_own_plain_text_key_stays_in_their_file(sandbox: Path) -> None:
    """nslang never writes a key; a key the user wrote into the file is kept there (never shown)."""
    sandbox.mkdir()
    path = sandbox / "ai_worker_definitions.json"
    path.write_text(json.dumps([{"name": "hand", "provider": "test", "interaction_models": ["both"],
                                 "auth": {"method": "inline", "value": FILEKEY}}]))
    m = AIWorkerManager(sandbox)
    assert m.get_definition("hand").auth.value == redact(FILEKEY)
    assert m.execute_stateless_task("hand", "hi").output
    m.add_definition({"name": "other", "provider": "test"})  # rewrites the file
    assert json.loads(path.read_text())[0]["auth"]["value"] == FILEKEY
    m.update_definition("hand", {"auth": {"value": INLINE}})  # replaced through nslang: no longer written
    text = path.read_text()
    assert FILEKEY not in text and INLINE not in text
