"""The tool-calling loop (issue 12) through the per-call economics hook (issue 14 items 3-7): every model
call of the loop is priced with the split usage, checked against the budgets (task, definition per day,
run), answered from the response cache and recorded / replayed; the tool declarations are part of the
request hash. Loopback servers answer in each provider's documented tool-call and usage shapes."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llm_helpers import ENV, KEY, SPECS, Spec, scan_for_key
from pytest_httpserver import HTTPServer
from test_llm_tool_calls import tool_reply

from nslang import Interpreter
from nslang.cli import main
from nslang.errors import NSRuntimeError
from nslang.llm.base import override_allow_model_requests
from nslang.workers import AIWorkerManager
from nslang.workers.errors import BudgetExceededError

OPENAI = SPECS["openai"]


def split_usage(spec: Spec, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` (20 input, 5 output tokens) with the provider's cache / reasoning counts added."""
    p = spec.provider
    if p in ("openai", "local"):
        body["usage"]["prompt_tokens_details"] = {"cached_tokens": 8}
        body["usage"]["completion_tokens_details"] = {"reasoning_tokens": 2}
    elif p == "anthropic":
        body["usage"] = {"input_tokens": 20, "cache_read_input_tokens": 8, "cache_creation_input_tokens": 4,
                         "output_tokens": 5}
    elif p == "google":
        body["usageMetadata"].update(cachedContentTokenCount=8, thoughtsTokenCount=2)
    return body


#: provider -> one call's (input, output, cache read, cache write, reasoning) tokens as split_usage reports
#: them (Anthropic's input excludes the cached parts; Gemini's thoughts are billed as output)
ONE_CALL = {"openai": (20, 5, 8, None, 2), "local": (20, 5, 8, None, 2), "anthropic": (32, 5, 8, 4, None),
            "google": (20, 7, 8, None, 2), "ollama": (20, 5, None, None, None)}

SCRIPT = """func main() means
  set r = tool.AIWorker.ExecuteStatelessTask("w", "Summarize a.txt.", tools: [{tools}])
  emit r["output"]
  emit r["iterations"] + " calls, " + r["input_tokens"] + " in, " + r["output_tokens"] + " out, " + r["cost"] + " USD"
  emit r["tool_calls"][0]["name"] + ": " + r["tool_calls"][0]["result"]
endfunc
"""


def _box(root: Path, definition: dict[str, Any]) -> Path:
    root.mkdir(parents=True)
    (root / "a.txt").write_text("alpha text", encoding="utf-8")
    (root / "ai_worker_definitions.json").write_text(json.dumps([definition]))
    return root


def _run(box: Path, script: str, *options: str) -> tuple[int, str, str]:
    path = box.parent / f"{box.name}.ns"
    path.write_text(script)
    out, err = io.StringIO(), io.StringIO()
    rc = main(["run", str(path), "--sandbox", str(box), *options], stdout=out, stderr=err)
    return rc, out.getvalue(), err.getvalue()


def _records(box: Path) -> list[dict[str, Any]]:
    m = AIWorkerManager(box, environ=ENV)
    try:
        return [r.model_dump(mode="json") for r in m.get_performance_records("w")]
    finally:
        m.close()


def _comparable(rec: dict[str, Any]) -> tuple[Any, ...]:
    """A record without its timings (and ids): what a replay must reproduce."""
    metrics = dict(rec["llm_metrics"])
    metrics["steps"] = [{k: v for k, v in s.items() if k != "duration_ms"} for s in metrics["steps"]]
    return rec["success"], rec["cost_incurred"], rec["output_summary"], rec["error_details"], metrics


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    yield


