"""AIWorkerManager behaviour: definitions, instances, chat, stateless tasks, records, summaries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from workers_helpers import add_test_worker, scripted

from nslang.errors import LLMError
from nslang.llm.base import LLMTimeoutError, ModelSettingsError
from nslang.workers import (
    AIWorkerManager,
    ConfigurationError,
    InvalidArgumentError,
    NotFoundError,
    NotSupportedError,
    PreconditionFailedError,
    ProviderNotFoundError,
    RateLimitedError,
)
from nslang.workers.perflog import PERFORMANCE_FILE

# ----------------------------------------------------------------------------- definitions


def test_add_defaults_and_get(manager: AIWorkerManager) -> None:
    d = manager.add_definition({"name": "plain", "provider": "test"})
    assert d.interaction_models == ["both"] and d.status == "active" and d.auth.method == "none"
    assert d.created_timestamp is not None and d.created_timestamp == d.modified_timestamp
    assert len(d.definition_id) == 36
    assert manager.get_definition(d.definition_id) == manager.get_definition("plain")


@pytest.mark.parametrize("data,match", [
    ({"provider": "test"}, "name"),
    ({"name": "", "provider": "test"}, "name"),
    ({"name": "x"}, "provider"),
    ({"name": "x", "provider": "openai"}, "model_name is required"),
    ({"name": "x", "provider": "local", "model_name": "m"}, "base_url"),
    ({"name": "x", "provider": "test", "cost_metrics": {"input_token_cost": 1}}, "unknown cost_metrics"),
    ({"name": "x", "provider": "test", "auth": {"method": "env_var"}}, "auth.value"),
    ({"name": "x", "provider": "test", "auth": {"method": "inline"}}, "auth.value"),
    ({"name": "x", "provider": "test", "base_config": {"temperature": "hot"}}, "temperature"),
    ({"name": "x", "provider": "test", "aggregate_performance_summary": {}}, "managed by nslang"),
    ({"name": "x", "provider": "test", "colour": "red"}, "unknown field 'colour'"),
])
def test_add_refuses_bad_definitions(manager: AIWorkerManager, data: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidArgumentError, match=match) as ei:
        manager.add_definition(data)
    assert ei.value.code == 4
    assert manager.list_definitions() == []
    assert not (manager.definitions_path.exists() and json.loads(manager.definitions_path.read_text()))


def test_vault_is_not_supported(manager: AIWorkerManager) -> None:
    with pytest.raises(NotSupportedError, match="vault") as ei:
        manager.add_definition({"name": "v", "provider": "test", "auth": {"method": "vault", "value": "x"}})
    assert ei.value.code == 30


def test_duplicate_name_or_id_is_refused(manager: AIWorkerManager) -> None:
    the_id = add_test_worker(manager, "dup")
    with pytest.raises(InvalidArgumentError, match="already exists"):
        add_test_worker(manager, "dup")
    with pytest.raises(InvalidArgumentError, match="already exists"):
        add_test_worker(manager, "other", definition_id=the_id)
    assert len(manager.list_definitions()) == 1


def test_update_merges_auth_and_limits_and_replaces_the_rest(manager: AIWorkerManager) -> None:
    add_test_worker(manager, "u", base_config={"temperature": 0.7, "top_p": 0.9},
                    rate_limits={"max_requests_per_minute": 5, "max_tokens_per_day": 100},
                    auth={"method": "env_var", "value": "A_KEY"})
    before = manager.get_definition("u")
    after = manager.update_definition("u", {"rate_limits": {"max_requests_per_minute": 9},
                                            "base_config": {"temperature": 0.1},
                                            "auth": {"value": "B_KEY"}})
    assert after.rate_limits.max_requests_per_minute == 9 and after.rate_limits.max_tokens_per_day == 100
    assert after.base_config == {"temperature": 0.1}
    assert after.auth.method == "env_var" and after.auth.value == "B_KEY"
    assert after.modified_timestamp > before.modified_timestamp  # type: ignore[operator]
    same = manager.update_definition("u", {"base_config": {"temperature": 0.1}})
    assert same.modified_timestamp == after.modified_timestamp  # nothing changed: nothing written


@pytest.mark.parametrize("updates,match", [
    ({"definition_id": "x"}, "cannot be changed"),
    ({"created_timestamp": "2020-01-01T00:00:00Z"}, "cannot be changed"),
    ({"nope": 1}, "unknown field"),
    ({"status": "paused"}, "status"),
    ({"rate_limits": 5}, "must be a map"),
    ({"name": "taken"}, "already exists"),
])
def test_update_refuses_bad_changes(manager: AIWorkerManager, updates: dict[str, Any], match: str) -> None:
    add_test_worker(manager, "taken")
    add_test_worker(manager, "u")
    before = manager.definitions_path.read_bytes()
    with pytest.raises(InvalidArgumentError, match=match):
        manager.update_definition("u", updates)
    assert manager.definitions_path.read_bytes() == before


def test_update_and_remove_unknown_definition(manager: AIWorkerManager) -> None:
    with pytest.raises(NotFoundError) as ei:
        manager.update_definition("ghost", {"capabilities": []})
    assert ei.value.code == 9
    with pytest.raises(NotFoundError):
        manager.remove_definition("ghost")


def test_remove_refuses_or_retires_live_instances(manager: AIWorkerManager) -> None:
    add_test_worker(manager, "r")
    inst = manager.spawn_instance("r")
    with pytest.raises(PreconditionFailedError, match="active instance") as ei:
        manager.remove_definition("r")
    assert ei.value.code == 19
    manager.remove_definition("r", retire_instances=True)
    assert manager.list_definitions() == [] and manager.list_instances() == []
    with pytest.raises(NotFoundError):
        manager.get_instance(inst.instance_id)
    entries = json.loads(manager.performance_path.read_text())
    assert entries[-1]["entry_kind"] == "retired_instance" and entries[-1]["retirement_reason"] == "definition removed"


def test_list_filters_and_order(manager: AIWorkerManager) -> None:
    add_test_worker(manager, "Beta", capabilities=["Code", "chat"])
    add_test_worker(manager, "alpha", capabilities=["chat"], status="disabled")
    add_test_worker(manager, "gamma", model_name="big-model")
    assert [d.name for d in manager.list_definitions()] == ["alpha", "Beta", "gamma"]
    assert [d.name for d in manager.list_definitions({"name": "ET"})] == ["Beta"]
    assert [d.name for d in manager.list_definitions({"status": "disabled"})] == ["alpha"]
    assert [d.name for d in manager.list_definitions({"capabilities_contains": "code"})] == ["Beta"]
    assert [d.name for d in manager.list_definitions({"capabilitiesContainsAll": ["chat", "code"]})] == ["Beta"]
    assert len(manager.list_definitions({"capabilities_contains_all": []})) == 3
    assert [d.name for d in manager.list_definitions({"model_name": "BIG"})] == ["gamma"]
    assert [d.name for d in manager.list_definitions({"provider": "test", "interaction_models_contains": "both"})] \
        == ["alpha", "Beta", "gamma"]
    the_id = manager.get_definition("gamma").definition_id
    assert [d.name for d in manager.list_definitions({"definition_id": the_id})] == ["gamma"]
    with pytest.raises(InvalidArgumentError, match="unknown definition filter"):
        manager.list_definitions({"colour": "red"})
    with pytest.raises(InvalidArgumentError, match="needs a string"):
        manager.list_definitions({"name": 5})


# ----------------------------------------------------------------------------- instances


def test_spawn_checks(manager: AIWorkerManager) -> None:
    add_test_worker(manager, "off", status="disabled")
    add_test_worker(manager, "tasks-only", interaction_models=["stateless_task"])
    with pytest.raises(NotFoundError):
        manager.spawn_instance("nobody")
    with pytest.raises(PreconditionFailedError, match="not active"):
        manager.spawn_instance("off")
    with pytest.raises(PreconditionFailedError, match="conversational"):
        manager.spawn_instance("tasks-only")
    with pytest.raises(InvalidArgumentError):
        manager.spawn_instance("off", config_overrides=[1])  # type: ignore[arg-type]


def test_spawn_merges_config_and_contexts(manager: AIWorkerManager) -> None:
    add_test_worker(manager, "c", base_config={"temperature": 0.7, "top_p": 0.9}, default_file_contexts=["a.txt"])
    i1 = manager.spawn_instance("c", {"temperature": 0.2})
    assert i1.current_config == {"temperature": 0.2, "top_p": 0.9} and i1.active_file_contexts == ["a.txt"]
    i2 = manager.spawn_instance("c", file_contexts=["b.txt"])
    assert i2.active_file_contexts == ["b.txt"] and i2.status == "idle"
    assert manager.get_summary("c").total_instances_spawned == 2
    assert manager.get_summary("c").active_instances_count == 2


def test_max_concurrent_instances(manager: AIWorkerManager) -> None:
    add_test_worker(manager, "one", rate_limits={"max_concurrent_active_instances": 1})
    inst = manager.spawn_instance("one")
    with pytest.raises(RateLimitedError, match="max_concurrent_active_instances=1") as ei:
        manager.spawn_instance("one")
    assert ei.value.code == 20 and "'one'" in ei.value.message
    manager.retire_instance(inst.instance_id)
    manager.spawn_instance("one")


def test_update_status_rules(manager: AIWorkerManager) -> None:
    add_test_worker(manager, "s")
    iid = manager.spawn_instance("s").instance_id
    t0 = manager.get_instance(iid).last_activity_timestamp
    manager.update_instance_status(iid, "idle")  # unchanged: no-op
    assert manager.get_instance(iid).last_activity_timestamp == t0
    manager.update_instance_status(iid, "error", "boom")
    assert manager.get_instance(iid).last_error == "boom"
    manager.update_instance_status(iid, "idle", "ignored")
    i = manager.get_instance(iid)
    assert i.status == "idle" and i.last_error == ""
    with pytest.raises(InvalidArgumentError, match="unknown instance status"):
        manager.update_instance_status(iid, "sleeping")
    with pytest.raises(InvalidArgumentError, match="Retire"):
        manager.update_instance_status(iid, "retired_completed")
    with pytest.raises(NotFoundError):
        manager.update_instance_status("ghost", "idle")


def test_update_token_usage_is_additive(manager: AIWorkerManager) -> None:
    add_test_worker(manager, "t")
    iid = manager.spawn_instance("t").instance_id
    manager.update_instance_token_usage(iid, 10, 5)
    manager.update_instance_token_usage(iid, 1, 2)
    u = manager.get_instance(iid).session_token_usage
    assert (u.input_tokens, u.output_tokens, u.total_tokens) == (11, 7, 18)
    with pytest.raises(InvalidArgumentError):
        manager.update_instance_token_usage(iid, -1, 0)


@pytest.mark.parametrize("given,final", [
    (None, "retired_completed"), ("completed", "retired_completed"), ("retired_error", "retired_error"),
    ("context_full", "context_full"), ("cancelled", "retired_exhausted"),
])
def test_retire_final_status(manager: AIWorkerManager, given: str | None, final: str) -> None:
    add_test_worker(manager, "r")
    iid = manager.spawn_instance("r").instance_id
    info = manager.retire_instance(iid, "done", given)
    assert info.final_status == final
    entry = json.loads(manager.performance_path.read_text())[-1]
    assert entry["instance_id"] == iid and entry["final_status"] == final
    assert set(entry) >= {"instance_id", "definition_id", "creation_timestamp", "retirement_timestamp",
                          "final_status", "retirement_reason", "session_token_usage", "initial_file_contexts",
                          "performance_records"}
    assert entry["performance_records"] == []


def test_retire_refuses_bad_status_and_keeps_the_instance(manager: AIWorkerManager) -> None:
    add_test_worker(manager, "r")
    iid = manager.spawn_instance("r").instance_id
    with pytest.raises(InvalidArgumentError, match="final status"):
        manager.retire_instance(iid, "x", "idle")
    with pytest.raises(InvalidArgumentError, match="unknown instance status"):
        manager.retire_instance(iid, "x", "banana")
    assert manager.get_instance(iid).status == "idle"


def test_retire_usage_and_external_records(manager: AIWorkerManager) -> None:
    add_test_worker(manager, "r")
    iid = manager.spawn_instance("r").instance_id
    reply = manager.chat(iid, "one two three")
    manager.update_instance_token_usage(iid, 100, 0)
    usage_before = manager.get_instance(iid).session_token_usage
    info = manager.retire_instance(
        iid, "done", "retired_completed", {"input_tokens": 1, "output_tokens": 999},
        [{"task_id": reply.record.task_id, "success": True},  # already logged: skipped
         {"task_id": "ext-1", "success": False, "duration_ms": 40, "llm_metrics": {"input_tokens": 3}}],
    )
    u = info.session_token_usage
    assert u.input_tokens == usage_before.input_tokens and u.output_tokens == 999  # raised, never lowered
    assert [r.task_id for r in info.performance_records] == ["ext-1"]
    s = manager.get_summary("r")
    assert s.total_tasks_attempted == 2 and s.failed_tasks == 1
    with pytest.raises(NotFoundError):
        manager.retire_instance(iid)


def test_retire_with_bad_records_is_refused_whole(manager: AIWorkerManager) -> None:
    add_test_worker(manager, "r")
    iid = manager.spawn_instance("r").instance_id
    size = manager.performance_path.stat().st_size
    with pytest.raises(InvalidArgumentError, match="performance_records\\[0\\]"):
        manager.retire_instance(iid, performance_records=[{"task_id": "x", "oops": 1}])
    with pytest.raises(InvalidArgumentError, match="input_tokens"):
        manager.retire_instance(iid, final_usage={"input_tokens": -5})
    assert manager.performance_path.stat().st_size == size
    assert manager.get_instance(iid).status == "idle"


# ----------------------------------------------------------------------------- chat


def test_chat_keeps_history_and_usage(manager: AIWorkerManager) -> None:
    add_test_worker(manager, "c")
    iid = manager.spawn_instance("c").instance_id
    r1 = manager.chat(iid, "hello there")
    r2 = manager.chat(iid, "and again")
    assert r1.text == "test reply 1: hello there" and r2.text == "test reply 2: and again"
    hist = manager.get_history(iid)
    assert [h["role"] for h in hist] == ["user", "assistant", "user", "assistant"]
    # test provider: input = words of every message sent, output = words of the reply
    assert r2.record.llm_metrics["input_tokens"] == 2 + 5 + 2
    u = manager.get_instance(iid).session_token_usage
    assert u.input_tokens == 2 + 9 and u.output_tokens == 5 + 5
    assert r2.instance.status == "idle"
    s = manager.get_summary("c")
    assert s.total_tasks_attempted == 2 and s.total_tokens_processed == u.total_tokens


def test_chat_failure_sets_error_then_recovers(manager: AIWorkerManager) -> None:
    calls: list[int] = []

    def flaky(messages: list[dict[str, str]], settings: dict[str, Any]) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("service unavailable")
        return {"text": "ok", "input_tokens": 4, "output_tokens": 1}

    manager.register_custom_provider("flaky", flaky)
    manager.add_definition({"name": "f", "provider": "custom", "base_config": {"custom_provider": "flaky"}})
    iid = manager.spawn_instance("f").instance_id
    with pytest.raises(LLMError, match="service unavailable") as ei:
        manager.chat(iid, "hi")
    assert ei.value.code == 16
    i = manager.get_instance(iid)
    assert i.status == "error" and "service unavailable" in i.last_error and manager.get_history(iid) == []
    assert manager.chat(iid, "hi").text == "ok"
    i = manager.get_instance(iid)
    assert i.status == "idle" and i.last_error == ""  # §6 C7 fixed: error is not sticky
    s = manager.get_summary("f")
    assert (s.total_tasks_attempted, s.failed_tasks) == (2, 1)


def test_chat_refuses_busy_and_inactive(manager: AIWorkerManager) -> None:
    add_test_worker(manager, "c")
    iid = manager.spawn_instance("c").instance_id
    manager.update_instance_status(iid, "busy")
    with pytest.raises(PreconditionFailedError, match="busy"):
        manager.chat(iid, "x")
    manager.update_instance_status(iid, "idle")
    manager.update_definition("c", {"status": "disabled"})
    with pytest.raises(PreconditionFailedError, match="not active"):
        manager.chat(iid, "x")
    with pytest.raises(NotFoundError):
        manager.chat("ghost", "x")


# ----------------------------------------------------------------------------- stateless tasks


def test_stateless_task_record_and_cost(manager: AIWorkerManager) -> None:
    manager.register_custom_provider("p", scripted([{"text": "answer", "input_tokens": 100, "output_tokens": 50,
                                                     "finish_reason": "stop", "model": "m-1"}]))
    manager.add_definition({"name": "s", "provider": "custom", "interaction_models": ["stateless_task"],
                            "base_config": {"custom_provider": "p"},
                            "cost_metrics": {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002}})
    res = manager.execute_stateless_task("s", "a prompt")
    out = res.as_map()
    assert out["output"] == "answer" and out["cost"] == pytest.approx(0.2)
    assert (out["input_tokens"], out["output_tokens"]) == (100, 50) and out["duration_ms"] >= 0
    rec = res.record
    assert rec.instance_id.startswith("stateless-") and rec.success and rec.input_context["prompt_char_length"] == 8
    assert rec.llm_metrics == {"input_tokens": 100, "output_tokens": 50, "total_tokens": 150, "finish_reason": "stop",
                               "model_used_at_call": "m-1", "price_source": "cost_metrics"}
    stored = manager.get_performance_records("s")
    assert [r.task_id for r in stored] == [out["task_id"]]


def test_per_call_cost_and_estimated_tokens(manager: AIWorkerManager) -> None:
    manager.register_custom_provider("default", scripted(["x" * 40]))
    manager.add_definition({"name": "e", "provider": "custom", "interaction_models": ["both"],
                            "cost_metrics": {"per_call": 0.5}})
    rec = manager.execute_stateless_task("e", "p" * 12).record
    assert rec.llm_metrics["estimated"] is True
    assert (rec.llm_metrics["input_tokens"], rec.llm_metrics["output_tokens"]) == (3, 10)
    assert rec.cost_incurred == 0.5


def test_output_summary_is_cut_by_characters(manager: AIWorkerManager) -> None:
    manager.register_custom_provider("default", scripted(["é" * 300, "short"]))
    manager.add_definition({"name": "long", "provider": "custom", "interaction_models": ["both"]})
    rec = manager.execute_stateless_task("long", "x").record
    assert len(rec.output_summary) == 256 and rec.output_summary.endswith("...")
    assert manager.execute_stateless_task("long", "x").record.output_summary == "short"


def test_summary_after_three_calls(manager: AIWorkerManager) -> None:
    replies: list[Any] = [{"text": "a", "input_tokens": 1, "output_tokens": 2}, RuntimeError("nope"),
                          {"text": "b", "input_tokens": 3, "output_tokens": 4}]

    def provider(messages: list[dict[str, str]], settings: dict[str, Any]) -> Any:
        r = replies.pop(0)
        if isinstance(r, Exception):
            raise r
        return r

    manager.register_custom_provider("default", provider)
    manager.add_definition({"name": "sum", "provider": "custom", "interaction_models": ["stateless_task"],
                            "cost_metrics": {"input_cost_per_token": 1.0}})
    manager.execute_stateless_task("sum", "1")
    with pytest.raises(LLMError):
        manager.execute_stateless_task("sum", "2")
    manager.execute_stateless_task("sum", "3")
    s = manager.get_summary("sum")
    recs = manager.get_performance_records("sum")
    assert (s.total_tasks_attempted, s.successful_tasks, s.failed_tasks) == (3, 2, 1)
    assert s.average_success_rate == pytest.approx(2 / 3)
    assert s.total_tokens_processed == 10 and s.total_cost_incurred == pytest.approx(4.0)
    assert s.last_activity_timestamp == max(r.timestamp_end for r in recs)  # type: ignore[type-var]
    assert s.average_duration_ms == pytest.approx(sum(r.duration_ms for r in recs) / 3)
    assert [r.success for r in manager.get_performance_records("sum", {"success": False})] == [False]
    # summaries are rebuilt from the log by a fresh manager, identically
    fresh = AIWorkerManager(manager.sandbox_dir)
    assert fresh.get_summary("sum") == s


def test_stateless_refusals_leave_no_record(manager: AIWorkerManager) -> None:
    add_test_worker(manager, "chat-only", interaction_models=["conversational"])
    add_test_worker(manager, "off", status="archived")
    add_test_worker(manager, "keyless", auth={"method": "env_var", "value": "NSLANG_TEST_MISSING_KEY"})
    manager.add_definition({"name": "remote", "provider": "openai", "model_name": "gpt-4o",
                            "interaction_models": ["both"]})
    manager.add_definition({"name": "unreg", "provider": "custom", "interaction_models": ["both"],
                            "base_config": {"custom_provider": "nobody"}})
    cases = [("ghost", NotFoundError, 9), ("chat-only", PreconditionFailedError, 19),
             ("off", PreconditionFailedError, 19), ("keyless", ConfigurationError, 18),
             ("remote", ModelSettingsError, 18), ("unreg", ProviderNotFoundError, 40)]
    for name, exc, code in cases:
        with pytest.raises(exc) as ei:
            manager.execute_stateless_task(name, "hi")
        assert ei.value.code == code, name
    assert not manager.performance_path.exists() or json.loads(manager.performance_path.read_text()) == []


def test_missing_env_key_names_definition_and_variable(manager: AIWorkerManager) -> None:
    add_test_worker(manager, "keyless", auth={"method": "env_var", "value": "NSLANG_TEST_MISSING_KEY"})
    with pytest.raises(ConfigurationError) as ei:
        manager.execute_stateless_task("keyless", "hi")
    assert "'keyless'" in ei.value.message and "NSLANG_TEST_MISSING_KEY" in ei.value.message


def test_empty_reply_and_timeout_are_failures(manager: AIWorkerManager) -> None:
    def provider(messages: list[dict[str, str]], settings: dict[str, Any]) -> Any:
        if messages[-1]["content"] == "slow":
            raise TimeoutError("took too long")
        return ""

    manager.register_custom_provider("default", provider)
    manager.add_definition({"name": "bad", "provider": "custom", "interaction_models": ["both"]})
    with pytest.raises(LLMError, match="empty reply") as ei:
        manager.execute_stateless_task("bad", "x")
    assert ei.value.code == 16
    with pytest.raises(LLMTimeoutError) as ti:
        manager.execute_stateless_task("bad", "slow")
    assert ti.value.code == 31
    recs = manager.get_performance_records("bad")
    assert [r.success for r in recs] == [False, False] and "took too long" in recs[1].error_details


def test_test_provider_settings(manager: AIWorkerManager) -> None:
    add_test_worker(manager, "t", model_name="mock-1", base_config={"max_tokens": 3})
    r = manager.execute_stateless_task("t", "one two three four five")
    assert r.output == "mock-1 reply 1:" and r.record.llm_metrics["finish_reason"] == "length"
    assert manager.execute_stateless_task("t", "x", {"test_reply": "fixed", "max_tokens": 0}).output == "fixed"
    with pytest.raises(LLMError, match="simulated outage"):
        manager.execute_stateless_task("t", "x", {"test_error": "simulated outage"})


# ----------------------------------------------------------------------------- ask


def test_ask_routes_to_definition_instance_or_default(manager: AIWorkerManager) -> None:
    add_test_worker(manager, "a")
    with pytest.raises(ConfigurationError, match="default worker") as ei:
        manager.ask(None, "hi")
    assert ei.value.code == 18
    manager.default_worker = "a"
    assert manager.ask(None, "hi") == "test reply 1: hi"
    iid = manager.spawn_instance("a").instance_id
    manager.ask(iid, "first")
    assert manager.ask(iid, "second") == "test reply 2: second"
    with pytest.raises(NotFoundError, match="no AI worker definition"):
        manager.ask("nobody", "hi")
    assert manager.ask("a", "x", {"test_reply": "opt"}) == "opt"
    with pytest.raises(InvalidArgumentError):
        manager.ask("a", "x", [1])  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- records and summaries


def test_log_performance(manager: AIWorkerManager) -> None:
    the_id = add_test_worker(manager, "lp")
    rec = manager.log_performance({
        "task_id": "t1", "instance_id": "ext", "definition_id": the_id, "timestamp_start": "2025-01-01T10:00:00Z",
        "timestamp_end": "2025-01-01T10:00:02.250Z", "duration_ms": 2250, "success": True,
        "llm_metrics": {"input_tokens": 10, "output_tokens": 50}, "cost_incurred": 0.25,
        "supervisor_feedback": {"rating": 4.0},
    })
    assert rec.task_id == "t1"
    s = manager.get_summary(the_id)
    assert (s.total_tokens_processed, s.total_cost_incurred, s.average_quality_score) == (60, 0.25, 4.0)
    base = {"task_id": "t", "instance_id": "i", "definition_id": the_id, "timestamp_start": "2025-01-01T10:00:00Z",
            "timestamp_end": "2025-01-01T10:00:01Z", "duration_ms": 1, "success": True}
    with pytest.raises(InvalidArgumentError, match="invalid timestamp_start format 'soon'"):
        manager.log_performance({**base, "timestamp_start": "soon"})
    with pytest.raises(NotFoundError):
        manager.log_performance({**base, "definition_id": "ghost"})
    with pytest.raises(InvalidArgumentError, match="task_id"):
        manager.log_performance({**base, "task_id": ""})
    with pytest.raises(InvalidArgumentError, match="unknown field"):
        manager.log_performance({**base, "bogus": 1})


def test_record_filters(manager: AIWorkerManager) -> None:
    the_id = add_test_worker(manager, "f")
    for i, ok in enumerate([True, False, True]):
        manager.log_performance({"task_id": f"t{i}", "instance_id": "ext", "definition_id": the_id,
                                 "timestamp_start": "2025-01-01T10:00:00Z", "timestamp_end": "2025-01-01T10:00:01Z",
                                 "duration_ms": 100 * (i + 1), "success": ok, "cost_incurred": 0.1 * i})
    manager.execute_stateless_task("f", "x")
    get = manager.get_performance_records
    assert [r.task_id for r in get("f", {"success": True})][:2] == ["t0", "t2"]
    assert [r.task_id for r in get("f", {"duration_ms_gt": 150, "duration_ms_lt": 350})] == ["t1", "t2"]
    assert [r.task_id for r in get("f", {"costIncurred_gt": 0.15})] == ["t2"]
    assert len(get("f", {"instance_id": "stateless"})) == 1
    assert [r.task_id for r in get("f", {"task_id": "t1"})] == ["t1"]
    with pytest.raises(InvalidArgumentError, match="unknown record filter"):
        get("f", {"speed": 1})
    with pytest.raises(InvalidArgumentError, match="boolean"):
        get("f", {"success": "yes"})
    with pytest.raises(InvalidArgumentError, match="integer"):
        get("f", {"duration_ms_gt": 1.5})
    with pytest.raises(NotFoundError):
        get("ghost")


def test_summary_fields_after_restart(sandbox: Path) -> None:
    m = AIWorkerManager(sandbox)
    add_test_worker(m, "x")
    iid = m.spawn_instance("x").instance_id
    m.chat(iid, "hi")
    m.execute_stateless_task("x", "task")
    before = m.get_summary("x")
    assert before.total_instances_spawned == 1 and before.active_instances_count == 1
    after = AIWorkerManager(sandbox).get_summary("x")
    assert after.model_dump(exclude={"active_instances_count"}) == before.model_dump(exclude={"active_instances_count"})
    assert after.active_instances_count == 0  # instances live in their own process only
    # the definitions file holds the summaries too (written on save)
    m.save_definitions()
    stored = json.loads(m.definitions_path.read_text())[0]["aggregate_performance_summary"]
    assert stored["total_tasks_attempted"] == 2


def test_reload_performance_data_and_go_era_log(sandbox: Path) -> None:
    m = AIWorkerManager(sandbox)
    the_id = add_test_worker(m, "legacy")
    (sandbox / PERFORMANCE_FILE).write_text(json.dumps([{
        "instance_id": "old", "definition_id": the_id, "final_status": "retired_exhausted",
        "performance_records": [{"task_id": "a", "definition_id": the_id, "success": True, "duration_ms": 10,
                                 "timestamp_end": "2025-01-01T00:00:00Z"}],
    }, {"instance_id": "old2", "definition_id": the_id, "performance_records": None}], indent=2))
    assert m.reload_performance_data() == (2, 1)
    s = m.get_summary("legacy")
    assert s.total_tasks_attempted == 1 and s.total_instances_spawned == 2
    m.execute_stateless_task("legacy", "new")
    assert len(json.loads((sandbox / PERFORMANCE_FILE).read_text())) == 3


def test_corrupt_log_fails_closed(sandbox: Path) -> None:
    m = AIWorkerManager(sandbox)
    add_test_worker(m, "c")
    content = b'[\n{"a": 1},\nnot json at all\n,{"b": 2}\n]\n'
    (sandbox / PERFORMANCE_FILE).write_bytes(content)
    fresh = AIWorkerManager(sandbox)
    with pytest.raises(Exception) as ei:
        fresh.execute_stateless_task("c", "x")
    assert str(sandbox / PERFORMANCE_FILE) in str(ei.value) and getattr(ei.value, "code", None) == 6
    assert (sandbox / PERFORMANCE_FILE).read_bytes() == content


def test_rate_limit_usage_is_shared_through_the_sandbox(sandbox: Path) -> None:
    m = AIWorkerManager(sandbox)
    add_test_worker(m, "rl", rate_limits={"max_requests_per_minute": 2})
    m.execute_stateless_task("rl", "a")
    m.execute_stateless_task("rl", "b")
    # another process (a fresh manager) sees the same windows (the sandbox's rate-limit store)
    other = AIWorkerManager(sandbox)
    with pytest.raises(RateLimitedError, match="max_requests_per_minute=2"):
        other.execute_stateless_task("rl", "c")
    assert other.rate_limit_usage("rl")["requests_last_minute"] == 2
