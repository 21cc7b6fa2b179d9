"""The performance log: a JSON array on disk that is appended in place (ai_workers.md Part 1).

``<sandbox>/ai_worker_performance_data.json`` is a JSON array of
:class:`~nslang.workers.models.RetiredInstanceInfo` entries. nslang writes it in a line-oriented
layout that is still one plain JSON array::

    [
    {"entry_kind":"spawn","instance_id":"…",…},
    {"entry_kind":"stateless_task","instance_id":"stateless-…",…},
    {"entry_kind":"record",…}
    ]

(each entry is one line of compact ASCII JSON, so no entry contains a newline byte).

**Append** (under the cross-process filelock): the file normally ends with ``}\\n]\\n``. The new
entry is written over the final ``\\n]\\n`` as ``,\\n{entry}\\n]\\n`` in one ``write`` at that
offset, then ``fsync``-ed. Only the last 4 bytes are read, so the cost does not grow with the file.

**Crash safety.** A process killed during that write leaves the old entries intact followed by a
prefix of ``,\\n{entry}\\n]\\n``. The reader is tolerant of exactly those states: a trailing comma
before ``]``, a missing final ``]``, and a *torn tail* (an incomplete entry at the end, which never
contains a newline because entries are single-line). Every entry whose append returned is complete
and comes before any torn bytes, so it is never lost. The next append under the lock repairs a
torn tail: the torn bytes are first saved beside the log as ``<file>.torn-<time>-<pid>`` (with a
warning), then the file is cut back to its last complete entry. Anything else (garbage in the
middle, data after the closing ``]``, a newline inside the damaged tail) is corruption: reading and
appending refuse with :class:`~nslang.workers.errors.StoreError` (code 6) naming the file and byte
offset, and the file is left untouched. A Go-era, pretty-printed array loads as it is and is brought
to the line layout (cutting only its closing bracket) on the first append. A missing, empty or
``null`` file holds no entries.

**Reading** is incremental: the log object keeps a cursor (file identity and the byte offset after
the last entry it delivered) and :meth:`PerformanceLog.sync` delivers only entries appended since,
by this or any other process; a replaced or shrunk file is read again from the start.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import StoreError
from .store import FileGuard, atomic_write, fsync_dir

__all__ = ["PERFORMANCE_FILE", "LogEntry", "PerformanceLog", "StaleLogError"]

PERFORMANCE_FILE = "ai_worker_performance_data.json"

logger = logging.getLogger("nslang.workers")

_WS = re.compile(r"[ \t\r\n\ufeff]*")  # whitespace, and a byte-order mark a text editor may add
_BINARY = getattr(os, "O_BINARY", 0)
_TAIL = b"\n]\n"
_EMPTY = b"[\n]\n"


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One entry read from (or appended to) the log.

    Attributes:
        offset: byte offset of the entry's first byte in the file.
        length: its length in bytes.
        data: the decoded JSON object.
    """

    offset: int
    length: int
    data: dict[str, Any]


