"""Every worker tool through a real ToolRegistry: normal use, named and positional arguments, bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import ToolCaller

from nslang.errors import NSRuntimeError
from nslang.workers.limits import LIMITS_FILE

EXPECTED_TOOLS = {
    "AIWorkerDefinition": {"Add", "Get", "List", "Update", "Remove", "LoadAll", "SaveAll"},
    "AIWorkerInstance": {"Spawn", "Get", "ListActive", "Retire", "UpdateStatus", "UpdateTokenUsage", "Chat",
                         "GetHistory"},
    "AIWorker": {"ExecuteStatelessTask", "LogPerformance", "GetPerformanceRecords", "SavePerformanceData",
                 "LoadPerformanceData", "GetPerformanceSummary"},
}


def _files(call: ToolCaller) -> dict[str, bytes]:
    root = call.interp.sandbox_dir
    if not root.exists():
        return {}
    # the rate-limit store (SQLite) is the limits' own state, not worker data: a refusal may slide its windows
    return {p.name: p.read_bytes() for p in root.iterdir()
            if p.is_file() and not p.name.endswith(".lock") and not p.name.startswith(LIMITS_FILE)}


def _err(call: ToolCaller, tool_name: str, /, *args: Any, **named: Any) -> NSRuntimeError:
    """Call a tool that must fail: the error names the tool, and nothing was written."""
    before = _files(call)
    with pytest.raises(NSRuntimeError) as ei:
        call(tool_name, *args, **named)
    assert ei.value.message.lower().startswith(f"tool.{tool_name}".lower()), ei.value.message
    assert _files(call) == before, "a refused call changed the sandbox files"
    return ei.value


def test_every_tool_is_registered_with_a_full_spec(call: ToolCaller) -> None:
    found: dict[str, set[str]] = {}
    for t in call.registry.all():
        found.setdefault(t.spec.group, set()).add(t.spec.name)
        s = t.spec
        assert s.description and s.example and s.error_conditions, s.full_name
        assert s.return_help or s.return_type == "nil", s.full_name
        assert all(a.description for a in s.args), s.full_name
        assert s.example.startswith(("set ", "call ")) and f"tool.{s.full_name}(" in s.example
    assert found == EXPECTED_TOOLS
    assert call.registry.lookup("aiworker.executestatelesstask") is not None  # case-insensitive


def test_definition_tools(call: ToolCaller) -> None:
    the_id = call("AIWorkerDefinition.Add", name="summarizer", provider="test",
                  interaction_models=["stateless_task", "conversational"], capabilities=["summaries"],
                  cost_metrics={"input_cost_per_token": 0.000001}, rate_limits={"max_requests_per_minute": 100},
                  metadata={"description": "short summaries"})
    assert isinstance(the_id, str)
    second = call("AIWorkerDefinition.Add", "writer", "test")  # positional
    d = call("AIWorkerDefinition.Get", the_id)
    assert d["name"] == "summarizer" and d["definition_id"] == the_id
    assert d["rate_limits"] == {"max_requests_per_minute": 100, "max_tokens_per_minute": 0,
                                "max_tokens_per_day": 0, "max_concurrent_active_instances": 0,
                                "on_limit": "error", "max_wait_s": 60.0, "max_cost_usd_per_day": 0.0}
    assert d["aggregate_performance_summary"]["total_tasks_attempted"] == 0
    assert isinstance(d["created_timestamp"], str) and d["created_timestamp"].endswith("Z")
    assert call("AIWorkerDefinition.Get", definition_id="writer")["definition_id"] == second
    assert [x["name"] for x in call("AIWorkerDefinition.List")] == ["summarizer", "writer"]
    assert [x["name"] for x in call("AIWorkerDefinition.List", {"capabilities_contains": "SUMMARIES"})] == \
        ["summarizer"]
    up = call("AIWorkerDefinition.Update", the_id, {"capabilities": ["a", "b"], "status": "disabled"})
    assert up["capabilities"] == ["a", "b"] and up["status"] == "disabled"
    assert call("AIWorkerDefinition.SaveAll") == "Saved 2 worker definitions."
    assert call("AIWorkerDefinition.LoadAll") == "Reloaded 2 worker definitions."
    assert call("AIWorkerDefinition.Remove", second) is None
    assert [x["name"] for x in call("AIWorkerDefinition.List")] == ["summarizer"]


def test_definition_tool_errors(call: ToolCaller) -> None:
    call("AIWorkerDefinition.Add", name="a", provider="test")
    assert _err(call, "AIWorkerDefinition.Add", name="a", provider="test").code == 4  # duplicate
    assert _err(call, "AIWorkerDefinition.Add", name="b", provider="gpt").code == 4  # bad enum
    assert _err(call, "AIWorkerDefinition.Add", name="b").code == 4  # missing required
    assert _err(call, "AIWorkerDefinition.Add", name="b", provider="test", capabilities="x").code == 4  # type
    assert _err(call, "AIWorkerDefinition.Add", name="b", provider="test", colour="red").code == 4  # unknown
    assert _err(call, "AIWorkerDefinition.Get", "ghost").code == 9
    assert _err(call, "AIWorkerDefinition.Get", 42).code == 4
    assert _err(call, "AIWorkerDefinition.List", {"bogus": 1}).code == 4
    assert _err(call, "AIWorkerDefinition.Update", "a", {"definition_id": "z"}).code == 4
    assert _err(call, "AIWorkerDefinition.Update", "a", "not a map").code == 4
    assert _err(call, "AIWorkerDefinition.Remove", "ghost").code == 9
    assert _err(call, "AIWorkerDefinition.Add", name="v", provider="test",
                auth={"method": "vault", "value": "x"}).code == 30


def test_instance_tools(call: ToolCaller) -> None:
    the_id = call("AIWorkerDefinition.Add", name="chatter", provider="test", base_config={"temperature": 0.5})
    inst = call("AIWorkerInstance.Spawn", the_id, {"temperature": 0.1}, ["notes.md"])
    iid = inst["instance_id"]
    assert inst["conversation_manager_handle"] == iid and inst["status"] == "idle"
    assert inst["current_config"] == {"temperature": 0.1} and inst["active_file_contexts"] == ["notes.md"]
    assert set(inst) == {"instance_id", "definition_id", "status", "creation_timestamp", "last_activity_timestamp",
                         "session_token_usage", "current_config", "active_file_contexts", "last_error",
                         "retirement_reason", "conversation_manager_handle"}
    assert call("AIWorkerInstance.Chat", iid, "hello") == "test reply 1: hello"
    assert call("AIWorkerInstance.Chat", instance_id=iid, message="more") == "test reply 2: more"
    assert [t["role"] for t in call("AIWorkerInstance.GetHistory", iid)] == ["user", "assistant"] * 2
    assert call("AIWorkerInstance.Get", iid)["session_token_usage"]["total_tokens"] > 0
    assert [i["instance_id"] for i in call("AIWorkerInstance.ListActive", {"definition_id": the_id})] == [iid]
    assert call("AIWorkerInstance.ListActive", {"status": "busy"}) == []
    assert call("AIWorkerInstance.UpdateStatus", iid, "error", "oops") is None
    assert call("AIWorkerInstance.Get", iid)["last_error"] == "oops"
    assert call("AIWorkerInstance.UpdateTokenUsage", iid, 10, 20) is None
    info = call("AIWorkerInstance.Retire", iid, "finished", "retired_completed")
    assert info["final_status"] == "retired_completed" and info["retirement_reason"] == "finished"
    assert call("AIWorkerInstance.ListActive") == []
    s = call("AIWorker.GetPerformanceSummary", the_id)
    assert s["total_tasks_attempted"] == 2 and s["total_instances_spawned"] == 1


def test_retire_upstream_positional_form(call: ToolCaller) -> None:
    call("AIWorkerDefinition.Add", name="c", provider="test")
    inst = call("AIWorkerInstance.Spawn", "c")
    iid = inst["instance_id"]
    info = call("AIWorkerInstance.Retire", iid, inst["conversation_manager_handle"], "all done", "retired_error",
                {"input_tokens": 5, "output_tokens": 7})
    assert info["retirement_reason"] == "all done" and info["final_status"] == "retired_error"
    assert info["session_token_usage"] == {"input_tokens": 5, "output_tokens": 7, "total_tokens": 12}


def test_instance_tool_errors(call: ToolCaller) -> None:
    call("AIWorkerDefinition.Add", name="tasks", provider="test", interaction_models=["stateless_task"])
    call("AIWorkerDefinition.Add", name="off", provider="test", status="disabled")
    call("AIWorkerDefinition.Add", name="one", provider="test",
         rate_limits={"max_concurrent_active_instances": 1})
    assert _err(call, "AIWorkerInstance.Spawn", "tasks").code == 19
    assert _err(call, "AIWorkerInstance.Spawn", "off").code == 19
    assert _err(call, "AIWorkerInstance.Spawn", "ghost").code == 9
    assert _err(call, "AIWorkerInstance.Spawn", "one", file_contexts=[1, 2]).code == 4
    iid = call("AIWorkerInstance.Spawn", "one")["instance_id"]
    e = _err(call, "AIWorkerInstance.Spawn", "one")
    assert e.code == 20 and "max_concurrent_active_instances" in e.message
    assert _err(call, "AIWorkerInstance.Get", "ghost").code == 9
    assert _err(call, "AIWorkerInstance.Chat", "ghost", "hi").code == 9
    assert _err(call, "AIWorkerInstance.Chat", iid).code == 4
    assert _err(call, "AIWorkerInstance.UpdateStatus", iid, "dancing").code == 4
    assert _err(call, "AIWorkerInstance.UpdateTokenUsage", iid, "many", 1).code == 4
    assert _err(call, "AIWorkerInstance.UpdateTokenUsage", iid, -1, 1).code == 4
    assert _err(call, "AIWorkerInstance.ListActive", {"definitionName": "x"}).code == 4
    assert _err(call, "AIWorkerInstance.Retire", iid, "x", "whatever").code == 4
    assert _err(call, "AIWorkerInstance.Retire", iid, final_session_token_usage=5).code == 4
    assert _err(call, "AIWorkerInstance.GetHistory", "ghost").code == 9
    call("AIWorkerInstance.UpdateStatus", iid, "busy")
    assert _err(call, "AIWorkerInstance.Chat", iid, "hi").code == 19
    assert _err(call, "AIWorkerInstance.Retire", iid).code == 19


def test_execute_stateless_task_tool(call: ToolCaller) -> None:
    the_id = call("AIWorkerDefinition.Add", name="s", provider="test", interaction_models=["stateless_task"],
                  cost_metrics={"input_cost_per_token": 0.5, "output_cost_per_token": 1.0})
    r = call("AIWorker.ExecuteStatelessTask", "s", "two words")
    assert set(r) == {"output", "task_id", "cost", "input_tokens", "output_tokens", "duration_ms", "iterations",
                      "tool_calls", "finish_reason"}
    assert (r["iterations"], r["tool_calls"], r["finish_reason"]) == (1, [], "stop")
    assert r["output"] == "test reply 1: two words"
    assert (r["input_tokens"], r["output_tokens"]) == (2, 5) and r["cost"] == pytest.approx(6.0)
    r2 = call("AIWorker.ExecuteStatelessTask", definition_id=the_id, prompt="p", config_overrides={"test_reply": "R"})
    assert r2["output"] == "R"
    recs = call("AIWorker.GetPerformanceRecords", the_id)
    assert [x["task_id"] for x in recs] == [r["task_id"], r2["task_id"]]
    assert set(recs[0]) == {"task_id", "instance_id", "definition_id", "timestamp_start", "timestamp_end",
                            "duration_ms", "success", "input_context", "llm_metrics", "cost_incurred",
                            "output_summary", "error_details", "supervisor_feedback"}
    assert call("AIWorker.GetPerformanceRecords", "s", {"instance_id": "stateless"}) == recs


def test_execute_stateless_task_errors(call: ToolCaller) -> None:
    call("AIWorkerDefinition.Add", name="s", provider="test", interaction_models=["stateless_task"],
         rate_limits={"max_requests_per_minute": 1})
    call("AIWorkerDefinition.Add", name="chat", provider="test", interaction_models=["conversational"])
    assert _err(call, "AIWorker.ExecuteStatelessTask", "s").code == 4  # prompt missing
    assert _err(call, "AIWorker.ExecuteStatelessTask", prompt="x").code == 4  # no worker
    assert _err(call, "AIWorker.ExecuteStatelessTask", "s", ["not", "a", "string"]).code == 4
    assert _err(call, "AIWorker.ExecuteStatelessTask", "ghost", "x").code == 9
    assert _err(call, "AIWorker.ExecuteStatelessTask", "chat", "x").code == 19
    call("AIWorker.ExecuteStatelessTask", "s", "x")
    e = _err(call, "AIWorker.ExecuteStatelessTask", "s", "again")
    assert e.code == 20 and "'s'" in e.message and "max_requests_per_minute=1" in e.message
    assert "frees in" in e.message
    e = _err(call, "AIWorker.ExecuteStatelessTask", "s", "x", {"test_error": "down"}, definition_id="other")
    assert e.code == 4


def test_performance_tools(call: ToolCaller) -> None:
    the_id = call("AIWorkerDefinition.Add", name="p", provider="test", interaction_models=["both"])
    tid = call("AIWorker.LogPerformance", "t-1", "external", the_id, "2025-01-01T10:00:00Z",
               "2025-01-01T10:00:01.5Z", 1500, True, llm_metrics={"input_tokens": 3, "output_tokens": 4},
               cost_incurred=0.01, supervisor_feedback={"rating": 5})
    assert tid == "t-1"
    assert call("AIWorker.GetPerformanceRecords", "p", {"task_id": "t-1"})[0]["duration_ms"] == 1500
    s = call("AIWorker.GetPerformanceSummary", "p")
    assert s["total_tokens_processed"] == 7 and s["average_quality_score"] == 5
    msg = call("AIWorker.SavePerformanceData")
    assert "1 log entries" in msg and "1 worker definitions" in msg
    assert call("AIWorker.LoadPerformanceData").startswith("Reloaded 1 performance log entries")
    assert json.loads(call.manager.definitions_path.read_text())[0]["aggregate_performance_summary"][
        "total_tasks_attempted"] == 1


def test_performance_tool_errors(call: ToolCaller) -> None:
    the_id = call("AIWorkerDefinition.Add", name="p", provider="test")
    e = _err(call, "AIWorker.LogPerformance", "t", "i", the_id, "not-a-time", "2025-01-01T10:00:01Z", 1, True)
    assert e.code == 4 and "invalid timestamp_start format 'not-a-time'" in e.message
    assert _err(call, "AIWorker.LogPerformance", "t", "i", "ghost", "2025-01-01T10:00:00Z",
                "2025-01-01T10:00:01Z", 1, True).code == 9
    assert _err(call, "AIWorker.LogPerformance", "t", "i", the_id, "2025-01-01T10:00:00Z",
                "2025-01-01T10:00:01Z", "slow", True).code == 4
    assert _err(call, "AIWorker.GetPerformanceRecords", "ghost").code == 9
    assert _err(call, "AIWorker.GetPerformanceRecords", "p", {"succes": True}).code == 4
    assert _err(call, "AIWorker.GetPerformanceSummary", "ghost").code == 9


def test_manager_missing_is_a_clear_error(call: ToolCaller) -> None:
    del call.interp.workers
    with pytest.raises(NSRuntimeError) as ei:
        call("AIWorkerDefinition.List")
    assert ei.value.code == 6 and "not available" in ei.value.message
