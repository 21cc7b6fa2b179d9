"""``Interpreter.load(…, replace=True)`` (issue 15 item 5): a host loads a changed file again."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from nslang import Interpreter, NSValidationError


def test_load_again_needs_replace(tmp_path: Path) -> None:
    out = io.StringIO()
    with Interpreter(sandbox_dir=tmp_path, stdout=out) as interp:
        interp.load('func v() means\n  return 1\nendfunc\non event "e" do\n  emit "old"\nendon\n', name="lib.ns")
        with pytest.raises(NSValidationError) as exc:
            interp.load("func v() means\n  return 2\nendfunc\n", name="lib.ns")
        assert exc.value.code == 42
        assert interp.call("v") == 1
        interp.load('func v() means\n  return 2\nendfunc\non event "e" do\n  emit "new"\nendon\n', name="lib.ns",
                    replace=True)
        assert interp.call("v") == 2
        assert interp.emit_event("e") == 1  # the old handler of lib.ns is gone, not doubled
        assert out.getvalue() == "new\n"


def test_replace_keeps_other_sources_handlers(tmp_path: Path) -> None:
    out = io.StringIO()
    with Interpreter(sandbox_dir=tmp_path, stdout=out) as interp:
        interp.load('on event "e" do\n  emit "a"\nendon\n', name="a.ns")
        interp.load('on event "e" do\n  emit "b"\nendon\n', name="b.ns", replace=True)
        assert interp.emit_event("e") == 2
        assert out.getvalue() == "a\nb\n"


def test_readme_worker_snippet_runs_twice(tmp_path: Path) -> None:
    """The README's worker definitions use ``if_exists: "update"``, so running them again works."""
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Connecting a model", 1)[1]
    code = re.search(r"```neuroscript\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
    for _ in range(2):
        with Interpreter(sandbox_dir=tmp_path, stdout=io.StringIO()) as interp:
            interp.load(code + "\nfunc main() means\n  call define_workers()\nendfunc\n", name="readme.ns")
            interp.run()
            assert len(interp.workers.list_definitions()) == 5
