"""The fs tools never reach outside the sandbox: ``..``, absolute paths, symlinks, races, size limits."""

from __future__ import annotations

import os
import pathlib
from typing import Any

import pytest

from nslang.errors import ErrorCode
from nslang.tools.builtin import _sandbox, fs

PV = ErrorCode.PATH_VIOLATION


def _snapshot(d: pathlib.Path) -> dict[str, object]:
    """Every path below ``d`` with its content (None for directories, the target for links)."""
    out: dict[str, object] = {}
    for root, dirs, files in os.walk(d):
        for name in dirs + files:
            p = os.path.join(root, name)
            rel = os.path.relpath(p, d)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = None
            else:
                out[rel] = pathlib.Path(p).read_bytes()
    return out


# ----------------------------------------------------------------------------------------------
# '..' and absolute paths


@pytest.mark.parametrize(
    "path", ["..", "../outside/secret.txt", "a/../../outside/secret.txt", "./../x", "a/b/../../../x"]
)
def test_dotdot_escaping_the_sandbox_is_refused(fails: Any, outside: pathlib.Path, path: str) -> None:
    err = fails("fs.Read", path)
    assert err.code == PV
    assert "tool.fs.Read" in err.message and "'filepath'" in err.message and "leaves the sandbox" in err.message


def test_dotdot_that_stays_inside_is_allowed(call: Any, sandbox: pathlib.Path) -> None:
    (sandbox / "b.txt").write_text("B")
    (sandbox / "a").mkdir()
    assert call("fs.Read", "a/../b.txt") == "B"
    assert call("fs.Read", "./a/./../b.txt") == "B"


@pytest.mark.parametrize("tool,args", [
    ("fs.Write", ["../outside/new.txt", "x"]),
    ("fs.Append", ["../outside/secret.txt", "x"]),
    ("fs.Mkdir", ["../outside/newdir"]),
    ("fs.Delete", ["../outside/secret.txt"]),
    ("fs.Move", ["../outside/secret.txt", "stolen.txt"]),
    ("fs.Move", ["mine.txt", "../outside/mine.txt"]),
    ("fs.List", [".."]),
    ("fs.Walk", [".."]),
    ("fs.Stat", ["../outside"]),
    ("fs.Hash", ["../outside/secret.txt"]),
    ("fs.LineCount", ["../outside/secret.txt"]),
])
def test_every_tool_refuses_dotdot_and_touches_nothing(
    fails: Any, sandbox: pathlib.Path, outside: pathlib.Path, tool: str, args: list[str]
) -> None:
    (sandbox / "mine.txt").write_text("mine")
    before_out, before_in = _snapshot(outside), _snapshot(sandbox)
    err = fails(tool, *args)
    assert err.code == PV
    assert _snapshot(outside) == before_out
    assert _snapshot(sandbox) == before_in


def test_absolute_paths_are_refused_even_inside_the_sandbox(
    fails: Any, sandbox: pathlib.Path, outside: pathlib.Path
) -> None:
    (sandbox / "a.txt").write_text("A")
    for p in [str(outside / "secret.txt"), "/etc/passwd", str(sandbox / "a.txt"), "\\\\server\\share", "C:\\x"]:
        err = fails("fs.Read", p)
        assert err.code == PV, p
        assert "absolute" in err.message
    err = fails("fs.Write", str(outside / "new.txt"), "x")
    assert err.code == PV
    assert not (outside / "new.txt").exists()


def test_nul_byte_and_empty_paths(fails: Any) -> None:
    assert fails("fs.Read", "a\x00b").code == PV
    err = fails("fs.Read", "")
    assert err.code == ErrorCode.ARG_MISMATCH and "empty" in err.message
    assert fails("fs.Write", "", "x").code in (ErrorCode.ARG_MISMATCH, PV)


