"""Issue 14 items 3-7 against loopback servers in each provider's documented shapes: usage split into
input / cache read / cache write / output / reasoning tokens, real cost (cost_metrics with cache rates,
genai-prices), budgets, fallback, the response cache, and record / replay through ``nslang run``."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import genai_prices
import pytest
from llm_helpers import ENV, KEY, SPECS, scan_for_key
from pytest_httpserver import HTTPServer
from werkzeug import Response

from nslang.cli import main
from nslang.interpreter import Interpreter
from nslang.llm.base import override_allow_model_requests
from nslang.workers import AIWorkerManager
from nslang.workers.errors import BudgetExceededError

OPENAI = SPECS["openai"]
ANTHROPIC = SPECS["anthropic"]
GOOGLE = SPECS["google"]
OLLAMA = SPECS["ollama"]


def _reply(server: HTTPServer, spec: Any, body: dict[str, Any], status: int = 200) -> None:
    server.expect_request(spec.path, method="POST").respond_with_json(body, status=status)


def _anthropic_cached(text: str = "cached answer") -> dict[str, Any]:
    body = ANTHROPIC.ok(text, 100, 50)
    body["usage"] = {"input_tokens": 100, "cache_read_input_tokens": 800, "cache_creation_input_tokens": 100,
                     "output_tokens": 50}
    return body


def _openai_cached(text: str = "cached answer") -> dict[str, Any]:
    body = OPENAI.ok(text, 1000, 50)
    body["usage"] = {"prompt_tokens": 1000, "completion_tokens": 50, "total_tokens": 1050,
                     "prompt_tokens_details": {"cached_tokens": 800, "audio_tokens": 0},
                     "completion_tokens_details": {"reasoning_tokens": 20, "audio_tokens": 0}}
    return body


# ------------------------------------------------------------------------------------------- item 3


def test_anthropic_cache_read_and_write_cost_from_cost_metrics(server: HTTPServer, manager: AIWorkerManager) -> None:
    _reply(server, ANTHROPIC, _anthropic_cached())
    d = ANTHROPIC.definition(server)
    d["cost_metrics"] = {"input_cost_per_token": 3e-6, "output_cost_per_token": 15e-6,
                         "cache_read_cost_per_token": 0.3e-6, "cache_write_cost_per_token": 3.75e-6}
    manager.add_definition(d)
    res = manager.execute_stateless_task(d["name"], "hello")
    m = res.record.llm_metrics
    # Anthropic's input_tokens excludes the cached parts: the whole prompt is 100 + 800 + 100
    assert (m["input_tokens"], m["cache_read_tokens"], m["cache_write_tokens"], m["output_tokens"]) == \
        (1000, 800, 100, 50)
    # 100 uncached * 3e-6 + 800 read * 0.3e-6 + 100 written * 3.75e-6 + 50 out * 15e-6
    assert res.record.cost_incurred == pytest.approx(0.0003 + 0.00024 + 0.000375 + 0.00075)
    assert m["price_source"] == "cost_metrics"


def test_openai_cached_and_reasoning_tokens_cost(server: HTTPServer, manager: AIWorkerManager) -> None:
    _reply(server, OPENAI, _openai_cached())
    d = OPENAI.definition(server)
    d["cost_metrics"] = {"input_cost_per_token": 2.5e-6, "output_cost_per_token": 10e-6,
                         "cache_read_cost_per_token": 1.25e-6}
    manager.add_definition(d)
    rec = manager.execute_stateless_task(d["name"], "hello").record
    m = rec.llm_metrics
    assert (m["input_tokens"], m["cache_read_tokens"], m["output_tokens"], m["reasoning_tokens"]) == (1000, 800, 50, 20)
    assert "cache_write_tokens" not in m  # OpenAI reports none
    # 200 uncached * 2.5e-6 + 800 cached * 1.25e-6 + 50 output (reasoning included) * 10e-6
    assert rec.cost_incurred == pytest.approx(0.0005 + 0.001 + 0.0005)


def test_cache_rates_default_to_the_input_price(server: HTTPServer, manager: AIWorkerManager) -> None:
    _reply(server, ANTHROPIC, _anthropic_cached())
    d = ANTHROPIC.definition(server)
    d["cost_metrics"] = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}
    manager.add_definition(d)
    rec = manager.execute_stateless_task(d["name"], "hello").record
    assert rec.cost_incurred == pytest.approx(1000 * 1e-6 + 50 * 2e-6)


def test_gemini_cached_content_and_thoughts(server: HTTPServer, manager: AIWorkerManager) -> None:
    body = GOOGLE.ok("an answer", 1000, 40)
    body["usageMetadata"] = {"promptTokenCount": 1000, "cachedContentTokenCount": 600, "candidatesTokenCount": 40,
                             "thoughtsTokenCount": 10, "totalTokenCount": 1050}
    _reply(server, GOOGLE, body)
    d = GOOGLE.definition(server)
    d["cost_metrics"] = {"input_cost_per_token": 1e-6, "output_cost_per_token": 4e-6,
                         "cache_read_cost_per_token": 0.25e-6}
    manager.add_definition(d)
    rec = manager.execute_stateless_task(d["name"], "hello").record
    m = rec.llm_metrics
    assert (m["input_tokens"], m["cache_read_tokens"], m["output_tokens"], m["reasoning_tokens"]) == (1000, 600, 50, 10)
    assert rec.cost_incurred == pytest.approx(400 * 1e-6 + 600 * 0.25e-6 + 50 * 4e-6)


def test_ollama_reports_only_prompt_and_eval_counts(server: HTTPServer, manager: AIWorkerManager) -> None:
    _reply(server, OLLAMA, OLLAMA.ok("an answer", 30, 7))
    d = OLLAMA.definition(server)
    manager.add_definition(d)
    rec = manager.execute_stateless_task(d["name"], "hello").record
    m = rec.llm_metrics
    assert (m["input_tokens"], m["output_tokens"]) == (30, 7)
    assert not {"cache_read_tokens", "cache_write_tokens", "reasoning_tokens"} & set(m)
    assert rec.cost_incurred == pytest.approx(30 * 0.001 + 7 * 0.002)


def test_definition_without_cost_metrics_is_priced_by_genai_prices(server: HTTPServer,
                                                                   manager: AIWorkerManager) -> None:
    _reply(server, ANTHROPIC, _anthropic_cached())
    d = ANTHROPIC.definition(server)
    del d["cost_metrics"]
    manager.add_definition(d)  # claude-3-5-haiku-latest: $0.8 in, $4 out, $0.08 cache read, $1 cache write per MTok
    rec = manager.execute_stateless_task(d["name"], "hello").record
    assert rec.llm_metrics["price_source"] == f"genai-prices {genai_prices.__version__}"
    expected = 100 * 0.8e-6 + 800 * 0.08e-6 + 100 * 1e-6 + 50 * 4e-6
    assert rec.cost_incurred == pytest.approx(expected)
    # charging every input token at the full input price (what nslang did before) is far too much
    assert (1000 * 0.8e-6 + 50 * 4e-6) / expected > 2


def test_unknown_model_is_priced_zero_with_source_unknown(server: HTTPServer, manager: AIWorkerManager) -> None:
    _reply(server, OPENAI, OPENAI.ok("an answer", 10, 5) | {"model": "no-such-model-xyz"})
    d = OPENAI.definition(server)
    d["model_name"] = "no-such-model-xyz"
    del d["cost_metrics"]
    manager.add_definition(d)
    rec = manager.execute_stateless_task(d["name"], "hello").record
    assert rec.cost_incurred == 0 and rec.llm_metrics["price_source"] == "unknown"


def test_a_plain_script_does_not_import_genai_prices(tmp_path: Path) -> None:
    script = tmp_path / "s.ns"
    script.write_text('func main() means\n  emit "hi"\nendfunc\n')
    code = ("import sys, nslang.cli; rc = nslang.cli.main(['run', sys.argv[1], '--sandbox', sys.argv[2]]); "
            "assert 'genai_prices' not in sys.modules, 'imported'; sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, str(script), str(tmp_path / "sb")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hi\n"


# ------------------------------------------------------------------------------------------- helpers for `nslang run`

ONE_ASK = 'func main() means\n  ask "{worker}", "{prompt}" into r\n  emit r\nendfunc\n'


def _setup(sandbox: Path, *definitions: dict[str, Any]) -> None:
    sandbox.mkdir(parents=True, exist_ok=True)
    (sandbox / "ai_worker_definitions.json").write_text(json.dumps(list(definitions)))


def _run(sandbox: Path, script: str, *options: str, tmp: Path) -> tuple[int, str, str]:
    path = tmp / "script.ns"
    path.write_text(script)
    out, err = io.StringIO(), io.StringIO()
    rc = main(["run", str(path), "--sandbox", str(sandbox), *options], stdout=out, stderr=err)
    return rc, out.getvalue(), err.getvalue()


def _records(sandbox: Path) -> list[dict[str, Any]]:
    m = AIWorkerManager(sandbox, environ=ENV)
    try:
        return [r.model_dump(mode="json") for d in m.list_definitions() for r in m.get_performance_records(d.name)]
    finally:
        m.close()


def _test_worker(name: str = "w", **extra: Any) -> dict[str, Any]:
    # the offline test provider answers "m reply <n>: <prompt>": 4 words (tokens) for prompt "hi"
    return {"name": name, "provider": "test", "model_name": "m", "interaction_models": ["both"],
            "base_config": {"max_tokens": 5}, "cost_metrics": {"output_cost_per_token": 0.0001}, **extra}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)


# ------------------------------------------------------------------------------------------- item 4


def test_run_budget_refuses_the_call_that_could_exceed_it(sandbox: Path, tmp_path: Path) -> None:
    _setup(sandbox, _test_worker())
    script = ('func main() means\n  on error do\n    emit "caught"\n    clear_error\n  endon\n'
              + '  ask "w", "hi" into r\n  emit r\n' * 3 + 'endfunc\n')
    rc, out, err = _run(sandbox, script, "--max-cost", "0.0012", tmp=tmp_path)
    # each call costs 4 * 0.0001 and may cost 5 * 0.0001: the third (0.0008 + 0.0005 > 0.0012) is refused
    assert rc == 70 and out == "m reply 1: hi\n" * 2
    assert "caught" not in out  # the run budget is a limit, not catchable
    assert "run budget" in err and "0.0008 USD spent" in err and "of 0.0012 USD" in err and "37" in err
    assert [r["success"] for r in _records(sandbox)] == [True, True]  # the refused call left no record


def test_task_budget_is_catchable_and_names_spend_and_limit(sandbox: Path, tmp_path: Path) -> None:
    _setup(sandbox, _test_worker())
    script = ('func main() means\n  on error do\n    emit "caught: " + system_error_message\n    clear_error\n'
              '  endon\n  ask "w", "hi" with {"max_cost_usd": 0.0004} into r\n  emit r\nendfunc\n')
    rc, out, _ = _run(sandbox, script, tmp=tmp_path)
    assert rc == 0 and out.startswith("caught: ")
    assert "task budget max_cost_usd" in out and "of 0.0004 USD" in out and "up to 0.0005 USD" in out
    assert _records(sandbox) == []


def test_daily_definition_budget_counts_earlier_runs(sandbox: Path, tmp_path: Path) -> None:
    _setup(sandbox, _test_worker(rate_limits={"max_cost_usd_per_day": 0.0006}))
    script = ONE_ASK.format(worker="w", prompt="hi")
    assert _run(sandbox, script, tmp=tmp_path)[:2] == (0, "m reply 1: hi\n")
    rc, out, err = _run(sandbox, script, tmp=tmp_path)  # a new process: the spend comes from the log
    assert rc == 70 and out == ""
    assert "daily budget rate_limits.max_cost_usd_per_day of worker definition 'w'" in err
    assert "0.0004 USD spent" in err and "of 0.0006 USD" in err


def test_budget_error_attributes(sandbox: Path) -> None:
    with Interpreter(sandbox_dir=sandbox, max_cost_usd=0.0) as it:
        it.workers.add_definition(_test_worker())
        with pytest.raises(BudgetExceededError) as e:
            it.workers.execute_stateless_task("w", "hi")
    assert (e.value.budget, e.value.spent, e.value.limit, e.value.code) == ("run", 0.0, 0.0, 37)
    assert e.value.worst_case == pytest.approx(0.0005) and not e.value.catchable


# ------------------------------------------------------------------------------------------- item 5


def _openai_def(server: HTTPServer, name: str, **extra: Any) -> dict[str, Any]:
    d = OPENAI.definition(server, name, max_retries=0)
    d.update(extra)
    return d


def test_fallback_serves_after_a_5xx_through_nslang_run(server: HTTPServer, sandbox: Path, tmp_path: Path,
                                                        env: None) -> None:
    server.expect_ordered_request(OPENAI.path, method="POST").respond_with_json(
        OPENAI.err("overloaded", "server_error"), status=503)
    server.expect_ordered_request(OPENAI.path, method="POST").respond_with_json(OPENAI.ok("from backup", 10, 3))
    _setup(sandbox, _openai_def(server, "primary", fallback=["backup"]), _openai_def(server, "backup"))
    rc, out, err = _run(sandbox, ONE_ASK.format(worker="primary", prompt="hi"), tmp=tmp_path)
    assert (rc, out) == (0, "from backup\n"), err
    [rec] = _records(sandbox)
    m = rec["llm_metrics"]
    assert rec["success"] and m["served_by"] == "backup" and "HTTP 503" in m["fallback_errors"][0]
    assert m["fallback_errors"][0].startswith("primary: ")
    assert rec["cost_incurred"] == pytest.approx(10 * 0.001 + 3 * 0.002)
    scan_for_key(out, err, paths=[sandbox])


def test_fallback_after_connection_failure_and_timeout(server: HTTPServer, manager: AIWorkerManager,
                                                       closed_port: int) -> None:
    _reply(server, OPENAI, OPENAI.ok("third", 1, 1))
    down = _openai_def(server, "down", fallback=["slow", "ok"])
    down["base_config"]["base_url"] = f"http://127.0.0.1:{closed_port}/v1"
    slow = _openai_def(server, "slow")
    slow["base_config"].update(timeout_s=0.3, base_url=server.url_for("/slow/v1"))

    release = threading.Event()

    def too_late(request: Any) -> Response:
        release.wait(10)
        return Response("{}", content_type="application/json")

    server.expect_request("/slow/v1/chat/completions", method="POST").respond_with_handler(too_late)
    for d in (down, slow, _openai_def(server, "ok")):
        manager.add_definition(d)
    res = manager.execute_stateless_task("down", "hi")
    assert res.output == "third" and res.record.llm_metrics["served_by"] == "ok"
    errors = res.record.llm_metrics["fallback_errors"]
    assert "cannot reach" in errors[0] and "no answer" in errors[1]
    release.set()  # let the abandoned request finish before the next test uses the server
    for _ in range(1000):
        if len(server.log) >= 2:
            break
        time.sleep(0.01)


def test_client_errors_do_not_fall_back(server: HTTPServer, sandbox: Path, tmp_path: Path, env: None) -> None:
    _reply(server, OPENAI, OPENAI.err("bad request"), status=400)
    _setup(sandbox, _openai_def(server, "primary", fallback=["backup"]), _openai_def(server, "backup"))
    rc, _, err = _run(sandbox, ONE_ASK.format(worker="primary", prompt="hi"), tmp=tmp_path)
    assert rc == 70 and "HTTP 400" in err and len(server.log) == 1


def test_every_fallback_failing_names_them_all(server: HTTPServer, manager: AIWorkerManager) -> None:
    _reply(server, OPENAI, OPENAI.err("down", "server_error"), status=500)
    manager.add_definition(_openai_def(server, "a", fallback=["b"]))
    manager.add_definition(_openai_def(server, "b"))
    with pytest.raises(Exception) as e:
        manager.execute_stateless_task("a", "hi")
    assert "HTTP 500" in str(e.value) and "after fallback: a: " in str(e.value)
    [rec] = manager.get_performance_records("a")
    assert not rec.success and rec.llm_metrics["served_by"] == "b"


def test_fallback_must_not_name_itself(manager: AIWorkerManager) -> None:
    with pytest.raises(Exception, match="fallback"):
        manager.add_definition(_test_worker(fallback=["w"]))


# ------------------------------------------------------------------------------------------- item 6


def test_response_cache_hit_is_recorded_with_cost_zero(server: HTTPServer, sandbox: Path) -> None:
    now = [1_000_000.0]
    m = AIWorkerManager(sandbox, environ=ENV, clock=lambda: now[0])
    try:
        _reply(server, OPENAI, OPENAI.ok("an answer", 10, 3))
        m.add_definition(OPENAI.definition(server, "c", cache=True, cache_ttl_s=60))
        first = m.execute_stateless_task("c", "hello")
        second = m.execute_stateless_task("c", "hello")
        assert len(server.log) == 1 and first.output == second.output == "an answer"
        assert first.record.cost_incurred > 0 and "cached" not in first.record.llm_metrics
        assert second.record.cost_incurred == 0 and second.record.llm_metrics["cached"] is True
        m.execute_stateless_task("c", "hello", {"temperature": 0.5})  # other parameters: another request
        assert len(server.log) == 2
        now[0] += 61  # past cache_ttl_s
        m.execute_stateless_task("c", "hello")
        assert len(server.log) == 3
    finally:
        m.close()
    files = list((sandbox / ".nslang-cache" / "responses").glob("*.json"))
    assert len(files) == 2
    scan_for_key(paths=[sandbox])
    # the script cannot tamper with the cache (sandbox protection of .nslang*)
    with Interpreter(sandbox_dir=sandbox) as it:
        it.load(f'func main() means\n  call tool.FS.Write(".nslang-cache/responses/{files[0].name}", "x")\nendfunc\n')
        with pytest.raises(Exception, match="11|read-only|protected"):
            it.run("main")


def test_the_api_key_is_not_part_of_the_request_hash(server: HTTPServer, sandbox: Path) -> None:
    _reply(server, OPENAI, OPENAI.ok("an answer", 10, 3))
    for key in (KEY, KEY + "-rotated"):
        m = AIWorkerManager(sandbox, environ={"OPENAI_API_KEY": key})
        try:
            if key == KEY:
                m.add_definition(OPENAI.definition(server, "c", cache=True))
            m.execute_stateless_task("c", "hello")
        finally:
            m.close()
    assert len(server.log) == 1  # a new key, the same request: a cache hit


# ------------------------------------------------------------------------------------------- item 7


SCRIPT = ('func main() means\n  ask "a", "first question" into r\n  emit r\n  ask "a", "second question" into r\n'
          '  emit r\n'
          '  set r = tool.AIWorker.ExecuteStatelessTask("a", "third")\n  emit r["output"]\nendfunc\n')


def _comparable(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["success"], r["cost_incurred"], r["output_summary"], r["error_details"], r["llm_metrics"])
            for r in records]


def test_record_then_replay_with_the_network_off(server: HTTPServer, tmp_path: Path, env: None,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    server.expect_ordered_request(OPENAI.path, method="POST").respond_with_json(
        OPENAI.err("busy", "server_error"), status=503)
    for text in ("one", "two", f"three {KEY}"):
        server.expect_ordered_request(OPENAI.path, method="POST").respond_with_json(_openai_cached(text))
    defs = (_openai_def(server, "a", fallback=["b"]), _openai_def(server, "b"))
    cassette = tmp_path / "run.jsonl"
    rec_box, play_box = tmp_path / "rec", tmp_path / "play"
    _setup(rec_box, *defs)
    _setup(play_box, *defs)
    recorded = _run(rec_box, SCRIPT, "--record", str(cassette), tmp=tmp_path)
    assert recorded[0] == 0, recorded[2]
    lines = [json.loads(x) for x in cassette.read_text().splitlines()]
    assert len(lines) == 4 and lines[0]["error"]["status"] == 503 and lines[1]["worker"] == "b"
    assert lines[1]["usage"]["cache_read_tokens"] == 800 and lines[1]["request"]["messages"][-1]["content"] == \
        "first question"
    scan_for_key(cassette.read_text(), paths=[cassette])
    server.clear()  # nothing answers any more, no key is set and real requests are off
    monkeypatch.delenv("OPENAI_API_KEY")
    with override_allow_model_requests(False):
        replayed = _run(play_box, SCRIPT, "--replay", str(cassette), tmp=tmp_path)
    assert replayed == recorded and len(server.log) == 0
    assert _comparable(_records(play_box)) == _comparable(_records(rec_box))
    # a request the recording does not hold is a clear error naming it
    with override_allow_model_requests(False):
        rc, _, err = _run(play_box, ONE_ASK.format(worker="a", prompt="a new question"), "--replay", str(cassette),
                          tmp=tmp_path)
    assert rc == 70 and "no recorded answer for worker 'a'" in err and "'a new question'" in err
    assert "model 'gpt-4o-mini'" in err


def test_embedded_record_and_replay(sandbox: Path, tmp_path: Path) -> None:
    cassette = tmp_path / "e.jsonl"
    with Interpreter(sandbox_dir=sandbox, record=cassette) as it:
        it.workers.add_definition(_test_worker())
        first = it.workers.ask("w", "hi")
    with Interpreter(sandbox_dir=tmp_path / "other", replay=cassette) as it:
        it.workers.add_definition(_test_worker())
        assert it.workers.ask("w", "hi") == first
    with pytest.raises(Exception, match="exclude"):
        Interpreter(record=cassette, replay=cassette)
    with pytest.raises(Exception, match="not a recorded model exchange"):
        (tmp_path / "bad.jsonl").write_text("{}\n")
        Interpreter(replay=tmp_path / "bad.jsonl")


def test_daily_budget_window_slides(sandbox: Path) -> None:
    now = [2_000_000_000.0]
    m = AIWorkerManager(sandbox, environ=ENV, clock=lambda: now[0])
    try:
        m.add_definition(_test_worker(rate_limits={"max_cost_usd_per_day": 0.0006}))
        m.execute_stateless_task("w", "hi")  # 0.0004 USD, logged with the real time
        now[0] = __import__("time").time()
        with pytest.raises(BudgetExceededError) as e:
            m.execute_stateless_task("w", "hi")
        assert e.value.budget == "definition" and e.value.spent == pytest.approx(0.0004) and e.value.catchable
        now[0] += 86401  # a day later the spend has left the window
        assert m.execute_stateless_task("w", "hi").output == "m reply 1: hi"
    finally:
        m.close()


@pytest.mark.parametrize("provider", ["openai", "local", "anthropic", "google", "ollama"])
def test_cache_and_replay_in_each_wire_format(provider: str, server: HTTPServer, sandbox: Path,
                                              tmp_path: Path, env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = SPECS[provider]
    _reply(server, spec, spec.ok("the answer", 12, 3))
    cassette = tmp_path / f"{provider}.jsonl"
    with Interpreter(sandbox_dir=sandbox, record=cassette) as it:
        it.workers.add_definition(spec.definition(server, "p", cache=True))
        first = it.workers.execute_stateless_task("p", "hello").record
        second = it.workers.execute_stateless_task("p", "hello").record
    assert len(server.log) == 1
    assert first.llm_metrics["input_tokens"] == 12 and first.cost_incurred == pytest.approx(12 * 0.001 + 3 * 0.002)
    assert second.cost_incurred == 0 and second.llm_metrics["cached"] is True
    scan_for_key(paths=[sandbox, cassette])
    server.clear()
    for var in ENV:  # replaying needs no key
        monkeypatch.delenv(var)
    with override_allow_model_requests(False), Interpreter(sandbox_dir=tmp_path / "replay", replay=cassette) as it:
        it.workers.add_definition(spec.definition(server, "p", cache=True))
        replayed = [it.workers.execute_stateless_task("p", "hello").record for _ in range(2)]
    assert [(r.cost_incurred, r.output_summary, r.llm_metrics) for r in replayed] == \
        [(r.cost_incurred, r.output_summary, r.llm_metrics) for r in (first, second)]
    assert len(server.log) == 0


def test_worst_case_prices_the_prompt_estimate_and_max_tokens() -> None:
    from nslang.llm.base import Message
    from nslang.workers.economics import DEFAULT_WORST_OUTPUT_TOKENS, worst_case
    from nslang.workers.models import AIWorkerDefinition

    msgs = [Message("system", "s" * 8), Message("user", "x" * 40)]  # (2 + 4) + (10 + 4) = 20 tokens
    priced = AIWorkerDefinition(name="p", provider="anthropic", model_name="claude-3-5-haiku-latest")
    cost = worst_case(priced, msgs, {"max_tokens": 1000})  # genai-prices: $0.8 in, $4 out per MTok
    assert cost.usd == pytest.approx(20 * 0.8e-6 + 1000 * 4e-6) and cost.source.startswith("genai-prices")
    mine = AIWorkerDefinition(name="m", provider="test", cost_metrics={"input_cost_per_token": 1e-6,
                                                                      "output_cost_per_token": 2e-6, "per_call": 0.01})
    assert worst_case(mine, msgs, {}).usd == pytest.approx(20e-6 + DEFAULT_WORST_OUTPUT_TOKENS * 2e-6 + 0.01)


def test_a_fallback_is_held_to_its_own_rate_limits(server: HTTPServer, manager: AIWorkerManager) -> None:
    server.expect_request("/down/v1/chat/completions", method="POST").respond_with_json(
        OPENAI.err("down", "server_error"), status=503)
    _reply(server, OPENAI, OPENAI.ok("served", 5, 2))
    primary = _openai_def(server, "primary", fallback=["limited", "spare"])
    primary["base_config"]["base_url"] = server.url_for("/down/v1")
    manager.add_definition(primary)
    manager.add_definition(_openai_def(server, "limited", rate_limits={"max_requests_per_minute": 1}))
    manager.add_definition(_openai_def(server, "spare"))
    served = [manager.execute_stateless_task("primary", "hi").record.llm_metrics for _ in range(2)]
    assert [m["served_by"] for m in served] == ["limited", "spare"]
    assert "max_requests_per_minute" in served[1]["fallback_errors"][1]
    assert manager.rate_limit_usage("limited")["requests_last_minute"] == 1


def test_a_budget_refusal_replays_as_one(tmp_path: Path) -> None:
    cassette = tmp_path / "b.jsonl"
    script = 'func main() means\n' + '  ask "w", "hi" into r\n  emit r\n' * 3 + 'endfunc\n'
    runs = []
    for box, mode in (("rec", "--record"), ("play", "--replay")):
        _setup(tmp_path / box, _test_worker())
        runs.append(_run(tmp_path / box, script, "--max-cost", "0.0012", mode, str(cassette), tmp=tmp_path))
    assert runs[0] == runs[1] and runs[0][0] == 70 and "run budget" in runs[0][2]
    assert len(cassette.read_text().splitlines()) == 2  # the refused call was not an exchange
