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

**Append** (under the cross-process lock, an ``flock`` on the log file itself, see
:class:`~nslang.workers.store.FileGuard`): the file normally ends with ``}\\n]\\n``. The new entry is
written over the final ``\\n]\\n`` as ``,\\n{entry}\\n]\\n`` in one ``pwrite`` at that offset, then
``fdatasync``-ed when durable. At most the last 4 bytes are read (none after this process's own
append), so the cost does not grow with the file. A new file is created empty under the lock and
written the same way (``[\\n{entry}\\n]\\n``); the log is never replaced by a rename, so the lock
always covers the file at the path.

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

**Reading** is incremental and streamed: the log object keeps a cursor (file identity and the byte
offset after the last entry it delivered) and :meth:`PerformanceLog.sync` delivers only entries
appended since, by this or any other process; a replaced or shrunk file is read again from the start.
The file is read 1 MiB at a time (memory does not grow with the log). :meth:`PerformanceLog.reload`
can resume at a :class:`LogPosition` saved earlier (the summaries checkpoint,
:mod:`nslang.workers.checkpoint`) when the file still holds the same bytes up to it (issue 11 item 5).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import StoreError
from .store import FileGuard, fsync_dir

__all__ = ["PERFORMANCE_FILE", "LogEntry", "LogPosition", "PerformanceLog", "StaleLogError"]

PERFORMANCE_FILE = "ai_worker_performance_data.json"

logger = logging.getLogger("nslang.workers")

_WS = re.compile(r"[ \t\r\n\ufeff]*")  # whitespace, and a byte-order mark a text editor may add
_BINARY = getattr(os, "O_BINARY", 0)
_TAIL = b"\n]\n"
_EMPTY = b"[\n]\n"
_BLOCK = 1 << 20  # bytes read at a time
_FINGERPRINT = 4096
_DECODE = json.JSONDecoder().raw_decode
_fdatasync = getattr(os, "fdatasync", os.fsync)


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
    kind: str  # "empty" (no '[': empty, blank or null), "closed", "open" (no final ']'), "torn", "more"
    end: int  # byte offset after the last complete entry (or after '['); 0 for "empty"
    has_entries: bool
    resume: int = 0  # "more": byte offset to go on from, in ``state``
    state: str = ""


class _CorruptError(Exception):
    def __init__(self, offset: int, why: str) -> None:
        super().__init__(why)
        self.offset = offset
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


def _scan(t: _Text, state: str, end: int, has: bool, final: bool, emit: Callable[[LogEntry], None]) -> _Scan:
    """Tokenise a piece of the array: from the start (``start``), after ``[`` (``open``) or after an
    entry (``after``). ``end`` is the byte offset after the last complete entry so far.

    With ``final`` false the piece is not the end of the file: where it runs out (or an entry does
    not decode, which may be an entry cut by the piece's end), the result is ``more`` with the byte
    offset and state to resume from once more bytes are there.
    """
    text = t.text
    n = len(text)
    decode = _DECODE
    i = 0
    if state == "start":
        i = _WS.match(text, 0).end()  # type: ignore[union-attr]
        if i == n or (text.startswith("null", i) and _WS.match(text, i + 4).end() == n):  # type: ignore[union-attr]
            return _Scan("empty", 0, False) if final else _Scan("more", end, has, t.byte(0), state)
        if text[i] != "[":
            raise _CorruptError(t.byte(i), "it does not start with '['")
        i += 1
        state = "open"
        end = t.byte(i)
    while True:
        k = i  # where to resume, in ``state``, if the piece runs out
        i = _WS.match(text, i).end()  # type: ignore[union-attr]
        if i == n:
            return _Scan("open", end, has) if final else _Scan("more", end, has, t.byte(k), state)
        c = text[i]
        if c == "]":
            if not final:  # what follows must be checked up to the end of the file
                return _Scan("more", end, has, t.byte(k), state)
            j = _WS.match(text, i + 1).end()  # type: ignore[union-attr]
            if j != n:
                raise _CorruptError(t.byte(j), "there is data after the closing ']'")
            return _Scan("closed", end, has)
        if state == "after":
            if c != ",":
                raise _CorruptError(t.byte(i), "expected ',' or ']' between entries")
            i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]
            if i == n:
                return _Scan("open", end, has) if final else _Scan("more", end, has, t.byte(k), state)
            if text[i] == "]":
                continue
        try:
            obj, j = decode(text, i)
        except json.JSONDecodeError:
            if not final:
                return _Scan("more", end, has, t.byte(k), state)
            if "\n" in text[i:].rstrip(" \t\r\n"):
                raise _CorruptError(t.byte(i), "an entry is not valid JSON") from None
            return _Scan("torn", end, has)
        except (RecursionError, ValueError):  # nested too deeply, or a number past Python's digit limit
            raise _CorruptError(t.byte(i), "an entry nests too deeply or holds a number too long to read") from None
        if not isinstance(obj, dict):
            raise _CorruptError(t.byte(i), "an entry is not a JSON object")
        start_b = t.byte(i)
        end = t.byte(j)
        emit(LogEntry(start_b, end - start_b, obj))
        has = True
        state = "after"
        i = j