def test_the_sandbox_itself_cannot_be_deleted_or_moved(fails: Any, sandbox: pathlib.Path) -> None:
    (sandbox / "keep.txt").write_text("k")
    for p in [".", "", "a/..", "./"]:
        err = fails("fs.Delete", p, True)
        assert err.code in (PV, ErrorCode.ARG_MISMATCH), p
    assert fails("fs.Move", ".", "x").code == PV
    assert fails("fs.Write", ".", "x").code == PV
    assert (sandbox / "keep.txt").read_text() == "k"


# ----------------------------------------------------------------------------------------------
# Symbolic links


@pytest.fixture
def links(sandbox: pathlib.Path, outside: pathlib.Path) -> pathlib.Path:
    """Links out of the sandbox: to a file, to a directory, relative, in an intermediate dir, dangling."""
    (sandbox / "file_link").symlink_to(outside / "secret.txt")
    (sandbox / "dir_link").symlink_to(outside, target_is_directory=True)
    (sandbox / "rel_link").symlink_to("../outside/secret.txt")
    (sandbox / "a").mkdir()
    (sandbox / "a" / "b").symlink_to(outside, target_is_directory=True)
    (sandbox / "dangling").symlink_to(outside / "not_yet.txt")
    (sandbox / "inner.txt").write_text("inner")
    (sandbox / "inner_link").symlink_to("inner.txt")
    (sandbox / "inner_dir").mkdir()
    (sandbox / "inner_dir" / "x.txt").write_text("x")
    (sandbox / "inner_dir_link").symlink_to("inner_dir", target_is_directory=True)
    return sandbox


OUT_PATHS = ["file_link", "rel_link", "dir_link/secret.txt", "a/b/secret.txt", "dangling",
             "inner_dir_link/../dir_link/secret.txt"]


@pytest.mark.parametrize("path", OUT_PATHS)
@pytest.mark.parametrize("tool", ["fs.Read", "fs.Hash", "fs.LineCount", "fs.Stat"])
def test_reading_through_links_out_of_the_sandbox_is_refused(
    fails: Any, links: pathlib.Path, tool: str, path: str
) -> None:
    err = fails(tool, path)
    assert err.code == PV
    assert "outside the sandbox" in err.message
    assert "top secret" not in err.message


@pytest.mark.parametrize("path", OUT_PATHS + ["dir_link/new.txt", "a/b/new.txt", "a/b/deeper/new.txt"])
@pytest.mark.parametrize("tool", ["fs.Write", "fs.Append"])
def test_writing_through_links_out_of_the_sandbox_is_refused(
    fails: Any, links: pathlib.Path, outside: pathlib.Path, tool: str, path: str
) -> None:
    before = _snapshot(outside)
    err = fails(tool, path, "pwned")
    assert err.code == PV
    assert _snapshot(outside) == before


@pytest.mark.parametrize("tool,args", [
    ("fs.Delete", ["file_link"]),
    ("fs.Delete", ["dir_link", True]),
    ("fs.Delete", ["dir_link/secret.txt"]),
    ("fs.Delete", ["a/b/secret.txt"]),
    ("fs.Move", ["file_link", "moved"]),
    ("fs.Move", ["dir_link/secret.txt", "stolen.txt"]),
    ("fs.Move", ["inner.txt", "dir_link/inner.txt"]),
    ("fs.Move", ["inner.txt", "a/b/inner.txt"]),
    ("fs.Mkdir", ["dir_link/sub"]),
    ("fs.Mkdir", ["a/b/sub/deeper"]),
    ("fs.List", ["dir_link"]),
    ("fs.List", ["a/b"]),
    ("fs.Walk", ["dir_link"]),
    ("fs.Walk", ["a/b"]),
])
def test_changing_or_listing_through_links_out_is_refused(
    fails: Any, links: pathlib.Path, outside: pathlib.Path, tool: str, args: list[Any]
) -> None:
    before_out, before_in = _snapshot(outside), _snapshot(links)
    err = fails(tool, *args)
    assert err.code == PV
    assert _snapshot(outside) == before_out
    assert _snapshot(links) == before_in


