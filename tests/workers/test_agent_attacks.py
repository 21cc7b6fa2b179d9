"""Adversarial replays against tool-calling, code and fan-out tasks (issues 12 and 13): each test
replays an attack that once got through (a hostile model's reply, a careless host) and checks the
clean outcome."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

import pytest

from nslang import Interpreter
from nslang.tools.registry import ArgSpec, ToolSpec


@pytest.fixture
def host(tmp_path: Path) -> Interpreter:
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    (sandbox / "a.txt").write_text("alpha", encoding="utf-8")
    interp = Interpreter(sandbox_dir=sandbox, stdout=io.StringIO(), stderr=io.StringIO(), stdin=io.StringIO(),
                         load_stdlib=False)
    yield interp
    interp.close()


def add(host: Interpreter, **fields: Any) -> None:
    d = {"name": "w", "provider": "custom", "interaction_models": ["both"], **fields}
    host.invoke_tool(host.resolve_tool("AIWorkerDefinition.Add"), [], d)


def task(host: Interpreter, **named: Any) -> dict[str, Any]:
    named.setdefault("name", "w")
    r: dict[str, Any] = host.invoke_tool(host.resolve_tool("AIWorker.ExecuteStatelessTask"), [], named)
    return r


def last_user(messages: list[dict[str, Any]]) -> str:
    return str([m for m in messages if m["role"] == "user"][-1]["content"])


def test_a_tool_calls_time_limit_does_not_reach_another_thread(host: Interpreter) -> None:
    """Thread A's tool call ran past its tool_timeout_s while thread B's task (no tools, no run time
    limit) ended: B failed with the run's uncatchable 'time limit of None s' (the tool call narrowed
    the interpreter's deadline for every thread)."""
    in_tool, b_replied, b_done = threading.Event(), threading.Event(), threading.Event()

    def slow(x: str) -> str:  # a host tool that blocks past its time limit (not interruptible)
        in_tool.set()
        b_done.wait(10)
        return "slow " + x

    host.register_tool(ToolSpec(group="host", name="Slow", description="blocks",
                                args=(ArgSpec("x", "string", "", True),), return_type="string"), slow)

    def model(messages: list[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
        if last_user(messages) == "A":
            if any(m["role"] == "tool" for m in messages):
                return {"text": "A done"}
            return {"text": "", "tool_calls": [{"name": "host_Slow", "arguments": {"x": "1"}}]}
        in_tool.wait(10)  # B answers while A's tool call is running, past its 0.001 s limit
        b_replied.set()
        return {"text": "B done"}

    host.register_provider("default", model)
    add(host)
    out: dict[str, Any] = {}

    def run(prompt: str, **named: Any) -> None:
        try:
            out[prompt] = task(host, prompt=prompt, **named)
        except Exception as e:  # noqa: BLE001 - the outcome is what the test checks
            out[prompt] = e
        finally:
            if prompt == "B":
                b_done.set()

    a = threading.Thread(target=run, args=("A",), kwargs={"tools": ["host.Slow"], "tool_timeout_s": 0.001})
    b = threading.Thread(target=run, args=("B",))
    a.start()
    b.start()
    a.join(20)
    b.join(20)
    assert b_replied.is_set()
    assert isinstance(out["B"], dict), out["B"]
    assert out["B"]["output"] == "B done"
    assert out["A"]["output"] == "A done"
    assert out["A"]["tool_calls"][0]["ok"] is True
    assert host._deadline is None and host.remaining_time() is None


def nested(depth: int) -> Any:
    value: Any = "a.txt"
    for _ in range(depth):
        value = [value]
    return value


def test_deeply_nested_or_cyclic_arguments_are_an_error_result(host: Interpreter) -> None:
    """A reply whose tool-call arguments nest 900 deep (valid JSON) crashed the next model call with a
    Python RecursionError (the conversation is hashed for the cache); a cyclic map raised ValueError."""
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    rounds = [
        [{"name": "fs_Read", "arguments": '{"filepath": ' + "[" * 900 + '"a.txt"' + "]" * 900 + "}"}],
        [{"name": "fs_Read", "arguments": {"filepath": nested(900)}}],
        [{"name": "fs_Read", "arguments": cyclic}],
        [{"name": "fs_Read", "arguments": {"filepath": "a.txt", "x": nested(10)}}],
    ]

    def model(messages: list[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
        k = sum(1 for m in messages if m["role"] == "assistant")
        return {"text": "", "tool_calls": rounds[k]} if k < len(rounds) else {"text": "done"}

    host.register_provider("default", model)
    add(host)
    r = task(host, prompt="go", tools=["fs.Read"])
    assert r["output"] == "done" and r["iterations"] == 5
    errors = [c["error"] for c in r["tool_calls"]]
    assert all(not c["ok"] for c in r["tool_calls"])
    assert ["nest deeper than 64 levels" in e for e in errors] == [True, True, True, False]
    assert "no argument named 'x'" in errors[3]


KEY = "sk-attack-0123456789abcdefWXYZ"


def test_the_key_never_leaves_through_tool_call_arguments_or_a_program(host: Interpreter) -> None:
    """The key of the call reached the trace (a model echoing it in tool-call arguments) and, in code
    mode, the model (an error message of the program), the result and the performance log on disk
    (a program returning what a granted tool read)."""
    sandbox = Path(host.sandbox_dir)
    (sandbox / "k.txt").write_text(f"the key is {KEY}", encoding="utf-8")
    seen: list[str] = []
    failing = '```neuroscript\nfunc main(returns r) means\n  fail tool.fs.Read("k.txt")\nendfunc\n```'
    returning = '```neuroscript\nfunc main(returns r) means\n  return {"k": [tool.fs.Read("k.txt")]}\nendfunc\n```'

    def model(messages: list[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
        seen.extend(str(m["content"]) for m in messages)
        if settings.get("mode") == "code":
            return {"text": failing if len([m for m in messages if m["role"] == "user"]) == 1 else returning}
        if any(m["role"] == "tool" for m in messages):
            return {"text": "done"}
        return {"text": "", "tool_calls": [{"name": "fs_Stat", "arguments": {"path": f"x/{KEY}"}}]}

    host.register_provider("default", model)
    add(host, auth={"method": "inline", "value": KEY})
    r = task(host, prompt="go", tools=["fs.Stat"])
    assert r["tool_calls"][0]["arguments"] == {"path": "x/****WXYZ"}
    assert KEY not in repr(r)
    c: dict[str, Any] = host.invoke_tool(host.resolve_tool("AIWorker.ExecuteCodeTask"), [],
                                         {"name": "w", "prompt": "go", "tools": ["fs.Read"],
                                          "config_overrides": {"mode": "code"}})
    assert c["output"] == {"k": ["the key is ****WXYZ"]}
    assert c["errors"][0]["message"].endswith("the key is ****WXYZ")
    assert KEY not in repr(c)
    assert not any(KEY in text for text in seen)
    log = (sandbox / "ai_worker_performance_data.json").read_text(encoding="utf-8")
    assert "****WXYZ" in log and KEY not in log


def test_a_granted_and_approved_task_tool_cannot_nest_past_the_delegation_depth(host: Interpreter) -> None:
    """A model granted tool.AIWorker.ExecuteStatelessTask (named explicitly, every call approved) made it
    call itself with the same tools: 162 nested tasks until Python's stack ran out; only worker:NAME
    tools were held to max_delegation_depth."""
    host.approve = lambda request: True
    again = {"name": "AIWorker_ExecuteStatelessTask",
             "arguments": {"name": "w", "prompt": "again", "tools": ["AIWorker.ExecuteStatelessTask"]}}

    def model(messages: list[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
        if any(m["role"] == "tool" for m in messages):
            return {"text": "done"}
        return {"text": "", "tool_calls": [again]}

    host.register_provider("default", model)
    add(host)
    r = task(host, prompt="go", tools=["AIWorker.ExecuteStatelessTask"])
    assert r["output"] == "done"
    records = host.workers.get_performance_records("w")
    assert len(records) == host.workers.max_delegation_depth == 3
    inner = max(records, key=lambda rec: rec.timestamp_start)
    refused = [s for s in inner.llm_metrics["steps"] if s["kind"] == "tool"]
    assert refused[0]["ok"] is False and "nest at most 3 deep (w -> w -> w)" in refused[0]["error"]


def test_a_wildcard_does_not_grant_event_emit(host: Interpreter) -> None:
    """tools: ["*"] granted event.Emit: the model could run the script's event handlers with any
    payload, e.g. a fake aiworker.tool_call event."""
    host.load('on event "aiworker.tool_call" as e do\n  emit "audit: " + e["payload"]["name"]\nendon\n')
    fake = {"name": "event_Emit", "arguments": {"name": "aiworker.tool_call", "payload": {"name": "fs.Delete"}}}

    def model(messages: list[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
        if any(m["role"] == "tool" for m in messages):
            return {"text": "done"}
        return {"text": "", "tool_calls": [fake]}

    host.register_provider("default", model)
    add(host)
    r = task(host, prompt="go", tools=["*"])
    assert r["tool_calls"][0]["ok"] is False and "not available" in r["tool_calls"][0]["error"]
    out = host.stdout.getvalue()  # type: ignore[attr-defined]
    assert "audit: fs.Delete" not in out and "audit: event_Emit" in out  # the real event of the refused call
    named = task(host, prompt="go", tools=["event.Emit"])  # named explicitly, it is granted
    assert named["tool_calls"][0]["ok"] is True


def test_the_terminal_approver_asks_one_question_at_a_time() -> None:
    """Map's threads asked on the terminal at once: two questions interleaved, and an answer typed for
    one call could be read by the other thread (approving a call the user did not see)."""
    from nslang.workers.policy import ApprovalRequest, PatternApprover

    arrived = threading.Event()
    asked: list[str] = []

    def ask(request: ApprovalRequest) -> str:
        asked.append(request.arguments["path"])
        if len(asked) == 2:
            arrived.set()
        arrived.wait(0.5)  # a second question overlapping this one would arrive now
        return "always"

    approver = PatternApprover(ask=ask)
    results: list[bool] = []
    threads = [threading.Thread(target=lambda p=p: results.append(approver(ApprovalRequest("fs.Write", {"path": p}))))
               for p in ("a.txt", "b.txt")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [True, True]
    assert len(asked) == 1  # the second call waited, then was covered by "always"


def test_a_procedure_offered_as_a_tool_can_run_map_with_tools(host: Interpreter) -> None:
    """A model called a procedure that runs tool.AIWorker.Map with tools: the procedure held the tool
    lock while Map's threads waited for it to run their tool calls: the run hung for ever."""
    host.load('func fan(needs n returns r) means\n  :: description: fan out\n  :: type.n: int\n'
              '  set r = tool.AIWorker.Map("w", ["x", "y", "z"], max_concurrency: 2, tools: ["fs.Read"])\n'
              '  return len(r)\nendfunc\n')

    def model(messages: list[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
        if any(m["role"] == "tool" for m in messages):
            return {"text": "done " + str(messages[-1]["content"])}
        if last_user(messages) == "top":
            return {"text": "", "tool_calls": [{"name": "fan", "arguments": {"n": 1}}]}
        return {"text": "", "tool_calls": [{"name": "fs_Read", "arguments": {"filepath": "a.txt"}}]}

    host.register_provider("default", model)
    add(host)
    out: list[Any] = []
    runner = threading.Thread(target=lambda: out.append(task(host, prompt="top", tools=["fan"])), daemon=True)
    runner.start()
    runner.join(30)
    assert not runner.is_alive(), "the task hung"
    assert out[0]["output"] == "done 3"
    assert len(host.workers.get_performance_records("w")) == 4  # the top task and the three mapped ones
