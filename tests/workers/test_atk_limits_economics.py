"""Adversarial review of issue 11 (shared limits) and issue 14 items 3-7 (budgets, cache, record/replay):
regression tests replaying the attacks that found a defect."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from nslang.errors import UsageError
from nslang.interpreter import Interpreter
from nslang.llm import testing
from nslang.llm.base import ModelResponse
from nslang.workers.cassette import Replayer, ResponseCache
from nslang.workers.economics import MAX_PRICED_TOKENS, Usage, price_call
from nslang.workers.errors import BudgetExceededError, ConfigurationError
from nslang.workers.limits import RedisLimits, SQLiteLimits, open_backend, safe_url
from nslang.workers.models import AIWorkerDefinition

DEEP = "[" * 100_000 + "]" * 100_000


def test_response_cache_entry_nested_too_deeply_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A cache file replaced from outside by deeply nested JSON was a RecursionError (a crash)."""
    cache = ResponseCache(tmp_path)
    cache.directory.mkdir(parents=True)
    (cache.directory / "ab.json").write_text(DEEP)
    with caplog.at_level(logging.WARNING, logger="nslang.workers"):
        assert cache.get("ab", 0) is None
    assert "RecursionError" in caplog.text


def test_replay_file_nested_too_deeply_is_a_clear_error(tmp_path: Path) -> None:
    """A recording line of deeply nested JSON was a RecursionError instead of the line-numbered error."""
    path = tmp_path / "run.jsonl"
    path.write_text("\n" + DEEP + "\n")
    with pytest.raises(UsageError, match=r"run\.jsonl:2: not a recorded model exchange"):
        Replayer(path)


def test_redis_url_with_a_bad_port_is_a_configuration_error_without_the_password(tmp_path: Path) -> None:
    """redis-py's ValueError escaped as a Python exception; safe_url itself raised on the port."""
    url = "redis://:s3cret-passw0rd@127.0.0.1:notaport/0"
    assert "s3cret" not in safe_url(url)
    backend = open_backend(tmp_path, environ={"NSLANG_LIMITS_URL": url})
    assert isinstance(backend, RedisLimits)
    with pytest.raises(ConfigurationError) as info:
        backend.acquire("k", (1, 0, 0), 1, 1)
    assert info.value.code == 18
    assert "notaport" in str(info.value) and "s3cret" not in str(info.value)
    with pytest.raises(ConfigurationError) as info:  # the plain (non-script) path too
        backend.forget("k")
    assert "s3cret" not in str(info.value)


def _in_flight_calls(monkeypatch: pytest.MonkeyPatch, sandbox: Path, threads: int, definition: dict[str, Any],
                     **interpreter: Any) -> tuple[int, list[BaseException]]:
    """Start ``threads`` tasks at once; the model answers only once every task has either reached it or
    been refused. Returns (answered, refusals)."""
    gate = threading.Event()
    lock = threading.Lock()
    entered = [0]
    refusals: list[BaseException] = []
    original = testing.TestModel.request

    def held_request(self: testing.TestModel, *args: Any, **kwargs: Any) -> Any:
        with lock:
            entered[0] += 1
        gate.wait(60)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(testing.TestModel, "request", held_request)
    answered = []
    with Interpreter(sandbox_dir=sandbox, **interpreter) as it:
        it.workers.add_definition(definition)

        def task() -> None:
            try:
                answered.append(it.workers.execute_stateless_task(definition["name"], "hi"))
            except BudgetExceededError as e:
                with lock:
                    refusals.append(e)

        workers = [threading.Thread(target=task) for _ in range(threads)]
        for t in workers:
            t.start()
        for _ in range(6000):  # until every task is in the model or refused (not a timing assertion)
            with lock:
                if entered[0] + len(refusals) == threads:
                    break
            time.sleep(0.01)
        gate.set()
        for t in workers:
            t.join(60)
    return len(answered), refusals


def _worker(**extra: Any) -> dict[str, Any]:
    # the test provider answers 4 tokens for "hi": each call costs 0.0004 USD and may cost 0.0005 (max_tokens 5)
    return {"name": "w", "provider": "test", "model_name": "m", "interaction_models": ["both"],
            "base_config": {"max_tokens": 5}, "cost_metrics": {"output_cost_per_token": 0.0001}, **extra}


def test_run_budget_holds_with_concurrent_calls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """8 concurrent tasks against --max-cost 0.0012 USD: all 8 were admitted against a spend of 0
    (0.0032 USD spent, 2.7x the budget); in-flight worst cases now count."""
    answered, refusals = _in_flight_calls(monkeypatch, tmp_path / "sb", 8, _worker(), max_cost_usd=0.0012)
    assert answered == 2 and len(refusals) == 6
    assert {getattr(e, "budget", None) for e in refusals} == {"run"}