def test_links_that_stay_inside_work(call: Any, links: pathlib.Path) -> None:
    assert call("fs.Read", "inner_link") == "inner"
    assert call("fs.Read", "inner_dir_link/x.txt") == "x"
    call("fs.Write", "inner_link", "changed")
    assert (links / "inner.txt").read_text() == "changed"
    assert (links / "inner_link").is_symlink()  # the link was written through, not replaced
    assert [e["name"] for e in call("fs.List", "inner_dir_link")] == ["x.txt"]


def test_delete_of_an_inside_link_removes_the_link_not_the_target(call: Any, links: pathlib.Path) -> None:
    call("fs.Delete", "inner_link")
    assert not (links / "inner_link").exists() and not (links / "inner_link").is_symlink()
    assert (links / "inner.txt").read_text() == "inner"


def test_listing_shows_links_out_but_never_follows_them(call: Any, links: pathlib.Path) -> None:
    entries = {e["path"]: e for e in call("fs.Walk")}
    assert entries["dir_link"]["type"] == "symlink" and entries["dir_link"]["is_dir"] is False
    assert entries["file_link"]["type"] == "symlink"
    assert entries["a/b"]["type"] == "symlink"
    assert not any("secret" in p for p in entries)
    listed = {e["name"]: e["type"] for e in call("fs.List")}
    assert listed["dir_link"] == "symlink" and listed["inner_dir"] == "dir"


