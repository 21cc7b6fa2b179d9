"""The parse cache: keyed by content hash in the user cache dir; a hit skips parsing; corrupt entries are
ignored and rebuilt; ``use_cache=False`` / ``NSLANG_NO_CACHE`` bypass it (issue: fast re-runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nslang import parser as P

SRC = 'func main() means\n  emit "cached"\nendfunc\n'


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "ast"
    monkeypatch.setattr(P, "_cache_dir", lambda: d)
    monkeypatch.delenv("NSLANG_NO_CACHE", raising=False)
    return d


def test_second_parse_is_a_cache_hit(_cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = P.parse(SRC, name="c.ns")
    entries = list(_cache_dir.iterdir())
    assert len(entries) == 1
    # a hit never reaches the parser
    monkeypatch.setattr(P, "_parse_uncached", lambda *a: pytest.fail("parsed again"))
    assert P.parse(SRC, name="c.ns") == first


def test_changed_text_or_name_misses(_cache_dir: Path) -> None:
    P.parse(SRC, name="c.ns")
    P.parse(SRC + "\n", name="c.ns")
    P.parse(SRC, name="other.ns")
    assert len(list(_cache_dir.iterdir())) == 3


def test_corrupt_entry_is_ignored_and_rebuilt(_cache_dir: Path) -> None:
    P.parse(SRC, name="c.ns")
    (entry,) = list(_cache_dir.iterdir())
    entry.write_bytes(b"\x80\x04garbage that is not a pickle")
    prog = P.parse(SRC, name="c.ns")
    assert prog.procedures[0].name == "main"
    assert entry.read_bytes()[:1] == b"\x80" and b"garbage" not in entry.read_bytes()


def test_no_cache_bypasses(_cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    P.parse(SRC, name="c.ns", use_cache=False)
    monkeypatch.setenv("NSLANG_NO_CACHE", "1")
    P.parse(SRC, name="d.ns")
    assert not _cache_dir.exists() or not list(_cache_dir.iterdir())


def test_cached_program_runs(tmp_path: Path) -> None:
    import io

    from nslang import Interpreter

    P.parse(SRC, name="c.ns")
    out = io.StringIO()
    interp = Interpreter(sandbox_dir=tmp_path, stdout=out)
    interp.load_program(P.parse(SRC, name="c.ns"))
    interp.run()
    assert out.getvalue() == "cached\n"
