"""Normal use and bad input of the ``fs`` tools (the sandbox itself: test_builtin_fs_sandbox.py)."""

from __future__ import annotations

import errno
import hashlib
import os
import pathlib
import stat
from typing import Any

import pytest

from nslang.errors import ErrorCode, ResourceLimitError
from nslang.tools.builtin import fs

root_only = pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                               reason="root ignores file permissions")


def _temp_files(d: pathlib.Path) -> list[str]:
    return [p.name for p in d.rglob("*") if p.name.startswith(".nslang-tmp-")]


# ----------------------------------------------------------------------------------------------
# Read / Write / Append


def test_write_then_read_round_trips_unicode_and_newlines(call: Any, sandbox: pathlib.Path) -> None:
    text = "héllo wörld ✓\r\nline 2\n\tend"
    msg = call("fs.Write", "t.txt", text)
    assert msg == f"wrote {len(text.encode())} bytes to t.txt"
    assert (sandbox / "t.txt").read_bytes() == text.encode("utf-8")
    assert call("fs.Read", "t.txt") == text
    assert call("FS.Read", filepath="t.txt") == text  # upstream alias and a named argument


def test_write_creates_parent_directories_and_replaces(call: Any, sandbox: pathlib.Path) -> None:
    call("fs.Write", "a/b/c.txt", "one")
    call("fs.Write", "a/b/c.txt", "two")
    assert (sandbox / "a" / "b" / "c.txt").read_text() == "two"
    assert _temp_files(sandbox) == []


def test_write_keeps_permissions_of_an_existing_file(call: Any, sandbox: pathlib.Path) -> None:
    p = sandbox / "p.txt"
    p.write_text("x")
    p.chmod(0o640)
    call("fs.Write", "p.txt", "y")
    assert stat.S_IMODE(p.stat().st_mode) == 0o640


def test_failed_write_leaves_old_content_and_no_temp_file(
    call: Any, fails: Any, sandbox: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (sandbox / "f.txt").write_text("old content")

    def half_write(fd: int, data: bytes) -> None:
        os.write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fs, "_write_all", half_write)
    err = fails("fs.Write", "f.txt", "new content that will not fit")
    assert err.code == ErrorCode.IO_FAILED
    assert "tool.fs.Write" in err.message and "'filepath'" in err.message and "no space" in err.message
    assert (sandbox / "f.txt").read_text() == "old content"
    assert _temp_files(sandbox) == []


