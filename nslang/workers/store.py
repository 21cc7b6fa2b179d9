"""Persistence of worker definitions in the sandbox (ai_workers.md Part 1 "Persistence").

``<sandbox>/ai_worker_definitions.json`` is a JSON array of definitions (each with its aggregate
summary), written with 2-space indentation. The rules this module enforces:

* every write is atomic: a temporary file in the same directory, ``fsync``, then ``os.replace``
  (and an ``fsync`` of the directory), so a process killed at any instant leaves either the old or
  the new file, never a torn one;
* processes sharing the sandbox are serialised by ``filelock`` (``<file>.lock``); a modification
  re-reads the file under the lock and applies the change to what it finds (nobody loses an update);
* a corrupt or unreadable file is never overwritten: reading it raises
  :class:`~nslang.workers.errors.StoreError` (code 6) naming the file and the position, and the
  file is left exactly as it was (nothing is ever deleted).

A missing file, a zero-length file and a file holding ``null`` all read as no definitions.
The lock and atomic-write helpers are shared with :mod:`nslang.workers.perflog`.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import StoreError

__all__ = ["DEFINITIONS_FILE", "DefinitionStore", "FileGuard", "atomic_write"]

DEFINITIONS_FILE = "ai_worker_definitions.json"

#: (inode, size, mtime in ns) of a file: a cheap "has it changed?" check.
Signature = tuple[int, int, int]


class FileGuard:
    """Exclusive access to one data file: a re-entrant thread lock, then a cross-process filelock.

    Args:
        path: the data file; the lock file is ``<path>.lock`` beside it.
        timeout: seconds to wait for another process before giving up with code 6.
    """

    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        self.path = path
        self._timeout = timeout
        self._rlock = threading.RLock()
        self._flock: Any = None

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the lock (creating the directory if needed).

        Raises:
            StoreError: another process held the lock for longer than the timeout, or the lock
                file cannot be created (code 6).
        """
        with self._rlock:
            import filelock

            if self._flock is None:
                self._flock = filelock.FileLock(str(self.path) + ".lock", thread_local=False)
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._flock.acquire(timeout=self._timeout, poll_interval=0.001)
            except filelock.Timeout:
                raise StoreError(f"could not lock {self.path} within {self._timeout:g} s "
                                 "(another nslang process is holding it)", path=self.path) from None
            except OSError as e:
                raise StoreError(f"cannot lock {self.path}: {e.strerror or e}", path=self.path) from None
            try:
                yield
            finally:
                self._flock.release()


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically (temp file in the same directory + ``os.replace``).

    Keeps the old file's permission bits (0644 for a new file).

    Raises:
        OSError: the write failed; ``path`` is then unchanged and the temp file removed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(path.parent)


def signature(path: Path) -> Signature | None:
    """(inode, size, mtime_ns) of ``path``, or None when it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StoreError(f"cannot read {path}: {e.strerror or e}", path=path) from None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def parse_definitions_json(data: bytes, path: Path) -> list[dict[str, Any]]:
    """The raw definition objects of a definitions file's bytes.

    Raises:
        StoreError: not UTF-8, not JSON, not an array, or an element that is not an object (code 6).
            The message names the file and the position; it never quotes the content.
    """
    hint = "the file was left untouched: fix it or move it aside"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise StoreError(f"AI worker definitions file {path} is corrupt: not UTF-8 (byte {e.start}); {hint}",
                         path=path) from None
    if not text.strip():
        return []
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise StoreError(f"AI worker definitions file {path} is corrupt: {e.msg} at line {e.lineno} "
                         f"column {e.colno}; {hint}", path=path) from None
    if value is None:
        return []
    if not isinstance(value, list):
        raise StoreError(f"AI worker definitions file {path} must hold a JSON array of definitions, "
                         f"found a JSON {type(value).__name__.replace('dict', 'object')}; {hint}", path=path)
    out: list[dict[str, Any]] = []
    for i, el in enumerate(value):
        if el is None:
            continue
        if not isinstance(el, dict):
            raise StoreError(f"AI worker definitions file {path}: element {i} is not a JSON object; {hint}",
                             path=path)
        out.append(el)
    return out


class DefinitionStore:
    """Reads and atomically rewrites ``ai_worker_definitions.json`` under a cross-process lock.

    Args:
        path: the definitions file.
        durable: ``fsync`` file and directory on every write (off only for benchmarks and tests).
        lock_timeout: seconds to wait for another process's lock.
    """

    def __init__(self, path: Path, *, durable: bool = True, lock_timeout: float = 30.0) -> None:
        self.path = path
        self.durable = durable
        self._guard = FileGuard(path, lock_timeout)

    def signature(self) -> Signature | None:
        """Cheap change check: (inode, size, mtime_ns), or None when the file does not exist."""
        return signature(self.path)

    def read(self, consume: Callable[[list[dict[str, Any]], Signature | None], None] | None = None
             ) -> tuple[list[dict[str, Any]], Signature | None]:
        """(raw definition objects, signature) of the file as it is now.

        Args:
            consume: called with the result while the lock is still held (so readers install what
                they read in the same order as writers install what they wrote).

        Raises:
            StoreError: the file is corrupt or unreadable (code 6); nothing is changed.
        """
        if not self.path.parent.exists():
            if consume is not None:
                consume([], None)
            return [], None
        with self._guard.hold():
            raw, sig = self._read_locked()
            if consume is not None:
                consume(raw, sig)
            return raw, sig

    def _read_locked(self) -> tuple[list[dict[str, Any]], Signature | None]:
        sig = signature(self.path)
        if sig is None:
            return [], None
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return [], None
        except OSError as e:
            raise StoreError(f"cannot read AI worker definitions file {self.path}: {e.strerror or e}",
                             path=self.path) from None
        return parse_definitions_json(data, self.path), sig

    def update(self, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]] | None],
               after: Callable[[Signature | None], None] | None = None,
               ) -> tuple[list[dict[str, Any]], Signature | None]:
        """Re-read the file under the lock, apply ``change`` and write the result atomically.

        Args:
            change: receives the raw objects now on disk and returns the new list to write, or
                None to write nothing. If it raises, nothing is written.
            after: called with the file's new signature after a successful write, still under
                the lock (so in-memory state is installed in the same order as the writes).

        Returns:
            (the list now on disk, its signature).

        Raises:
            StoreError: the file is corrupt or unreadable (nothing written), or the write failed
                (the old file is intact) (code 6).
        """
        with self._guard.hold():
            current, sig = self._read_locked()
            new = change(current)
            if new is None:
                return current, sig
            data = (json.dumps(new, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
            try:
                atomic_write(self.path, data, durable=self.durable)
            except OSError as e:
                raise StoreError(f"cannot write AI worker definitions file {self.path}: {e.strerror or e}",
                                 path=self.path) from None
            new_sig = signature(self.path)
            if after is not None:
                after(new_sig)
            return new, new_sig
