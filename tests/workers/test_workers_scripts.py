"""AI workers from NeuroScript: the examples, the ``ask`` statement, custom providers, error handling."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nslang import Interpreter
from nslang.errors import NSRuntimeError

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def _run(sandbox: Path, source: str | Path, **kw: Any) -> tuple[str, Interpreter]:
    out = io.StringIO()
    interp = Interpreter(sandbox_dir=sandbox, stdout=out, stderr=io.StringIO(), **kw)
    interp.load(source)
    interp.run()
    return out.getvalue(), interp


EXPECTED = {
    "workers_quickstart.ns": [
        "== stateless tasks",
        "test-small reply 1: Summarize: NeuroScript runs AI workers.  (5 + 8 tokens, 0.000042 USD)",
        "test-small reply 1: Summarize: Every task leaves a performance record.  (7 + 10 tokens, 0.000054 USD)",
        "== a conversation",
        "test-chat reply 1: What is a worker?",
        "test-chat reply 2: And an instance?",
        "== performance",
        "summarizer: 2 tasks, 2 succeeded, 30 tokens, 0.000096 USD",
        "tutor: 2 tasks, 2 succeeded, 31 tokens, 0 USD",
    ],
    "workers_chat.ns": [
        "spawned an instance, status idle, temperature 0.1",
        "> What is a worker?", "< test-chat reply 1: What is a worker?",
        "> And an instance?", "< test-chat reply 2: And an instance?",
        "> Thanks!", "< test-chat reply 3: Thanks!",
        "< test-chat reply 4: One last question.",
        "history: 8 turns",
        "session tokens: 67 in, 23 out",
        "retired: retired_completed",
    ],
    "workers_performance.ns": [
        "running tasks:",
        "  test-cls reply 1: Is this spam?",
        "  test-cls reply 1: Is this urgent?",
        "  test-cls reply 1: Is this a question?",
        "  task failed (code 16)",
        "summary:",
        "  attempted 5, succeeded 4, failed 1",
        "  tokens 29, quality 4.5",
        "failed records:",
        "  test provider: simulated outage",
    ],
    "workers_rate_limit.ns": [
        "  answered: test reply 1: request 1",
        "  answered: test reply 1: request 2",
        "  answered: test reply 1: request 3",
        "  refused: request 4",
        "  refused: request 5",
        "answered 3, refused 2",
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_examples(name: str, tmp_path: Path) -> None:
    out, _ = _run(tmp_path / "sb", EXAMPLES / name)
    assert out.splitlines() == EXPECTED[name]


def test_every_worker_example_is_tested() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("workers_*.ns")) == sorted(EXPECTED)


def test_examples_run_again_in_the_same_sandbox(tmp_path: Path) -> None:
    """Definitions persist: a second run finds them instead of adding them twice."""
    for name in ("workers_quickstart.ns", "workers_chat.ns"):
        _run(tmp_path / "sb", EXAMPLES / name)
        out, _ = _run(tmp_path / "sb", EXAMPLES / name)
        assert out.splitlines()[0] == EXPECTED[name][0]
    out, _ = _run(tmp_path / "sb", EXAMPLES / "workers_quickstart.ns")
    assert out.splitlines()[-2] == "summarizer: 6 tasks, 6 succeeded, 90 tokens, 0.000288 USD"


def test_ask_forms(tmp_path: Path) -> None:
    src = """
func main() means
  call tool.AIWorkerDefinition.Add(name: "helper", provider: "test", interaction_models: ["both"])
  ask "plain form" into a
  emit a
  ask "helper", "named form" into b
  emit b
  ask "helper", "ignored" with {"test_reply": "from options"} into c
  emit c
  set inst = tool.AIWorkerInstance.Spawn("helper")
  ask inst["instance_id"], "first" into d
  ask inst["instance_id"], "second" into e
  emit e
