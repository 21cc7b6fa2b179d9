"""Persistence of worker definitions in the sandbox (ai_workers.md Part 1 "Persistence").

``<sandbox>/ai_worker_definitions.json`` is a JSON array of definitions (each with its aggregate
summary), written with 2-space indentation. The rules this module enforces:

* every write is atomic: a temporary file in the same directory, ``fsync``, then ``os.replace``
  (and an ``fsync`` of the directory), so a process killed at any instant leaves either the old or
  the new file, never a torn one;
* processes sharing the sandbox are serialised by a lock on the file itself (:class:`FileGuard`); a
  modification re-reads the file under the lock and applies the change to what it finds (nobody
  loses an update);
* temporary files left by a write that was killed are deleted at the next start;
* a corrupt or unreadable file is never overwritten: reading it raises
  :class:`~nslang.workers.errors.StoreError` (code 6) naming the file and the position, and the
  file is left exactly as it was (nothing is ever deleted).

A missing file, a zero-length file and a file holding ``null`` all read as no definitions.
The lock and atomic-write helpers are shared with :mod:`nslang.workers.perflog`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .. import _json
from .errors import StoreError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["DEFINITIONS_FILE", "DefinitionStore", "FileGuard", "atomic_write", "sweep_temp_files"]

logger = logging.getLogger("nslang.workers")
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0)

DEFINITIONS_FILE = "ai_worker_definitions.json"

#: (inode, size, mtime in ns) of a file: a cheap "has it changed?" check.
Signature = tuple[int, int, int]


class FileGuard:
    """Exclusive access to one data file: a re-entrant thread lock, then a cross-process lock.

    On POSIX the cross-process lock is an ``flock`` on **the data file itself**, not on a separate
    lock file (issue 10 item 3: deleting ``*.lock`` files mid-run let two processes in at once and
    lost 260 of 447 concurrent ``AIWorkerDefinition.Add`` calls). Data files are replaced only by
    ``os.replace`` under this lock, so after acquiring it the guard checks that the path still names
    the inode it locked and otherwise locks the file now at the path. The descriptor stays open
    between acquisitions (issue 11 item 6: an acquire/release costs a few system calls) and is the
    holder's to use as :attr:`fd`. Where ``fcntl`` is missing (Windows, where an open file cannot be
    deleted) the ``filelock`` package locks ``<path>.lock``.

    Args:
        path: the data file.
        timeout: seconds to wait for another process before giving up with code 6.
        companions: other files written (atomically) only under this lock; the first acquisition
            sweeps the temporary files that killed writes of ``path`` and of these left behind.
    """

    def __init__(self, path: Path, timeout: float = 30.0, companions: tuple[Path, ...] = ()) -> None:
        self.path = path
        self._timeout = timeout
        self._companions = companions
        self._rlock = threading.RLock()
        self._locked = False
        self._held = [-1, 0]  # [descriptor, pid that opened it]; closed by the finalizer
        self._writable = False
        self._flock: Any = None
        self._swept = False
        weakref.finalize(self, _close_held, self._held)

    @property
    def fd(self) -> int:
        """The locked file's descriptor, open for reading and (when permitted) writing; valid while
        :meth:`hold` yields True."""
        if self._held[0] < 0 and fcntl is None and self._locked:  # pragma: no cover - Windows: opened on demand
            self._open(True)
        return self._held[0]

    @contextlib.contextmanager
    def hold(self, *, create: bool = True) -> Iterator[bool]:
        """Hold the lock; re-entrant within a thread.

        Args:
            create: the holder writes: create the file (and its directory) when missing, and open it
                for writing. With False a missing file is not created and nothing is locked (the
                context yields False), and a read-only file is opened for reading.

        Yields:
            True when the file exists and is locked.

        Raises:
            StoreError: another process held the lock for longer than the timeout, or the file
                cannot be opened (code 6).
        """
        with self._rlock:
            acquired = False
            if not self._locked:
                acquired = self._acquire(create)
                if acquired and not self._swept:
                    self._swept = True
                    sweep_temp_files(self.path, *self._companions)
            try:
                yield self._locked
            finally:
                if acquired:
                    self._release()

    def _acquire(self, create: bool) -> bool:
        if fcntl is None:  # pragma: no cover - Windows
            return self._acquire_filelock(create)
        deadline: float | None = None
        delay = 0.0005
        held = self._held
        while True:
            if held[0] >= 0 and (held[1] != os.getpid() or create and not self._writable):
                # inherited across fork (the parent's, not ours), or opened read-only and now we write
                with contextlib.suppress(OSError):
                    os.close(held[0])
                held[0] = -1
            if held[0] < 0:
                if not self._open(create):
                    return False
            fd = held[0]
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise StoreError(f"cannot lock {self.path}: {e.strerror or e}", path=self.path) from None
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self._timeout
                if now >= deadline:
                    raise StoreError(f"could not lock {self.path} within {self._timeout:g} s "
                                     "(another nslang process is holding it)", path=self.path) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.01)
                continue
            try:
                st = os.stat(self.path)
                same = os.path.samestat(st, os.fstat(fd))
            except OSError:
                same = False
            if same:
                self._locked = True
                return True
            # replaced (by a writer that held the lock) or deleted since we opened it: lock the new file
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            held[0] = -1

    def _open(self, create: bool) -> bool:
        flags = os.O_RDWR | _CLOEXEC | _BINARY | (os.O_CREAT if create else 0)
        writable = True
        try:
            try:
                fd = os.open(self.path, flags, 0o644)
            except FileNotFoundError:
                if not create:
                    return False
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, flags, 0o644)
            except OSError as e:
                if create or e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                    raise
                fd = os.open(self.path, os.O_RDONLY | _CLOEXEC | _BINARY)  # a read-only file can still be read
                writable = False
        except FileNotFoundError:
            if not create:
                return False
            raise StoreError(f"cannot lock {self.path}: its directory disappeared", path=self.path) from None
        except OSError as e:
            raise StoreError(f"cannot open {self.path}: {e.strerror or e}", path=self.path) from None
        self._held[0], self._held[1] = fd, os.getpid()
        self._writable = writable
        return True

    def _release(self) -> None:
        self._locked = False
        if fcntl is None:  # pragma: no cover - Windows
            self._flock.release()
            return
        with contextlib.suppress(OSError):
            fcntl.flock(self._held[0], fcntl.LOCK_UN)

    def _acquire_filelock(self, create: bool) -> bool:  # pragma: no cover - Windows
        import filelock

        if not create and not self.path.exists():
            return False
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
        self._locked = True
        return True

    def close(self) -> None:
        """Close the descriptor (the next :meth:`hold` opens it again)."""
        with self._rlock:
            if not self._locked:
                _close_held(self._held)


def _close_held(held: list[int]) -> None:
    fd, held[0] = held[0], -1
    if fd >= 0 and held[1] == os.getpid():
        with contextlib.suppress(OSError):
            os.close(fd)


def temp_prefix(path: Path) -> str:
    """The name prefix of :func:`atomic_write`'s temporary files for ``path``."""
    return f".{path.name}."


