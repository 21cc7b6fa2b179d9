"""Workers calling workers (issue 13 item 2) and parallel fan-out with Map (issue 13 item 3), offline."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from nslang import Interpreter
from nslang.errors import ErrorCode, NSRuntimeError
from nslang.values import ErrorValue
from nslang.workers import AIWorkerManager, fanout
from nslang.workers.limits import SQLiteLimits


@pytest.fixture
def host(tmp_path: Path) -> Interpreter:
    interp = Interpreter(sandbox_dir=tmp_path / "sandbox", stdout=io.StringIO(), stderr=io.StringIO(),
                         stdin=io.StringIO(), load_stdlib=False)
    yield interp
    interp.close()


def add(host: Interpreter, name: str, **fields: Any) -> None:
    d = {"name": name, "provider": "test", "interaction_models": ["both"], **fields}
    host.invoke_tool(host.resolve_tool("AIWorkerDefinition.Add"), [], d)


def calls_worker(target: str, prompt: str) -> list[list[dict[str, Any]]]:
    """test_tool_calls: one round calling worker ``target``."""
    return [[{"name": f"worker_{target}", "arguments": {"prompt": prompt}}]]


def task(host: Interpreter, name: str, **named: Any) -> dict[str, Any]:
    r: dict[str, Any] = host.invoke_tool(host.resolve_tool("AIWorker.ExecuteStatelessTask"), [name, "go"], named)
    return r


def records(host: Interpreter, name: str) -> list[Any]:
    return host.workers.get_performance_records(name)


# ============================================================================ delegation


def test_a_worker_calls_a_worker_and_gets_its_output(host: Interpreter) -> None:
    add(host, "boss", base_config={"test_tool_calls": calls_worker("helper", "summarize this"),
                                   "test_reply": "done"})
    add(host, "helper", cost_metrics={"per_call": 0.5})
    r = task(host, "boss", tools=["worker:helper"])
    assert r["output"] == "done"
    (call,) = r["tool_calls"]
    assert call["ok"] and call["name"] == "worker.helper"
    assert call["result"] == "test reply 1: summarize this"
    (nested,) = records(host, "helper")
    assert nested.parent_task_id == r["task_id"] and nested.success and nested.cost_incurred == 0.5
    assert records(host, "boss")[0].parent_task_id == ""


def test_depth_limit(host: Interpreter) -> None:
    # a -> b -> c -> d: the third delegation would nest 4 deep (default limit 3)
    add(host, "a", base_config={"test_tool_calls": calls_worker("b", "to b"), "test_reply": "a done"})
    add(host, "b", base_config={"tools": ["worker:c"], "test_tool_calls": calls_worker("c", "to c"),
                                "test_reply": "b done"})
    add(host, "c", base_config={"tools": ["worker:d"], "test_tool_calls": calls_worker("d", "to d"),
                                "test_reply": "c done"})
    add(host, "d")
    r = task(host, "a", tools=["worker:b"])
    assert r["output"] == "a done" and r["tool_calls"][0]["result"] == "b done"
    (c_rec,) = records(host, "c")
    steps = c_rec.llm_metrics["steps"]
    refused = next(s for s in steps if s["kind"] == "tool")
    assert not refused["ok"] and "37" in refused["error"] and "at most 3 deep" in refused["error"]
    assert records(host, "d") == []
    (b_rec,) = records(host, "b")
    assert c_rec.parent_task_id == b_rec.task_id and b_rec.parent_task_id == r["task_id"]
    # the limit is configurable
    host.workers.max_delegation_depth = 4
    task(host, "a", tools=["worker:b"])
    assert len(records(host, "d")) == 1


def test_a_cycle_is_refused(host: Interpreter) -> None:
    add(host, "ping", base_config={"tools": ["worker:pong"], "test_tool_calls": calls_worker("pong", "hi"),
                                   "test_reply": "ping done"})
    add(host, "pong", base_config={"tools": ["worker:ping"], "test_tool_calls": calls_worker("ping", "back"),
                                   "test_reply": "pong done"})
    r = task(host, "ping", tools=["worker:pong"])
    assert r["output"] == "ping done" and r["tool_calls"][0]["result"] == "pong done"
    (pong,) = records(host, "pong")
    refused = next(s for s in pong.llm_metrics["steps"] if s["kind"] == "tool")
    assert not refused["ok"] and "cycle refused" in refused["error"] and "ping -> pong -> ping" in refused["error"]
    assert len(records(host, "ping")) == 1  # the cycle never ran ping again
    # a worker calling itself is a cycle too
    add(host, "self", base_config={"test_tool_calls": calls_worker("self", "again"), "test_reply": "ok"})
    r = task(host, "self", tools=["worker:self"])
    assert "cycle refused" in r["tool_calls"][0]["error"]


@pytest.mark.parametrize("policy", [{"tool_denylist": ["worker:*"]}, {"tool_denylist": ["worker:secret"]},
                                    {"tool_allowlist": ["fs.*"]}])
def test_a_denied_worker_is_not_available(host: Interpreter, policy: dict[str, Any]) -> None:
    add(host, "boss", base_config={"test_tool_calls": calls_worker("secret", "leak"), "test_reply": "done"},
        **policy)
    add(host, "secret")
    r = task(host, "boss", tools=["worker:secret", "fs.List"])  # fs.List: tools are offered
    assert r["output"] == "done"
    (call,) = r["tool_calls"]
    assert not call["ok"] and "not available" in call["error"]
    assert records(host, "secret") == []


def test_an_allowlisted_worker_and_an_unknown_worker(host: Interpreter) -> None:
    add(host, "boss", tool_allowlist=["worker:helper"],
        base_config={"test_tool_calls": calls_worker("helper", "x"), "test_reply": "done"})
    add(host, "helper")
    assert task(host, "boss", tools=["worker:helper"])["tool_calls"][0]["ok"]
    with pytest.raises(NSRuntimeError) as ei:
        task(host, "boss", tools=["worker:nobody"])
    assert ei.value.code == ErrorCode.KEY_NOT_FOUND
    for entry in ("worker:*", "worker:"):  # never by a wildcard; a name is required
        with pytest.raises(NSRuntimeError) as ei:
            task(host, "boss", tools=[entry])
        assert ei.value.code == ErrorCode.ARG_MISMATCH


def test_a_code_task_delegates_with_ask(host: Interpreter) -> None:
    program = ('```neuroscript\nfunc main(returns r) means\n  ask "helper", "inner" into a\n'
               '  return tool.worker.helper("second") + " | " + a\nendfunc\n```')
    add(host, "coder", base_config={"test_replies": [program]})
    add(host, "helper")
    r = host.invoke_tool(host.resolve_tool("AIWorker.ExecuteCodeTask"), ["coder", "go"], {"tools": ["worker:helper"]})
    assert r["output"] == "test reply 1: second | test reply 1: inner"
    assert {x.parent_task_id for x in records(host, "helper")} == {r["task_id"]}


# ============================================================================ fan-out


def run_map(host: Interpreter, name: str, prompts: list[Any], **named: Any) -> list[Any]:
    out: list[Any] = host.invoke_tool(host.resolve_tool("AIWorker.Map"), [name, prompts], named)
    return out


def test_order_is_kept_and_each_task_has_its_record(host: Interpreter) -> None:
    # later prompts answer sooner, so completion order is the reverse of input order
    def slow_first(messages: list[dict[str, Any]], settings: dict[str, Any]) -> str:
        n = int(messages[-1]["content"])
        time.sleep(0.01 * (8 - n))
        return f"answer {n}"

    host.register_provider("slow_first", slow_first)
    add(host, "m", provider="custom", base_config={"custom_provider": "slow_first"})
    results = run_map(host, "m", [str(i) for i in range(8)], max_concurrency=8)
    assert [r["output"] for r in results] == [f"answer {i}" for i in range(8)]
    assert len({r["task_id"] for r in results}) == 8
    assert {x.task_id for x in records(host, "m")} == {r["task_id"] for r in results}
    assert set(results[0]) >= {"output", "task_id", "cost", "input_tokens", "output_tokens", "duration_ms"}


def test_errors_are_collected_in_their_slots(host: Interpreter) -> None:
    def flaky(messages: list[dict[str, Any]], settings: dict[str, Any]) -> str:
        if "bad" in messages[-1]["content"]:
            raise RuntimeError("model exploded")
        return "fine"

    host.register_provider("flaky", flaky)
    add(host, "m", provider="custom", base_config={"custom_provider": "flaky"})
    results = run_map(host, "m", ["a", "bad 1", "b", "bad 2"], max_concurrency=2)
    assert [r["output"] for r in (results[0], results[2])] == ["fine", "fine"]
    for slot in (results[1], results[3]):
        assert isinstance(slot, ErrorValue) and slot["code"] == ErrorCode.LLM_ERROR
        assert "model exploded" in slot["message"]
    assert sorted(x.success for x in records(host, "m")) == [False, False, True, True]
    # in a script: is_error tells the slots apart
    host.load('func main() means\n  set rs = tool.AIWorker.Map("m", ["x", "bad"])\n'
              '  emit is_error(rs[0])\n  emit is_error(rs[1])\nendfunc\n')
    host.run()
    assert host.stdout.getvalue() == "false\ntrue\n"  # type: ignore[attr-defined]


def test_on_error_fail_raises_the_first_failure(host: Interpreter) -> None:
    add(host, "m", base_config={"test_error": "boom"})
    with pytest.raises(NSRuntimeError) as ei:
        run_map(host, "m", ["a", "b", "c"], on_error="fail", max_concurrency=1)
    assert ei.value.code == ErrorCode.LLM_ERROR and "boom" in ei.value.message
    assert len(records(host, "m")) == 1  # the others were not started


def test_concurrency_is_bounded_and_reached(host: Interpreter) -> None:
    lock = threading.Lock()
    state = {"now": 0, "max": 0}
    barrier = threading.Barrier(3, timeout=20)  # only passes when 3 calls are in flight together

    def counting(messages: list[dict[str, Any]], settings: dict[str, Any]) -> str:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        try:
            barrier.wait()
            return "ok"
        finally:
            with lock:
                state["now"] -= 1

    host.register_provider("counting", counting)
    add(host, "m", provider="custom", base_config={"custom_provider": "counting"})
    results = run_map(host, "m", [f"p{i}" for i in range(9)], max_concurrency=3)
    assert [r["output"] for r in results] == ["ok"] * 9
    assert state["max"] == 3


def test_a_rate_limit_makes_items_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox = tmp_path / "sb"
    interp = Interpreter(sandbox_dir=sandbox, stdout=io.StringIO(), stderr=io.StringIO(), load_stdlib=False)
    # a 0.5 s "minute": two requests per window, so six prompts need at least three windows
    interp._workers = AIWorkerManager(sandbox, environ={}, limits=SQLiteLimits(":memory:", minute=0.5),
                                      deadline=interp)
    waits: list[float] = []
    monkeypatch.setattr(fanout, "sleep", lambda s: (waits.append(s), time.sleep(s)))
    add(interp, "m", rate_limits={"max_requests_per_minute": 2})
    results = run_map(interp, "m", [f"p{i}" for i in range(6)], max_concurrency=6)
    assert [r["output"] for r in results] == [f"test reply 1: p{i}" for i in range(6)]
    assert waits and len(records(interp, "m")) == 6
    interp.close()


def test_a_rate_limit_never_waits_past_the_run_s_timeout(tmp_path: Path) -> None:
    sandbox = tmp_path / "sb"
    interp = Interpreter(sandbox_dir=sandbox, stdout=io.StringIO(), stderr=io.StringIO(), load_stdlib=False,
                         timeout_s=1)
    interp._workers = AIWorkerManager(sandbox, environ={}, limits=SQLiteLimits(":memory:", minute=60),
                                      deadline=interp)
    add(interp, "m", rate_limits={"max_requests_per_minute": 1})
    interp.load('func main() means\n  set rs = tool.AIWorker.Map("m", ["a", "b"], max_concurrency: 1)\n'
                '  emit is_error(rs[1])\n  emit rs[1]["code"]\nendfunc\n')
    t0 = time.monotonic()
    interp.run()
    assert time.monotonic() - t0 < 30  # generous sanity bound: the refusal came at once, not after 60 s
    assert interp.stdout.getvalue() == "true\n20\n"  # type: ignore[attr-defined]
    interp.close()


def test_map_with_tools_and_bad_arguments(host: Interpreter) -> None:
    (host.sandbox_dir / "a.txt").write_text("alpha", encoding="utf-8")
    add(host, "m", base_config={"test_tool_calls": [[{"name": "fs.Read", "arguments": {"filepath": "a.txt"}}]],
                                "test_reply": "read it"})
    results = run_map(host, "m", ["x", "y", "z"], tools=["fs.Read"], max_concurrency=3)
    assert [r["tool_calls"][0]["result"] for r in results] == ["alpha"] * 3
    for bad in ({"max_concurrency": 0}, {"max_concurrency": 65}, {"on_error": "ignore"}):
        with pytest.raises(NSRuntimeError) as ei:
            run_map(host, "m", ["x"], **bad)
        assert ei.value.code == ErrorCode.ARG_MISMATCH
    with pytest.raises(NSRuntimeError) as ei:
        run_map(host, "nobody", ["x"])
    assert ei.value.code == ErrorCode.KEY_NOT_FOUND
    assert run_map(host, "m", []) == []
