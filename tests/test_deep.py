"""Deep recursion and deep data (issue 10 item 4, and the deep-data part of item 5).

Each test replays an attack on the earlier build: interpreters that set and restored Python's
process-wide recursion limit around every call (two of them in two threads aborted the process), deep
values that C code compared or printed recursively (a segmentation fault), a deep Python list handed
to the embedding API (RecursionError), a 100,000-deep JSON file under ``nslang workers``. Attacks that
could crash the process run in a subprocess, so that a crash fails the test and not the suite.
"""

from __future__ import annotations

import _thread
import io
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from nslang import Interpreter
from nslang._json import MAX_DEPTH as JSON_MAX_DEPTH
from nslang._stack import MAX_CALL_DEPTH
from nslang.cli import main
from nslang.errors import ErrorCode, NSRuntimeError, UsageError
from nslang.values import display, equal, from_python, to_python

REC = """
func rec(needs n returns r) means
  if n <= 0
    return 0
  endif
  return 1 + rec(n - 1)
endfunc
"""

BUILD = """
func build(needs n returns r) means
  set x = []
  set i = 0
  while i < n
    set x = [x]
    set i = i + 1
  endwhile
  return x
endfunc
"""


def _python(code: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run Python code in a child process (a native crash there fails the test, not the suite)."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, PYTHONFAULTHANDLER="1"))


def _nslang(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nslang", *args], capture_output=True, text=True, timeout=timeout)


def _interp(**kw: object) -> tuple[Interpreter, io.StringIO]:
    out = io.StringIO()
    return Interpreter(stdout=out, stderr=io.StringIO(), load_stdlib=False, **kw), out  # type: ignore[arg-type]


# ---- the recursion limit is the host's ------------------------------------------------------------


def test_two_interpreters_in_two_threads_recurse_600_deep() -> None:
    """Was: 'Fatal Python error: Cannot recover from stack overflow' (4 runs of 15), false depth
    errors, and the limit left at 13000."""
    code = f"""
        import sys, threading, io
        from nslang import Interpreter
        SRC = {REC!r}
        before = sys.getrecursionlimit()
        errors, results = [], []
        def work():
            it = Interpreter(stdout=io.StringIO(), load_stdlib=False)
            it.load(SRC)
            for _ in range(15):
                try:
                    results.append(it.call("rec", 600))
                except Exception as e:
                    errors.append(repr(e))
        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads: t.start()
        for t in threads: t.join()
        print(len(results), set(results), errors[:1], before, sys.getrecursionlimit())
    """
    for _ in range(3):
        r = _python(code)
        assert r.returncode == 0, r.stderr[-2000:]
        assert r.stdout.split("[]")[0].strip() == "30 {600}", r.stdout
        assert r.stdout.strip().endswith("1000 1000"), r.stdout


def test_the_recursion_limit_is_never_changed() -> None:
    it, out = _interp(max_call_depth=5000)
    it.load(REC + BUILD + 'func show(needs x) means\n  emit tool.host.Limit() + " " + len("" + x)\nendfunc\n')
    seen: list[int] = []

    @it.tool("host", "Limit")
    def limit() -> int:
        seen.append(sys.getrecursionlimit())
        return sys.getrecursionlimit()

    old = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(1234)  # the host's own choice stays as it is, during and after runs
        assert it.call("rec", 4000) == 4000
        it.call("show", it.call("build", 3000))
        assert sys.getrecursionlimit() == 1234
        assert seen == [1234]
        assert out.getvalue() == "1234 6002\n"  # 3,001 levels of brackets
    finally:
        sys.setrecursionlimit(old)


def test_deep_recursion_in_a_thread_with_a_2mb_stack() -> None:
    """Was: 20,000-deep data compared in a 2 MB thread crashed with the default limits."""
    code = f"""
        import io, json, sys, threading
        from nslang import Interpreter
        SRC = {REC + BUILD!r} + '''
        func deep(needs n) means
          set x = build(n)
          set y = build(n)
          emit x == y
          emit tool.list.Contains([1, x], y)
          emit len(tool.list.Unique([x, y]))
          emit len("" + x)
        endfunc
        '''
        res = {{}}
        def work():
            try:
                out = io.StringIO()
                it = Interpreter(stdout=out, load_stdlib=False)
                it.load(SRC)
                res["rec"] = it.call("rec", 999)
                it.call("deep", 20000)
                res["out"] = out.getvalue().split()
            except BaseException as e:
                res["err"] = repr(e)
        threading.stack_size(2 * 1024 * 1024)
        t = threading.Thread(target=work)
        t.start()
        t.join()
        print(json.dumps(res), sys.getrecursionlimit())
    """
    r = _python(code)
    assert r.returncode == 0, r.stderr[-2000:]
    res, limit = r.stdout.rsplit(" ", 1)
    assert json.loads(res) == {"rec": 999, "out": ["true", "true", "1", "40002"]}
    assert limit.strip() == "1000"


def test_host_with_a_high_limit_and_a_small_stack_does_not_crash() -> None:
    """Calls made through C (tool.script.Call) take C stack per level: segments stay small enough."""
    code = """
        import io, sys, threading
        from nslang import Interpreter
        sys.setrecursionlimit(300000)
        res = {}
        def work():
            it = Interpreter(stdout=io.StringIO(), load_stdlib=False, max_call_depth=20000)
            it.load('''
        func rec(needs n returns r) means
          if n <= 0
            return 0
          endif
          return 1 + tool.script.Call("rec", [n - 1])
        endfunc
        ''')
            res["rec"] = it.call("rec", 19000)
        threading.stack_size(2 * 1024 * 1024)
        t = threading.Thread(target=work)
        t.start()
        t.join()
        print(res, sys.getrecursionlimit())
    """
    r = _python(code)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "{'rec': 19000} 300000"


def test_procedures_taking_different_frames_per_call_share_the_stack() -> None:
    """A lean recursion followed by a closure-compiled one with nested calls (more Python frames per
    call) must not be allowed to overflow the stack the lean one measured."""
    it, out = _interp()
    it.load("""
func id(needs x returns r) means
  return x
endfunc
func lean(needs n returns r) means
  if n <= 0
    return 0
  endif
  return 1 + lean(n - 1)
endfunc
func heavy(needs n returns r) means
  on error do
    fail "heavy: " + system_error_message
  endon
  if n <= 0
    return 0
  endif
  return 1 + id(id(id(heavy(id(id(n)) - 1))))
endfunc
func main() means
  emit lean(990)
  emit heavy(990)
  emit lean(990) + heavy(500)
endfunc
""")
    it.run()
    assert out.getvalue() == "990\n990\n1490\n"


def test_an_interrupt_reaches_the_innermost_segment() -> None:
    """Ctrl-C during a deep run stops it, leaves no thread behind and the interpreter usable."""
    it, _ = _interp(max_loop_iterations=0)
    spin = REC.replace("rec", "spin").replace("    return 0\n", "    while true\n      set x = 1\n    endwhile\n")
    it.load(REC + spin)
    before = set(threading.enumerate())
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        it.call("spin", 900)
    timer.join()
    assert it.depth == 0
    for t in set(threading.enumerate()) - before:
        t.join(5)
        assert not t.is_alive()
    assert it.call("rec", 900) == 900


# ---- --max-depth ----------------------------------------------------------------------------------


def test_max_depth_at_the_documented_maximum_works(tmp_path: Path) -> None:
    """Was: --max-depth 300000 failed at ~125,000 with a misleading message."""
    script = tmp_path / "deep.ns"
    # main is level 1, rec(n) adds n + 1 levels: exactly MAX_CALL_DEPTH in all
    script.write_text(REC + f"func main() means\n  emit rec({MAX_CALL_DEPTH - 2})\nendfunc\n", encoding="utf-8")
    r = _nslang("run", "--max-depth", str(MAX_CALL_DEPTH), str(script))
    assert (r.returncode, r.stdout, r.stderr) == (0, f"{MAX_CALL_DEPTH - 2}\n", "")
    script.write_text(REC + f"func main() means\n  emit rec({MAX_CALL_DEPTH - 1})\nendfunc\n", encoding="utf-8")
    r = _nslang("run", "--max-depth", str(MAX_CALL_DEPTH), str(script))
    assert r.returncode == 70
    assert r.stderr.startswith(f"error 37 (ResourceExhaustion): call depth limit of {MAX_CALL_DEPTH} exceeded")


def test_max_depth_above_the_maximum_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "s.ns"
    script.write_text('func main() means\n  emit "x"\nendfunc\n', encoding="utf-8")
    assert main(["run", "--max-depth", str(MAX_CALL_DEPTH + 1), str(script)]) == 64
    err = capsys.readouterr().err
    assert f"--max-depth: must be between 1 and {MAX_CALL_DEPTH}" in err
    with pytest.raises(UsageError, match="max_call_depth must be between 1 and 100,000"):
        Interpreter(max_call_depth=MAX_CALL_DEPTH + 1)
    with pytest.raises(UsageError):
        Interpreter(max_call_depth=0)


def test_python_recursion_error_is_error_38_not_the_depth_limit() -> None:
    it, _ = _interp()
    it.load('func f() means\n  return tool.host.Boom()\nendfunc\n')

    @it.tool("host", "Boom")
    def boom() -> int:
        def down(n: int) -> int:
            return down(n + 1)

        return down(0)

    with pytest.raises(NSRuntimeError) as e:
        it.call("f")
    assert e.value.code == ErrorCode.NESTING_DEPTH_EXCEEDED
    assert "nested too deeply" in e.value.message and "call depth limit" not in e.value.message


# ---- deep data built by a script ------------------------------------------------------------------


DEEP_DATA = BUILD + """
func main() means
  set x = build(200000)
  set y = build(200000)
  set z = build(199999)
  emit x == y
  emit x != z
  emit tool.list.Contains([1, x], y)
  emit tool.list.IndexOf([z, x], y)
  emit len(tool.list.Unique([x, y, z]))
  set s = "" + x
  emit len(s)
  emit tool.str.Length(s)
  on error do
    emit "json " + system_error_code
    clear_error
  endon
  call tool.json.Stringify(x)
  call tool.json.Parse(s)
  emit "done"
endfunc
"""


def test_deep_lists_built_by_a_script(tmp_path: Path) -> None:
    """Was: emit x == y on two 200,000-deep lists with --max-depth 5000 was a segmentation fault
    (also tool.list.Contains, Unique)."""
    script = tmp_path / "deep.ns"
    script.write_text(DEEP_DATA, encoding="utf-8")
    r = _nslang("run", "--max-depth", "5000", str(script))
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split("\n") == ["true", "true", "true", "1", "2", "400002", "400002", "json 4", "json 4",
                                    "done", ""]


def test_values_that_contain_themselves() -> None:
    it, out = _interp()
    it.load("""
func main() means
  set x = [1, 2]
  set x[1] = x
  set m = {"a": 1}
  set m["self"] = m
  emit x
  emit m
  emit x == x
  emit tool.list.Contains([x], x)
endfunc
""")
    it.run()
    assert out.getvalue() == '[1, [...]]\n{"a": 1, "self": {...}}\ntrue\ntrue\n'
    c: list[object] = [1]
    c.append(c)
    back = to_python(from_python(c))
    assert back[0] == 1 and back[1] is back


# ---- the embedding API ----------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [600, 100_000])
def test_deep_python_values_cross_the_embedding_api(depth: int) -> None:
    """Was: a 600-deep Python list given to Interpreter.call / set_global raised RecursionError."""
    it, _ = _interp()
    it.load(BUILD + "func same(needs a returns r) means\n  return a\nendfunc\n"
            "func eq(needs a returns r) means\n  return a == g\nendfunc\n")
    data: list[object] = []
    for _ in range(depth):
        data = [data, (1, "x")]
    it.set_global("g", data)
    back = it.call("same", data)
    assert it.call("eq", data) is True
    assert equal(back, it.get_global("g"))
    assert it.call("build", depth) is not None


def test_deep_values_in_python_api_functions() -> None:
    deep: list[object] = []
    for _ in range(50_000):
        deep = [deep, {"k": [None, 1.5]}]
    v = from_python(deep)
    assert equal(v, from_python(deep))
    assert not equal(v, from_python([deep]))
    text = display(v)
    assert text.startswith("[[[") and text.endswith('{"k": [nil, 1.5]}]')
    assert equal(from_python(to_python(v)), v)


# ---- JSON nesting ---------------------------------------------------------------------------------


def test_json_nesting_limit_is_documented_and_symmetric() -> None:
    it, _ = _interp()
    it.load('func p(needs t returns r) means\n  return tool.json.Parse(t)\nendfunc\n'
            'func s(needs v returns r) means\n  return tool.json.Stringify(v)\nendfunc\n')
    ok = "[" * JSON_MAX_DEPTH + "]" * JSON_MAX_DEPTH
    assert it.call("s", it.call("p", ok)) == ok
    for text in ("[" * (JSON_MAX_DEPTH + 1) + "]" * (JSON_MAX_DEPTH + 1), "[" * 100_000 + "]" * 100_000):
        with pytest.raises(NSRuntimeError, match="nests deeper than 500 levels") as e:
            it.call("p", text)
        assert e.value.code == 4  # invalid argument
    deeper: list[object] = []
    for _ in range(JSON_MAX_DEPTH):
        deeper = [deeper]
    with pytest.raises(NSRuntimeError, match="more than 500 levels deep"):
        it.call("s", deeper)


def test_json_from_a_deep_caller_stack_still_works() -> None:
    """JSON decoding recurses in C per level: it runs with enough frames free wherever it is called."""
    it, _ = _interp()
    it.load(REC.replace("    return 0\n", "    return len(tool.json.Parse(t))\n")
            .replace("needs n returns", "needs n, t returns").replace("rec(n - 1)", "rec(n - 1, t)"))
    text = "[" * JSON_MAX_DEPTH + "]" * JSON_MAX_DEPTH
    assert it.call("rec", 900, text) == 901


@pytest.mark.parametrize("command", [["list"], ["show", "w"], ["perf", "w"]])
def test_workers_cli_on_a_100k_deep_json_file(tmp_path: Path, command: list[str]) -> None:
    """Was: nslang workers list/perf/show on a 100k-deep JSON file: 'internal error: RecursionError'."""
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "ai_worker_definitions.json").write_text(deep, encoding="utf-8")
    r = _nslang("workers", "--sandbox", str(tmp_path), *command)
    assert r.returncode != 0
    assert "internal error" not in r.stderr and "RecursionError" not in r.stderr
    assert "nests deeper than 500 levels" in r.stderr

    (tmp_path / "ai_worker_definitions.json").write_text(
        json.dumps([{"name": "w", "provider": "test"}]), encoding="utf-8")
    (tmp_path / "ai_worker_performance_data.json").write_text("[\n" + '{"a": ' + deep + "}\n]\n", encoding="utf-8")
    r = _nslang("workers", "--sandbox", str(tmp_path), *command)
    assert "internal error" not in r.stderr and "RecursionError" not in r.stderr
    assert r.returncode == 0 or "too deeply" in r.stderr, r.stderr
