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
import sys

TYPE_CHECKING = False  # typing stays off the start-up path (issue 16 item 3)
if TYPE_CHECKING:  # pragma: no cover
    from typing import BinaryIO, TypeVar


#: a path as the caller gives it (``str`` or ``pathlib.Path``); this module uses ``os`` only, keeping
#: pathlib off the start-up path of a cached run (issue 16 item 3)
if TYPE_CHECKING:  # pragma: no cover
    P = TypeVar("P", bound="str | os.PathLike[str]")

__all__ = ["DIR_MODE", "FILE_MODE", "create_private", "private_dir", "private_file", "user_cache_dir"]

DIR_MODE = 0o700
FILE_MODE = 0o600
_POSIX = os.name == "posix"


def _tighten(path: str | os.PathLike[str], mode: int) -> bool:
    """Set ``mode`` on ``path`` when it grants group or others anything and belongs to the current user;
    True when it did."""
    if not _POSIX:
        return False
    st = os.stat(path)
    if stat.S_IMODE(st.st_mode) & 0o077 and st.st_uid == os.getuid():
        os.chmod(path, mode)
        return True
    return False


def private_dir(path: P, *, parents: int = 0) -> P:
    """Create directory ``path`` with mode 0700, or tighten it to 0700 if it exists (and then the files
    directly inside a directory that was looser to 0600).

    Args:
        path: the directory (a ``str`` or a ``pathlib.Path``; returned as given).
        parents: how many of its parent directories are nslang's own too (created or tightened the
            same way), e.g. 1 for ``<user cache dir>/nslang/ast``. Missing directories above those are
            created with the default mode.

    Raises:
        OSError: the directory cannot be created or its mode changed.
    """
    chain: list[str] = [os.fspath(path)]  # type: ignore[arg-type]  # str or os.PathLike[str] (bound of P)
    for _ in range(parents):
        chain.append(os.path.dirname(chain[-1]))
    chain.reverse()
    top = os.path.dirname(chain[0])
    if top:
        os.makedirs(top, exist_ok=True)
    for d in chain:
        try:
            os.mkdir(d, DIR_MODE)
        except FileExistsError:
            if _tighten(d, DIR_MODE):
                for entry in os.scandir(d):
                    if entry.is_file(follow_symlinks=False):
                        _tighten(entry.path, FILE_MODE)
    return path


def private_file(path: P) -> P:
    """Create an empty file ``path`` with mode 0600 if it is missing, or tighten it to 0600.

    Raises:
        OSError: the file cannot be created or its mode changed.
    """
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), FILE_MODE))
    _tighten(path, FILE_MODE)
    return path


def create_private(path: str | os.PathLike[str]) -> BinaryIO:
    """A new file ``path`` (which must not exist) opened for binary writing, with mode 0600.

    Raises:
        OSError: e.g. FileExistsError when ``path`` exists.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    return os.fdopen(os.open(path, flags, FILE_MODE), "wb")


def user_cache_dir() -> str:
    """nslang's user cache directory: platformdirs' ``user_cache_dir("nslang", appauthor=False)``.

    On Linux, when ``$XDG_CACHE_HOME`` is an absolute path (or unset, with an absolute ``$HOME``), the
    answer is the one every platformdirs version gives (``$XDG_CACHE_HOME/nslang``, ``$HOME/.cache/nslang``)
    and is computed here: importing platformdirs costs ~5 ms of a cached run's start-up (issue 16 item 3).
    Any other case asks platformdirs.
    """
    env = os.environ
    if sys.platform == "linux" and not hasattr(sys, "getandroidapilevel") and "ANDROID_DATA" not in env:
        xdg = env.get("XDG_CACHE_HOME", "")
        if xdg.startswith("/"):
            return os.path.join(xdg, "nslang")
        home = env.get("HOME", "")
        if not xdg and home.startswith("/"):
            return os.path.join(home, ".cache", "nslang")
    from platformdirs import user_cache_dir as platform_cache_dir

    return platform_cache_dir("nslang", appauthor=False)
