"""Limits bound everything (issue 10 item 6): each test replays an attack from the issue.

* doubling a string (``set s = s + s``) grew a 3 GB process: now a clean error 37 at the value-size
  limit (``max_value_bytes``), on every path that builds strings, lists and maps;
* a catastrophic regular expression ran 23.7 s past ``--timeout 3``: now it ends at the deadline;
* ``LoadScript`` of a huge source, ``io.Input`` blocked on a pipe: bounded by size and deadline;
* a prompt over ``base_config.max_prompt_chars`` is refused before the call.

Model calls against slow and failing servers are in ``tests/llm/test_llm_deadline.py``.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from nslang import Interpreter
from nslang.errors import ErrorCode, NSRuntimeError, ResourceLimitError
from nslang.limits import display_size
from nslang.values import display

REPO = Path(__file__).resolve().parents[1]
SMALL = 4096  # a value-size limit small enough to reach in a few statements


@pytest.fixture
def make() -> Any:
    """``make(**kwargs)``: an Interpreter writing to a buffer."""

    def _make(**kwargs: Any) -> Interpreter:
        return Interpreter(stdout=io.StringIO(), **kwargs)

    return _make


def _fails(interp: Interpreter, body: str, **globals_: Any) -> NSRuntimeError:
    for k, v in globals_.items():
        interp.set_global(k, v)
    interp.load("func main() means\n" + textwrap.indent(textwrap.dedent(body), "  ") + "endfunc\n")
    with pytest.raises(NSRuntimeError) as info:
        interp.run()
    return info.value


# ----------------------------------------------------------------------------------------------
# value size


@pytest.mark.parametrize("body", [
    "set s = \"ab\"\nwhile true\n  set s = s + s\nendwhile\n",
    "set s = \"ab\"\nwhile true\n  set s = s + \"0123456789abcdefghij\"\nendwhile\n",
    "set s = \"ab\"\nwhile true\n  set s = ```{{s}}{{s}}```\nendwhile\n",
    "set l = []\nset i = 0\nwhile true\n  set l[i] = i\n  set i = i + 1\nendwhile\n",
    "set m = {}\nset i = 0\nwhile true\n  set m[\"k\" + i] = i\n  set i = i + 1\nendwhile\n",
    "set m = {}\nset i = 0\nwhile true\n  set m.a[\"k\" + i] = i\n  set i = i + 1\nendwhile\n",
])
def test_growing_a_value_stops_at_the_limit(make: Any, body: str) -> None:
    err = _fails(make(max_value_bytes=SMALL), body)
    assert err.code == ErrorCode.RESOURCE_EXHAUSTION and "value size limit of 4,096 bytes" in err.message
    assert err.span is not None and err.span.line >= 2


def test_the_size_error_is_catchable_and_loses_nothing(make: Any) -> None:
    interp = make(max_value_bytes=SMALL)
    interp.load(textwrap.dedent("""\
        func main() means
          set s = "ab"
          on error do
            emit "caught " + system_error_code + ", length " + tool.str.Length(s)
            clear_error
          endon
          set i = 0
          while i < 20
            set i = i + 1
            set s = s + s
          endwhile
        endfunc
        """))
    interp.run()
    # "ab" doubled 11 times is 4,096 characters; the 9 doublings after it fail and are handled
    assert interp.stdout.getvalue().splitlines() == ["caught 37, length 4096"] * 9


@pytest.mark.parametrize("body", [
    "emit l\n", "set t = l + \"x\"\n", "set t = \"x\" + l\n", "set t = ```{{l}}```\n",
    "set t = tool.str.Join(l, \",\")\n", "set t = tool.json.Stringify(l)\n", "call tool.io.Print(l, 1)\n",
])
def test_a_list_holding_one_string_many_times_is_not_displayed_past_the_limit(make: Any, body: str) -> None:
    # ten references to one 1,000-character string are cheap; their display string is not
    err = _fails(make(max_value_bytes=SMALL), body, l=["x" * 1000] * 10)
    assert err.code == ErrorCode.RESOURCE_EXHAUSTION


@pytest.mark.parametrize("call", [
    'tool.str.Replace("abc", "", s)',
    'tool.str.Replace(s, "x", s)',
    'tool.str.ReplaceRegex("abcdefgh", "", s)',
    'tool.str.ReplaceRegex(s, "x", \'\'\'\\0\\0\'\'\')',
    'tool.str.Split(s, "")',
    'tool.str.Concat([s, s, s, s, s])',
    'tool.list.Concat(l, l, l)',
    'tool.json.Parse("[" + tool.str.Join(l, ",") + "]")',
])
def test_tools_that_multiply_their_input_refuse_before_building(make: Any, call: str) -> None:
    err = _fails(make(max_value_bytes=SMALL), f"set r = {call}\n", s="x" * 3000, l=[0] * 127)
    assert err.code == ErrorCode.RESOURCE_EXHAUSTION, err.message
    assert "value size limit" in err.message


def test_host_tool_results_are_checked_at_the_registry_boundary() -> None:
    interp = Interpreter(stdout=io.StringIO(), max_value_bytes=SMALL)

    @interp.tool("host")
    def big() -> str:
        """A big string."""
        return "x" * (SMALL + 1)

    err = _fails(interp, "set r = tool.host.Big()\n")
    assert err.code == ErrorCode.RESOURCE_EXHAUSTION and "tool.host.Big" in err.message


def test_values_under_the_limit_are_untouched(make: Any) -> None:
    interp = make(max_value_bytes=SMALL)
    interp.load(textwrap.dedent("""\
        func main(returns out) means
          set s = "ab" + "cd"
          set l = [s, s]
          set l[2] = 1
          return tool.str.Join(tool.str.Split(tool.str.Replace(s + l, "b", "bb", 1), ""), "")
        endfunc
        """))
    assert interp.run() == "abbcd[abcd, abcd, 1]"


@pytest.mark.parametrize("value", [
    [], {}, "abc", 12345, None, 1.5, True, [1, "two\n\"", None, [3.5, {"k": ["v"]}], 10**40],
    {"a": {"b": {"c": "d" * 100}}}, [["x" * 70] * 3] * 2,
])
def test_display_size_is_an_upper_bound_of_the_display_length(value: Any) -> None:
    assert display_size(value, 10**9) >= len(display(value))


def test_the_doubling_attack_ends_in_a_clean_error_in_a_small_process(tmp_path: Path) -> None:
    script = tmp_path / "double.ns"
    script.write_text("func main() means\n  set s = \"ab\"\n  while true\n    set s = s + s\n  endwhile\nendfunc\n")
    # a parent of its own, so ru_maxrss of its children is this run's peak
    probe = ("import resource, subprocess, sys\n"
             "p = subprocess.run([sys.executable, '-m', 'nslang', 'run', sys.argv[1]], capture_output=True, "
             "text=True)\n"
             "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
             "sys.stderr.write(p.stderr)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "NSLANG_NO_CACHE": "1"}
    proc = subprocess.run([sys.executable, "-c", probe, str(script)], capture_output=True, text=True, env=env,
                          timeout=120)
    code, peak_kib = map(int, proc.stdout.split())
    assert code == 70
    assert "error 37 (ResourceExhaustion): the string would be 134,217,728 bytes" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert peak_kib < 400 * 1024  # 64 MiB string plus its predecessor; unbounded (GBs) before the fix


def test_cli_flag_sets_the_limit(tmp_path: Path) -> None:
    from nslang.cli import main

    path = tmp_path / "s.ns"
    path.write_text('func main() means\n  set s = "ab"\n  while true\n    set s = s + s\n  endwhile\nendfunc\n')
    out, err = io.StringIO(), io.StringIO()
    assert main(["run", "--max-value-bytes", "2048", str(path)], stdout=out, stderr=err) == 70
    assert "value size limit of 2,048 bytes" in err.getvalue()
    assert main(["run", "--max-value-bytes", "10", str(path)], stdout=out, stderr=err) == 64


# ----------------------------------------------------------------------------------------------
# the run's deadline


def test_remaining_time_is_none_outside_a_run_and_counts_down_inside() -> None:
    interp = Interpreter(stdout=io.StringIO(), timeout_s=30)
    assert interp.remaining_time() is None
    seen: list[float | None] = []

    @interp.tool("host")
    def probe() -> bool:
        """Record the remaining time."""
        seen.append(interp.remaining_time())
        return True

    interp.load("func main() means\n  call tool.host.Probe()\nendfunc\n")
    interp.run()
    assert seen and seen[0] is not None and 0 < seen[0] <= 30
    assert Interpreter(stdout=io.StringIO()).remaining_time() is None


@pytest.mark.parametrize("call", [
    'tool.str.Match(s, "(a|aa)+$")',
    'tool.str.FindAll(s, "(a|aa)+$")',
    'tool.str.ReplaceRegex(s, "(a|aa)+$", "x")',
])
def test_a_catastrophic_regex_ends_at_the_deadline(call: str) -> None:
    interp = Interpreter(stdout=io.StringIO(), timeout_s=0.5)
    err = _fails(interp, f"on error do\n  clear_error\nendon\nset r = {call}\n", s="a" * 40 + "b")
    assert isinstance(err, ResourceLimitError) and err.code == ErrorCode.TIMEOUT  # not caught by on error


def test_load_script_refuses_a_huge_source() -> None:
    interp = Interpreter(stdout=io.StringIO())
    err = _fails(interp, "call tool.script.LoadScript(src)\n", src="# x\n" * 300_000)
    assert err.code == ErrorCode.RESOURCE_EXHAUSTION and "1,000,000" in err.message


def test_load_script_parsing_ends_at_the_deadline() -> None:
    interp = Interpreter(stdout=io.StringIO(), timeout_s=0.3)
    src = "func f() means\n" + "  set x = 1\n" * 80_000 + "endfunc\n"
    err = _fails(interp, "on error do\n  clear_error\nendon\ncall tool.script.LoadScript(src)\n", src=src)
    assert isinstance(err, ResourceLimitError) and err.code == ErrorCode.TIMEOUT
    assert "f" not in interp.procedures  # nothing was loaded


def test_input_blocked_on_a_pipe_ends_at_the_deadline_and_loses_no_line() -> None:
    r, w = os.pipe()
    with os.fdopen(r, "r") as stdin, os.fdopen(w, "w") as writer:
        interp = Interpreter(stdout=io.StringIO(), stdin=stdin, timeout_s=0.3)
        err = _fails(interp, "on error do\n  clear_error\nendon\nset line = tool.io.Input()\n")
        assert isinstance(err, ResourceLimitError) and err.code == ErrorCode.TIMEOUT
        # the read left pending finishes in the next run: the line is neither lost nor read twice
        writer.write("first\nsecond\n")
        writer.flush()
        interp.limits.timeout_s = None
        interp.load("func two(returns a, b) means\n  set a = tool.io.Input()\n  set b = tool.io.Input()\n"
                    "  return a, b\nendfunc\n")
        assert interp.call("two") == ["first", "second"]


def test_input_without_a_time_limit_still_reads_a_pipe() -> None:
    r, w = os.pipe()
    with os.fdopen(r, "r") as stdin, os.fdopen(w, "w") as writer:
        interp = Interpreter(stdout=io.StringIO(), stdin=stdin)
        threading.Timer(0.05, lambda: (writer.write("late\n"), writer.flush())).start()
        interp.load("func main(returns a) means\n  return tool.io.Input()\nendfunc\n")
        assert interp.run() == "late"


# ----------------------------------------------------------------------------------------------
# prompt size


def test_a_prompt_over_the_cap_is_refused_before_the_call(tmp_path: Path) -> None:
    interp = Interpreter(stdout=io.StringIO(), sandbox_dir=tmp_path)
    interp.load(textwrap.dedent("""\
        func main() means
          call tool.AIWorkerDefinition.Add(name: "w", provider: "test", model_name: "m", \\
            base_config: {"max_prompt_chars": 50})
          emit tool.AIWorker.ExecuteStatelessTask("w", "short")["output"]
          on error do
            emit system_error_code + ": " + system_error_message
            clear_error
          endon
          set id = tool.AIWorkerInstance.Spawn("w")["instance_id"]
          call tool.AIWorkerInstance.Chat(id, "0123456789012345678901234567890123456789")
          call tool.AIWorkerInstance.Chat(id, "this second turn carries the whole history along")
        endfunc
        """))
    interp.run()
    out = interp.stdout.getvalue()
    assert out.startswith("m reply 1: short\n37: ")
    assert "the prompt is 139 characters long" in out and "max_prompt_chars = 50; nothing was sent" in out
    assert "max_history_turns" in out
    records = interp.workers.get_performance_records("w")
    assert len(records) == 2  # the refused turn has no record


def test_max_prompt_chars_must_be_a_positive_integer(tmp_path: Path) -> None:
    interp = Interpreter(stdout=io.StringIO(), sandbox_dir=tmp_path)
    err = _fails(interp, 'call tool.AIWorkerDefinition.Add(name: "w", provider: "test", model_name: "m", '
                         'base_config: {"max_prompt_chars": -1})\n')
    assert "max_prompt_chars" in err.message


def test_a_rate_limit_wait_that_meets_the_run_deadline_ends_the_run(tmp_path: Path) -> None:
    interp = Interpreter(stdout=io.StringIO(), sandbox_dir=tmp_path, timeout_s=1.5)
    err = _fails(interp, textwrap.dedent("""\
        call tool.AIWorkerDefinition.Add(name: "w", provider: "test", model_name: "m", \\
          rate_limits: {"max_concurrent_active_instances": 1, "on_limit": "wait", "max_wait_s": 120})
        on error do
          clear_error
        endon
        set first = tool.AIWorkerInstance.Spawn("w")
        set second = tool.AIWorkerInstance.Spawn("w")
        """))
    # the second Spawn waits for a free slot, but never past the run's deadline, which ends the run
    # (not a catchable rate-limit error)
    assert isinstance(err, ResourceLimitError) and err.code == ErrorCode.TIMEOUT


# ----------------------------------------------------------------------------------------------
# values that share parts: tool results keep the sharing (found by the adversarial review of issue 10)


def test_tool_results_keep_shared_parts_shared() -> None:
    from nslang.values import from_python

    leaf = ["x"]
    shared = [leaf, leaf]
    out = from_python([shared, shared, {"a": shared}])
    assert out == [[["x"], ["x"]], [["x"], ["x"]], {"a": [["x"], ["x"]]}]
    assert out[0] is out[1] is out[2]["a"] and out[0][0] is out[0][1]
    assert out[0] is not shared and out[0][0] is not leaf  # still a new structure
    loop: list[Any] = [1]
    loop.append(loop)
    converted = from_python(loop)
    assert converted[1] is converted


@pytest.mark.parametrize("step", ["tool.list.Concat([s], [s])", "tool.map.Merge({\"a\": s}, {\"b\": s})"])
def test_doubling_a_nested_value_through_a_tool_stays_small(make: Any, step: str) -> None:
    # every tool result went through a conversion that unfolded shared parts: 22 doublings took
    # 620 MB and 16 s, 40 would need 2^40 nodes; now each doubling adds one container
    interp = make()
    interp.load("func main(returns n) means\n  set s = \"x\"\n  set i = 0\n  while i < 40\n"
                f"    set s = {step}\n    set i = i + 1\n  endwhile\n"
                "  return tool.json.Stringify(tool.map.Keys({\"k\": s}))\nendfunc\n")
    assert interp.run() == "[\"k\"]"
    interp.load("func show() means\n  set s = \"x\"\n  set i = 0\n  while i < 40\n"
                f"    set s = {step}\n    set i = i + 1\n  endwhile\n  emit s\nendfunc\n")
    with pytest.raises(NSRuntimeError) as info:  # its display would be 2^40 leaves: refused, not built
        interp.call("show")
    assert info.value.code == ErrorCode.RESOURCE_EXHAUSTION


@pytest.mark.parametrize("kwargs", [
    {"timeout_s": float("nan")},  # every comparison with NaN is false: the run had no time limit
    {"timeout_s": 0}, {"timeout_s": -1}, {"timeout_s": float("inf")},
    {"max_steps": 0}, {"max_steps": -3},
    {"max_loop_iterations": -5},  # the loop error then said "ran more than -5 iterations"
])
def test_a_limit_that_means_nothing_is_refused(kwargs: dict[str, Any]) -> None:
    from nslang.errors import UsageError

    with pytest.raises(UsageError):
        Interpreter(stdout=io.StringIO(), **kwargs)


def test_cli_refuses_a_nan_timeout(tmp_path: Path) -> None:
    script = tmp_path / "spin.ns"
    script.write_text("func main() means\n  while true\n    set x = 1\n  endwhile\nendfunc\n")
    proc = subprocess.run([sys.executable, "-m", "nslang", "run", "--timeout", "nan", str(script)],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO), "NSLANG_NO_CACHE": "1"})
    assert proc.returncode != 0 and "timeout_s must be a positive number of seconds" in proc.stderr
    assert "Traceback" not in proc.stderr
