"""The worker examples against a real local model (issue 14 item 8), streamed and not.

Runs only when ``NSLANG_LOCAL_LLM_URL`` names an OpenAI-compatible API root, e.g. llama.cpp's
``llama-server -m gemma-3-270m-q4_k_m.gguf --port 8080`` → ``http://127.0.0.1:8080/v1`` (the README's
"A local model: llama.cpp" recipe); skipped otherwise. A real model's words are not predictable, so
the tests check what nslang owns: the scripts run to the end, every reply is non-empty, the token
counts are the server's own (never estimated), and a streamed reply arrives in several pieces that add
up to the returned text.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest

from nslang.cli import main
from nslang.interpreter import Interpreter

URL = os.environ.get("NSLANG_LOCAL_LLM_URL", "")
pytestmark = pytest.mark.skipif(not URL, reason="set NSLANG_LOCAL_LLM_URL to an OpenAI-compatible API root "
                                                "(e.g. llama-server's http://127.0.0.1:8080/v1) to run")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _local(example: str, stream: bool) -> str:
    """An example with its ``test`` workers turned into ``local`` ones served at URL."""
    cfg = (f'{{"base_url": "{URL}", "max_tokens": 48, "temperature": 0, "timeout_s": 120, '
           f'"stream": {str(stream).lower()}}}')
    text = (EXAMPLES / example).read_text(encoding="utf-8")
    text = re.sub(r'provider: "test", model_name: "[^"]+"',
                  f'provider: "local", model_name: "gemma", base_config: {cfg}', text)
    return text.replace(', base_config: {"temperature": 0.3}', "")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("example", ["workers_quickstart.ns", "workers_chat.ns"])
def test_worker_examples_run_against_a_local_model(example: str, stream: bool, tmp_path: Path) -> None:
    script = tmp_path / example
    script.write_text(_local(example, stream), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    assert main(["run", "--sandbox", str(tmp_path / "sb"), str(script)], stdout=out, stderr=err) == 0, err.getvalue()
    with Interpreter(sandbox_dir=tmp_path / "sb") as interp:
        mgr = interp.workers
        records = [r for d in mgr.list_definitions() for r in mgr.get_performance_records(d.name)]
    assert records and all(r.success for r in records)
    assert all(not r.llm_metrics.get("estimated") and r.llm_metrics["output_tokens"] > 0 for r in records)


def test_a_streamed_ask_arrives_in_pieces(tmp_path: Path) -> None:
    pieces: list[str] = []
    with Interpreter(sandbox_dir=tmp_path, on_token=pieces.append) as interp:
        interp.workers.add_definition({"name": "gemma", "provider": "local", "model_name": "gemma",
                                       "base_config": {"base_url": URL, "max_tokens": 32, "temperature": 0}})
        reply = interp.ask("gemma", "Count from one to five.")
        rec, = interp.workers.get_performance_records("gemma")
    assert len(pieces) > 1 and "".join(pieces) == reply and reply.strip()
    assert not rec.llm_metrics.get("estimated") and rec.llm_metrics["output_tokens"] > 0
