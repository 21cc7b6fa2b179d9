"""Code tasks (issue 13 item 1): the model writes NeuroScript, a child interpreter runs it, errors go
back to the model. Offline: the ``test`` provider answers with ``base_config.test_replies``."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from nslang import Interpreter
from nslang.errors import ErrorCode, NSRuntimeError
from nslang.workers.codemode import extract_program


@pytest.fixture
def host(tmp_path: Path) -> Interpreter:
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    (sandbox / "notes.txt").write_text("alpha beta gamma", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("outside", encoding="utf-8")
    interp = Interpreter(sandbox_dir=sandbox, stdout=io.StringIO(), stderr=io.StringIO(), stdin=io.StringIO(),
                         load_stdlib=False)
    yield interp
    interp.close()


def fence(body: str) -> str:
    return f"Here is the program:\n```neuroscript\n{body}\n```\n"


def define(host: Interpreter, replies: list[str], name: str = "coder", **fields: Any) -> None:
    d = {"name": name, "provider": "test", "interaction_models": ["both"],
         "base_config": {"test_replies": replies, **fields.pop("base_config", {})},
         "cost_metrics": {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002}, **fields}
    host.invoke_tool(host.resolve_tool("AIWorkerDefinition.Add"), [], d)


def code_task(host: Interpreter, **named: Any) -> dict[str, Any]:
    named.setdefault("name", "coder")
    named.setdefault("prompt", "compute it")
    r: dict[str, Any] = host.invoke_tool(host.resolve_tool("AIWorker.ExecuteCodeTask"), [], named)
    return r


def conversation(host: Interpreter, task_id: str) -> list[str]:
    recs = host.workers.get_performance_records("coder")
    return [r.output_summary for r in recs if r.task_id == task_id]


SYNTAX = fence("func main(returns r) means\n  set x = \n  return x\nendfunc")
RUNTIME = fence("func main(returns r) means\n  set x = 1\n  return x + undefined_name\nendfunc")
WORKS = fence("func main(returns r) means\n  set total = 0\n  for each n in [1, 2, 3, 4]\n"
              "    set total = total + n * n\n  endfor\n  return total\nendfunc")


def test_syntax_error_then_runtime_error_then_a_program_that_works(host: Interpreter) -> None:
    define(host, [SYNTAX, RUNTIME, WORKS])
    seen: list[list[dict[str, Any]]] = []

    def spy(messages: list[dict[str, Any]], settings: dict[str, Any]) -> str:
        seen.append(messages)
        return [SYNTAX, RUNTIME, WORKS][len(seen) - 1]

    host.register_provider("spy", spy)
    host.invoke_tool(host.resolve_tool("AIWorkerDefinition.Update"), ["coder"],
                     {"updates": {"provider": "custom", "base_config": {"custom_provider": "spy"}}})
    r = code_task(host, max_iterations=3)
    assert r["output"] == 30
    assert r["iterations"] == 3
    assert r["code"].startswith("func main(returns r) means") and "total" in r["code"]
    syntax, runtime = r["errors"]
    assert (syntax["attempt"], syntax["code"], syntax["line"]) == (1, ErrorCode.SYNTAX, 2)
    assert syntax["source_line"] == "  set x = " and syntax["caret"].endswith("^")
    assert (runtime["attempt"], runtime["code"], runtime["line"]) == (2, ErrorCode.KEY_NOT_FOUND, 3)
    assert "undefined_name" in runtime["message"]
    assert runtime["source_line"] == "  return x + undefined_name"
    assert runtime["caret"] == " " * (runtime["column"] - 1) + "^"
    # the system prompt teaches NeuroScript; each error went back to the model with line and caret
    assert seen[0][0]["role"] == "system" and "NeuroScript" in seen[0][0]["content"]
    assert "```neuroscript" in seen[0][0]["content"]
    feedback2 = seen[1][-1]["content"]
    assert seen[1][-1]["role"] == "user" and "Error 15" in feedback2 and "line 2" in feedback2
    assert "  set x = \n" in feedback2
    feedback3 = seen[2][-1]["content"]
    assert "Error 9" in feedback3 and "undefined_name" in feedback3 and "line 3" in feedback3
    # one record for the whole task, with the attempts as steps
    rec = host.workers.get_performance_records("coder")[-1]
    assert rec.success and rec.task_id == r["task_id"]
    assert rec.llm_metrics["iterations"] == 3 and rec.llm_metrics["program_errors"] == 2
    kinds = [(s["kind"], s.get("ok")) for s in rec.llm_metrics["steps"]]
    assert kinds == [("model", None), ("program", False), ("model", None), ("program", False),
                     ("model", None), ("program", True)]


def test_every_attempt_failing_is_error_37_and_recorded(host: Interpreter) -> None:
    define(host, [RUNTIME])
    with pytest.raises(NSRuntimeError) as ei:
        code_task(host, max_iterations=2)
    assert ei.value.code == ErrorCode.RESOURCE_EXHAUSTION and "undefined_name" in ei.value.message
    rec = host.workers.get_performance_records("coder")[-1]
    assert not rec.success and rec.llm_metrics["program_errors"] == 2


def test_emitted_lines_are_the_output_without_a_return_and_bare_statements_run(host: Interpreter) -> None:
    define(host, ['```ns\nemit "one"\nemit tool.Str.ToUpper("two")\n```'])
    r = code_task(host)
    assert r["output"] == "one\nTWO" and r["errors"] == []
    define(host, ["set m = {\"a\": 1}\nreturn m"], name="bare")
    assert code_task(host, name="bare")["output"] == {"a": 1}


def test_a_granted_tool_reads_in_the_sandbox(host: Interpreter) -> None:
    define(host, [fence('func main(returns n) means\n  return len(tool.Str.Split(tool.FS.Read("notes.txt"), " "))\n'
                        "endfunc")])
    assert code_task(host, tools=["fs.Read"])["output"] == 3


def escape_attempt(host: Interpreter, body: str, **named: Any) -> dict[str, Any]:
    """A first program that tries to escape, a second that works: the escape is a clean error fed back."""
    define(host, [fence(body), WORKS], name="esc", if_exists="update")
    r = code_task(host, name="esc", max_iterations=2, **named)
    assert r["output"] == 30 and len(r["errors"]) == 1
    err: dict[str, Any] = r["errors"][0]
    return err


def test_escape_a_path_outside_the_sandbox(host: Interpreter, tmp_path: Path) -> None:
    err = escape_attempt(host, 'func main() means\n  return tool.FS.Read("../secret.txt")\nendfunc',
                         tools=["fs.Read"])
    assert err["code"] == ErrorCode.PATH_VIOLATION and err["line"] == 2
    err = escape_attempt(host, f'func main() means\n  return tool.FS.Read("{tmp_path / "secret.txt"}")\nendfunc',
                         tools=["fs.Read"])
    assert err["code"] == ErrorCode.PATH_VIOLATION


@pytest.mark.parametrize("call", ['tool.FS.Write("x.txt", "pwned")', 'tool.FS.Read("notes.txt")',
                                  'tool.script.LoadScript("func f() means\\nendfunc")',
                                  'tool.AIWorkerDefinition.Remove("coder")', 'tool.io.Input("?")',
                                  'tool.host.Secret()'])
def test_escape_an_ungranted_tool(host: Interpreter, call: str) -> None:
    def secret() -> str:
        return "the host's secret"

    host.register_tool(secret)  # tool.host.Secret: the host's, not granted
    err = escape_attempt(host, f"func main() means\n  return {call}\nendfunc")
    assert err["code"] == ErrorCode.TOOL_NOT_FOUND and err["line"] == 2
    assert not (host.sandbox_dir / "x.txt").exists()
    assert host.workers.get_definition("esc").name == "esc"


def test_escape_ask_and_the_caller_s_procedures(host: Interpreter) -> None:
    host.load("func secret(returns s) means\n  return \"s3cret\"\nendfunc\n")
    err = escape_attempt(host, 'func main() means\n  ask "coder", "hi" into a\n  return a\nendfunc')
    assert err["code"] == ErrorCode.PERMISSION_DENIED
    err = escape_attempt(host, "func main() means\n  return secret()\nendfunc")
    assert err["code"] == ErrorCode.PROC_NOT_FOUND


def test_escape_a_side_effect_tool_needs_approval(host: Interpreter) -> None:
    err = escape_attempt(host, 'func main() means\n  call tool.FS.Write("x.txt", "data")\n  return 1\nendfunc',
                         tools=["fs.Write"])
    assert err["code"] == ErrorCode.PERMISSION_DENIED and "needs approval" in err["message"]
    assert not (host.sandbox_dir / "x.txt").exists()
    asked: list[Any] = []
    host.approve = lambda req: asked.append(req) or True
    define(host, [fence('func main() means\n  call tool.FS.Write("x.txt", "data")\n  return "ok"\nendfunc')],
           name="w2")
    assert code_task(host, name="w2", tools=["fs.Write"])["output"] == "ok"
    assert asked[0].tool == "fs.Write" and asked[0].arguments["content"] == "data" and asked[0].worker == "w2"
    assert (host.sandbox_dir / "x.txt").read_text(encoding="utf-8") == "data"


def test_escape_a_denylisted_tool_is_not_there(host: Interpreter) -> None:
    define(host, [fence('func main() means\n  return tool.FS.Read("notes.txt")\nendfunc'), WORKS], name="den",
           tool_denylist=["fs.Read"])
    r = code_task(host, name="den", tools=["fs.*"], max_iterations=2)
    assert r["errors"][0]["code"] == ErrorCode.TOOL_NOT_FOUND


def test_escape_an_infinite_loop(host: Interpreter) -> None:
    err = escape_attempt(host, "func main() means\n  set i = 0\n  while true\n    set i = i + 1\n  endwhile\n"
                               "endfunc", max_steps=500)
    assert err["code"] == ErrorCode.RESOURCE_EXHAUSTION and "500" in err["message"]


def test_escape_an_infinite_loop_runs_into_the_time_limit(host: Interpreter) -> None:
    err = escape_attempt(host, "func main() means\n  while true\n    set i = 1\n  endwhile\nendfunc",
                         max_steps=10**9, timeout_s=30)
    assert err["code"] in (ErrorCode.RESOURCE_EXHAUSTION, ErrorCode.TIMEOUT)


def test_escape_a_huge_string(host: Interpreter) -> None:
    err = escape_attempt(host, 'func main() means\n  set s = "x"\n  while true\n    set s = s + s\n  endwhile\n'
                               "endfunc")
    assert err["code"] == ErrorCode.RESOURCE_EXHAUSTION and err["line"] == 4


def test_escape_emitting_without_end(host: Interpreter) -> None:
    err = escape_attempt(host, 'func main() means\n  set s = "y"\n  set i = 0\n  while i < 17\n    set s = s + s\n'
                               "    set i = i + 1\n  endwhile\n  while true\n    emit s\n  endwhile\nendfunc",
                         max_steps=10**6)
    assert err["code"] == ErrorCode.RESOURCE_EXHAUSTION and "emitted" in err["message"]


def test_the_run_s_own_timeout_is_not_fed_back(tmp_path: Path) -> None:
    interp = Interpreter(sandbox_dir=tmp_path, stdout=io.StringIO(), stderr=io.StringIO(), timeout_s=1,
                         max_loop_iterations=0, load_stdlib=False)
    define(interp, [fence("func main() means\n  while true\n    set i = 1\n  endwhile\nendfunc")])
    interp.load('func main() means\n  on error do\n    emit "caught"\n  endon\n'
                '  set r = tool.AIWorker.ExecuteCodeTask("coder", "loop", max_steps: 1000000000)\nendfunc\n')
    with pytest.raises(NSRuntimeError) as ei:
        interp.run()
    assert ei.value.code == ErrorCode.TIMEOUT and not ei.value.catchable
    assert "caught" not in interp.stdout.getvalue()  # type: ignore[attr-defined]
    interp.close()


def test_script_calls_the_tool_and_the_globals_exist(host: Interpreter) -> None:
    define(host, [WORKS])
    host.load('func main() means\n  set r = tool.AIWorker.ExecuteCodeTask("coder", "sum squares", max_iterations: 2)\n'
              '  emit r["output"]\n  emit len(r["errors"])\n  must len(NEUROSCRIPT_DEVELOP_PROMPT) > 100\n'
              '  must len(NEUROSCRIPT_EXECUTE_PROMPT) > 100\nendfunc\n')
    host.run()
    assert host.stdout.getvalue() == "30\n0\n"  # type: ignore[attr-defined]


def test_extract_program() -> None:
    assert extract_program("no fence\nemit 1") == "no fence\nemit 1\n"
    assert extract_program("```python\nprint(1)\n```\n```neuroscript\nemit 1\n```") == "emit 1\n"
    assert extract_program("```\nemit 2\n```") == "emit 2\n"
    # a raw string's backticks inside a line do not end the block
    assert extract_program("```ns\nemit ```raw```\nemit 3\n```") == "emit ```raw```\nemit 3\n"


def test_bad_options(host: Interpreter) -> None:
    define(host, [WORKS])
    host.load("func helper() means\n  return 1\nendfunc\n")
    for bad in ({"max_steps": 0}, {"max_iterations": -1}, {"timeout_s": 0}, {"tools": ["no.SuchTool"]},
                {"tools": ["helper"]}):
        with pytest.raises(NSRuntimeError) as ei:
            code_task(host, **bad)
        assert ei.value.code == ErrorCode.ARG_MISMATCH
    assert host.workers.get_performance_records("coder") == []  # refused before any model call
