"""The parse cache: keyed by content hash in the user cache dir; a hit skips parsing; corrupt entries are
ignored and rebuilt; ``use_cache=False`` / ``NSLANG_NO_CACHE`` bypass it (issue: fast re-runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nslang import parser as P
from nslang._astcodec import MAGIC

SRC = 'func main() means\n  emit "cached"\nendfunc\n'


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "ast"
    monkeypatch.setattr(P, "_cache_root", lambda: str(d))
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
    entry.write_bytes(b"\x80\x04garbage that is not a cache entry")
    prog = P.parse(SRC, name="c.ns")
    assert prog.procedures[0].name == "main"
    assert entry.read_bytes().startswith(MAGIC) and b"garbage" not in entry.read_bytes()


BIG = "".join(f'func f{i}(needs x returns r) means\n  set m = {{"k": [x, {i}, "s{i}"]}}\n  return m["k"][1]\nendfunc\n'
              for i in range(40)) + 'func main() means\n  emit "sum " + (f3(1) + f7(2))\nendfunc\n'


def _damaged(data: bytes) -> list[bytes]:
    """Truncations at several points, flipped bytes in the header and throughout the payload."""
    cuts = [data[:n] for n in (0, 5, len(MAGIC) + 6, len(MAGIC) + 12, len(data) // 2, len(data) - 1)]
    flips = []
    for pos in (0, len(MAGIC) + 1, len(MAGIC) + 9, *range(len(MAGIC) + 12, len(data), max(1, len(data) // 40))):
        flips.append(data[:pos] + bytes([data[pos] ^ 0x5A]) + data[pos + 1:])
    return cuts + flips + [data + b"x"]


def test_damaged_entries_are_ignored_and_rebuilt(_cache_dir: Path, tmp_path: Path) -> None:
    """Truncated or corrupted entries (issue 16 item 3): never a crash or wrong code; parsed again and
    the entry rewritten."""
    import io

    from nslang import Interpreter

    expected = P.parse(BIG, name="big.ns", use_cache=False)
    P.parse(BIG, name="big.ns")
    (entry,) = list(_cache_dir.iterdir())
    good = entry.read_bytes()
    for bad in _damaged(good):
        entry.write_bytes(bad)
        prog = P.parse(BIG, name="big.ns")
        assert prog == expected
        assert entry.read_bytes() == good  # rebuilt
        out = io.StringIO()
        interp = Interpreter(sandbox_dir=tmp_path, stdout=out)
        interp.load_program(P.parse(BIG, name="big.ns"))
        interp.run()
        assert out.getvalue() == "sum 10\n"


def test_cached_bodies_are_decoded_on_first_use(_cache_dir: Path) -> None:
    """A cache hit decodes no procedure body until it is read; then it equals the parsed one."""
    from nslang._astcodec import LazyProcedure

    expected = P.parse(BIG, name="big.ns", use_cache=False)
    P.parse(BIG, name="big.ns")
    prog = P.parse(BIG, name="big.ns")
    assert all(isinstance(p, LazyProcedure) for p in prog.procedures)
    assert not any(_decoded(p) for p in prog.procedures)
    assert [p.name for p in prog.procedures] == [p.name for p in expected.procedures]
    assert prog.procedures[5].span == expected.procedures[5].span
    assert not _decoded(prog.procedures[5])
    assert prog.procedures[5].body == expected.procedures[5].body
    assert _decoded(prog.procedures[5]) and not _decoded(prog.procedures[6])
    assert prog == expected and repr(prog) == repr(expected)


def _decoded(p: object) -> bool:
    from nslang import ast as A

    try:
        A.Procedure.__dict__["body"].__get__(p, None)
    except AttributeError:
        return False
    return True


def test_every_node_kind_round_trips(_cache_dir: Path) -> None:
    """The cache codec keeps every field of every kind of node (the conformance scripts use them all)."""
    from nslang._astcodec import decode, encode

    sources = sorted(Path(__file__).parent.rglob("scripts/**/*.ns"))
    assert sources
    for path in sources:
        text = path.read_text(encoding="utf-8")
        try:
            prog = P.parse(text, name=str(path), use_cache=False)
        except Exception:  # scripts that are meant not to load
            continue
        again = decode(encode(prog))
        assert again == prog, path


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