def _stream(fd: int, pos: int, state: str, end: int, has: bool, emit: Callable[[LogEntry], None],
            limit: int | None = None) -> _Scan:
    """Scan the file from byte ``pos`` (in ``state``) to its end (or to ``limit``), a block at a time.

    Blocks are cut after their last newline (nslang writes one entry per line, and a cut there never
    splits a UTF-8 character); an entry longer than a block is completed from the next ones. Memory
    stays at about one block whatever the size of the file.

    Raises:
        _CorruptError: with the byte offset of the damage.
        OSError: the file cannot be read.
    """
    buf = b""
    size = _BLOCK
    while True:
        want = size if limit is None else min(size, limit - pos - len(buf))
        data = _pread(fd, want, pos + len(buf)) if want > 0 else b""
        final = not data
        buf += data
        if final:
            piece = buf
        else:
            cut = buf.rfind(b"\n") + 1
            if cut == 0:
                size *= 2  # a line longer than a block
                continue
            piece = buf[:cut]
        scan = _scan(_Text(piece, pos), state, end, has, final, emit)
        if scan.kind != "more":
            return scan
        buf = buf[scan.resume - pos:]
        if len(buf) >= size:
            size *= 2  # an entry longer than a block (a pretty-printed Go-era log)
        pos, state, end, has = scan.resume, scan.state, scan.end, scan.has_entries


@dataclass(frozen=True, slots=True)
class LogPosition:
    """A point of the log that a summaries checkpoint covers (see :mod:`nslang.workers.checkpoint`).

    Attributes:
        offset: byte offset after the last entry covered.
        has_entries: whether an entry precedes ``offset`` (the next one needs a comma).
        entries: how many entries precede ``offset``.
        fingerprint: hash of the file's first and last 4 KiB before ``offset``: a log that was
            replaced, rewritten or cut shorter no longer matches.
    """

    offset: int
    has_entries: bool
    entries: int
    fingerprint: str


def _fingerprint(fd: int, offset: int) -> str:
    n = min(_FINGERPRINT, offset)
    h = hashlib.blake2b(str(offset).encode(), digest_size=16)
    h.update(_pread(fd, n, 0))
    h.update(_pread(fd, n, offset - n))
    return h.hexdigest()


