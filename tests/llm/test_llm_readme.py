"""The README's "Connecting a model" definitions load as shown and work once pointed at loopback servers."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from llm_helpers import KEY, SPECS
from pytest_httpserver import HTTPServer

from nslang import Interpreter

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
PROVIDER_OF = {"gpt": "openai", "claude": "anthropic", "gemini": "google", "llama": "ollama", "gguf": "local"}


def test_readme_worker_definitions(server: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    section = README.split("## Connecting a model", 1)[1]
    code = re.search(r"```neuroscript\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.setenv(var, KEY)
    out = io.StringIO()
    with Interpreter(sandbox_dir=tmp_path / "sb", stdout=out) as interp:
        interp.load(code + "\nfunc main() means\n  call define_workers()\nendfunc\n", name="readme.ns")
        interp.run()
        mgr = interp.workers
        assert {d.name: d.provider.value for d in mgr.list_definitions()} == PROVIDER_OF
        for name, provider in PROVIDER_OF.items():
            spec = SPECS[provider]
            server.expect_oneshot_request(spec.path).respond_with_json(spec.ok(f"{name} ok", 4, 2))
            d = mgr.get_definition(name)
            mgr.update_definition(name, {"base_config": {**d.base_config,
                                                          "base_url": server.url_for(spec.root).rstrip("/")}})
            assert interp.workers.ask(name, "hi") == f"{name} ok"
    assert len(server.log) == 5
    assert mgr.get_performance_records("gpt")[0].cost_incurred == pytest.approx(4 * 0.00000015 + 2 * 0.0000006)