def test_write_interrupted_by_the_time_limit_leaves_old_content(
    fails: Any, sandbox: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (sandbox / "f.txt").write_text("old")

    def interrupted(fd: int, data: bytes) -> None:
        os.write(fd, data[:1])
        raise ResourceLimitError("time limit exceeded", code=ErrorCode.TIMEOUT)

    monkeypatch.setattr(fs, "_write_all", interrupted)
    err = fails("fs.Write", "f.txt", "new")
    assert err.code == ErrorCode.TIMEOUT
    assert (sandbox / "f.txt").read_text() == "old"
    assert _temp_files(sandbox) == []


def test_failed_append_truncates_back(fails: Any, sandbox: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (sandbox / "log.txt").write_text("line1\n")

    def half_write(fd: int, data: bytes) -> None:
        os.write(fd, data[:3])
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(fs, "_write_all", half_write)
    assert fails("fs.Append", "log.txt", "line2\n").code == ErrorCode.IO_FAILED
    assert (sandbox / "log.txt").read_text() == "line1\n"


def test_append_creates_and_appends(call: Any, sandbox: pathlib.Path) -> None:
    assert call("fs.Append", "logs/run.log", "a\n") == "appended 2 bytes to logs/run.log"
    call("fs.Append", "logs/run.log", "b\n")
    assert (sandbox / "logs" / "run.log").read_text() == "a\nb\n"


def test_read_errors(fails: Any, sandbox: pathlib.Path) -> None:
    (sandbox / "d").mkdir()
    (sandbox / "bin").write_bytes(b"\xff\xfeabc")
    (sandbox / "f.txt").write_text("x")
    assert fails("fs.Read", "missing.txt").code == ErrorCode.FILE_NOT_FOUND
    assert fails("fs.Read", "d").code == ErrorCode.PATH_TYPE_MISMATCH
    assert fails("fs.Read", ".").code == ErrorCode.PATH_TYPE_MISMATCH
    assert fails("fs.Read", "f.txt/inner").code == ErrorCode.PATH_TYPE_MISMATCH
    err = fails("fs.Read", "bin")
    assert err.code == ErrorCode.IO_FAILED and "UTF-8" in err.message
    err = fails("fs.Read", "missing.txt")
    assert err.message == ("tool.fs.Read: argument 'filepath': cannot read 'missing.txt': it does not exist in "
                           f"the sandbox directory {sandbox.resolve()}")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_read_of_a_fifo_is_refused_without_blocking(fails: Any, sandbox: pathlib.Path) -> None:
    os.mkfifo(sandbox / "pipe")
    assert fails("fs.Read", "pipe").code == ErrorCode.PATH_TYPE_MISMATCH


def test_write_errors(fails: Any, sandbox: pathlib.Path) -> None:
    (sandbox / "d").mkdir()
    (sandbox / "f.txt").write_text("x")
    assert fails("fs.Write", "d", "x").code == ErrorCode.PATH_TYPE_MISMATCH
    assert fails("fs.Write", "f.txt/inner.txt", "x").code == ErrorCode.PATH_TYPE_MISMATCH
    assert fails("fs.Append", "d", "x").code == ErrorCode.PATH_TYPE_MISMATCH
    assert fails("fs.Write", "s.txt", "\ud800").code == ErrorCode.ARG_MISMATCH  # lone surrogate


@root_only
def test_permission_denied(fails: Any, sandbox: pathlib.Path) -> None:
    p = sandbox / "locked.txt"
    p.write_text("x")
    p.chmod(0)
    assert fails("fs.Read", "locked.txt").code == ErrorCode.PERMISSION_DENIED


@pytest.mark.parametrize("tool,args,bad", [
    ("fs.Read", [5], "filepath"),
    ("fs.Write", ["a.txt", 5], "content"),
    ("fs.Write", ["a.txt"], "content"),
    ("fs.List", [".", "maybe"], "recursive"),
    ("fs.Move", ["a"], "destination_path"),
    ("fs.Hash", [["x"]], "filepath"),
])
def test_bad_argument_types_are_code_4_naming_the_argument(fails: Any, tool: str, args: list[Any], bad: str) -> None:
    err = fails(tool, *args)
    assert err.code == ErrorCode.ARG_MISMATCH
    assert f"tool.{tool}" in err.message and f"'{bad}'" in err.message


# ----------------------------------------------------------------------------------------------
# List / Walk / Stat


@pytest.fixture
def tree(sandbox: pathlib.Path) -> pathlib.Path:
    (sandbox / "b").mkdir()
    (sandbox / "b" / "z.txt").write_text("zz")
    (sandbox / "b" / "sub").mkdir()
    (sandbox / "b" / "sub" / "deep.md").write_text("d")
    (sandbox / "a.txt").write_text("aaa")
    (sandbox / ".hidden").write_text("")
    return sandbox


def test_list_is_sorted_and_describes_entries(call: Any, tree: pathlib.Path) -> None:
    entries = call("fs.List")
    assert [e["name"] for e in entries] == [".hidden", "a.txt", "b"]
    a = entries[1]
    assert a["path"] == "a.txt" and a["type"] == "file" and a["is_dir"] is False and a["size_bytes"] == 3
    assert isinstance(a["modified_unix"], int) and a["modified_rfc3339"].endswith("Z")
    assert entries[2]["type"] == "dir" and entries[2]["is_dir"] is True
    assert call("fs.List", "") == entries
    assert [e["path"] for e in call("fs.List", "b")] == ["b/sub", "b/z.txt"]


def test_recursive_list_and_walk(call: Any, interp: Any, tree: pathlib.Path) -> None:
    walked = call("fs.Walk", "b")
    assert [e["path_relative"] for e in walked] == ["sub", "sub/deep.md", "z.txt"]
    assert [e["path"] for e in walked] == ["b/sub", "b/sub/deep.md", "b/z.txt"]
    assert [e["path"] for e in call("fs.List", ".", True)] == [
        ".hidden", "a.txt", "b", "b/sub", "b/sub/deep.md", "b/z.txt"]
    assert [e["path"] for e in call("fs.Walk")] == [e["path"] for e in call("fs.List", recursive=True)]
    assert interp.deadline_checks > 0


def test_walk_stops_at_the_deadline(interp: Any, fails: Any, tree: pathlib.Path) -> None:
    interp.deadline_after = 2
    err = fails("fs.Walk")
    assert isinstance(err, ResourceLimitError) and err.code == ErrorCode.TIMEOUT


def test_walk_entry_limit(fails: Any, tree: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fs, "MAX_WALK_ENTRIES", 3)
    assert fails("fs.Walk").code == ErrorCode.RESOURCE_EXHAUSTION


def test_list_errors(fails: Any, tree: pathlib.Path) -> None:
    assert fails("fs.List", "nope").code == ErrorCode.FILE_NOT_FOUND
    assert fails("fs.List", "a.txt").code == ErrorCode.PATH_TYPE_MISMATCH
    assert fails("fs.Walk", "a.txt").code == ErrorCode.PATH_TYPE_MISMATCH


def test_stat(call: Any, fails: Any, tree: pathlib.Path) -> None:
    s = call("fs.Stat", "b/z.txt")
    assert s["name"] == "z.txt" and s["path"] == "b/z.txt" and s["size_bytes"] == 2 and s["type"] == "file"
    assert s["mode_perm"] == f"{stat.S_IMODE((tree / 'b' / 'z.txt').stat().st_mode):04o}"
    assert call("fs.Stat", "b")["is_dir"] is True
    assert call("fs.Stat", ".")["is_dir"] is True
    assert fails("fs.Stat", "nope").code == ErrorCode.FILE_NOT_FOUND


# ----------------------------------------------------------------------------------------------
# Mkdir / Delete / Move


def test_mkdir(call: Any, fails: Any, sandbox: pathlib.Path) -> None:
    assert call("fs.Mkdir", "x/y/z") == {"path": "x/y/z", "created": True}
    assert (sandbox / "x" / "y" / "z").is_dir()
    assert call("fs.Mkdir", "x/y") == {"path": "x/y", "created": False}
    (sandbox / "f").write_text("")
    assert fails("fs.Mkdir", "f").code == ErrorCode.PATH_TYPE_MISMATCH
    assert fails("fs.Mkdir", "f/sub").code == ErrorCode.PATH_TYPE_MISMATCH
    assert fails("fs.Mkdir", "").code == ErrorCode.ARG_MISMATCH


def test_delete(call: Any, fails: Any, tree: pathlib.Path) -> None:
    assert call("fs.Delete", "a.txt") == "deleted a.txt"
    assert not (tree / "a.txt").exists()
    assert fails("fs.Delete", "a.txt").code == ErrorCode.FILE_NOT_FOUND
    err = fails("fs.Delete", "b")
    assert err.code == ErrorCode.IO_FAILED and "recursive" in err.message
    assert (tree / "b" / "z.txt").exists()
    call("fs.Delete", "b", recursive=True)
    assert not (tree / "b").exists()
    (tree / "empty").mkdir()
    call("fs.Delete", "empty")
    assert not (tree / "empty").exists()


def test_move(call: Any, fails: Any, tree: pathlib.Path) -> None:
    assert call("fs.Move", "a.txt", "b/sub/a2.txt") == {"source": "a.txt", "destination": "b/sub/a2.txt"}
    assert (tree / "b" / "sub" / "a2.txt").read_text() == "aaa" and not (tree / "a.txt").exists()
    call("fs.Move", "b/sub", "sub2")
    assert (tree / "sub2" / "deep.md").exists()
    assert fails("fs.Move", "nope", "x").code == ErrorCode.FILE_NOT_FOUND
    assert fails("fs.Move", "b/z.txt", "sub2/deep.md").code == ErrorCode.PATH_EXISTS
    assert (tree / "b" / "z.txt").read_text() == "zz"  # not overwritten
    assert fails("fs.Move", "b/z.txt", "no/such/dir/z.txt").code == ErrorCode.FILE_NOT_FOUND
    assert fails("fs.Move", "b/z.txt", "./b/z.txt").code == ErrorCode.ARG_MISMATCH
    assert fails("fs.Move", "b", "b/inside").code == ErrorCode.IO_FAILED


# ----------------------------------------------------------------------------------------------
# Hash / LineCount / SanitizeFilename


def test_hash(call: Any, fails: Any, sandbox: pathlib.Path) -> None:
    (sandbox / "h.bin").write_bytes(b"\x00\xffabc")
    assert call("fs.Hash", "h.bin") == hashlib.sha256(b"\x00\xffabc").hexdigest()
    assert call("fs.Hash", "h.bin", "MD5") == hashlib.md5(b"\x00\xffabc").hexdigest()
    assert call("fs.Hash", "h.bin", algorithm="sha-512") == hashlib.sha512(b"\x00\xffabc").hexdigest()
    err = fails("fs.Hash", "h.bin", "crc32")
    assert err.code == ErrorCode.ARG_MISMATCH and "'algorithm'" in err.message
    assert fails("fs.Hash", "nope").code == ErrorCode.FILE_NOT_FOUND


@pytest.mark.parametrize("content,lines", [(b"", 0), (b"a", 1), (b"a\n", 1), (b"a\nb", 2), (b"\n\n", 2),
                                           (b"a\r\nb\r\n", 2)])
def test_line_count(call: Any, sandbox: pathlib.Path, content: bytes, lines: int) -> None:
    (sandbox / "f").write_bytes(content)
    assert call("fs.LineCount", "f") == lines


@pytest.mark.parametrize("name,expected", [
    ("report.txt", "report.txt"),
    ("Report: Q1/Q2 *final*.txt", "Report_Q1_Q2_final_.txt"),
    ("../../etc/passwd", "etc_passwd"),
    ("...", "unnamed"),
    ("", "unnamed"),
    ("  spaced name  ", "spaced_name"),
    ("héllo wörld.md", "héllo_wörld.md"),
    ("CON.txt", "CON_.txt"),
    ("a\x00b\\c", "a_b_c"),
])
def test_sanitize_filename(call: Any, name: str, expected: str) -> None:
    assert call("fs.SanitizeFilename", name) == expected


def test_sanitize_filename_limits_length_and_keeps_extension(call: Any) -> None:
    out = call("fs.SanitizeFilename", "x" * 500 + ".json")
    assert len(out) <= 200 and out.endswith(".json")