def _pread(fd: int, n: int, offset: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, n, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # pragma: no cover - platforms without pread
    return os.read(fd, n)  # pragma: no cover


def _pwrite(fd: int, data: memoryview, offset: int) -> int:
    if hasattr(os, "pwrite"):
        return os.pwrite(fd, data, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # pragma: no cover - platforms without pwrite
    return os.write(fd, data)  # pragma: no cover


class StaleLogError(Exception):
    """Internal: the file was replaced since the cursor was set; the caller must :meth:`sync` again."""


@dataclass
class _Scan:
    kind: str  # "empty" (no '[' at all: empty, blank or null), "closed", "open" (no final ']'), "torn"
    end: int  # char index after the last complete entry (or after '['); 0 for "empty"
    has_entries: bool


class _CorruptError(Exception):
    def __init__(self, index: int, why: str) -> None:
        super().__init__(why)
        self.index = index
        self.why = why


class _Text:
    """Decoded file bytes with char → byte offset conversion (exact for non-ASCII content too)."""

    def __init__(self, data: bytes, base: int) -> None:
        self.text = data.decode("utf-8", "surrogateescape")
        self.base = base
        self._ascii = data.isascii()
        self._char = 0
        self._byte = 0

    def byte(self, index: int) -> int:
        """Absolute byte offset of char ``index`` (indices must be asked for in increasing order)."""
        if self._ascii:
            return self.base + index
        if index < self._char:
            self._char = self._byte = 0
        self._byte += len(self.text[self._char:index].encode("utf-8", "surrogateescape"))
        self._char = index
        return self.base + self._byte


def _scan(t: _Text, start_state: str, emit: Callable[[LogEntry], None]) -> _Scan:
    """Tokenise the array from the start (``start``), after ``[`` (``open``) or after an entry."""
    text = t.text
    n = len(text)
    decode = json.JSONDecoder().raw_decode
    i = 0
    state = start_state
    if state == "start":
        i = _WS.match(text, 0).end()  # type: ignore[union-attr]
        if i == n:
            return _Scan("empty", 0, False)
        if text.startswith("null", i) and _WS.match(text, i + 4).end() == n:  # type: ignore[union-attr]
            return _Scan("empty", 0, False)
        if text[i] != "[":
            raise _CorruptError(i, "it does not start with '['")
        i += 1
        state = "open"
    end = i
    has = state == "after"
    while True:
        i = _WS.match(text, i).end()  # type: ignore[union-attr]
        if i == n:
            return _Scan("open", end, has)
        c = text[i]
        if c == "]":
            j = _WS.match(text, i + 1).end()  # type: ignore[union-attr]
            if j != n:
                raise _CorruptError(j, "there is data after the closing ']'")
            return _Scan("closed", end, has)
        if state == "after":
            if c != ",":
                raise _CorruptError(i, "expected ',' or ']' between entries")
            i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]
            if i == n:
                return _Scan("open", end, has)
            if text[i] == "]":
                continue
        try:
            obj, j = decode(text, i)
        except json.JSONDecodeError:
            if "\n" in text[i:].rstrip(" \t\r\n"):
                raise _CorruptError(i, "an entry is not valid JSON") from None
            return _Scan("torn", end, has)
        if not isinstance(obj, dict):
            raise _CorruptError(i, "an entry is not a JSON object")
        start_b = t.byte(i)
        emit(LogEntry(start_b, t.byte(j) - start_b, obj))
        end = j
        has = True
        state = "after"
        i = j


class PerformanceLog:
    """The append-only performance log with an incremental read cursor.

    Thread-safe; processes are serialised by a filelock (``<file>.lock``).

    Args:
        path: the log file.
        durable: ``fsync`` after every append (on by default; a SIGKILL never loses a completed
            append either way, ``fsync`` also covers power loss).
        lock_timeout: seconds to wait for another process's lock.
    """

    def __init__(self, path: Path, *, durable: bool = True, lock_timeout: float = 30.0) -> None:
        self.path = path
        self.durable = durable
        self._guard = FileGuard(path, lock_timeout)
        self._ident: tuple[int, int] | None = None  # (st_dev, st_ino) the cursor belongs to
        self._end = 0  # byte offset after the last delivered entry (or after '[')
        self._has_entries = False
        self._seen_size = -1
        self.entry_count = 0

    # -- reading ---------------------------------------------------------------------------------

    def changed(self) -> bool:
        """Cheap check (one ``stat``): could :meth:`sync` deliver anything new?"""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return self._ident is not None
        except OSError:
            return True
        return (st.st_dev, st.st_ino) != self._ident or st.st_size != self._seen_size

    def sync(self, on_reset: Callable[[], None], on_entry: Callable[[LogEntry], None]) -> None:
        """Deliver the entries appended since the last call (all of them the first time).

        ``on_reset`` is called first when the whole file is (re-)read; the caller must then drop
        what it built from earlier entries. Both callbacks run under the log's lock.

        Raises:
            StoreError: the log is corrupt or unreadable (code 6); it is left untouched.
        """
        if not self.path.parent.exists():
            if self._ident is not None:
                self._reset_cursor()
                on_reset()
            return
        with self._guard.hold():
            self._sync_locked(on_reset, on_entry)

    def reload(self, on_reset: Callable[[], None], on_entry: Callable[[LogEntry], None]) -> None:
        """Read the whole file again from the start (``on_reset`` is always called)."""
        if not self.path.parent.exists():
            self._reset_cursor()
            on_reset()
            return
        with self._guard.hold():
            self._reset_cursor()
            on_reset()
            self._sync_locked(lambda: None, on_entry)

    def _reset_cursor(self) -> None:
        self._ident = None
        self._end = 0
        self._has_entries = False
        self._seen_size = -1
        self.entry_count = 0

    def _sync_locked(self, on_reset: Callable[[], None], on_entry: Callable[[LogEntry], None]) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self._ident is not None or self._seen_size != -1:
                self._reset_cursor()
                on_reset()
            self._seen_size = -1
            return
        except OSError as e:
            raise self._error(f"cannot read it: {e.strerror or e}", corrupt=False) from None
        ident = (st.st_dev, st.st_ino)
        full = ident != self._ident or st.st_size < self._end
        if not full and st.st_size == self._seen_size:
            return
        try:
            with open(self.path, "rb") as f:
                if full:
                    data = f.read()
                else:
                    f.seek(self._end)
                    data = f.read()
        except OSError as e:
            raise self._error(f"cannot read it: {e.strerror or e}", corrupt=False) from None
        base = 0 if full else self._end
        t = _Text(data, base)
        delivered = 0

        def emit(entry: LogEntry) -> None:
            nonlocal delivered
            delivered += 1
            on_entry(entry)

        if full:
            self._reset_cursor()
            on_reset()
        try:
            scan = _scan(t, "start" if full else ("after" if self._has_entries else "open"), emit)
        except _CorruptError as c:
            self._reset_cursor()  # the next sync starts again from the top (and resets the caller)
            raise self._error(f"{c.why} (at byte {t.byte(c.index)})") from None
        self._ident = ident
        self._end = t.byte(scan.end) if scan.kind != "empty" else 0
        self._has_entries = self._has_entries and not full or scan.has_entries
        self._seen_size = st.st_size
        self.entry_count += delivered

    def read_entries(self, spans: Iterable[tuple[int, int]]) -> Iterator[dict[str, Any]]:
        """The entries at ``(offset, length)`` spans previously delivered by :meth:`sync`.

        Raises:
            StaleLogError: the file was replaced since; call :meth:`sync` and ask again.
            StoreError: the file cannot be read (code 6).
        """
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            raise StaleLogError() from None
        except OSError as e:
            raise self._error(f"cannot read it: {e.strerror or e}", corrupt=False) from None
        with f:
            st = os.fstat(f.fileno())
            if (st.st_dev, st.st_ino) != self._ident:
                raise StaleLogError()
            for offset, length in spans:
                f.seek(offset)
                raw = f.read(length)
                try:
                    obj = json.loads(raw)
                except ValueError:
                    raise StaleLogError() from None
                if isinstance(obj, dict):
                    yield obj

    # -- appending -------------------------------------------------------------------------------

    def append(self, entry: dict[str, Any], on_reset: Callable[[], None],
               on_entry: Callable[[LogEntry], None]) -> LogEntry:
        """Append ``entry`` in place; entries other processes appended meanwhile are delivered first.

        Every entry up to and including the new one is delivered to ``on_entry`` in file order
        (the new one last), all under the lock.

        Returns:
            The new entry with its offset.

        Raises:
            StoreError: the log is corrupt (nothing written) or the write failed (code 6).
        """
        line = json.dumps(entry, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode("ascii")
        with self._guard.hold():
            self._sync_locked(on_reset, on_entry)
            try:
                pos, need_comma = self._prepare_tail_locked()
                if pos < 0:  # no file yet
                    atomic_write(self.path, b"[\n" + line + _TAIL, durable=self.durable)
                    st = os.stat(self.path)
                    self._ident = (st.st_dev, st.st_ino)
                    new = LogEntry(2, len(line), entry)
                    self._end = 2 + len(line)
                else:
                    sep = b",\n" if need_comma else b"\n"
                    payload = sep + line + _TAIL
                    fd = os.open(self.path, os.O_WRONLY | _BINARY)
                    try:
                        view = memoryview(payload)
                        written = 0
                        while written < len(payload):
                            written += _pwrite(fd, view[written:], pos + written)
                        if self.durable:
                            os.fsync(fd)
                    finally:
                        os.close(fd)
                    new = LogEntry(pos + len(sep), len(line), entry)
                    self._end = pos + len(sep) + len(line)
                    st = os.stat(self.path)
            except OSError as e:
                self._reset_cursor()
                raise self._error(f"cannot append to it: {e.strerror or e}", corrupt=False) from None
            self._has_entries = True
            self._seen_size = st.st_size
            self.entry_count += 1
            on_entry(new)
            return new

    def _prepare_tail_locked(self) -> tuple[int, bool]:
        """(write position, whether a comma is needed); (-1, False) when the file does not exist.

        Normally reads 4 bytes. Otherwise (torn tail, Go-era layout, empty file) it scans the file,
        saves torn bytes aside and cuts the file back to its last complete entry.
        """
        try:
            fd = os.open(self.path, os.O_RDONLY | _BINARY)
        except FileNotFoundError:
            return -1, False
        try:
            size = os.fstat(fd).st_size
            tail = _pread(fd, 4, size - 4) if size >= 4 else b""
        finally:
            os.close(fd)
        if size == 4 and tail == _EMPTY:
            return 1, False
        if size > 4 and tail[1:] == _TAIL and tail[:1] == b"}":
            return size - 3, True
        return self._repair_locked()

    def _repair_locked(self) -> tuple[int, bool]:
        data = self.path.read_bytes()
        t = _Text(data, 0)
        try:
            scan = _scan(t, "start", lambda _e: None)
        except _CorruptError as c:
            raise self._error(f"{c.why} (at byte {t.byte(c.index)})") from None
        if scan.kind == "empty":  # blank or null: nothing to keep
            atomic_write(self.path, _EMPTY, durable=self.durable)
            st = os.stat(self.path)
            self._ident = (st.st_dev, st.st_ino)
            self._end = 1
            self._has_entries = False
            return 1, False
        end = t.byte(scan.end)
        rest = data[end:]
        if rest.strip(b" \t\r\n,]"):
            stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
            aside = self.path.with_name(f"{self.path.name}.torn-{stamp}-{os.getpid()}")
            aside.write_bytes(rest)
            if self.durable:
                fsync_dir(aside.parent)
            logger.warning("performance log %s ended in an incomplete entry (%d bytes, from an interrupted "
                           "write); it was cut back to its last complete entry and the bytes were saved in %s",
                           self.path, len(rest), aside)
        with open(self.path, "r+b") as f:
            f.truncate(end)
            if self.durable:
                os.fsync(f.fileno())
        return end, scan.has_entries

    def _error(self, why: str, *, corrupt: bool = True) -> StoreError:
        hint = "; the file was left untouched: fix it or move it aside" if corrupt else ""
        return StoreError(f"performance log {self.path} is unusable: {why}{hint}", path=self.path)
