"""REPL (issue 15): the last-result register carries from one input to the next and ``:load`` resets
it (item 1); ``x = 5`` gets the hint to write ``set`` (item 5)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from nslang.repl import Repl


@pytest.fixture
def repl(tmp_path: Path) -> Repl:
    return Repl(stdout=io.StringIO(), history_file=tmp_path / "history", color=False, sandbox_dir=tmp_path)


def test_last_updates_after_a_call_and_a_set(repl: Repl) -> None:
    repl.execute("func five() means\n  return 5\nendfunc")
    repl.execute("call five()")
    assert repl.execute("last") == "5"
    repl.execute('set s = "text"')
    assert repl.execute("last") == '"text"'
    repl.execute('call tool.str.ToUpper("a")')
    assert repl.execute("last") == '"A"'


def test_load_resets_last(repl: Repl, tmp_path: Path) -> None:
    lib = tmp_path / "lib.ns"
    lib.write_text("func one() means\n  return 1\nendfunc\n", encoding="utf-8")
    repl.execute("set x = 42")
    assert repl.execute("last") == "42"
    assert "loaded" in repl.execute(f":load {lib}")
    assert repl.execute("last") == "nil"
    assert "last" not in repl.execute(":vars").split()


def test_assignment_without_set_gets_a_hint(repl: Repl) -> None:
    out = repl.execute("x = 5")
    assert "to assign, write 'set x = …'" in out and "; expected" not in out