def sweep_temp_files(path: Path, *others: Path) -> None:
    """Delete temporary files that killed :func:`atomic_write` calls left beside ``path`` (and ``others``).

    Call it only while holding the lock every write of these files takes: any temporary file then
    belongs to a write that can never finish (issue 10 item 3).
    """
    prefixes = tuple(temp_prefix(p) for p in (path, *others))
    try:
        names = os.listdir(path.parent)
    except OSError:
        return
    for name in names:
        if name.startswith(prefixes) and name.endswith(".tmp"):
            with contextlib.suppress(OSError):
                os.unlink(path.parent / name)
                logger.info("removed %s, left by an interrupted write", path.parent / name)


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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=".tmp")
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
        value = _json.loads(text)
    except json.JSONDecodeError as e:
        raise StoreError(f"AI worker definitions file {path} is corrupt: {e.msg} at line {e.lineno} "
                         f"column {e.colno}; {hint}", path=path) from None
    except (RecursionError, ValueError):  # nested too deeply, or a number past Python's digit limit
        raise StoreError(f"AI worker definitions file {path} is corrupt: it nests too deeply or holds a number "
                         f"too long to read; {hint}", path=path) from None
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

    def close(self) -> None:
        """Release the file descriptor the lock keeps open."""
        self._guard.close()

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
        with self._guard.hold(create=False) as locked:
            raw, sig = self._read_locked() if locked else ([], None)
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
