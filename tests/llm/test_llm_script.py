"""A NeuroScript script, run by ``python -m nslang run`` in a subprocess, defines one worker per HTTP
provider pointed at loopback servers and runs a stateless task and a two-turn chat with each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from llm_helpers import KEY, SPECS, Spec, ns_args
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

REPO = Path(__file__).resolve().parents[2]


def _echo(spec: Spec) -> object:
    """A handler answering ``<provider> heard '<last user turn>' after <n> turns`` in the spec's shape."""

    def handler(request: Request) -> Response:
        body = json.loads(request.get_data())
        turns = spec.turns(body)
        text = f"{spec.provider} heard '{turns[-1][1]}' after {len(turns)} turns"
        return Response(json.dumps(spec.ok(text, 10 * len(turns), 3)), content_type="application/json")

    return handler


def test_script_runs_every_provider_against_loopback_servers(server: HTTPServer, tmp_path: Path) -> None:
    for spec in SPECS.values():
        path = "/local" + spec.path if spec.provider == "local" else spec.path  # its own llama.cpp-like server
        server.expect_request(path, method="POST").respond_with_handler(_echo(spec))  # type: ignore[arg-type]
    server.expect_request("/broken/chat/completions").respond_with_json(
        {"error": {"message": f"Incorrect API key provided: {KEY}", "type": "invalid_request_error"}}, status=401)
    adds = []
    for spec in SPECS.values():
        d = spec.definition(server, spec.provider, system_prompt="Answer briefly.")
        del d["base_config"]["retry_backoff_s"]
        if spec.provider == "local":
            d["base_config"]["base_url"] = server.url_for("/local/v1")
        adds.append(f"  call tool.AIWorkerDefinition.Add({ns_args(d)})")
    broken = SPECS["openai"].definition(server, "broken")
    broken["base_config"]["base_url"] = server.url_for("/broken")
    adds.append(f"  call tool.AIWorkerDefinition.Add({ns_args(broken)})")
    lines = "\n".join(adds)
    script = tmp_path / "providers.ns"
    script.write_text(f"""
func try_broken() means
  on error do
    emit "broken: code " + system_error_code + ": " + system_error_message
    clear_error
  endon
  call tool.AIWorker.ExecuteStatelessTask("broken", "hello")
endfunc

func main() means
{lines}
  for each p in ["openai", "local", "anthropic", "google", "ollama"]
    set r = tool.AIWorker.ExecuteStatelessTask(p, "task for " + p)
    emit r["output"] + " | tokens " + r["input_tokens"] + "+" + r["output_tokens"]
    set id = tool.AIWorkerInstance.Spawn(p)["instance_id"]
    emit tool.AIWorkerInstance.Chat(id, "first")
    ask id, "second" into reply
    emit reply
    call tool.AIWorkerInstance.Retire(id, "done")
    set s = tool.AIWorker.GetPerformanceSummary(p)
    emit p + ": " + s["successful_tasks"] + " of " + s["total_tasks_attempted"] + ", " + \\
      s["total_tokens_processed"] + " tokens"
  endfor
  call try_broken()
endfunc
""")
    sandbox = tmp_path / "sb"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENAI_API_KEY": KEY, "ANTHROPIC_API_KEY": KEY,
           "GEMINI_API_KEY": KEY, "NSLANG_NO_CACHE": "1"}
    env.pop("OLLAMA_HOST", None)
    proc = subprocess.run([sys.executable, "-m", "nslang", "run", "--sandbox", str(sandbox), str(script)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    expected = []
    for p in ["openai", "local", "anthropic", "google", "ollama"]:
        expected += [
            f"{p} heard 'task for {p}' after 2 turns | tokens 20+3",
            f"{p} heard 'first' after 2 turns",
            f"{p} heard 'second' after 4 turns",
            f"{p}: 3 of 3, 89 tokens",
        ]
    out = proc.stdout.splitlines()
    assert out[:-1] == expected
    assert out[-1] == ("broken: code 16: tool.AIWorker.ExecuteStatelessTask: provider 'openai' (model 'gpt-4o-mini', "
                       "worker 'broken'): HTTP 401 UNAUTHORIZED: invalid_request_error: Incorrect API key provided: "
                       "****" + KEY[-4:])
    assert KEY not in proc.stdout + proc.stderr
    for f in sandbox.rglob("*"):
        if f.is_file():
            assert KEY.encode() not in f.read_bytes(), f
    entries = json.loads((sandbox / "ai_worker_performance_data.json").read_text())
    records = [r for e in entries for r in e.get("performance_records") or ()]
    ok = [r for r in records if r["success"]]
    assert len(ok) == 15 and len(records) == 16
    assert sum(r["cost_incurred"] for r in ok) == pytest.approx(5 * (80 * 0.001 + 9 * 0.002))
