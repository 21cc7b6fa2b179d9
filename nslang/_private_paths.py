"""Directories and files only their owner may read: the parse cache, Lark's table cache, REPL history.

These can hold script text, and so an inline API key (issue 10 item 2). Directories nslang creates for
them get mode 0700 and files 0600; an existing directory or file of the current user with looser
permissions is tightened to those modes when nslang next uses it. Someone else's directory (e.g. the
parent of a ``$NSLANG_HISTORY`` file the user chose) is never touched. On Windows, where POSIX modes do
not apply, the helpers only create what is missing.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

__all__ = ["DIR_MODE", "FILE_MODE", "create_private", "private_dir", "private_file"]

DIR_MODE = 0o700
FILE_MODE = 0o600
_POSIX = os.name == "posix"


def _tighten(path: Path, mode: int) -> bool:
    """Set ``mode`` on ``path`` when it grants group or others anything and belongs to the current user;
    True when it did."""
    if not _POSIX:
        return False
    st = path.stat()
    if stat.S_IMODE(st.st_mode) & 0o077 and st.st_uid == os.getuid():
        os.chmod(path, mode)
        return True
    return False


def private_dir(path: Path, *, parents: int = 0) -> Path:
    """Create directory ``path`` with mode 0700, or tighten it to 0700 if it exists (and then the files
    directly inside a directory that was looser to 0600).

    Args:
        path: the directory.
        parents: how many of its parent directories are nslang's own too (created or tightened the
            same way), e.g. 1 for ``<user cache dir>/nslang/ast``. Missing directories above those are
            created with the default mode.

    Raises:
        OSError: the directory cannot be created or its mode changed.
    """
    chain = [path, *list(path.parents)[:parents]][::-1]
    chain[0].parent.mkdir(parents=True, exist_ok=True)
    for d in chain:
        try:
            os.mkdir(d, DIR_MODE)
        except FileExistsError:
            if _tighten(d, DIR_MODE):
                for entry in os.scandir(d):
                    if entry.is_file(follow_symlinks=False):
                        _tighten(Path(entry.path), FILE_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create an empty file ``path`` with mode 0600 if it is missing, or tighten it to 0600.

    Raises:
        OSError: the file cannot be created or its mode changed.
    """
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), FILE_MODE))
    _tighten(path, FILE_MODE)
    return path


def create_private(path: Path) -> BinaryIO:
    """A new file ``path`` (which must not exist) opened for binary writing, with mode 0600.

    Raises:
        OSError: e.g. FileExistsError when ``path`` exists.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    return os.fdopen(os.open(path, flags, FILE_MODE), "wb")