class PerformanceLog:
    """The append-only performance log with an incremental read cursor.

    Thread-safe; processes are serialised by a lock on the log file itself
    (:class:`~nslang.workers.store.FileGuard`).

    Args:
        path: the log file.
        durable: ``fsync`` after every append (on by default; a SIGKILL never loses a completed
            append either way, ``fsync`` also covers power loss).
        lock_timeout: seconds to wait for another process's lock.
        companions: files written only under the log's lock (the summaries checkpoint); temporary
            files their killed writes left behind are swept at the first lock.
    """

    def __init__(self, path: Path, *, durable: bool = True, lock_timeout: float = 30.0,
                 companions: tuple[Path, ...] = ()) -> None:
        self.path = path
        self.durable = durable
        self._guard = FileGuard(path, lock_timeout, companions)
        self._ident: tuple[int, int] | None = None  # (st_dev, st_ino) the cursor belongs to
        self._end = 0  # byte offset after the last delivered entry (or after '[')
        self._has_entries = False
        self._seen_size = -1
        self._tail_ok = False  # the file ends with the "}\n]\n" our last append wrote
        self.entry_count = 0

    @property
    def end(self) -> int:
        """Byte offset after the last entry delivered so far."""
        return self._end

    def close(self) -> None:
        """Release the file descriptor the lock keeps open."""
        self._guard.close()

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
        with self._guard.hold(create=False) as locked:
            if not locked:
                self._gone(on_reset)
                return
            self._sync_locked(on_reset, on_entry)

    def reload(self, on_reset: Callable[[], None], on_entry: Callable[[LogEntry], None],
               resume: tuple[LogPosition, Callable[[], None]] | None = None) -> bool:
        """Read the file again: from a saved position when the file still matches it, else from the start.

        Args:
            on_reset: called (under the lock) when the read starts from the top.
            on_entry: called for each entry read.
            resume: ``(position, on_resume)``: when the file still holds the bytes ``position`` was
                taken from, ``on_resume`` is called (under the lock, instead of ``on_reset``) to
                install what the entries before it built, and reading goes on from there.

        Returns:
            Whether the read resumed at ``resume``.

        Raises:
            StoreError: the log is corrupt or unreadable (code 6).
        """
        with self._guard.hold(create=False) as locked:
            self._reset_cursor()
            if not locked:
                on_reset()
                return False
            fd = self._guard.fd
            resumed = resume is not None and self._matches_locked(resume[0])
            if resumed:
                assert resume is not None
                position, on_resume = resume
                st = os.fstat(fd)
                self._ident = (st.st_dev, st.st_ino)
                self._end = position.offset
                self._has_entries = position.has_entries
                self.entry_count = position.entries
                on_resume()
            else:
                on_reset()
            self._sync_locked(lambda: None, on_entry)
            return resumed

    def matches(self, position: LogPosition) -> bool:
        """Whether the log (as it is now) still holds the bytes ``position`` was taken from."""
        with self._guard.hold(create=False) as locked:
            return locked and self._matches_locked(position)

    def _matches_locked(self, position: LogPosition) -> bool:
        fd = self._guard.fd
        try:
            return (position.offset <= os.fstat(fd).st_size
                    and _fingerprint(fd, position.offset) == position.fingerprint)
        except OSError:
            return False

    def position(self) -> LogPosition | None:
        """Where the cursor is (for a checkpoint), or None before the first entry.

        The caller's state built from the delivered entries matches it only while the caller
        holds off deliveries, so call it from :meth:`at_position`'s callback.
        """
        if not self._has_entries or self._ident is None:
            return None
        return LogPosition(self._end, True, self.entry_count, _fingerprint(self._guard.fd, self._end))

    def at_position(self, use: Callable[[LogPosition], None]) -> None:
        """Call ``use(position)`` under the log's lock, after delivering anything new (no-op when
        the log holds no entries).

        Raises:
            StoreError: the log is corrupt or unreadable (code 6).
        """
        with self._guard.hold(create=False) as locked:
            if not locked:
                return
            fd = self._guard.fd
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != self._ident or st.st_size != self._seen_size:
                return  # not caught up: the caller syncs first and tries another time
            pos = self.position()
            if pos is not None:
                use(pos)

    def _gone(self, on_reset: Callable[[], None]) -> None:
        if self._ident is not None or self._seen_size != -1:
            self._reset_cursor()
            on_reset()

    def _reset_cursor(self) -> None:
        self._ident = None
        self._end = 0
        self._has_entries = False
        self._seen_size = -1
        self._tail_ok = False
        self.entry_count = 0

    def _sync_locked(self, on_reset: Callable[[], None], on_entry: Callable[[LogEntry], None]) -> None:
        fd = self._guard.fd
        try:
            st = os.fstat(fd)
        except OSError as e:
            raise self._error(f"cannot read it: {e.strerror or e}", corrupt=False) from None
        ident = (st.st_dev, st.st_ino)
        full = ident != self._ident or st.st_size < self._end
        if not full and st.st_size == self._seen_size:
            return
        self._tail_ok = False
        delivered = 0

        def emit(entry: LogEntry) -> None:
            nonlocal delivered
            delivered += 1
            on_entry(entry)

        if full:
            self._reset_cursor()
            on_reset()
        try:
            if full:
                scan = _stream(fd, 0, "start", 0, False, emit)
            else:
                scan = _stream(fd, self._end, "after" if self._has_entries else "open", self._end,
                               self._has_entries, emit)
        except _CorruptError as c:
            self._reset_cursor()  # the next sync starts again from the top (and resets the caller)
            raise self._error(f"{c.why} (at byte {c.offset})") from None
        except OSError as e:
            self._reset_cursor()
            raise self._error(f"cannot read it: {e.strerror or e}", corrupt=False) from None
        self._ident = ident
        self._end = scan.end
        self._has_entries = scan.has_entries
        self._seen_size = st.st_size
        self.entry_count += delivered

    def each_entry(self, on_entry: Callable[[LogEntry], None]) -> None:
        """Stream every entry delivered so far, in file order, without holding the lock (appends
        go on meanwhile). Memory stays at one block of the file.

        Raises:
            StaleLogError: the file was replaced since; call :meth:`reload` and ask again.
            StoreError: the file cannot be read (code 6).
        """
        if self._ident is None:
            return
        try:
            fd = os.open(self.path, os.O_RDONLY | _BINARY)
        except FileNotFoundError:
            raise StaleLogError() from None
        except OSError as e:
            raise self._error(f"cannot read it: {e.strerror or e}", corrupt=False) from None
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != self._ident or st.st_size < self._end:
                raise StaleLogError()
            _stream(fd, 0, "start", 0, False, on_entry, limit=self._end)
        except _CorruptError:
            raise StaleLogError() from None
        except OSError as e:
            raise self._error(f"cannot read it: {e.strerror or e}", corrupt=False) from None
        finally:
            os.close(fd)

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
            fd = self._guard.fd
            try:
                pos, sep = self._prepare_tail_locked(fd)
                payload = sep + line + _TAIL
                view = memoryview(payload)
                written = 0
                while written < len(payload):
                    written += _pwrite(fd, view[written:], pos + written)
                if self.durable:
                    _fdatasync(fd)
            except OSError as e:
                self._reset_cursor()
                raise self._error(f"cannot append to it: {e.strerror or e}", corrupt=False) from None
            new = LogEntry(pos + len(sep), len(line), entry)
            self._end = new.offset + new.length
            self._has_entries = True
            self._seen_size = pos + len(payload)
            self._tail_ok = True
            self.entry_count += 1
            on_entry(new)
            return new

    def _prepare_tail_locked(self, fd: int) -> tuple[int, bytes]:
        """(write position, separator to write before the entry), the cursor being up to date.

        Normally reads the last 4 bytes. Otherwise (new or empty file, torn tail, Go-era layout) the
        file is cut back to just after its last complete entry (what the cursor points at), torn
        bytes first saved aside.
        """
        size = self._seen_size
        if self._tail_ok:
            return size - 3, b",\n"
        if size == 0:
            return 0, b"[\n"
        tail = _pread(fd, 4, size - 4) if size >= 4 else b""
        if size == 4 and tail == _EMPTY:
            return 1, b"\n"
        if size > 4 and tail[1:] == _TAIL and tail[:1] == b"}":
            return size - 3, b",\n"
        end = self._end
        if end == 0:  # blank or null: nothing to keep
            os.ftruncate(fd, 0)
            return 0, b"[\n"
        rest = _pread(fd, size - end, end)
        if rest.strip(b" \t\r\n,]"):
            stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
            aside = self.path.with_name(f"{self.path.name}.torn-{stamp}-{os.getpid()}")
            aside.write_bytes(rest)
            if self.durable:
                fsync_dir(aside.parent)
            logger.warning("performance log %s ended in an incomplete entry (%d bytes, from an interrupted "
                           "write); it was cut back to its last complete entry and the bytes were saved in %s",
                           self.path, len(rest), aside)
        os.ftruncate(fd, end)
        return end, b",\n" if self._has_entries else b"\n"

    def _error(self, why: str, *, corrupt: bool = True) -> StoreError:
        hint = "; the file was left untouched: fix it or move it aside" if corrupt else ""
        return StoreError(f"performance log {self.path} is unusable: {why}{hint}", path=self.path)
