"""The README's language tour and embedding snippet run as shown."""

from __future__ import annotations

import io
import re
from pathlib import Path

from nslang import Interpreter

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_language_tour_runs(tmp_path: Path) -> None:
    code = re.search(r"```neuroscript\n(.*?)```", README, re.S).group(1)  # type: ignore[union-attr]
    out = io.StringIO()
    interp = Interpreter(sandbox_dir=tmp_path, stdout=out)
    interp.load(code, name="tour.ns")
    interp.run()
    assert out.getvalue().splitlines() == [
        "Hello, Ada!",
        "Hello, Alan!",
        "caught: must condition failed: len(people) == 3",
        '{"total": 2}',
        "tools: TOOL.<GROUP>.<NAME>(…)",
    ]


def test_embedding_snippet_runs(tmp_path: Path, monkeypatch: object) -> None:
    code = re.search(r"## Embedding\n\n```python\n(.*?)```", README, re.S).group(1)  # type: ignore[union-attr]
    import os

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(code, "README-embedding", "exec"), {})  # the snippet asserts its own result
    finally:
        os.chdir(cwd)