@pytest.mark.parametrize("spec", list(SPECS.values()), ids=list(SPECS))
def test_tool_loop_record_then_replay_with_the_network_off(spec: Spec, server: HTTPServer, tmp_path: Path, env: None,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    server.expect_ordered_request(spec.path, method="POST").respond_with_json(
        split_usage(spec, tool_reply(spec, [("fs_Read", {"filepath": "a.txt"})])))
    server.expect_ordered_request(spec.path, method="POST").respond_with_json(
        split_usage(spec, spec.ok("It says alpha.", 20, 5)))
    definition = spec.definition(server, "w")
    rec_box, play_box = _box(tmp_path / "rec", definition), _box(tmp_path / "play", definition)
    cassette = tmp_path / "loop.jsonl"
    script = SCRIPT.format(tools='"tool.fs.Read"')

    recorded = _run(rec_box, script, "--record", str(cassette))
    tin, tout, read, write, reasoning = ONE_CALL[spec.provider]
    cost = 2 * (tin * 0.001 + tout * 0.002)
    assert recorded[0] == 0, recorded[2]
    assert recorded[1].splitlines() == ["It says alpha.", f"2 calls, {2 * tin} in, {2 * tout} out, {cost:g} USD",
                                        "fs.Read: alpha text"]
    # the performance record sums every model call, the split usage included
    (rec,) = _records(rec_box)
    m = rec["llm_metrics"]
    assert rec["success"] is True and rec["cost_incurred"] == pytest.approx(cost)
    assert (m["input_tokens"], m["output_tokens"], m["iterations"], m["tool_call_count"]) == (2 * tin, 2 * tout, 2, 1)
    for name, one in (("cache_read_tokens", read), ("cache_write_tokens", write), ("reasoning_tokens", reasoning)):
        assert m.get(name) == (None if one is None else 2 * one)
    assert m["price_source"] == "cost_metrics"
    assert [s["cost"] for s in m["steps"] if s["kind"] == "model"] == pytest.approx([cost / 2, cost / 2])
    # each model call of the loop is one exchange: the declarations in the request, the calls in the response
    first, second = (json.loads(x) for x in cassette.read_text().splitlines())
    assert [t["name"] for t in first["request"]["tools"]] == ["fs_Read"]
    assert first["response"]["tool_calls"][0]["name"] == "fs_Read"
    assert json.loads(first["response"]["tool_calls"][0]["arguments"]) == {"filepath": "a.txt"}
    assert [(x["role"], x["content"]) for x in second["request"]["messages"]][-1] == ("tool", "alpha text")
    assert second["usage"]["cache_read_tokens"] == read
    scan_for_key(cassette.read_text(), paths=[cassette, rec_box])

    server.clear()  # nothing answers any more, no key is set and real requests are off
    for k in ENV:
        monkeypatch.delenv(k)
    with override_allow_model_requests(False):
        replayed = _run(play_box, script, "--replay", str(cassette))
        assert replayed == recorded and len(server.log) == 0
        assert [_comparable(r) for r in _records(play_box)] == [_comparable(r) for r in _records(rec_box)]
        # the tool declarations are part of the request hash: offering another tool is a miss
        rc, out, err = _run(play_box, SCRIPT.format(tools='"tool.fs.Read", "tool.fs.List"'), "--replay",
                            str(cassette))
    assert rc == 70 and out == "" and "no recorded answer for worker 'w'" in err
    assert len(server.log) == 0


# the first call may cost 9 * 0.001 + 10 * 0.002 = 0.029 and costs 20 * 0.001 + 5 * 0.002 = 0.03; the
# second (its messages estimated at 20 tokens) may cost 0.04: 0.03 + 0.04 > 0.05, refused mid-loop
BUDGETS = {
    "task": ({"config_overrides": {"max_cost_usd": 0.05}}, {}, {}, "task budget max_cost_usd (worker 'w')"),
    "definition": ({}, {"rate_limits": {"max_cost_usd_per_day": 0.05}}, {},
                   "daily budget rate_limits.max_cost_usd_per_day of worker definition 'w'"),
    "run": ({}, {}, {"max_cost_usd": 0.05}, "run budget"),
}


@pytest.mark.parametrize("budget", list(BUDGETS))
def test_a_budget_that_runs_out_mid_loop_fails_the_task_and_keeps_what_was_done(
        budget: str, server: HTTPServer, sandbox: Path, env: None) -> None:
    call_args, def_fields, interp_args, label = BUDGETS[budget]
    server.expect_ordered_request(OPENAI.path, method="POST").respond_with_json(
        tool_reply(OPENAI, [("fs_Read", {"filepath": "a.txt"})]))
    server.expect_ordered_request(OPENAI.path, method="POST").respond_with_json(OPENAI.ok("never sent", 20, 5))
    sandbox.mkdir(parents=True, exist_ok=True)
    (sandbox / "a.txt").write_text("alpha text", encoding="utf-8")
    with Interpreter(sandbox_dir=sandbox, load_stdlib=False, **interp_args) as host:
        host.workers.add_definition({**OPENAI.definition(server, "w", max_tokens=10), **def_fields})
        with pytest.raises(BudgetExceededError) as e:
            host.invoke_tool(host.resolve_tool("AIWorker.ExecuteStatelessTask"), [],
                             {"name": "w", "prompt": "Summarize the files.", "tools": ["tool.fs.Read"], **call_args})
        (rec,) = (r.model_dump(mode="json") for r in host.workers.get_performance_records("w"))
    assert len(server.log) == 1  # the refused call was never sent
    err = e.value
    assert (err.code, err.budget, err.limit) == (37, budget, 0.05)
    assert err.spent == pytest.approx(0.03) and err.worst_case == pytest.approx(0.04)
    assert label in err.message and "0.03 USD spent so far" in err.message
    assert err.catchable is (budget != "run")
    # a failed record that keeps what was done: the first call's tokens and cost, its tool call
    m = rec["llm_metrics"]
    assert rec["success"] is False and rec["output_summary"] == ""
    assert err.message.endswith(rec["error_details"]) and label in rec["error_details"]
    assert rec["cost_incurred"] == pytest.approx(0.03)
    assert (m["input_tokens"], m["output_tokens"], m["iterations"], m["tool_call_count"]) == (20, 5, 1, 1)
    assert [(s["kind"], s.get("name"), s.get("ok")) for s in m["steps"]] == [
        ("model", None, None), ("tool", "fs.Read", True)]


def test_a_budget_refusing_the_first_call_leaves_no_record(server: HTTPServer, sandbox: Path, env: None) -> None:
    with Interpreter(sandbox_dir=sandbox, load_stdlib=False, max_cost_usd=0.01) as host:
        host.workers.add_definition(OPENAI.definition(server, "w", max_tokens=10))
        with pytest.raises(BudgetExceededError):
            host.invoke_tool(host.resolve_tool("AIWorker.ExecuteStatelessTask"), [],
                             {"name": "w", "prompt": "Summarize the files.", "tools": ["tool.fs.Read"]})
        assert host.workers.get_performance_records("w") == []
    assert len(server.log) == 0


def test_response_cache_answers_every_call_of_a_repeated_loop(server: HTTPServer, sandbox: Path, env: None) -> None:
    server.expect_ordered_request(OPENAI.path, method="POST").respond_with_json(
        tool_reply(OPENAI, [("fs_Read", {"filepath": "a.txt"})]))
    server.expect_ordered_request(OPENAI.path, method="POST").respond_with_json(OPENAI.ok("It says alpha.", 20, 5))
    sandbox.mkdir(parents=True, exist_ok=True)
    (sandbox / "a.txt").write_text("alpha text", encoding="utf-8")
    with Interpreter(sandbox_dir=sandbox, load_stdlib=False) as host:
        host.workers.add_definition(OPENAI.definition(server, "w", cache=True))
        results = [host.invoke_tool(host.resolve_tool("AIWorker.ExecuteStatelessTask"), [],
                                    {"name": "w", "prompt": "Summarize the files.", "tools": ["tool.fs.Read"]})
                   for _ in range(2)]
        first, second = (r.llm_metrics for r in host.workers.get_performance_records("w"))
        assert len(server.log) == 2  # the second loop's two calls were cache hits
        assert results[1]["output"] == results[0]["output"] == "It says alpha."
        assert results[1]["tool_calls"][0]["result"] == "alpha text" and results[1]["iterations"] == 2
        assert results[0]["cost"] > 0 and results[1]["cost"] == 0
        assert "cached" not in first and second["cached"] is True and second["price_source"] == "cache"
        assert [s.get("cached") for s in second["steps"] if s["kind"] == "model"] == [True, True]
        # another tool list is another request: not answered from the cache
        server.expect_request(OPENAI.path, method="POST").respond_with_json(OPENAI.ok("Listed.", 20, 5))
        r = host.invoke_tool(host.resolve_tool("AIWorker.ExecuteStatelessTask"), [],
                             {"name": "w", "prompt": "Summarize the files.", "tools": ["tool.fs.Read", "fs.List"]})
        assert r["output"] == "Listed." and len(server.log) == 3
    out, err = io.StringIO(), io.StringIO()
    assert main(["workers", "perf", "w", "-v", "--sandbox", str(sandbox)], stdout=out, stderr=err) == 0
    steps = [line for line in out.getvalue().splitlines() if line.lstrip().startswith("#") and " model" in line]
    assert len(steps) == 5 and all(" USD" in line for line in steps)
    assert sum("cached" in line for line in steps) == 2
    scan_for_key(results, out.getvalue(), paths=[sandbox])
    assert KEY not in json.dumps(results)


def test_fallback_serves_a_call_in_the_middle_of_the_loop(server: HTTPServer, sandbox: Path, env: None) -> None:
    server.expect_ordered_request(OPENAI.path, method="POST").respond_with_json(
        tool_reply(OPENAI, [("fs_Read", {"filepath": "a.txt"})]))
    server.expect_ordered_request(OPENAI.path, method="POST").respond_with_json(
        OPENAI.err("busy", "server_error"), status=503)
    server.expect_ordered_request(OPENAI.path, method="POST").respond_with_json(OPENAI.ok("It says alpha.", 20, 5))
    sandbox.mkdir(parents=True, exist_ok=True)
    (sandbox / "a.txt").write_text("alpha text", encoding="utf-8")
    with Interpreter(sandbox_dir=sandbox, load_stdlib=False) as host:
        host.workers.add_definition({**OPENAI.definition(server, "w", max_retries=0), "fallback": ["b"]})
        host.workers.add_definition(OPENAI.definition(server, "b"))
        r = host.invoke_tool(host.resolve_tool("AIWorker.ExecuteStatelessTask"), [],
                             {"name": "w", "prompt": "Summarize the files.", "tools": ["tool.fs.Read"]})
        (rec,) = host.workers.get_performance_records("w")
    assert r["output"] == "It says alpha." and r["iterations"] == 2
    # the fallback got the whole conversation and the same tool declarations
    *_, last = (json.loads(req.get_data()) for req, _ in server.log)
    assert [t["function"]["name"] for t in last["tools"]] == ["fs_Read"]
    assert [m["role"] for m in last["messages"]] == ["user", "assistant", "tool"]
    m = rec.llm_metrics
    assert [s.get("served_by") for s in m["steps"] if s["kind"] == "model"] == [None, "b"]
    assert "served_by" not in m and len(m["fallback_errors"]) == 1 and "503" in m["fallback_errors"][0]
    assert rec.success and rec.cost_incurred == pytest.approx(2 * (20 * 0.001 + 5 * 0.002))


def test_the_prompt_cap_applies_to_every_call_of_the_loop(server: HTTPServer, sandbox: Path, env: None) -> None:
    server.expect_ordered_request(OPENAI.path, method="POST").respond_with_json(
        tool_reply(OPENAI, [("fs_Read", {"filepath": "big.txt"})]))
    sandbox.mkdir(parents=True, exist_ok=True)
    (sandbox / "big.txt").write_text("x" * 500, encoding="utf-8")
    with Interpreter(sandbox_dir=sandbox, load_stdlib=False) as host:
        host.workers.add_definition(OPENAI.definition(server, "w", max_prompt_chars=200))
        with pytest.raises(NSRuntimeError) as e:
            host.invoke_tool(host.resolve_tool("AIWorker.ExecuteStatelessTask"), [],
                             {"name": "w", "prompt": "Summarize the files.", "tools": ["tool.fs.Read"]})
        (rec,) = host.workers.get_performance_records("w")
    assert e.value.code == 37 and "max_prompt_chars = 200" in e.value.message
    assert len(server.log) == 1  # the second call, 520 characters long, was never sent
    assert not rec.success and rec.llm_metrics["iterations"] == 1 and rec.llm_metrics["tool_call_count"] == 1
