"""The ``fs`` tool group: files and directories inside the interpreter's sandbox directory.

Upstream 0.4.2 ``FS.*`` tools (spec/language.md §8.5), registered as ``tool.fs.<Name>`` with the
upstream names as aliases. Every path is relative to ``interpreter.sandbox_dir`` and is checked by
:mod:`._sandbox` before anything touches the disk: absolute paths, ``..`` above the sandbox and
symbolic links that resolve outside it are refused with code 34 (PathViolation), and nothing outside
the sandbox is ever read, written, created or deleted.

Other rules shared by the group:

* Text is UTF-8, written and read as is (no newline translation).
* Reads and writes are limited to ``interpreter.limits.max_file_bytes`` bytes (default 10 MiB);
  a larger file or content is refused with code 37 (ResourceExhaustion) before anything is changed.
* ``Write`` is atomic: the content goes to a temporary file in the same directory, which then
  replaces the target (``os.replace``). A failed write leaves the old content and no temporary file.
  ``Append`` writes with ``O_APPEND`` and truncates back to the old size if the write fails.
* Entry maps (``Stat``, ``List``, ``Walk``) have the keys ``name``, ``path`` (relative to the sandbox,
  ``/`` separators), ``type`` (``file``, ``dir``, ``symlink`` or ``other``), ``is_dir``,
  ``size_bytes``, ``modified_unix`` (seconds), ``modified_rfc3339`` and ``mode_perm`` (e.g. ``"0644"``),
  plus the upstream 0.4.2 keys ``isDir``, ``size`` (bytes) and ``modTime`` (RFC 3339, UTC).
  ``Walk`` and recursive ``List`` add ``path_relative`` (relative to the directory walked).
* nslang's own files in the sandbox (AI worker data, locks, temporaries: names matching ``ai_worker_*``,
  ``.ai_worker_*`` or ``.nslang*`` in any letter case) can be read but not written, appended to,
  created, moved, deleted or replaced: code 11 (ReadOnly), also through a symbolic or hard link, and
  for a directory that holds one (issue 10 item 3; :mod:`nslang.workers.sandbox_files`).
* Errors: 11 ReadOnly, 22 FileNotFound, 23 PathTypeMismatch, 24 PathExists, 25 PermissionDenied,
  26 IOFailed, 34 PathViolation, 37 ResourceExhaustion; an empty path is code 4 (except for List/Walk,
  where it means the sandbox directory).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import re
import secrets
import stat as _stat
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ...errors import ErrorCode
from ..registry import ToolContext, tool
from ._common import arg_error
from ._sandbox import (
    O_NONBLOCK,
    DirRef,
    SPath,
    kind,
    lstat,
    max_file_bytes,
    open_dir,
    open_file,
    open_subdir,
    os_error,
    resolve,
    rmtree_at,
    too_large,
)

__all__ = ["TOOLS"]

_CHUNK = 1 << 20
#: Walk and recursive List stop with code 37 after this many entries.
MAX_WALK_ENTRIES = 100_000
#: Hash algorithms accepted by ``fs.Hash``.
HASH_ALGORITHMS = ("sha256", "sha512", "sha1", "md5", "blake2b")


def _rfc3339(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _entry(name: str, path: str, st: os.stat_result) -> dict[str, Any]:
    k = kind(st)
    return {
        "name": name,
        "path": path,
        "type": k,
        "is_dir": k == "dir",
        "size_bytes": st.st_size,
        "modified_unix": int(st.st_mtime),
        "modified_rfc3339": _rfc3339(st.st_mtime),
        "mode_perm": f"{_stat.S_IMODE(st.st_mode):04o}",
        # the upstream 0.4.2 FS.List keys, which upstream scripts read (issue 15)
        "isDir": k == "dir",
        "size": st.st_size,
        "modTime": _rfc3339(st.st_mtime),
    }


def _deadline(ctx: ToolContext) -> None:
    check = getattr(ctx.interpreter, "check_deadline", None)
    if check is not None:
        check()


def _open_regular_for_reading(ctx: ToolContext, sp: SPath) -> tuple[int, os.stat_result]:
    """Open ``sp`` for reading; refuse directories and special files (a FIFO would block)."""
    if sp.is_root:
        raise arg_error(sp.arg, f"cannot read {sp.given!r}: it is a directory", code=ErrorCode.PATH_TYPE_MISMATCH)
    try:
        with open_dir(sp, sp.parts[:-1]) as d:
            fd = open_file(d, sp.name, os.O_RDONLY | O_NONBLOCK)
    except OSError as e:
        raise os_error(e, sp, "read") from None
    try:
        st = os.fstat(fd)
        if not _stat.S_ISREG(st.st_mode):
            what = "a directory" if _stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise arg_error(sp.arg, f"cannot read {sp.given!r}: it is {what}", code=ErrorCode.PATH_TYPE_MISMATCH)
        limit = max_file_bytes(ctx.interpreter)
        if st.st_size > limit:
            raise too_large(sp, st.st_size, limit, "the file")
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def _iter_chunks(ctx: ToolContext, sp: SPath, fd: int) -> Iterator[bytes]:
    """Yield the file's bytes in chunks, at most ``max_file_bytes`` in total (code 37 beyond)."""
    limit = max_file_bytes(ctx.interpreter)
    total = 0
    while True:
        _deadline(ctx)
        try:
            chunk = os.read(fd, _CHUNK)
        except OSError as e:
            raise os_error(e, sp, "read") from None
        if not chunk:
            return
        total += len(chunk)
        if total > limit:  # the file grew after the size check
            raise too_large(sp, total, limit, "the file")
        yield chunk