def test_daily_budget_holds_with_concurrent_calls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    answered, refusals = _in_flight_calls(monkeypatch, tmp_path / "sb", 8,
                                          _worker(rate_limits={"max_cost_usd_per_day": 0.0012}))
    assert answered == 2 and len(refusals) == 6
    assert {getattr(e, "budget", None) for e in refusals} == {"definition"}


def test_deleting_the_limits_file_resets_every_process_alike(tmp_path: Path) -> None:
    """The error hint says "delete it to reset the rate windows": a backend that had it open kept using
    the deleted file while the others made a new one, so max_requests_per_minute=3 admitted 6."""
    path = tmp_path / "ai_worker_limits.sqlite3"
    first, second = SQLiteLimits(path), SQLiteLimits(path)  # two processes' connections
    try:
        assert [first.acquire("k", (3, 0, 0), 1, 1)[0].admitted for _ in range(2)] == [True, True]
        for f in tmp_path.glob("ai_worker_limits.sqlite3*"):
            f.unlink()
        assert [second.acquire("k", (3, 0, 0), 1, 1)[0].admitted for _ in range(3)] == [True] * 3
        assert not first.acquire("k", (3, 0, 0), 1, 1)[0].admitted
        assert first.usage("k")["requests_last_minute"] == 3
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize("max_tokens", [10**19, 10**30])
def test_a_huge_max_tokens_under_a_token_limit_is_not_a_crash(tmp_path: Path, max_tokens: int) -> None:
    """max_tokens >= 2**63 made the reservation an OverflowError out of sqlite3 (a Python traceback)."""
    worker = {"name": "w", "provider": "test", "model_name": "m", "interaction_models": ["both"],
              "base_config": {"max_tokens": max_tokens}, "rate_limits": {"max_tokens_per_minute": 1000}}
    with Interpreter(sandbox_dir=tmp_path / "sb") as it:
        it.workers.add_definition(worker)
        assert it.workers.execute_stateless_task("w", "hi").output == "m reply 1: hi"


def test_a_provider_reporting_absurd_usage_is_not_a_crash(tmp_path: Path) -> None:
    """A settle with 10**20 tokens (a model's reply is untrusted) overflowed the SQLite integer."""
    backend = SQLiteLimits(tmp_path / "l.sqlite3")
    try:
        d, rid = backend.acquire("k", (0, 1000, 0), 1, 10)
        assert d.admitted
        backend.settle("k", rid, d.reserve, 10**20, 10**20)
        assert backend.usage("k")["tokens_last_minute"] >= 1000  # counted in full: the window is full
        assert not backend.acquire("k", (0, 1000, 0), 1, 10)[0].admitted
    finally:
        backend.close()


@pytest.mark.parametrize("max_tokens", [float("inf"), float("nan"), 10**400])
def test_a_max_tokens_past_a_float_is_priced_not_a_crash(tmp_path: Path, max_tokens: Any) -> None:
    """worst_case did int(inf) / int(nan) / 10**400 * price: OverflowError or ValueError (a traceback)."""
    with Interpreter(sandbox_dir=tmp_path / "sb", max_cost_usd=1.0) as it:
        it.workers.add_definition(_worker())
        with pytest.raises(BudgetExceededError) as info:
            it.workers.execute_stateless_task("w", "hi", config_overrides={"max_tokens": max_tokens})
    assert info.value.budget == "run" and info.value.worst_case == pytest.approx(MAX_PRICED_TOKENS * 0.0001, rel=1e-3)


def test_a_provider_reporting_more_tokens_than_a_float_holds_is_priced() -> None:
    d = AIWorkerDefinition.model_validate(_worker())
    cost = price_call(d, Usage(input_tokens=10**400, output_tokens=10**400))
    assert cost.usd == pytest.approx(MAX_PRICED_TOKENS * 0.0001)


def test_response_cache_entry_of_another_request_is_not_served(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    """Another prompt's entry copied under this request's hash was served as this request's answer."""
    cache = ResponseCache(tmp_path)
    cache.put("a" * 64, ModelResponse(text="answer to A"), None)
    (cache.directory / f"{'b' * 64}.json").write_bytes((cache.directory / f"{'a' * 64}.json").read_bytes())
    with caplog.at_level(logging.WARNING, logger="nslang.workers"):
        assert cache.get("b" * 64, 0) is None
    assert cache.get("a" * 64, 0) is not None and "unreadable entry" in caplog.text
