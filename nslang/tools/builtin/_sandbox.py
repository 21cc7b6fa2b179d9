"""Sandbox confinement for the ``fs`` tools: path checks, descriptor-relative access, OS error mapping.

Every path a script passes to an ``fs`` tool goes through :func:`resolve` before anything touches the
disk. The rules (spec/language.md Part 1 "Tools", issue 3):

1. Paths are relative to the interpreter's ``sandbox_dir``. An empty path, where the tool allows it,
   means the sandbox directory itself.
2. Absolute paths (``/etc/passwd``, ``\\\\server\\x``, ``C:\\x``) and paths containing NUL are refused
   (code 34, PathViolation).
3. ``..`` may be used as long as the path stays inside the sandbox; ``../x`` is refused (34).
4. Symbolic links are followed only while they stay inside: the path is resolved with
   ``os.path.realpath`` and must lie inside the (resolved) sandbox directory, or it is refused (34).
   This covers links to files, links to directories and links in intermediate directories.
   ``fs.Delete`` and ``fs.Move`` act on a link itself, not on its target, but still refuse a link
   whose target lies outside.
5. nslang's own files are read-only to scripts (issue 10 item 3). A path that changes something
   (every tool but the read-only ones passes ``mutate=True``: write, append, create, mkdir, delete,
   move as source or destination) is refused with code 11 (ReadOnly) when a component of it, as
   written or after resolving links, matches
   :data:`nslang.workers.sandbox_files.PROTECTED_PATTERNS` (``ai_worker_*``, ``.ai_worker_*``,
   ``.nslang*``), compared case-insensitively after NFKC normalisation
   (:func:`~nslang.workers.sandbox_files.name_key`); when the target is a regular file that is a hard
   link to such a file (in the sandbox directory or beside the target); and, for ``tree=True``
   (recursive delete, move), when a directory holds such a file anywhere below it. Reading them stays
   allowed.

After the check, the tools do not use the path string again. They open the sandbox directory and
walk the *resolved* components one at a time with ``O_NOFOLLOW | O_DIRECTORY`` and then operate
relative to that directory descriptor (``dir_fd``), opening files with ``O_NOFOLLOW``. A symbolic link
swapped into the path after the check therefore makes the call fail instead of escaping (the
check-then-use race is closed on POSIX). Where the platform lacks ``dir_fd`` support (Windows), the
tools fall back to the resolved absolute path, which keeps rules 1-4 but not the race protection.
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
import shutil
import stat as _stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ...errors import ErrorCode, ToolError
from ...workers.sandbox_files import PROTECTED_PATTERNS, is_protected_name
from ._common import arg_error

__all__ = [
    "DirRef", "SPath", "kind", "lstat", "max_file_bytes", "open_dir", "open_file", "open_subdir", "os_error",
    "resolve", "rmtree_at", "sandbox_root", "too_large",
]

O_NOFOLLOW: int = getattr(os, "O_NOFOLLOW", 0)
O_DIRECTORY: int = getattr(os, "O_DIRECTORY", 0)
O_CLOEXEC: int = getattr(os, "O_CLOEXEC", 0)
O_NONBLOCK: int = getattr(os, "O_NONBLOCK", 0)
O_BINARY: int = getattr(os, "O_BINARY", 0)

#: True where descriptor-relative operations are available (Linux, macOS, BSD).
FD_MODE: bool = bool(
    O_NOFOLLOW
    and O_DIRECTORY
    and {os.open, os.stat, os.mkdir, os.rename, os.unlink, os.rmdir} <= os.supports_dir_fd
    and os.scandir in os.supports_fd
)

DEFAULT_MAX_FILE_BYTES = 10 * 1024 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class SPath:
    """A path argument that passed the sandbox check.

    Attributes:
        arg: the tool argument it came from (for messages).
        given: the path as the script wrote it.
        display: the lexically normalised relative path with ``/`` separators (``.`` is the sandbox).
        parts: the components of the resolved (symlink-free) path below ``root``; empty for the root.
        root: the resolved sandbox directory.
    """

    arg: str
    given: str
    display: str
    parts: tuple[str, ...]
    root: str

    @property
    def is_root(self) -> bool:
        """Whether the path is the sandbox directory itself."""
        return not self.parts

    @property
    def name(self) -> str:
        """The last resolved component (empty for the root)."""
        return self.parts[-1] if self.parts else ""

    @property
    def abspath(self) -> str:
        """The resolved absolute path (used only for messages and in the non-``dir_fd`` fallback)."""
        return os.path.join(self.root, *self.parts)

    def child_display(self, name: str) -> str:
        """The display path of an entry ``name`` inside this directory."""
        return name if self.display == "." else f"{self.display}/{name}"


def _inside(root: str, real: str) -> bool:
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def _violation(arg: str, path: str, why: str) -> ToolError:
    return arg_error(arg, f"path {path!r} {why}", code=ErrorCode.PATH_VIOLATION)


def sandbox_root(interp: Any) -> str:
    """The resolved sandbox directory of ``interp``."""
    return str(os.path.realpath(os.fspath(interp.sandbox_dir)))


def resolve(interp: Any, arg: str, path: str, *, follow: bool = True, empty_is_root: bool = False,
            allow_root: bool = True, mutate: bool = True, tree: bool = False) -> SPath:
    """Check ``path`` against the sandbox of ``interp`` and resolve it.

    Args:
        interp: the calling interpreter (``sandbox_dir``).
        arg: the argument name, for messages.
        path: the script's path, relative to the sandbox.
        follow: resolve a symbolic link in the last component (False: keep the link itself).
        empty_is_root: an empty path means the sandbox directory (else code 4).
        allow_root: the sandbox directory itself is an acceptable target (else code 34).
        mutate: the tool changes the path (the default, so a new tool is protected unless it says it
            only reads); False for read-only tools, which may read nslang's internal files.
        tree: the change also affects everything below a directory (recursive delete, move).

    Returns:
        The checked :class:`SPath`.

    Raises:
        ToolError: code 4 for an empty path; code 34 (PathViolation) for an absolute path, a NUL
            byte, a ``..`` that leaves the sandbox or a symbolic link that resolves outside it;
            code 11 (ReadOnly) when ``mutate`` and the path is, or holds, one of nslang's internal
            files (rule 5).
    """
    root = sandbox_root(interp)
    if path == "":
        if not empty_is_root:
            raise arg_error(arg, "must not be an empty path")
        path = "."
    if "\x00" in path:
        raise _violation(arg, path, "contains a NUL byte")
    if os.path.isabs(path) or path.startswith(("/", "\\")) or _DRIVE.match(path):
        raise _violation(arg, path, "is absolute; fs tools only accept paths relative to the sandbox directory")
    norm = posixpath.normpath(path.replace(os.sep, "/") if os.sep != "/" else path)
    if norm == ".." or norm.startswith("../"):
        raise _violation(arg, path, "leaves the sandbox directory ('..' goes above it)")
    if follow or norm == ".":
        real = os.path.realpath(os.path.join(root, path))
    else:
        head, tail = posixpath.split(norm)
        parent = os.path.realpath(os.path.join(root, head)) if head else root
        real = os.path.join(parent, tail)
    if not _inside(root, real):
        raise _violation(arg, path, "resolves outside the sandbox directory (through a symbolic link)")
    if not follow and os.path.islink(real) and not _inside(root, os.path.realpath(real)):
        raise _violation(arg, path, "is a symbolic link that points outside the sandbox directory")
    rel = os.path.relpath(real, root)
    parts = () if rel == "." else tuple(rel.split(os.sep))
    if not parts and not allow_root:
        raise _violation(arg, path, "is the sandbox directory itself")
    sp = SPath(arg, path, norm, parts, root)
    if mutate:
        _check_not_protected(interp, sp, tree)
    return sp


# ----------------------------------------------------------------------------------------------
# nslang's internal files (rule 5)


def _read_only(sp: SPath, why: str) -> ToolError:
    return arg_error(sp.arg, f"path {sp.given!r} {why}; nslang's internal files (names matching "
                     f"{', '.join(PROTECTED_PATTERNS)} in any letter case) can be read but not changed by a script",
                     code=ErrorCode.READ_ONLY)


def _check_not_protected(interp: Any, sp: SPath, tree: bool) -> None:
    for name in (*sp.display.split("/"), *sp.parts):
        if is_protected_name(name):
            raise _read_only(sp, f"refers to {name!r}")
    if not sp.parts:
        return
    real = sp.abspath
    try:
        st = os.lstat(real)
    except OSError:
        return
    if _stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
        twin = _protected_twin(st, (sp.root, os.path.dirname(real)))
        if twin is not None:
            raise _read_only(sp, f"is a hard link to {twin!r}")
    elif tree and _stat.S_ISDIR(st.st_mode):
        inner = _protected_below(interp, real)
        if inner is not None:
            raise _read_only(sp, f"holds {inner!r}")


def _protected_twin(st: os.stat_result, directories: tuple[str, ...]) -> str | None:
    """The name of a protected file in ``directories`` that is the same inode as ``st``, if any."""
    for directory in dict.fromkeys(directories):
        try:
            with os.scandir(directory) as it:
                for e in it:
                    if is_protected_name(e.name):
                        other = e.stat(follow_symlinks=False)
                        if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
                            return e.name
        except OSError:
            continue
    return None


def _protected_below(interp: Any, top: str) -> str | None:
    """The relative path of the first protected name below directory ``top`` (links not followed)."""
    check = getattr(interp, "check_deadline", None)
    for current, dirs, files in os.walk(top, followlinks=False):
        for name in (*dirs, *files):
            if check is not None:
                check()
            if is_protected_name(name):
                return os.path.relpath(os.path.join(current, name), top).replace(os.sep, "/")
    return None


# ----------------------------------------------------------------------------------------------
# Descriptor-relative access


@dataclass(frozen=True)
class DirRef:
    """An open directory inside the sandbox: a descriptor (POSIX) or a resolved path (fallback).

    Use ``child(name)`` as the path and ``fd`` as ``dir_fd`` in ``os`` calls; both work in either mode.
    """

    fd: int | None
    path: str

    def child(self, name: str) -> str:
        """The path argument that names ``name`` inside this directory."""
        return name if self.fd is not None else os.path.join(self.path, name)

    def listing_target(self) -> int | str:
        """What ``os.scandir`` should list."""
        return self.fd if self.fd is not None else self.path


def open_subdir(fd: int, name: str) -> int:
    """Open directory ``name`` inside directory ``fd`` without following a symbolic link."""
    return os.open(name, os.O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, dir_fd=fd)


@contextmanager
def open_dir(sp: SPath, parts: tuple[str, ...] | None = None, *, create: bool = False) -> Iterator[DirRef]:
    """Open the directory ``root/parts`` (default: ``sp.parts``) without following symbolic links.

    Args:
        sp: the checked path (gives the root and, by default, the components).
        parts: the resolved components to walk, e.g. ``sp.parts[:-1]`` for the parent directory.
        create: create missing directories on the way (for ``Write``, ``Append`` and ``Mkdir``).

    Raises:
        OSError: a component is missing, not a directory, or was replaced by a symbolic link;
            map it with :func:`os_error`.
    """
    parts = sp.parts if parts is None else parts
    if not FD_MODE:
        path = os.path.join(sp.root, *parts)
        if create:
            os.makedirs(path, exist_ok=True)
        if not os.path.isdir(path) or os.path.islink(path):
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", path)
        yield DirRef(None, path)
        return
    fd = os.open(sp.root, os.O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    try:
        for part in parts:
            try:
                nfd = open_subdir(fd, part)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(part, 0o777, dir_fd=fd)
                except FileExistsError:
                    pass
                nfd = open_subdir(fd, part)
            os.close(fd)
            fd = nfd
        yield DirRef(fd, os.path.join(sp.root, *parts))
    finally:
        os.close(fd)


def rmtree_at(d: DirRef, name: str, tick: Callable[[], None] | None = None) -> None:
    """Delete directory ``name`` in ``d`` with everything below it, never following symbolic links.

    Descriptor-relative like ``shutil.rmtree(dir_fd=…)`` (which needs Python 3.11); ``tick`` is called
    once per entry (the run's deadline check).
    """
    if d.fd is None:
        shutil.rmtree(d.child(name))
        return
    # Iterative depth-first walk: (parent fd, name, own fd or None before the directory is listed).
    stack: list[tuple[int, str, int | None]] = [(d.fd, name, None)]
    try:
        while stack:
            parent, sub, fd = stack.pop()
            if fd is None:
                fd = open_subdir(parent, sub)
                stack.append((parent, sub, fd))
                with os.scandir(fd) as it:
                    entries = list(it)
                for e in entries:
                    if tick is not None:
                        tick()
                    if e.is_dir(follow_symlinks=False):
                        stack.append((fd, e.name, None))
                    else:
                        os.unlink(e.name, dir_fd=fd)
            else:
                os.close(fd)
                os.rmdir(sub, dir_fd=parent)
    finally:
        for _parent, _sub, fd in stack:
            if fd is not None:
                os.close(fd)


def open_file(d: DirRef, name: str, flags: int, mode: int = 0o666) -> int:
    """``os.open`` of ``name`` in ``d`` with ``O_NOFOLLOW`` and ``O_CLOEXEC`` added."""
    return os.open(d.child(name), flags | O_NOFOLLOW | O_CLOEXEC | O_BINARY, mode, dir_fd=d.fd)


def lstat(d: DirRef, name: str) -> os.stat_result | None:
    """``lstat`` of ``name`` in ``d``, or None when it does not exist."""
    try:
        return os.stat(d.child(name), dir_fd=d.fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def kind(st: os.stat_result) -> str:
    """``file``, ``dir``, ``symlink`` or ``other`` for a stat result."""
    m = st.st_mode
    if _stat.S_ISREG(m):
        return "file"
    if _stat.S_ISDIR(m):
        return "dir"
    if _stat.S_ISLNK(m):
        return "symlink"
    return "other"


# ----------------------------------------------------------------------------------------------
# Errors and limits

_ERRNO_CODES: dict[int, tuple[int, str]] = {
    errno.ENOENT: (ErrorCode.FILE_NOT_FOUND, "it does not exist"),
    errno.ENOTDIR: (ErrorCode.PATH_TYPE_MISMATCH, "it (or one of its parents) is not a directory"),
    errno.EISDIR: (ErrorCode.PATH_TYPE_MISMATCH, "it is a directory"),
    errno.EEXIST: (ErrorCode.PATH_EXISTS, "it already exists"),
    errno.EACCES: (ErrorCode.PERMISSION_DENIED, "permission denied"),
    errno.EPERM: (ErrorCode.PERMISSION_DENIED, "operation not permitted"),
    errno.ELOOP: (ErrorCode.PATH_VIOLATION, "a symbolic link appeared in the path after it was checked"),
    errno.ENOTEMPTY: (ErrorCode.IO_FAILED, "the directory is not empty (pass recursive: true to delete it)"),
}


def os_error(e: OSError, sp: SPath, action: str) -> ToolError:
    """Map an ``OSError`` raised while working on ``sp`` to a ToolError with an fs error code.

    ENOENT 22, ENOTDIR/EISDIR 23, EEXIST 24, EACCES/EPERM 25, ELOOP 34, anything else 26.
    The message names the argument and the path as the script wrote it; "not found" also names the
    sandbox directory, where relative paths are looked up.
    """
    code, why = _ERRNO_CODES.get(e.errno or 0, (ErrorCode.IO_FAILED, (e.strerror or str(e)).lower()))
    if code == ErrorCode.FILE_NOT_FOUND:  # say where relative paths are looked up (issue 15)
        why += f" in the sandbox directory {sp.root}"
    return arg_error(sp.arg, f"cannot {action} {sp.given!r}: {why}", code=code)


def max_file_bytes(interp: Any) -> int:
    """The interpreter's file size limit (``limits.max_file_bytes``; 10 MiB if it has none)."""
    limits = getattr(interp, "limits", None)
    value = getattr(limits, "max_file_bytes", None)
    return DEFAULT_MAX_FILE_BYTES if value is None else int(value)


def too_large(sp: SPath, size: int, limit: int, what: str) -> ToolError:
    """Code 37 (ResourceExhaustion): ``what`` of ``size`` bytes exceeds the file size limit."""
    return arg_error(sp.arg, f"{sp.given!r}: {what} is {size} bytes, more than the limit of {limit} bytes "
                     "(limits.max_file_bytes)", code=ErrorCode.RESOURCE_EXHAUSTION)
