"""Rate limits (issue 11 items 1-4): windows, token reservations, live-instance slots and waiting, on
every backend (memory, SQLite file, Redis), under 16 threads, 4 processes, two "hosts", and SIGKILL."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from limits_helpers import (
    JITTER,
    LIMITS,
    MINUTE,
    add_definitions,
    check_limits,
    child,
    manager,
    redis_server,
    redis_server_path,
    workload,
)
from workers_helpers import add_test_worker

from nslang import Interpreter
from nslang.errors import NSRuntimeError
from nslang.parser import parse
from nslang.workers import AIWorkerDefinition, AIWorkerManager, ConfigurationError, RateLimitedError, StoreError
from nslang.workers.limits import (
    LIMITS_FILE,
    NO_TICKET,
    SETTINGS_FILE,
    LimitBackend,
    RateLimiter,
    RedisLimits,
    SQLiteLimits,
    open_backend,
)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    path = redis_server_path()
    if path is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server; .ci/run does it)")
    with redis_server(path) as url:
        yield url


BACKENDS = ["memory", "sqlite", "redis"]


@pytest.fixture(params=BACKENDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _spec(kind: str, request: pytest.FixtureRequest, **kw: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"kind": kind, **kw}
    if kind == "redis":
        spec["url"] = request.getfixturevalue("redis_url")
        spec["prefix"] = f"t{time.time_ns()}"
    return spec


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def _backend(kind: str, request: pytest.FixtureRequest, tmp_path: Path, clock: Clock, **kw: Any) -> LimitBackend:
    if kind == "memory":
        return SQLiteLimits(":memory:", clock=clock, **kw)
    if kind == "sqlite":
        return SQLiteLimits(tmp_path / LIMITS_FILE, clock=clock, **kw)
    return RedisLimits(request.getfixturevalue("redis_url"), prefix=f"t{time.time_ns()}", clock=clock, **kw)


def _def(**limits: Any) -> AIWorkerDefinition:
    return AIWorkerDefinition.model_validate({"name": "n", "definition_id": "d", "provider": "test",
                                              "rate_limits": limits})


class Msg:
    def __init__(self, content: str) -> None:
        self.content = content


def _prompt(tokens: int) -> list[Msg]:
    return [Msg("x" * (4 * tokens))]


@pytest.fixture
def setup(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[RateLimiter, Clock]]:
    clock = Clock()
    backend = _backend(kind, request, tmp_path, clock)
    yield RateLimiter(backend, sleep=clock.sleep), clock
    backend.close()


# ----------------------------------------------------------------------------- windows (fake clock)


def test_requests_per_minute_slide(setup: tuple[RateLimiter, Clock]) -> None:
    rl, clock = setup
    d = _def(max_requests_per_minute=2)
    rl.admit(d, [], {}).settle(0, 0, True)
    clock.now += 30
    rl.admit(d, [], {}).settle(0, 0, True)
    clock.now += 10
    with pytest.raises(RateLimitedError) as ei:
        rl.admit(d, [], {})
    e = ei.value
    assert e.code == 20 and e.limit == "max_requests_per_minute" and e.retry_after == pytest.approx(20)
    assert "'n'" in e.message and "max_requests_per_minute=2" in e.message and "20.0 s" in e.message
    clock.now += 20.001  # the first request left the 60 s window
    rl.admit(d, [], {})
    with pytest.raises(RateLimitedError):
        rl.admit(d, [], {})
    assert rl.usage(d)["requests_last_minute"] == 2


def test_tokens_are_reserved_then_settled(setup: tuple[RateLimiter, Clock]) -> None:
    rl, clock = setup
    d = _def(max_tokens_per_minute=100, max_tokens_per_day=250)
    a = rl.admit(d, _prompt(10), {"max_tokens": 30})  # reserves 10 + 30
    assert a.reserved == 40 and rl.usage(d)["tokens_last_minute"] == 40
    b = rl.admit(d, _prompt(10), {"max_tokens": 30})
    with pytest.raises(RateLimitedError) as ei:  # 80 reserved + 40 > 100: refused while two are in flight
        rl.admit(d, _prompt(10), {"max_tokens": 30})
    assert ei.value.limit == "max_tokens_per_minute" and "needs ~40 tokens" in ei.value.message
    a.settle(10, 5, True)  # the real usage (15) replaces the estimate (40)
    assert rl.usage(d)["tokens_last_minute"] == 55
    c = rl.admit(d, _prompt(10), {"max_tokens": 30})  # 55 + 40 <= 100 now
    b.settle(10, 20, True)
    c.settle(10, 20, True)
    assert rl.usage(d) == {"requests_last_minute": 3, "tokens_last_minute": 75, "tokens_last_day": 75,
                           "live_instances": 0}
    for _ in range(2):  # two calls of 40 per minute: 75 + 160 = 235 in the day
        clock.now += 61
        for _ in range(2):
            rl.admit(d, _prompt(10), {"max_tokens": 30}).settle(10, 30, True)
    clock.now += 61
    with pytest.raises(RateLimitedError) as ei:
        rl.admit(d, _prompt(10), {"max_tokens": 30})
    assert ei.value.limit == "max_tokens_per_day" and "24 h" in ei.value.message
    assert ei.value.retry_after is not None and 86000 < ei.value.retry_after <= 86400
    clock.now += 86400
    rl.admit(d, [], {})


def test_output_size_comes_from_the_running_average(setup: tuple[RateLimiter, Clock]) -> None:
    rl, _clock = setup
    d = _def(max_tokens_per_minute=1000)
    first = rl.admit(d, _prompt(10), {})  # nothing known: it reserves what remains of the window
    assert first.reserved == 1000
    with pytest.raises(RateLimitedError, match="frees in"):
        rl.admit(d, _prompt(10), {})
    first.settle(10, 100, True)
    second = rl.admit(d, _prompt(10), {})
    assert second.reserved == 10 + 100  # prompt + the average output so far
    second.settle(10, 200, False)  # a failed call does not move the average
    assert rl.admit(d, _prompt(10), {}).reserved == 110


def test_one_call_over_the_whole_limit_runs_alone(setup: tuple[RateLimiter, Clock]) -> None:
    rl, clock = setup
    d = _def(max_tokens_per_minute=50)
    t = rl.admit(d, _prompt(10), {"max_tokens": 100})  # 110 > 50, but the window is empty
    with pytest.raises(RateLimitedError):
        rl.admit(d, _prompt(1), {"max_tokens": 1})
    t.settle(10, 90, True)
    clock.now += 60.001
    rl.admit(d, _prompt(1), {"max_tokens": 1})


def test_a_ticket_left_unsettled_keeps_its_estimate(setup: tuple[RateLimiter, Clock]) -> None:
    rl, _clock = setup
    d = _def(max_tokens_per_minute=100)
    with pytest.raises(KeyboardInterrupt), rl.admit(d, _prompt(10), {"max_tokens": 20}):
        raise KeyboardInterrupt  # e.g. inside the provider: the call may have been charged
    assert rl.usage(d)["tokens_last_minute"] == 30


def test_instance_slots(setup: tuple[RateLimiter, Clock]) -> None:
    rl, _clock = setup
    d = _def(max_concurrent_active_instances=2)
    rl.acquire_instance(d, "i1")
    rl.acquire_instance(d, "i2")
    with pytest.raises(RateLimitedError, match="frees when an instance is retired") as ei:
        rl.acquire_instance(d, "i3")
    assert ei.value.limit == "max_concurrent_active_instances" and ei.value.retry_after is None
    assert rl.usage(d)["live_instances"] == 2
    rl.release_instance("i1")
    rl.release_instance("never-taken")
    rl.acquire_instance(d, "i3")


def test_no_limits_cost_nothing(tmp_path: Path) -> None:
    opened: list[int] = []

    def factory() -> LimitBackend:
        opened.append(1)
        return SQLiteLimits(":memory:")

    rl = RateLimiter(factory)
    d = _def()
    assert rl.admit(d, _prompt(10), {}) is NO_TICKET
    rl.acquire_instance(d, "i")
    rl.release_instance("i")
    assert rl.usage(d)["requests_last_minute"] == 0
    assert opened == []  # no store was opened
    m = AIWorkerManager(tmp_path, environ={})
    add_test_worker(m, "free")
    m.execute_stateless_task("free", "x")
    m.retire_instance(m.spawn_instance("free").instance_id)
    assert not (tmp_path / LIMITS_FILE).exists()


# ----------------------------------------------------------------------------- waiting


def test_wait_for_the_window(setup: tuple[RateLimiter, Clock]) -> None:
    rl, clock = setup
    d = _def(max_requests_per_minute=1, on_limit="wait", max_wait_s=0)
    start = clock.now
    rl.admit(d, [], {}).settle(0, 0, True)
    rl.admit(d, [], {}).settle(0, 0, True)  # waits (fake sleep) for the first request to leave the window
    assert 60 <= clock.now - start < 62


def test_max_wait_s_bounds_the_wait(setup: tuple[RateLimiter, Clock]) -> None:
    rl, clock = setup
    d = _def(max_requests_per_minute=1, on_limit="wait", max_wait_s=5)
    rl.admit(d, [], {}).settle(0, 0, True)
    start = clock.now
    with pytest.raises(RateLimitedError, match=r"after max_wait_s=5") as ei:
        rl.admit(d, [], {})
    assert ei.value.code == 20
    assert clock.now == start  # nothing in flight, frees in 60 s > 5 s: fails at once instead of sleeping
    t = rl.admit(_def(max_tokens_per_minute=10, on_limit="wait", max_wait_s=5), _prompt(1), {"max_tokens": 9})
    with pytest.raises(RateLimitedError, match=r"after max_wait_s=5 \(waited"):  # a call in flight: it polls
        rl.admit(_def(max_tokens_per_minute=10, on_limit="wait", max_wait_s=5), _prompt(1), {"max_tokens": 9})
    t.settle(1, 1, True)


def test_the_runs_time_limit_bounds_the_wait(tmp_path: Path) -> None:
    clock = Clock()
    deadline = clock.now + 3
    rl = RateLimiter(SQLiteLimits(":memory:", clock=clock), time_left=lambda: deadline - clock.now,
                     sleep=clock.sleep)
    d = _def(max_requests_per_minute=1, on_limit="wait", max_wait_s=0)
    rl.admit(d, [], {}).settle(0, 0, True)
    with pytest.raises(RateLimitedError, match="after the run's time limit"):
        rl.admit(d, [], {})  # frees in 60 s, the run ends in 3 s: fails at once
    assert clock.now == deadline - 3
    d = _def(max_tokens_per_minute=10, on_limit="wait", max_wait_s=0)
    t = rl.admit(d, _prompt(1), {"max_tokens": 9})
    with pytest.raises(RateLimitedError, match="after the run's time limit"):
        rl.admit(d, _prompt(1), {"max_tokens": 9})  # a call in flight could free it: polls until the deadline
    assert clock.now == deadline
    t.settle(1, 1, True)


def test_on_limit_wait_from_a_script_with_a_timeout(tmp_path: Path) -> None:
    """Through the interpreter: the second ask would wait 60 s, past --timeout 5: it fails at once (20)."""
    it = Interpreter(sandbox_dir=tmp_path, timeout_s=5)
    add_test_worker(it.workers, "w", rate_limits={"max_requests_per_minute": 1, "on_limit": "wait",
                                                  "max_wait_s": 0})
    it.load_program(parse('func main() means\n  ask "w", "one" into a\n  ask "w", "two" into b\nendfunc\n'))
    with pytest.raises(NSRuntimeError) as ei:
        it.run("main")
    assert ei.value.code == 20 and "run's time limit" in ei.value.message
    it.close()


def test_wait_really_waits(tmp_path: Path) -> None:
    """Real clock, 1 s windows: six requests at two per window all succeed, spread over the windows."""
    m = AIWorkerManager(tmp_path, environ={}, limits=SQLiteLimits(tmp_path / LIMITS_FILE, minute=1.0))
    add_test_worker(m, "w", rate_limits={"max_requests_per_minute": 2, "on_limit": "wait", "max_wait_s": 0})
    for i in range(6):
        m.execute_stateless_task("w", f"task {i}")
    starts = sorted(r.timestamp_start.timestamp() for r in m.get_performance_records("w"))  # type: ignore[union-attr]
    assert starts[-1] - starts[0] >= 2.0  # three windows of 1 s
    for i in range(len(starts) - 2):
        assert starts[i + 2] - starts[i] >= 1.0 - JITTER  # never three in one window


# ----------------------------------------------------------------------------- concurrency


def _assert_within_limits(found: dict[str, Any], refused: dict[str, int]) -> None:
    one_call = found["call_tokens"]
    assert found["rpm"] <= LIMITS["rpm"]["max_requests_per_minute"], found
    assert found["tpm"] <= LIMITS["tpm"]["max_tokens_per_minute"] + one_call, found
    assert found["tpd"] <= LIMITS["tpd"]["max_tokens_per_day"] + one_call, found
    assert found["inst"] <= LIMITS["inst"]["max_concurrent_active_instances"], found
    # the limits were really reached: calls were refused, and the token limits were nearly used up
    assert refused["rpm"] and refused["tpd"], refused
    assert found["tpd"] > LIMITS["tpd"]["max_tokens_per_day"] - one_call, found
    assert found["tpm_calls"] > 1 and found["inst"] >= 2, found


def test_16_threads_never_exceed_the_limits(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    spec = _spec(kind, request, minute=MINUTE, day=3600.0)
    m = manager(tmp_path, spec)
    add_definitions(m)
    refused = workload(m, threads=16, tasks=1)
    m.close()
    _assert_within_limits(check_limits([tmp_path], MINUTE), refused)


def _children(procs: list[subprocess.Popen[str]]) -> dict[str, int]:
    refused: dict[str, int] = dict.fromkeys(LIMITS, 0)
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        for k, v in json.loads(out).items():
            refused[k] += v
    return refused


def test_4_processes_share_the_sqlite_store(tmp_path: Path) -> None:
    spec = {"kind": "sqlite", "minute": MINUTE, "day": 3600.0}
    add_definitions(AIWorkerManager(tmp_path, environ={}))
    refused = _children([child(tmp_path, spec, threads=4, tasks=1) for _ in range(4)])
    _assert_within_limits(check_limits([tmp_path], MINUTE), refused)


def test_two_hosts_share_redis(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    spec = _spec("redis", request, minute=MINUTE, day=3600.0)
    hosts = [tmp_path / "host-a", tmp_path / "host-b"]
    for box in hosts:  # each host has its own sandbox and log; the definitions carry the same ids
        add_definitions(AIWorkerManager(box, environ={}))
    refused = _children([child(box, spec, threads=8, tasks=1) for box in hosts])
    _assert_within_limits(check_limits(hosts, MINUTE), refused)


# ----------------------------------------------------------------------------- crashes


_HOLDER = """
import sys, time
sys.path.insert(0, {helpers!r})
from limits_helpers import manager
m = manager(__import__("pathlib").Path({box!r}), {spec!r})
m.register_custom_provider("hang", lambda messages, settings: time.sleep(3600) or "never")
iid = m.spawn_instance("inst").instance_id
print("spawned", flush=True)
m.execute_stateless_task("hang", "a prompt of some length", {{"custom_provider": "hang"}})
"""


@pytest.mark.parametrize("backend_kind", ["sqlite", "redis"])
def test_a_killed_process_releases_its_reservations_and_instances(backend_kind: str, request: pytest.FixtureRequest,
                                                                 tmp_path: Path) -> None:
    spec = _spec(backend_kind, request, lease_ttl=1.0)
    m = manager(tmp_path, spec)
    m.add_definition({"name": "inst", "provider": "test", "definition_id": "def-inst",
                      "rate_limits": {"max_concurrent_active_instances": 1}})
    m.add_definition({"name": "hang", "provider": "custom", "definition_id": "def-hang",
                      "rate_limits": {"max_tokens_per_minute": 10_000}})
    code = _HOLDER.format(helpers=str(Path(__file__).parent), box=str(tmp_path), spec=spec)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "spawned", proc.stderr
        deadline = time.monotonic() + 30
        while m.rate_limit_usage("hang")["tokens_last_minute"] == 0:  # the reservation is in flight
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        time.sleep(1.5)  # longer than the lease: the heartbeat keeps it while the process lives
        assert m.rate_limit_usage("inst")["live_instances"] == 1
        assert m.rate_limit_usage("hang")["tokens_last_minute"] == 10_000  # nothing known: all that remains
        with pytest.raises(RateLimitedError):
            m.spawn_instance("inst")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
    deadline = time.monotonic() + 30
    while m.rate_limit_usage("inst")["live_instances"]:
        assert time.monotonic() < deadline, "the killed process's instance was never released"
        time.sleep(0.1)
    assert m.rate_limit_usage("hang")["tokens_last_minute"] == 0  # its reservation was released
    assert m.rate_limit_usage("hang")["requests_last_minute"] == 1  # the request itself stays counted
    m.retire_instance(m.spawn_instance("inst").instance_id)
    m.close()


# ----------------------------------------------------------------------------- the store


def test_choosing_a_backend(tmp_path: Path) -> None:
    assert isinstance(open_backend(tmp_path, environ={}), SQLiteLimits)
    assert open_backend(tmp_path, environ={}).path == str(tmp_path / LIMITS_FILE)  # type: ignore[attr-defined]
    assert open_backend(tmp_path, environ={"NSLANG_LIMITS_URL": "memory"}).path == ":memory:"  # type: ignore[attr-defined]
    r = open_backend(tmp_path, environ={"NSLANG_LIMITS_URL": "redis://:s3cret@10.0.0.1:6380/2"})
    assert isinstance(r, RedisLimits) and r.prefix == "nslang:limits"
    with pytest.raises(ConfigurationError, match="unsupported") as ei:
        open_backend(tmp_path, environ={"NSLANG_LIMITS_URL": "http://user:s3cret@host/x"})
    assert "s3cret" not in ei.value.message and ei.value.code == 18
    (tmp_path / SETTINGS_FILE).write_text(json.dumps({"url": "redis://h:1/0", "prefix": "fleet"}))
    r = open_backend(tmp_path, environ={})
    assert isinstance(r, RedisLimits) and r.prefix == "fleet" and r.url == "redis://h:1/0"
    (tmp_path / SETTINGS_FILE).write_text("{not json")
    with pytest.raises(ConfigurationError, match=SETTINGS_FILE):
        open_backend(tmp_path, environ={})


def test_an_unreachable_redis_is_a_clear_error_without_the_password(tmp_path: Path) -> None:
    from limits_helpers import free_port

    m = AIWorkerManager(tmp_path, environ={"NSLANG_LIMITS_URL": f"redis://:s3cret@127.0.0.1:{free_port()}/0"})
    add_test_worker(m, "w", rate_limits={"max_requests_per_minute": 5})
    with pytest.raises(NSRuntimeError) as ei:
        m.execute_stateless_task("w", "x")
    assert ei.value.code == 6 and "rate-limit store redis://127.0.0.1:" in ei.value.message
    assert "s3cret" not in ei.value.message
    assert m.get_performance_records("w") == []


def test_a_corrupt_store_fails_closed(tmp_path: Path) -> None:
    m = AIWorkerManager(tmp_path, environ={})
    add_test_worker(m, "w", rate_limits={"max_requests_per_minute": 5})
    (tmp_path / LIMITS_FILE).write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError) as ei:
        m.execute_stateless_task("w", "x")
    assert ei.value.code == 6 and LIMITS_FILE in ei.value.message and "delete it" in ei.value.message
    assert (tmp_path / LIMITS_FILE).read_bytes() == b"this is not a database" * 100


def test_the_store_is_shared_by_managers_and_kept_across_runs(tmp_path: Path) -> None:
    m = AIWorkerManager(tmp_path, environ={})
    add_test_worker(m, "rl", rate_limits={"max_requests_per_minute": 2, "max_concurrent_active_instances": 1})
    the_id = m.get_definition("rl").definition_id
    m.execute_stateless_task("rl", "a")
    m.spawn_instance("rl")
    other = AIWorkerManager(tmp_path, environ={})  # another process would see the same
    other.execute_stateless_task("rl", "b")
    with pytest.raises(RateLimitedError, match="max_requests_per_minute=2"):
        other.execute_stateless_task("rl", "c")
    with pytest.raises(RateLimitedError, match="max_concurrent_active_instances=1"):
        other.spawn_instance("rl")
    assert other.rate_limit_usage("rl") == {"requests_last_minute": 2, "tokens_last_minute": 10,
                                            "tokens_last_day": 10, "live_instances": 1}
    m.close()  # closing gives the instance slot back
    other.retire_instance(other.spawn_instance("rl").instance_id)
    other.remove_definition("rl")  # a removed definition is forgotten by the store
    assert SQLiteLimits(tmp_path / LIMITS_FILE).usage(the_id) == dict.fromkeys(
        ("requests_last_minute", "tokens_last_minute", "tokens_last_day", "live_instances"), 0)


def test_forked_child_gets_its_own_owner(tmp_path: Path) -> None:
    backend = SQLiteLimits(tmp_path / LIMITS_FILE)
    rl = RateLimiter(backend)
    rl.acquire_instance(_def(max_concurrent_active_instances=2), "parent")
    owner = backend.owner
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    r, w = os.pipe()
    with warnings.catch_warnings():  # Python 3.12+ warns about forking a process that has threads
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            d = _def(max_concurrent_active_instances=2)
            rl.acquire_instance(d, "child")
            os.write(w, f"{backend.owner != owner} {rl.usage(d)['live_instances']}".encode())
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(r, 100).decode() == "True 2"
    backend.close()


def test_a_script_cannot_reset_or_redirect_its_limits(tmp_path: Path) -> None:
    """The attack: delete the store to reset the windows, or write the settings file to move the limits
    to a server of the script's choosing. Both are refused (code 11: worker files are read-only to
    scripts, nslang/workers/sandbox_files.py) and the limit still holds."""
    src = """
func main() means
  call tool.AIWorkerDefinition.Add(name: "capped", provider: "test", rate_limits: {"max_requests_per_minute": 1})
  ask "capped", "one" into a
  on error do
    emit "refused " + system_error_code
    clear_error
  endon
  call tool.fs.Delete("ai_worker_limits.sqlite3")
  call tool.fs.Write("ai_worker_limits.sqlite3", "")
  call tool.fs.Write("ai_worker_limits.json", "{\\"url\\": \\"redis://attacker.example:6379/0\\"}")
  ask "capped", "two" into b
endfunc
"""
    out = io.StringIO()
    interp = Interpreter(sandbox_dir=tmp_path, stdout=out)
    interp.load(src, name="attack.ns")
    interp.run()
    interp.close()
    assert out.getvalue().splitlines() == ["refused 11", "refused 11", "refused 11", "refused 20"]
    assert not (tmp_path / SETTINGS_FILE).exists()
