"""The compiled-code cache (issue 16 item 3): a second run reuses the code object; a damaged entry is
ignored and rewritten; ``NSLANG_NO_CACHE`` skips it; entries are private."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from nslang import Interpreter
from nslang import _codecache as C

SRC = 'func main(needs n) means\n  set s = 0\n  while s < n\n    set s = s + 1\n  endwhile\n  return s\nendfunc\n'


@pytest.fixture(autouse=True)
def _code_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "code"
    d.mkdir(mode=0o700)
    monkeypatch.setattr(C, "_dirs", [str(d)])
    monkeypatch.delenv("NSLANG_NO_CACHE", raising=False)
    return d


def _run(n: int = 5) -> object:
    it = Interpreter(stdout=io.StringIO(), load_stdlib=False)
    it.load(SRC)
    return it.call("main", n)


def test_a_second_run_loads_the_code_instead_of_compiling(_code_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _run() == 5
    entries = list(_code_dir.iterdir())
    assert len(entries) == 1
    assert stat.S_IMODE(os.stat(entries[0]).st_mode) == 0o600
    import builtins

    real = builtins.compile

    def no_compile(src: object, filename: str, *a: object, **k: object) -> object:
        assert not str(filename).startswith("<nslang"), "compiled again"
        return real(src, filename, *a, **k)  # type: ignore[call-overload]

    monkeypatch.setattr(builtins, "compile", no_compile)
    assert _run(7) == 7


@pytest.mark.parametrize("damage", [b"", b"\x00garbage", b"\xe3" * 10])
def test_a_damaged_entry_is_ignored_and_rewritten(_code_dir: Path, damage: bytes) -> None:
    _run()
    (entry,) = _code_dir.iterdir()
    entry.write_bytes(damage)
    assert _run(3) == 3
    assert entry.read_bytes() != damage


def test_a_foreign_object_in_an_entry_is_not_run(_code_dir: Path) -> None:
    import marshal

    _run()
    (entry,) = _code_dir.iterdir()
    entry.write_bytes(marshal.dumps(("not", "code")))
    assert _run(4) == 4


def test_no_cache_skips_it(_code_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NSLANG_NO_CACHE", "1")
    assert _run() == 5
    assert list(_code_dir.iterdir()) == []


def test_different_limits_or_scripts_get_their_own_entries(_code_dir: Path) -> None:
    _run()
    it = Interpreter(stdout=io.StringIO(), load_stdlib=False, max_loop_iterations=3)
    it.load(SRC)
    with pytest.raises(Exception) as e:
        it.call("main", 5)
    assert getattr(e.value, "code", None) == 37
    assert len(list(_code_dir.iterdir())) == 2