endfunc
"""
    out, _ = _run(tmp_path / "sb", src, default_worker="helper")
    assert out.splitlines() == ["test reply 1: plain form", "test reply 1: named form", "from options",
                                "test reply 2: second"]


def test_ask_without_a_default_worker_is_error_18(tmp_path: Path) -> None:
    with pytest.raises(NSRuntimeError) as ei:
        _run(tmp_path / "sb", 'func main() means\n  ask "hi" into x\nendfunc\n')
    assert ei.value.code == 18 and "default worker" in ei.value.message


def test_custom_provider_registered_through_the_embedding_api(tmp_path: Path) -> None:
    seen: list[Any] = []

    def echo_upper(messages: list[dict[str, str]], settings: dict[str, Any]) -> dict[str, Any]:
        seen.append((messages, settings))
        return {"text": messages[-1]["content"].upper(), "input_tokens": 7, "output_tokens": 3}

    out = io.StringIO()
    interp = Interpreter(sandbox_dir=tmp_path / "sb", stdout=out, stderr=io.StringIO())
    interp.register_provider("shout", echo_upper)
    interp.load("""
func main() means
  call tool.AIWorkerDefinition.Add(name: "loud", provider: "custom", interaction_models: ["stateless_task"], \\
    base_config: {"custom_provider": "shout", "temperature": 0.2}, cost_metrics: {"per_call": 0.5})
  set r = tool.AIWorker.ExecuteStatelessTask("loud", "quiet please")
  emit r["output"] + " " + r["input_tokens"] + " " + r["output_tokens"] + " " + r["cost"]
endfunc
""")
    interp.run()
    assert out.getvalue().splitlines() == ["QUIET PLEASE 7 3 0.5"]
    assert seen[0][0] == [{"role": "user", "content": "quiet please"}]
    assert seen[0][1]["temperature"] == 0.2


def test_worker_errors_reach_on_error_with_their_codes(tmp_path: Path) -> None:
    src = """
func attempt(needs what) means
  on error do
    emit what + ": " + system_error_code
    clear_error
  endon
  if what == "unknown"
    call tool.AIWorker.ExecuteStatelessTask("nobody", "x")
  endif
  if what == "wrong type"
    call tool.AIWorkerInstance.UpdateTokenUsage("i", "lots", 1)
  endif
  if what == "unknown arg"
    call tool.AIWorkerDefinition.Get(definition_ref: "x")
  endif
  if what == "chat only"
    call tool.AIWorker.ExecuteStatelessTask("talker", "x")
  endif
  if what == "missing key"
    call tool.AIWorker.ExecuteStatelessTask("keyed", "x")
  endif
  if what == "no provider"
    call tool.AIWorker.ExecuteStatelessTask("remote", "x")
  endif
endfunc

func main() means
  call tool.AIWorkerDefinition.Add(name: "talker", provider: "test", interaction_models: ["conversational"])
  call tool.AIWorkerDefinition.Add(name: "keyed", provider: "test", interaction_models: ["both"], \\
    auth: {"method": "env_var", "value": "NSLANG_TEST_SURELY_UNSET_KEY"})
  call tool.AIWorkerDefinition.Add(name: "remote", provider: "custom", base_config: {"custom_provider": "nobody"}, \\
    interaction_models: ["both"])
  for each w in ["unknown", "wrong type", "unknown arg", "chat only", "missing key", "no provider"]
    call attempt(w)
  endfor
endfunc
"""
    os.environ.pop("NSLANG_TEST_SURELY_UNSET_KEY", None)
    out, _ = _run(tmp_path / "sb", src)
    assert out.splitlines() == ["unknown: 9", "wrong type: 4", "unknown arg: 4", "chat only: 19",
                                "missing key: 18", "no provider: 40"]


def test_cli_run_with_sandbox_and_default_worker(tmp_path: Path) -> None:
    script = tmp_path / "job.ns"
    script.write_text('func main() means\n'
                      '  call tool.AIWorkerDefinition.Add(name: "w", provider: "test", interaction_models: ["both"])\n'
                      '  ask "from the cli" into r\n'
                      '  emit r\n'
                      'endfunc\n')
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "nslang", "run", "--sandbox", str(tmp_path / "sb"),
                           "--worker", "w", str(script)], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "test reply 1: from the cli"
    assert (tmp_path / "sb" / "ai_worker_performance_data.json").exists()
