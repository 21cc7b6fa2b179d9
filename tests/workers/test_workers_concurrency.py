"""Thread safety: rate limits under contention, summaries equal to the records, nothing lost."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from workers_helpers import add_test_worker

from nslang.workers import AIWorkerManager, PreconditionFailedError, RateLimitedError

THREADS = 16


def _slow_provider(messages: list[dict[str, str]], settings: dict[str, Any]) -> dict[str, Any]:
    time.sleep(0.002)  # let the threads overlap inside the model call
    words = len(messages[-1]["content"].split())
    return {"text": "done " * words, "input_tokens": words, "output_tokens": words * 2}


def _hammer(threads: int, per_thread: int, job: Any) -> tuple[list[Any], list[BaseException]]:
    results: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def run() -> None:
        start.wait()
        for i in range(per_thread):
            try:
                r = job(i)
            except BaseException as e:  # noqa: BLE001 - collected and checked by the test
                with lock:
                    errors.append(e)
            else:
                with lock:
                    results.append(r)

    ts = [threading.Thread(target=run) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return results, errors


def test_rpm_limit_is_never_exceeded_by_16_threads(sandbox: Path) -> None:
    m = AIWorkerManager(sandbox)
    m.register_custom_provider("slow", _slow_provider)
    limit = 25
    m.add_definition({"name": "busy", "provider": "custom", "interaction_models": ["stateless_task"],
                      "base_config": {"custom_provider": "slow"}, "rate_limits": {"max_requests_per_minute": limit},
                      "cost_metrics": {"input_cost_per_token": 0.01, "output_cost_per_token": 0.02}})
    results, errors = _hammer(THREADS, 4, lambda i: m.execute_stateless_task("busy", f"task number {i}"))
    assert len(results) == limit
    assert len(errors) == THREADS * 4 - limit
    assert all(isinstance(e, RateLimitedError) and e.code == 20 for e in errors)
    records = m.get_performance_records("busy")
    assert sorted(r.task_id for r in records) == sorted(r.record.task_id for r in results)  # no record lost
    s = m.get_summary("busy")
    assert s.total_tasks_attempted == len(records) == limit and s.successful_tasks == limit
    assert s.total_tokens_processed == sum(r.llm_metrics["total_tokens"] for r in records)
    assert s.total_cost_incurred == pytest.approx(sum(r.cost_incurred for r in records))
    assert s.total_duration_ms == sum(r.duration_ms for r in records)
    # every admitted request started inside one 60 s window, and there are exactly `limit` of them
    starts = sorted(r.timestamp_start for r in records)  # type: ignore[type-var]
    assert (starts[-1] - starts[0]).total_seconds() < 60  # type: ignore[operator]
    # a fresh manager rebuilds the same summary from the log
    assert AIWorkerManager(sandbox).get_summary("busy") == s


def test_sliding_window_with_threads_and_a_fake_clock(sandbox: Path) -> None:
    now = [1_000_000.0]
    m = AIWorkerManager(sandbox, clock=lambda: now[0])
    add_test_worker(m, "w", rate_limits={"max_requests_per_minute": 10})
    done: Counter[int] = Counter()
    for step in range(4):  # four "minutes"; each admits exactly 10 of 16 x 2 attempts
        results, errors = _hammer(THREADS, 2, lambda i: m.execute_stateless_task("w", "x"))
        done[step] = len(results)
        assert all(isinstance(e, RateLimitedError) for e in errors)
        now[0] += 61
    assert list(done.values()) == [10, 10, 10, 10]
    assert m.get_summary("w").total_tasks_attempted == 40


def test_unlimited_definition_under_contention_loses_nothing(sandbox: Path) -> None:
    m = AIWorkerManager(sandbox)
    add_test_worker(m, "free")
    add_test_worker(m, "other")
    results, errors = _hammer(THREADS, 10, lambda i: m.execute_stateless_task("free" if i % 2 else "other", "x y"))
    assert errors == [] and len(results) == THREADS * 10
    total = m.get_summary("free").total_tasks_attempted + m.get_summary("other").total_tasks_attempted
    assert total == THREADS * 10
    fresh = AIWorkerManager(sandbox)
    assert len(fresh.get_performance_records("free")) + len(fresh.get_performance_records("other")) == THREADS * 10


def test_one_instance_chatted_from_many_threads(sandbox: Path) -> None:
    m = AIWorkerManager(sandbox)
    m.register_custom_provider("slow", _slow_provider)
    m.add_definition({"name": "c", "provider": "custom", "base_config": {"custom_provider": "slow"}})
    iid = m.spawn_instance("c").instance_id
    results, errors = _hammer(8, 5, lambda i: m.chat(iid, f"message {i}"))
    assert all(isinstance(e, PreconditionFailedError) and "busy" in e.message for e in errors)
    assert len(m.get_history(iid)) == 2 * len(results)
    inst = m.get_instance(iid)
    assert inst.status == "idle"
    recs = m.get_performance_records("c")
    assert len(recs) == len(results)
    assert inst.session_token_usage.total_tokens == sum(r.llm_metrics["total_tokens"] for r in recs)


def test_token_limits_with_threads(sandbox: Path) -> None:
    now = [5_000_000.0]
    m = AIWorkerManager(sandbox, clock=lambda: now[0])
    m.register_custom_provider("slow", _slow_provider)
    m.add_definition({"name": "tpm", "provider": "custom", "interaction_models": ["stateless_task"],
                      "base_config": {"custom_provider": "slow"}, "rate_limits": {"max_tokens_per_minute": 30}})
    _, errors = _hammer(4, 5, lambda i: m.execute_stateless_task("tpm", "one two three"))  # 9 tokens each
    assert errors and all(isinstance(e, RateLimitedError) and e.limit == "max_tokens_per_minute" for e in errors)
    used = m.rate_limit_usage("tpm")["tokens_last_minute"]
    # calls in flight hold a reservation: the limit is overshot by at most one call's tokens (9 here),
    # and a refusal means the next call did not fit
    assert 30 - 9 < used <= 30 + 9
    now[0] += 61
    m.execute_stateless_task("tpm", "again")