def _read_bytes(ctx: ToolContext, sp: SPath) -> bytes:
    fd, _st = _open_regular_for_reading(ctx, sp)
    try:
        return b"".join(_iter_chunks(ctx, sp, fd))
    finally:
        os.close(fd)


def _decode(sp: SPath, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise arg_error(sp.arg, f"cannot read {sp.given!r} as text: it is not valid UTF-8 (byte {e.start})",
                        code=ErrorCode.IO_FAILED) from None


def _encode_content(ctx: ToolContext, sp: SPath, content: str) -> bytes:
    try:
        data = content.encode("utf-8")
    except UnicodeEncodeError as e:  # lone surrogates
        raise arg_error("content", f"cannot be encoded as UTF-8 (character {e.start})") from None
    limit = max_file_bytes(ctx.interpreter)
    if len(data) > limit:
        raise too_large(sp, len(data), limit, "the content")
    return data


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _check_writable_target(sp: SPath, st: os.stat_result | None) -> None:
    if st is None:
        return
    if _stat.S_ISDIR(st.st_mode):
        raise arg_error(sp.arg, f"cannot write {sp.given!r}: it is a directory", code=ErrorCode.PATH_TYPE_MISMATCH)
    if _stat.S_ISLNK(st.st_mode):
        raise arg_error(sp.arg, f"cannot write {sp.given!r}: a symbolic link appeared in the path after it "
                        "was checked", code=ErrorCode.PATH_VIOLATION)
    if not _stat.S_ISREG(st.st_mode):
        raise arg_error(sp.arg, f"cannot write {sp.given!r}: it is not a regular file",
                        code=ErrorCode.PATH_TYPE_MISMATCH)


def _atomic_replace(d: DirRef, name: str, data: bytes, old: os.stat_result | None) -> None:
    """Write ``data`` to a temporary file next to ``name``, then rename it over ``name``."""
    tmp = f".nslang-tmp-{secrets.token_hex(8)}"
    fd = open_file(d, tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        try:
            if old is not None and os.chmod in os.supports_fd:
                os.chmod(fd, _stat.S_IMODE(old.st_mode))
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(d.child(tmp), d.child(name), src_dir_fd=d.fd, dst_dir_fd=d.fd)
    except BaseException:
        try:
            os.unlink(d.child(tmp), dir_fd=d.fd)
        except OSError:
            pass
        raise


# ----------------------------------------------------------------------------------------------
# Reading


@tool("fs", "Read", aliases=("FS.Read",))
def read(ctx: ToolContext, filepath: str) -> str:
    """Read a whole UTF-8 text file inside the sandbox.

    Upstream 0.4.2 FS.Read (see `nslang help tools`).

    Args:
        filepath: file path relative to the sandbox directory.

    Returns:
        The file's text, exactly as stored (no newline translation).

    Raises:
        22 the file does not exist; 23 it is a directory or not a regular file; 25 permission denied;
        26 not valid UTF-8 or another I/O error; 34 the path leaves the sandbox; 37 larger than
        limits.max_file_bytes.

    Example:
        set text = tool.fs.Read("notes/todo.txt")
    """
    sp = resolve(ctx.interpreter, "filepath", filepath, mutate=False)
    return _decode(sp, _read_bytes(ctx, sp))


@tool("fs", "Hash", aliases=("FS.Hash",))
def hash_(ctx: ToolContext, filepath: str, algorithm: str = "sha256") -> str:
    """Hash a file's bytes.

    Upstream 0.4.2 FS.Hash (SHA-256 only); ``algorithm`` is an nslang addition.

    Args:
        filepath: file path relative to the sandbox directory.
        algorithm: one of sha256, sha512, sha1, md5, blake2b.

    Returns:
        The lower-case hexadecimal digest.

    Raises:
        4 unknown algorithm; 22 not found; 23 a directory; 25 permission denied; 26 I/O error;
        34 outside the sandbox; 37 larger than limits.max_file_bytes.

    Example:
        set digest = tool.fs.Hash("data.csv")
    """
    algo = algorithm.lower().replace("-", "")
    if algo not in HASH_ALGORITHMS:
        raise arg_error("algorithm", f"must be one of {', '.join(HASH_ALGORITHMS)}, got {algorithm!r}")
    sp = resolve(ctx.interpreter, "filepath", filepath, mutate=False)
    h = hashlib.new(algo)
    fd, _st = _open_regular_for_reading(ctx, sp)
    try:
        for chunk in _iter_chunks(ctx, sp, fd):
            h.update(chunk)
    finally:
        os.close(fd)
    return h.hexdigest()


@tool("fs", "LineCount", aliases=("FS.LineCount",))
def line_count(ctx: ToolContext, filepath: str) -> int:
    """Count the lines of a file.

    Upstream 0.4.2 FS.LineCount. A final line without a newline counts; an empty file has 0 lines.

    Args:
        filepath: file path relative to the sandbox directory.

    Returns:
        The number of lines.

    Raises:
        22 not found; 23 a directory; 25 permission denied; 26 I/O error; 34 outside the sandbox;
        37 larger than limits.max_file_bytes.

    Example:
        set n = tool.fs.LineCount("log.txt")
    """
    sp = resolve(ctx.interpreter, "filepath", filepath, mutate=False)
    fd, _st = _open_regular_for_reading(ctx, sp)
    count = 0
    last = b""
    try:
        for chunk in _iter_chunks(ctx, sp, fd):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    finally:
        os.close(fd)
    if last and last != b"\n":
        count += 1
    return count


@tool("fs", "Stat", aliases=("FS.Stat",))
def stat(ctx: ToolContext, path: str) -> dict[str, Any]:
    """Describe a file or directory (symbolic links inside the sandbox are followed).

    Upstream 0.4.2 FS.Stat.

    Args:
        path: path relative to the sandbox directory; "" or "." is the sandbox itself.

    Returns:
        An entry map: name, path, type, is_dir, size_bytes, modified_unix, modified_rfc3339, mode_perm.

    Raises:
        22 not found; 25 permission denied; 26 I/O error; 34 outside the sandbox.

    Example:
        set info = tool.fs.Stat("report.md")
    """
    sp = resolve(ctx.interpreter, "path", path, empty_is_root=True, mutate=False)
    try:
        if sp.is_root:
            with open_dir(sp) as d:
                st = os.stat(d.fd) if d.fd is not None else os.stat(d.path)
            return _entry(".", ".", st)
        with open_dir(sp, sp.parts[:-1]) as d:
            st = os.stat(d.child(sp.name), dir_fd=d.fd, follow_symlinks=False)
    except OSError as e:
        raise os_error(e, sp, "stat") from None
    return _entry(sp.display.rsplit("/", 1)[-1], sp.display, st)


@contextmanager
def _open_below(top: DirRef, rel: tuple[str, ...]) -> Iterator[DirRef]:
    """Open directory ``rel`` below the open directory ``top``, one component at a time (no links)."""
    if top.fd is None or not rel:
        yield top if not rel else DirRef(None, os.path.join(top.path, *rel))
        return
    opened: list[int] = []
    try:
        cur = top.fd
        for part in rel:
            cur = open_subdir(cur, part)
            opened.append(cur)
        yield DirRef(cur, os.path.join(top.path, *rel))
    finally:
        for fd in opened:
            os.close(fd)


def _collect(ctx: ToolContext, sp: SPath, recursive: bool) -> list[dict[str, Any]]:
    """Entries of directory ``sp`` (and below when ``recursive``), sorted; never follows links.

    Directories are visited from an explicit stack, each opened afresh from the top directory, so
    the number of open descriptors stays bounded by the depth of the tree.
    """
    out: list[tuple[tuple[str, ...], dict[str, Any]]] = []
    try:
        with open_dir(sp) as top:
            stack: list[tuple[str, ...]] = [()]
            while stack:
                rel = stack.pop()
                with _open_below(top, rel) as d, os.scandir(d.listing_target()) as it:
                    entries = list(it)
                    for e in entries:
                        _deadline(ctx)
                        st = e.stat(follow_symlinks=False)
                        parts = (*rel, e.name)
                        info = _entry(e.name, sp.child_display("/".join(parts)), st)
                        if recursive:
                            info["path_relative"] = "/".join(parts)
                            if _stat.S_ISDIR(st.st_mode):
                                stack.append(parts)
                        out.append((parts, info))
                        if len(out) > MAX_WALK_ENTRIES:
                            raise arg_error(sp.arg, f"{sp.given!r} holds more than {MAX_WALK_ENTRIES} entries",
                                            code=ErrorCode.RESOURCE_EXHAUSTION)
    except OSError as e:
        raise os_error(e, sp, "list") from None
    out.sort(key=lambda item: item[0])
    return [info for _parts, info in out]


@tool("fs", "List", aliases=("FS.List",))
def list_(ctx: ToolContext, path: str = ".", recursive: bool = False) -> list[Any]:
    """List a directory's entries, sorted by name (symbolic links are listed, not followed).

    Upstream 0.4.2 FS.List.

    Args:
        path: directory relative to the sandbox; "" or "." is the sandbox itself.
        recursive: also list everything below, depth first (entries then get path_relative).

    Returns:
        A list of entry maps (name, path, type, is_dir, size_bytes, modified_unix,
        modified_rfc3339, mode_perm, and the upstream isDir, size, modTime).

    Raises:
        22 not found; 23 not a directory; 25 permission denied; 26 I/O error; 34 outside the sandbox;
        37 more than 100000 entries.

    Example:
        set entries = tool.fs.List("docs", recursive: true)
    """
    sp = resolve(ctx.interpreter, "path", path, empty_is_root=True, mutate=False)
    return _collect(ctx, sp, recursive)


@tool("fs", "Walk", aliases=("FS.Walk",))
def walk(ctx: ToolContext, path: str = ".") -> list[Any]:
    """Walk a directory tree: every file and directory below ``path``, depth first, sorted by path.

    Upstream 0.4.2 FS.Walk. The start directory itself is not included. Symbolic links are
    reported (type "symlink") but never followed.

    Args:
        path: directory relative to the sandbox; "" or "." is the sandbox itself.

    Returns:
        A list of entry maps with path_relative (relative to ``path``) in addition to the
        keys of fs.Stat.

    Raises:
        22 not found; 23 not a directory; 25 permission denied; 26 I/O error; 34 outside the sandbox;
        37 more than 100000 entries; the run's time limit is checked while walking.

    Example:
        set files = tool.fs.Walk("src")
    """
    sp = resolve(ctx.interpreter, "path", path, empty_is_root=True, mutate=False)
    return _collect(ctx, sp, True)


# ----------------------------------------------------------------------------------------------
# Writing


@tool("fs", "Write", aliases=("FS.Write",))
def write(ctx: ToolContext, filepath: str, content: str) -> str:
    """Write text to a file atomically, replacing it; missing parent directories are created.

    Upstream 0.4.2 FS.Write. The content goes to a temporary file in the same directory which
    then replaces the target, so readers see the old or the new content, never a mix; a failed
    write leaves the old content. An existing file keeps its permissions.

    Args:
        filepath: file path relative to the sandbox directory.
        content: the text to write (stored as UTF-8).

    Returns:
        A message "wrote N bytes to PATH" (N in bytes).

    Raises:
        4 empty path; 11 an nslang internal file; 23 the path is a directory (or a parent is a file);
        25 permission denied; 26 I/O error; 34 outside the sandbox; 37 content larger than
        limits.max_file_bytes.

    Example:
        call tool.fs.Write("out/result.txt", "done\\n")
    """
    sp = resolve(ctx.interpreter, "filepath", filepath, allow_root=False)
    data = _encode_content(ctx, sp, content)
    try:
        with open_dir(sp, sp.parts[:-1], create=True) as d:
            old = lstat(d, sp.name)
            _check_writable_target(sp, old)
            _atomic_replace(d, sp.name, data, old)
    except OSError as e:
        raise os_error(e, sp, "write") from None
    return f"wrote {len(data)} bytes to {sp.display}"


@tool("fs", "Append", aliases=("FS.Append",))
def append(ctx: ToolContext, filepath: str, content: str) -> str:
    """Append text to a file, creating it (and missing parent directories) if needed.

    Upstream 0.4.2 FS.Append. The file is opened with O_APPEND and written in one go; if the write
    fails, the file is truncated back to its old size.

    Args:
        filepath: file path relative to the sandbox directory.
        content: the text to append (stored as UTF-8).

    Returns:
        A message "appended N bytes to PATH".

    Raises:
        4 empty path; 11 an nslang internal file; 23 the path is a directory; 25 permission denied;
        26 I/O error; 34 outside the sandbox; 37 the resulting file would be larger than
        limits.max_file_bytes.

    Example:
        call tool.fs.Append("log.txt", "step 1 ok\\n")
    """
    sp = resolve(ctx.interpreter, "filepath", filepath, allow_root=False)
    data = _encode_content(ctx, sp, content)
    limit = max_file_bytes(ctx.interpreter)
    try:
        with open_dir(sp, sp.parts[:-1], create=True) as d:
            _check_writable_target(sp, lstat(d, sp.name))
            fd = open_file(d, sp.name, os.O_WRONLY | os.O_APPEND | os.O_CREAT | O_NONBLOCK)
            try:
                st = os.fstat(fd)
                if not _stat.S_ISREG(st.st_mode):
                    raise arg_error(sp.arg, f"cannot append to {sp.given!r}: it is not a regular file",
                                    code=ErrorCode.PATH_TYPE_MISMATCH)
                if st.st_size + len(data) > limit:
                    raise too_large(sp, st.st_size + len(data), limit, "the file after appending")
                try:
                    _write_all(fd, data)
                except BaseException:
                    os.ftruncate(fd, st.st_size)
                    raise
            finally:
                os.close(fd)
    except OSError as e:
        raise os_error(e, sp, "append to") from None
    return f"appended {len(data)} bytes to {sp.display}"


@tool("fs", "Mkdir", aliases=("FS.Mkdir",))
def mkdir(ctx: ToolContext, path: str) -> dict[str, Any]:
    """Create a directory and any missing parents; an existing directory is not an error.

    Upstream 0.4.2 FS.Mkdir.

    Args:
        path: directory path relative to the sandbox directory.

    Returns:
        A map {"path": PATH, "created": true when it did not exist before}.

    Raises:
        4 empty path; 11 an nslang internal name; 23 the path (or a parent) exists and is not a
        directory; 25 permission denied; 26 I/O error; 34 outside the sandbox.

    Example:
        call tool.fs.Mkdir("out/reports")
    """
    sp = resolve(ctx.interpreter, "path", path)
    if sp.is_root:
        return {"path": sp.display, "created": False}
    try:
        with open_dir(sp, sp.parts[:-1], create=True) as d:
            existing = lstat(d, sp.name)
            if existing is not None:
                if not _stat.S_ISDIR(existing.st_mode):
                    raise arg_error(sp.arg, f"cannot create directory {sp.given!r}: a file with that name exists",
                                    code=ErrorCode.PATH_TYPE_MISMATCH)
                return {"path": sp.display, "created": False}
            os.mkdir(d.child(sp.name), 0o777, dir_fd=d.fd)
    except OSError as e:
        raise os_error(e, sp, "create directory") from None
    return {"path": sp.display, "created": True}


@tool("fs", "Delete", aliases=("FS.Delete",))
def delete(ctx: ToolContext, path: str, recursive: bool = False) -> str:
    """Delete a file, a symbolic link (not its target) or a directory.

    Upstream 0.4.2 FS.Delete (files and empty directories); ``recursive`` is an nslang addition.

    Args:
        path: path relative to the sandbox directory (the sandbox itself cannot be deleted).
        recursive: also delete a non-empty directory with everything in it.

    Returns:
        A message "deleted PATH".

    Raises:
        4 empty path; 11 an nslang internal file, or (recursive) a directory holding one; 22 not
        found; 25 permission denied; 26 a non-empty directory without recursive, or another I/O
        error; 34 outside the sandbox, or the sandbox directory itself.

    Example:
        call tool.fs.Delete("tmp", true)
    """
    sp = resolve(ctx.interpreter, "path", path, follow=False, allow_root=False, tree=recursive)
    try:
        with open_dir(sp, sp.parts[:-1]) as d:
            st = lstat(d, sp.name)
            if st is None:
                raise FileNotFoundError(2, "No such file or directory")
            if _stat.S_ISDIR(st.st_mode):
                if recursive:
                    rmtree_at(d, sp.name, tick=lambda: _deadline(ctx))
                else:
                    os.rmdir(d.child(sp.name), dir_fd=d.fd)
            else:
                os.unlink(d.child(sp.name), dir_fd=d.fd)
    except OSError as e:
        raise os_error(e, sp, "delete") from None
    return f"deleted {sp.display}"


@tool("fs", "Move", aliases=("FS.Move",))
def move(ctx: ToolContext, source_path: str, destination_path: str) -> dict[str, Any]:
    """Move or rename a file or directory inside the sandbox; never overwrites.

    Upstream 0.4.2 FS.Move. A symbolic link is moved itself, not its target. The destination's
    parent directory must exist.

    Args:
        source_path: what to move, relative to the sandbox directory.
        destination_path: the new path, relative to the sandbox directory; must not exist.

    Returns:
        A map {"source": SOURCE, "destination": DESTINATION}.

    Raises:
        4 empty path or the same path twice; 11 either path is an nslang internal file, or the
        source is a directory holding one; 22 the source (or the destination's directory) does
        not exist; 24 the destination exists; 25 permission denied; 26 I/O error (e.g. moving a
        directory into itself); 34 either path leaves the sandbox, or is the sandbox itself.

    Example:
        call tool.fs.Move("draft.md", "final.md")
    """
    src = resolve(ctx.interpreter, "source_path", source_path, follow=False, allow_root=False, tree=True)
    dst = resolve(ctx.interpreter, "destination_path", destination_path, follow=False, allow_root=False)
    if src.parts == dst.parts:
        raise arg_error("destination_path", f"{destination_path!r} is the same path as the source")
    try:
        with open_dir(src, src.parts[:-1]) as sd:
            if lstat(sd, src.name) is None:
                raise os_error(FileNotFoundError(2, "No such file or directory"), src, "move")
            try:
                with open_dir(dst, dst.parts[:-1]) as dd:
                    if lstat(dd, dst.name) is not None:
                        raise os_error(FileExistsError(17, "File exists"), dst, "move to")
                    try:
                        os.rename(sd.child(src.name), dd.child(dst.name), src_dir_fd=sd.fd, dst_dir_fd=dd.fd)
                    except OSError as e:
                        raise os_error(e, src, f"move to {destination_path!r}") from None
            except OSError as e:
                raise os_error(e, dst, "move to") from None
    except OSError as e:
        raise os_error(e, src, "move") from None
    return {"source": src.display, "destination": dst.display}


# ----------------------------------------------------------------------------------------------
# Pure helpers

_UNSAFE = re.compile(r"[^\w.\-]+", re.UNICODE)
_RESERVED = frozenset(
    ["con", "prn", "aux", "nul"] + [f"com{i}" for i in range(1, 10)] + [f"lpt{i}" for i in range(1, 10)]
)


@tool("fs", "SanitizeFilename", aliases=("FS.SanitizeFilename",))
def sanitize_filename(name: str) -> str:
    """Turn any text into a safe single file name (no directories, no leading dot).

    Upstream 0.4.2 FS.SanitizeFilename. Runs of characters other than letters, digits, ``_``,
    ``-`` and ``.`` become ``_``; leading and trailing dots, dashes, underscores and spaces are
    removed; ``..`` sequences are collapsed; Windows device names get a ``_`` suffix; the result is
    at most 200 characters. Text with nothing usable gives ``"unnamed"``.

    Args:
        name: the text to turn into a file name.

    Returns:
        The sanitised file name (never empty, never containing / or \\).

    Example:
        set fname = tool.fs.SanitizeFilename("Report: Q1/Q2 *final*.txt")
    """
    s = unicodedata.normalize("NFC", name)
    s = _UNSAFE.sub("_", s)
    s = re.sub(r"\.{2,}", ".", s)
    s = re.sub(r"_{2,}", "_", s)
    s = s.strip("._- ")
    if len(s) > 200:
        stem, dot, ext = s.rpartition(".")
        s = (stem[: 200 - len(ext) - 1] + dot + ext) if dot and 0 < len(ext) <= 16 else s[:200]
        s = s.strip("._- ")
    if not s:
        return "unnamed"
    stem, dot, rest = s.partition(".")
    if stem.lower() in _RESERVED:
        s = f"{stem}_{dot}{rest}"
    return s


TOOLS: list[Any] = [read, write, append, list_, walk, mkdir, delete, move, stat, hash_, line_count, sanitize_filename]