def test_a_link_swapped_in_after_the_check_is_not_followed(
    call: Any, fails: Any, sandbox: pathlib.Path, outside: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Time-of-check to time-of-use: the directory becomes a link between resolve() and the write."""
    (sandbox / "d").mkdir()
    real_resolve = _sandbox.resolve

    def resolve_then_swap(*args: Any, **kwargs: Any) -> Any:
        sp = real_resolve(*args, **kwargs)
        if (sandbox / "d").is_dir() and not (sandbox / "d").is_symlink():
            (sandbox / "d").rmdir()
            (sandbox / "d").symlink_to(outside, target_is_directory=True)
        return sp

    monkeypatch.setattr(fs, "resolve", resolve_then_swap)
    before = _snapshot(outside)
    for tool, args in [("fs.Write", ["d/secret.txt", "pwned"]), ("fs.Read", ["d/secret.txt"]),
                       ("fs.Delete", ["d/secret.txt"]), ("fs.Append", ["d/secret.txt", "x"])]:
        err = fails(tool, *args)
        assert err.code in (PV, ErrorCode.PATH_TYPE_MISMATCH), (tool, err)
    assert _snapshot(outside) == before


def test_a_final_component_swapped_for_a_link_is_not_followed(
    fails: Any, sandbox: pathlib.Path, outside: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (sandbox / "f.txt").write_text("mine")
    real_resolve = _sandbox.resolve

    def resolve_then_swap(*args: Any, **kwargs: Any) -> Any:
        sp = real_resolve(*args, **kwargs)
        if not (sandbox / "f.txt").is_symlink():
            (sandbox / "f.txt").unlink()
            (sandbox / "f.txt").symlink_to(outside / "secret.txt")
        return sp

    monkeypatch.setattr(fs, "resolve", resolve_then_swap)
    err = fails("fs.Read", "f.txt")
    assert err.code == PV
    err = fails("fs.Append", "f.txt", "x")
    assert err.code == PV
    assert (outside / "secret.txt").read_text() == "top secret"


# ----------------------------------------------------------------------------------------------
# Size limits


def test_oversized_reads_are_refused(interp: Any, call: Any, fails: Any, sandbox: pathlib.Path) -> None:
    interp.limits.max_file_bytes = 100
    (sandbox / "ok.txt").write_bytes(b"x" * 100)
    (sandbox / "big.txt").write_bytes(b"x" * 101)
    assert len(call("fs.Read", "ok.txt")) == 100
    for tool in ["fs.Read", "fs.Hash", "fs.LineCount"]:
        err = fails(tool, "big.txt")
        assert err.code == ErrorCode.RESOURCE_EXHAUSTION, tool
        assert "101 bytes" in err.message and "100" in err.message


def test_oversized_writes_change_nothing(interp: Any, call: Any, fails: Any, sandbox: pathlib.Path) -> None:
    interp.limits.max_file_bytes = 10
    (sandbox / "f.txt").write_text("old")
    err = fails("fs.Write", "f.txt", "x" * 11)
    assert err.code == ErrorCode.RESOURCE_EXHAUSTION
    assert (sandbox / "f.txt").read_text() == "old"
    assert fails("fs.Write", "new.txt", "é" * 6).code == ErrorCode.RESOURCE_EXHAUSTION  # 12 bytes, 6 chars
    assert not (sandbox / "new.txt").exists()
    err = fails("fs.Append", "f.txt", "12345678")
    assert err.code == ErrorCode.RESOURCE_EXHAUSTION
    assert (sandbox / "f.txt").read_text() == "old"
    call("fs.Append", "f.txt", "1234567")
    assert (sandbox / "f.txt").read_text() == "old1234567"
    assert sorted(os.listdir(sandbox)) == ["f.txt"]


def test_a_file_growing_after_the_size_check_is_still_capped(
    interp: Any, fails: Any, sandbox: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    interp.limits.max_file_bytes = 10
    (sandbox / "f.txt").write_bytes(b"x" * 5)
    real_open = fs._open_regular_for_reading

    def open_then_grow(ctx: Any, sp: Any) -> Any:
        res = real_open(ctx, sp)
        (sandbox / "f.txt").write_bytes(b"x" * 50)
        return res

    monkeypatch.setattr(fs, "_open_regular_for_reading", open_then_grow)
    assert fails("fs.Read", "f.txt").code == ErrorCode.RESOURCE_EXHAUSTION


def test_recursive_delete_removes_links_but_never_their_targets(
    call: Any, sandbox: pathlib.Path, outside: pathlib.Path
) -> None:
    d = sandbox / "tree" / "deeper" / "deepest"
    d.mkdir(parents=True)
    (d / "f.txt").write_text("x")
    (sandbox / "tree" / "out_dir").symlink_to(outside, target_is_directory=True)
    (sandbox / "tree" / "deeper" / "out_file").symlink_to(outside / "secret.txt")
    before = _snapshot(outside)
    assert call("fs.Delete", "tree", recursive=True) == "deleted tree"
    assert not (sandbox / "tree").exists()
    assert _snapshot(outside) == before


def test_recursive_delete_checks_the_deadline(interp: Any, fails: Any, sandbox: pathlib.Path) -> None:
    for i in range(5):
        (sandbox / "t" / str(i)).mkdir(parents=True)
    interp.deadline_after = 2
    err = fails("fs.Delete", "t", True)
    assert err.code == ErrorCode.TIMEOUT


def test_path_based_fallback_without_dir_fd(
    call: Any, fails: Any, links: pathlib.Path, outside: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Platforms without ``dir_fd`` (Windows) use resolved paths; the sandbox rules still hold."""
    monkeypatch.setattr(_sandbox, "FD_MODE", False)
    before = _snapshot(outside)
    call("fs.Write", "w/x.txt", "one")
    call("fs.Append", "w/x.txt", "+two")
    assert call("fs.Read", "w/x.txt") == "one+two"
    assert call("fs.Stat", "w/x.txt")["size_bytes"] == 7
    assert call("fs.Mkdir", "w/sub/deeper")["created"] is True
    assert [e["path"] for e in call("fs.Walk", "w")] == ["w/sub", "w/sub/deeper", "w/x.txt"]
    call("fs.Move", "w/x.txt", "w/sub/y.txt")
    assert call("fs.Hash", "w/sub/y.txt") == call("fs.Hash", "w/sub/y.txt", "sha256")
    call("fs.Delete", "w", True)
    assert not (links / "w").exists()
    for tool, args in [("fs.Read", ["file_link"]), ("fs.Write", ["dir_link/n.txt", "x"]),
                       ("fs.Delete", ["a/b/secret.txt"]), ("fs.Read", ["../outside/secret.txt"])]:
        assert fails(tool, *args).code == PV
    assert _snapshot(outside) == before
