"""Rate limits that hold across threads, processes and hosts (ai_workers.md Part 1; issue 11 items 1-4).

Per worker definition, the four ``RateLimitPolicy`` limits:

* ``max_requests_per_minute``: requests (stateless tasks and chat turns) admitted in a sliding window of
  60 s, counted at admission, before the model call.
* ``max_tokens_per_minute`` / ``max_tokens_per_day``: input+output tokens in a sliding 60 s / 24 h
  window. A call **reserves an estimate** when it is admitted (prompt characters / 4, plus the call's
  ``max_tokens``, else the definition's running average of output tokens); the reservation is
  **settled** with the real usage when the call returns. A call is admitted when the window is empty or
  when the window's tokens plus its estimate fit under the limit, so any number of threads and processes
  overshoot a token limit by at most one call's tokens when the estimates hold (``max_tokens`` set).
  While nothing is known of a definition's output size (no ``max_tokens``, no settled call yet) a call
  reserves what remains of the window: calls run one at a time until the first one settles.
* ``max_concurrent_active_instances``: live instances, one **slot** per instance, taken at spawn and
  given back at retire.

A limit of 0 means unlimited; a definition without request or token limits costs nothing per call (no
backend is touched, and its usage is not recorded). Events are placed at their admission time.

Backends (one small interface, :class:`LimitBackend`):

* :class:`SQLiteLimits` on a file (default ``ai_worker_limits.sqlite3`` in the sandbox): every thread
  and process using the sandbox shares the windows, reservations and slots (SQLite ``BEGIN IMMEDIATE``
  transactions, WAL journal).
* ``SQLiteLimits(":memory:")``: one process only (embedding, tests).
* :class:`RedisLimits`: several hosts sharing one provider account; every operation is one Lua script,
  atomic on the server. Hosts' clocks must agree (NTP): times are the clients'.

Chosen by :func:`open_backend`: ``$NSLANG_LIMITS_URL`` (``redis://…``, ``rediss://…``, ``unix://…``,
``memory``, ``sqlite``), else the ``url`` of ``ai_worker_limits.json`` in the sandbox, else the SQLite file.

**Crashes.** Reservations and slots belong to an *owner* (one per backend object and process) holding a
lease of ``lease_ttl`` seconds (default 30), renewed by every operation and by a heartbeat thread while
it holds anything. When a process dies (even SIGKILL), its lease expires: its open reservations are
released (the request stays counted; its tokens are dropped) and its slots are freed.

**Waiting** (``rate_limits.on_limit: "wait"``): :meth:`RateLimiter.admit` and
:meth:`RateLimiter.acquire_instance` wait for the window or a free slot, at most ``max_wait_s`` (0: no
bound of its own) and never past the run's deadline (the ``time_left`` callable, e.g. the interpreter's
``--timeout``); otherwise, or when the wait cannot succeed in time, they raise
:class:`~nslang.workers.errors.RateLimitedError` (code 20) naming the definition, the limit and the
seconds until it frees.

Why not ``pyrate-limiter``: its SQLite and Redis buckets store one row / sorted-set member per unit of
weight (a 2,000-token call is 2,000 rows), cannot settle a reservation to the real usage afterwards, and
have no leases for live-instance counts; measured in ``bench/bench_limits.py``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import AIWorkerError, ConfigurationError, RateLimitedError, StoreError
from .models import AIWorkerDefinition, OnLimit

__all__ = [
    "ENV_URL", "LIMITS_FILE", "NO_TICKET", "SETTINGS_FILE", "Decision", "LimitBackend", "RateLimiter",
    "RedisLimits", "SQLiteLimits", "Ticket", "open_backend", "safe_url",
]

logger = logging.getLogger("nslang.workers")

#: Environment variable choosing the backend.
ENV_URL = "NSLANG_LIMITS_URL"
#: The one-machine store, in the sandbox.
LIMITS_FILE = "ai_worker_limits.sqlite3"
#: Optional settings file in the sandbox: ``{"url": "redis://host:6379/0", "prefix": "nslang:limits"}``.
SETTINGS_FILE = "ai_worker_limits.json"

MINUTE = 60.0
DAY = 86400.0
#: Token counts are clamped to this (2**40, about 10**12) before they reach a backend, so a ``max_tokens``
#: of 10**19 or a provider reporting 10**20 tokens cannot overflow a store (SQLite integers, Lua numbers);
#: any count this large already fills every token window.
MAX_TOKENS = 1 << 40
LEASE_TTL = 30.0
#: Longest sleep between two attempts while waiting (a settled reservation can free a window early).
POLL_S = 0.25


@dataclass(frozen=True)
class Decision:
    """A backend's answer to an acquisition.

    Attributes:
        admitted: True when the request (or slot) was granted.
        limit: the RateLimitPolicy field that refused it.
        used: requests, tokens or live instances counted in that window.
        reserve: tokens reserved by an admitted call (its estimate).
        retry_after: seconds until enough leaves the window (None: only a retire or a settled call frees it).
        pending: open reservations counted in the window (a settle may free it sooner).
    """

    admitted: bool
    limit: str = ""
    used: int = 0
    reserve: int = 0
    retry_after: float | None = None
    pending: int = 0


ADMITTED = Decision(True)


class LimitBackend(ABC):
    """Where windows, reservations and live-instance slots live; every method is atomic.

    Subclasses implement the ``_``-prefixed primitives; this base class owns the lease: an owner id per
    process, what it holds, and the heartbeat thread that renews the lease while it holds anything.

    Args:
        clock: wall-clock seconds of the windows (``time.time``; injectable for tests).
        minute, day: window lengths in seconds (60 and 86,400; shorter in tests).
        lease_ttl: seconds after which a dead owner's reservations and slots are released.
    """

    def __init__(self, *, clock: Callable[[], float] | None = None, minute: float = MINUTE, day: float = DAY,
                 lease_ttl: float = LEASE_TTL) -> None:
        if not (0 < minute <= day) or lease_ttl <= 0:
            raise ValueError("need 0 < minute <= day and lease_ttl > 0")
        self.clock = clock or time.time
        self.minute = minute
        self.day = day
        self.lease_ttl = lease_ttl
        self._hold_lock = threading.Lock()
        self._reset_owner()

    def _reset_owner(self) -> None:
        self._pid = os.getpid()
        self.owner = uuid.uuid4().hex
        self._open: dict[str, int] = {}  # key -> open reservations
        self._slots: dict[str, str] = {}  # slot id -> key
        self._beating = False
        self._stop = threading.Event()

    def _check_fork(self) -> None:
        if os.getpid() != self._pid:  # a forked child: never share the parent's owner or connection
            self._reset_owner()
            self._after_fork()

    def _lease(self) -> float:
        return time.time() + self.lease_ttl

    # ---------------------------------------------------------------------------------- interface

    def acquire(self, key: str, caps: tuple[int, int, int], prompt_tokens: int, max_tokens: int) -> tuple[
            Decision, str]:
        """Admit one request against ``caps`` = (requests/min, tokens/min, tokens/day) or refuse it.

        The estimate is ``prompt_tokens`` + ``max_tokens`` (when > 0), else + the definition's running
        average of output tokens, else what remains of the tightest token window.

        Returns:
            The decision and the reservation id to settle.
        """
        self._check_fork()
        rid = uuid.uuid4().hex
        d = self._acquire(key, rid, caps, _clamp(prompt_tokens), _clamp(max_tokens))
        if d.admitted:
            self._hold(key, +1)
        return d, rid

    def settle(self, key: str, rid: str, reserved: int, tokens: int | None, output_tokens: int | None) -> None:
        """Close a reservation of ``reserved`` tokens: ``tokens`` is the real input+output usage (None
        keeps the estimate); ``output_tokens`` (None for a failed call) feeds the running average."""
        self._check_fork()
        try:
            self._settle(key, rid, reserved, None if tokens is None else _clamp(tokens),
                         None if output_tokens is None else _clamp(output_tokens))
        finally:
            self._hold(key, -1)

    def acquire_instance(self, key: str, slot: str, cap: int) -> Decision:
        """Take a live-instance slot when fewer than ``cap`` are held by live owners."""
        self._check_fork()
        d = self._acquire_slot(key, slot, cap)
        if d.admitted:
            with self._hold_lock:
                self._slots[slot] = key
            self._hold(key, 0)
        return d

    def release_instance(self, slot: str) -> None:
        """Give back a slot taken by :meth:`acquire_instance` (no-op for a slot this owner never took)."""
        self._check_fork()
        with self._hold_lock:
            key = self._slots.pop(slot, None)
        if key is not None:
            self._release_slot(key, slot)

    def usage(self, key: str) -> dict[str, int]:
        """``{requests_last_minute, tokens_last_minute, tokens_last_day, live_instances}``; tokens
        include open reservations at their estimate."""
        self._check_fork()
        req_m, tok_m, tok_d, live = self._usage(key)
        return {"requests_last_minute": req_m, "tokens_last_minute": tok_m, "tokens_last_day": tok_d,
                "live_instances": live}

    def forget(self, key: str) -> None:
        """Drop everything recorded for ``key`` (a removed definition)."""
        self._check_fork()
        self._forget(key)

    def close(self) -> None:
        """Stop the heartbeat, give back this owner's slots and close its open reservations (the
        backend stays usable; it reconnects on the next call)."""
        with self._hold_lock:
            self._stop.set()
            self._stop = threading.Event()
            self._beating = False
        if os.getpid() == self._pid:
            try:
                self._drop_owner()
            except Exception as e:  # boundary: closing must not fail over a backend error
                logger.warning("rate limits: could not release this process's holdings: %s", e)
        with self._hold_lock:
            self._slots.clear()
            self._open.clear()

    # ---------------------------------------------------------------------------------- lease

    def _hold(self, key: str, delta: int) -> None:
        with self._hold_lock:
            if delta:
                n = self._open.get(key, 0) + delta
                if n > 0:
                    self._open[key] = n
                else:
                    self._open.pop(key, None)
            if (self._open or self._slots) and not self._beating:
                self._beating = True
                threading.Thread(target=self._beat, args=(self._stop,), name="nslang-limits-lease",
                                 daemon=True).start()

    def _held(self) -> tuple[list[str], dict[str, str]]:
        with self._hold_lock:
            keys = set(self._open) | set(self._slots.values())
            if not keys:
                self._beating = False
            return sorted(keys), dict(self._slots)

    def _beat(self, stop: threading.Event) -> None:
        while not stop.wait(self.lease_ttl / 3):
            keys, slots = self._held()
            if not keys:
                return
            try:
                self._renew(keys, slots)
            except Exception as e:  # boundary: a failed renewal is retried at the next beat
                logger.warning("rate limits: could not renew the lease: %s", e)

    # ---------------------------------------------------------------------------------- primitives

    @abstractmethod
    def _acquire(self, key: str, rid: str, caps: tuple[int, int, int], prompt_tokens: int,
                 max_tokens: int) -> Decision: ...

    @abstractmethod
    def _settle(self, key: str, rid: str, reserved: int, tokens: int | None, output_tokens: int | None) -> None:
        ...

    @abstractmethod
    def _acquire_slot(self, key: str, slot: str, cap: int) -> Decision: ...

    @abstractmethod
    def _release_slot(self, key: str, slot: str) -> None: ...

    @abstractmethod
    def _usage(self, key: str) -> tuple[int, int, int, int]: ...

    @abstractmethod
    def _forget(self, key: str) -> None: ...

    @abstractmethod
    def _renew(self, keys: list[str], slots: dict[str, str]) -> None: ...

    @abstractmethod
    def _drop_owner(self) -> None: ...

    @abstractmethod
    def _after_fork(self) -> None:
        """Drop connections inherited by a forked child (they reopen on first use)."""


def _clamp(tokens: int) -> int:
    return min(max(tokens, 0), MAX_TOKENS)


#: Weight of the newest call in the running average of output tokens.
AVERAGE_WEIGHT = 0.2
LIMIT_NAMES = ("max_requests_per_minute", "max_tokens_per_minute", "max_tokens_per_day")


def _estimate(prompt_tokens: int, max_tokens: int, avg: float | None, room: list[int]) -> int:
    """A call's token reservation: prompt + cap, else prompt + average, else what remains (``room``)."""
    if max_tokens > 0:
        return prompt_tokens + max_tokens
    if avg is not None:
        return prompt_tokens + math.ceil(avg)
    return max([prompt_tokens, min(room)] if room else [prompt_tokens])


# ============================================================================ SQLite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (rid TEXT PRIMARY KEY, key TEXT NOT NULL, t REAL NOT NULL,
    tokens INTEGER NOT NULL, owner TEXT);
CREATE INDEX IF NOT EXISTS events_key_t ON events (key, t);
CREATE INDEX IF NOT EXISTS events_owner ON events (owner) WHERE owner IS NOT NULL;
CREATE TABLE IF NOT EXISTS windows (key TEXT PRIMARY KEY, req_m INTEGER NOT NULL, tok_m INTEGER NOT NULL,
    tok_d INTEGER NOT NULL, edge_m REAL NOT NULL, edge_d REAL NOT NULL, avg_out REAL);
CREATE TABLE IF NOT EXISTS slots (slot TEXT PRIMARY KEY, key TEXT NOT NULL, owner TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS slots_key ON slots (key);
CREATE INDEX IF NOT EXISTS slots_owner ON slots (owner);
CREATE TABLE IF NOT EXISTS owners (owner TEXT PRIMARY KEY, expires REAL NOT NULL);
CREATE INDEX IF NOT EXISTS owners_expires ON owners (expires);
"""


def _file_id(path: str) -> tuple[int, int] | None:
    """(device, inode) of ``path``, or None when it does not exist."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class SQLiteLimits(LimitBackend):
    """Windows, reservations and slots in one SQLite database shared by every process that opens it.

    Each operation is one ``BEGIN IMMEDIATE`` transaction; window totals are kept as counters and
    only the events leaving a window are read, so a call costs the same with 10 or 100,000 events in
    the day window. The file is created on first use; when it is deleted (the way to reset the windows)
    or replaced, every backend that had it open moves to the new file at its next operation.

    Args:
        path: the database file, or ``":memory:"`` (one process).
        lock_timeout: seconds to wait for another process's transaction (default 30).
        clock, minute, day, lease_ttl: see :class:`LimitBackend`.

    Raises (from every operation):
        StoreError: code 6, the file is not a database, cannot be created, or stays locked.
    """

    def __init__(self, path: str | os.PathLike[str], *, lock_timeout: float = 30.0, **kw: Any) -> None:
        super().__init__(**kw)
        self.path = str(path)
        self.lock_timeout = lock_timeout
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._file: tuple[int, int] | None = None  # (st_dev, st_ino) of the file the connection opened
        self._lease_due = 0.0  # when this owner's lease must be written again

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._lease_due = 0.0
        self._conn = None  # never close a connection inherited from the parent

    def _connect(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is not None and self._file is not None and self._file != _file_id(self.path):
            # the file was deleted (the documented reset) or replaced: follow it, as other processes do;
            # this owner's lease and slots are written to the new file (the heartbeat restores slots)
            self._conn = None
            self._lease_due = 0.0
            conn.close()
            conn = None
        if conn is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.lock_timeout, isolation_level=None,
                                   check_same_thread=False)
            try:
                if self.path != ":memory:":
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(_SCHEMA)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
            self._file = _file_id(self.path) if self.path != ":memory:" else None
        return conn

    def _tx(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        try:
            with self._lock:
                conn = self._connect()
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(conn)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                return result
        except sqlite3.Error as e:
            hint = "; delete it to reset the rate windows" if isinstance(e, sqlite3.DatabaseError) and \
                "not a database" in str(e) else ""
            raise StoreError(f"rate-limit store {self.path}: {e}{hint}", path=Path(self.path)) from None

    # --------------------------------------------------------------------------- helpers

    def _sweep(self, c: sqlite3.Connection) -> None:
        """Release the reservations and slots of owners whose lease has expired."""
        now = time.time()
        dead = [o for (o,) in c.execute("SELECT owner FROM owners WHERE expires < ?", (now,))]
        for owner in dead:
            for key, t, tokens in c.execute("SELECT key, t, tokens FROM events WHERE owner = ?", (owner,)).fetchall():
                self._adjust(c, key, t, -tokens)
            c.execute("UPDATE events SET tokens = 0, owner = NULL WHERE owner = ?", (owner,))
            c.execute("DELETE FROM slots WHERE owner = ?", (owner,))
            c.execute("DELETE FROM owners WHERE owner = ?", (owner,))
            if owner == self.owner:
                self._lease_due = 0.0

    @staticmethod
    def _adjust(c: sqlite3.Connection, key: str, t: float, delta: int) -> None:
        if delta:
            c.execute("UPDATE windows SET tok_m = tok_m + (CASE WHEN ? > edge_m THEN ? ELSE 0 END), "
                      "tok_d = tok_d + (CASE WHEN ? > edge_d THEN ? ELSE 0 END) WHERE key = ?",
                      (t, delta, t, delta, key))

    def _window(self, c: sqlite3.Connection, key: str) -> tuple[float, list[Any], float | None]:
        """Slide ``key``'s windows to now, reading only the events that left them.

        Returns:
            (now, [requests/min, tokens/min, tokens/day, edge_m, edge_d] to pass to :meth:`_store`,
            average output tokens or None). The caller stores the counters back.
        """
        now = self.clock()
        row = c.execute("SELECT req_m, tok_m, tok_d, edge_m, edge_d, avg_out FROM windows WHERE key = ?",
                        (key,)).fetchone()
        if row is None:
            c.execute("INSERT INTO windows VALUES (?, 0, 0, 0, ?, ?, NULL)", (key, now - self.minute, now - self.day))
            return now, [0, 0, 0, now - self.minute, now - self.day], None
        req_m, tok_m, tok_d, edge_m, edge_d, avg = row
        now = max(now, edge_m + self.minute)  # the clock never goes back for a window
        cut_m, cut_d = now - self.minute, now - self.day
        if cut_m > edge_m:
            n, s = c.execute("SELECT COUNT(*), TOTAL(tokens) FROM events WHERE key = ? AND t > ? AND t <= ?",
                             (key, edge_m, cut_m)).fetchone()
            req_m, tok_m, edge_m = req_m - n, tok_m - int(s), cut_m
        if cut_d > edge_d:
            n, s = c.execute("SELECT COUNT(*), TOTAL(tokens) FROM events WHERE key = ? AND t > ? AND t <= ?",
                             (key, edge_d, cut_d)).fetchone()
            tok_d, edge_d = tok_d - int(s), cut_d
            if n:
                c.execute("DELETE FROM events WHERE key = ? AND t <= ?", (key, cut_d))
        return now, [req_m, tok_m, tok_d, edge_m, edge_d], avg

    @staticmethod
    def _store(c: sqlite3.Connection, key: str, w: list[Any]) -> None:
        c.execute("UPDATE windows SET req_m = ?, tok_m = ?, tok_d = ?, edge_m = ?, edge_d = ? WHERE key = ?",
                  (*w, key))

    def _own(self, c: sqlite3.Connection) -> None:
        """Write this owner's lease when a third of it has passed (it must exist before it holds anything)."""
        now = time.time()
        if now >= self._lease_due:
            c.execute("INSERT OR REPLACE INTO owners VALUES (?, ?)", (self.owner, now + self.lease_ttl))
            self._lease_due = now + self.lease_ttl / 3

    def _wait(self, c: sqlite3.Connection, key: str, now: float, span: float, column: str, used: int,
              target: int) -> tuple[float, int]:
        """Seconds until the window's ``column`` total drops to ``target``; open reservations in it."""
        remaining = used
        wait = 0.0
        pending = 0
        for t, amount, owner in c.execute(f"SELECT t, {column}, owner FROM events WHERE key = ? AND t > ? "
                                          "ORDER BY t", (key, now - span)):
            pending += owner is not None
            if remaining > target:
                remaining -= amount
                wait = t + span - now
        return max(0.0, wait), pending

    # --------------------------------------------------------------------------- primitives

    def _acquire(self, key: str, rid: str, caps: tuple[int, int, int], prompt_tokens: int,
                 max_tokens: int) -> Decision:
        def tx(c: sqlite3.Connection) -> Decision:
            self._sweep(c)
            now, w, avg = self._window(c, key)
            req_m, tok_m, tok_d = w[:3]
            rpm, tpm, tpd = caps
            token_caps = [(LIMIT_NAMES[1], tpm, tok_m, self.minute), (LIMIT_NAMES[2], tpd, tok_d, self.day)]
            est = _estimate(prompt_tokens, max_tokens, avg, [cap - used for _, cap, used, _ in token_caps if cap])
            refusal = None
            if rpm and req_m >= rpm:
                wait, pending = self._wait(c, key, now, self.minute, "1", req_m, rpm - 1)
                refusal = Decision(False, LIMIT_NAMES[0], req_m, retry_after=wait, pending=pending)
            for name, cap, used, span in token_caps:
                if refusal is None and cap and used and used + est > cap:
                    wait, pending = self._wait(c, key, now, span, "tokens", used, max(cap - est, 0))
                    refusal = Decision(False, name, used, est, wait, pending)
            if refusal is None:
                self._own(c)
                c.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?)", (rid, key, now, est, self.owner))
                w[0], w[1], w[2] = req_m + 1, tok_m + est, tok_d + est
            self._store(c, key, w)
            return refusal or Decision(True, reserve=est)

        result: Decision = self._tx(tx)
        return result

    def _settle(self, key: str, rid: str, reserved: int, tokens: int | None, output_tokens: int | None) -> None:
        def tx(c: sqlite3.Connection) -> None:
            new = reserved if tokens is None else tokens
            row = c.execute("UPDATE events SET tokens = ?, owner = NULL WHERE rid = ? AND owner = ? RETURNING t",
                            (new, rid, self.owner)).fetchone()
            delta = new - reserved
            if row is None:  # released by a sweep (our lease had expired: its tokens are 0), or pruned
                row = c.execute("UPDATE events SET tokens = ? WHERE rid = ? RETURNING t", (new, rid)).fetchone()
                delta = new
            t = row[0] if row is not None else -math.inf
            c.execute("UPDATE windows SET tok_m = tok_m + (CASE WHEN ? > edge_m THEN ? ELSE 0 END), "
                      "tok_d = tok_d + (CASE WHEN ? > edge_d THEN ? ELSE 0 END), "
                      "avg_out = CASE WHEN ? IS NULL THEN avg_out WHEN avg_out IS NULL THEN ? "
                      "ELSE avg_out + ? * (? - avg_out) END WHERE key = ?",
                      (t, delta, t, delta, output_tokens, output_tokens, AVERAGE_WEIGHT, output_tokens, key))

        self._tx(tx)

    def _acquire_slot(self, key: str, slot: str, cap: int) -> Decision:
        def tx(c: sqlite3.Connection) -> Decision:
            self._sweep(c)
            (live,) = c.execute("SELECT COUNT(*) FROM slots WHERE key = ?", (key,)).fetchone()
            if live >= cap:
                return Decision(False, "max_concurrent_active_instances", live)
            self._own(c)
            c.execute("INSERT OR REPLACE INTO slots VALUES (?, ?, ?)", (slot, key, self.owner))
            return ADMITTED

        result: Decision = self._tx(tx)
        return result

    def _release_slot(self, key: str, slot: str) -> None:
        self._tx(lambda c: c.execute("DELETE FROM slots WHERE slot = ?", (slot,)))

    def _usage(self, key: str) -> tuple[int, int, int, int]:
        def tx(c: sqlite3.Connection) -> tuple[int, int, int, int]:
            self._sweep(c)
            _, w, _ = self._window(c, key)
            self._store(c, key, w)
            (live,) = c.execute("SELECT COUNT(*) FROM slots WHERE key = ?", (key,)).fetchone()
            return w[0], w[1], w[2], live

        result: tuple[int, int, int, int] = self._tx(tx)
        return result

    def _forget(self, key: str) -> None:
        def tx(c: sqlite3.Connection) -> None:
            for table in ("events", "windows", "slots"):
                c.execute(f"DELETE FROM {table} WHERE key = ?", (key,))

        self._tx(tx)

    def _renew(self, keys: list[str], slots: dict[str, str]) -> None:
        def tx(c: sqlite3.Connection) -> None:
            self._lease_due = 0.0
            self._own(c)
            c.executemany("INSERT OR IGNORE INTO slots VALUES (?, ?, ?)",
                          [(slot, key, self.owner) for slot, key in slots.items()])

        self._tx(tx)

    def _drop_owner(self) -> None:
        if self._conn is None:
            return

        def tx(c: sqlite3.Connection) -> None:
            c.execute("UPDATE events SET owner = NULL WHERE owner = ?", (self.owner,))
            c.execute("DELETE FROM slots WHERE owner = ?", (self.owner,))
            c.execute("DELETE FROM owners WHERE owner = ?", (self.owner,))
            self._lease_due = 0.0

        self._tx(tx)
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


# ============================================================================ Redis

# Keys of one definition share a hash tag, so every script touches one Redis Cluster slot.
# ev: sorted set rid -> admission time; tok: hash rid -> tokens; open: hash rid -> owner (open
# reservations); win: hash of the window counters; own: sorted set owner -> lease expiry; slots: hash
# slot -> owner.
_LUA_COMMON = """
local ev, tok, open, win, own, slots = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local function fmt(x) return string.format('%.6f', x) end
local function adjust(t, delta)
  if delta == 0 then return end
  local e = redis.call('HMGET', win, 'edge_m', 'edge_d')
  if e[1] and t > tonumber(e[1]) then redis.call('HINCRBY', win, 'tok_m', delta) end
  if e[2] and t > tonumber(e[2]) then redis.call('HINCRBY', win, 'tok_d', delta) end
end
local function sweep(lease_now)
  local dead = redis.call('ZRANGEBYSCORE', own, '-inf', '(' .. lease_now)
  if #dead == 0 then return end
  local gone = {}
  for _, o in ipairs(dead) do gone[o] = true end
  local o = redis.call('HGETALL', open)
  for i = 1, #o, 2 do
    if gone[o[i + 1]] then
      local t = tonumber(redis.call('ZSCORE', ev, o[i]))
      if t then adjust(t, -tonumber(redis.call('HGET', tok, o[i]) or '0')) end
      redis.call('HSET', tok, o[i], 0)
      redis.call('HDEL', open, o[i])
    end
  end
  local s = redis.call('HGETALL', slots)
  for i = 1, #s, 2 do
    if gone[s[i + 1]] then redis.call('HDEL', slots, s[i]) end
  end
  redis.call('ZREMRANGEBYSCORE', own, '-inf', '(' .. lease_now)
end
local function sum_between(lo, hi)
  local ids = redis.call('ZRANGEBYSCORE', ev, '(' .. lo, hi)
  local total = 0
  for i = 1, #ids, 500 do
    local amounts = redis.call('HMGET', tok, unpack(ids, i, math.min(i + 499, #ids)))
    for _, a in ipairs(amounts) do total = total + (tonumber(a) or 0) end
  end
  return #ids, total, ids
end
local function window(now, minute, day)
  local w = redis.call('HMGET', win, 'req_m', 'tok_m', 'tok_d', 'edge_m', 'edge_d', 'avg_out')
  if not w[4] then
    redis.call('HSET', win, 'req_m', 0, 'tok_m', 0, 'tok_d', 0, 'edge_m', fmt(now - minute), 'edge_d', fmt(now - day))
    return now, 0, 0, 0, nil
  end
  local req_m, tok_m, tok_d = tonumber(w[1]), tonumber(w[2]), tonumber(w[3])
  local edge_m, edge_d = tonumber(w[4]), tonumber(w[5])
  if now < edge_m + minute then now = edge_m + minute end
  local cut_m, cut_d = tonumber(fmt(now - minute)), tonumber(fmt(now - day))
  if cut_m > edge_m then
    local n, s = sum_between(fmt(edge_m), fmt(cut_m))
    req_m, tok_m = req_m - n, tok_m - s
    redis.call('HSET', win, 'req_m', req_m, 'tok_m', tok_m, 'edge_m', fmt(cut_m))
  end
  if cut_d > edge_d then
    local _, s = sum_between(fmt(edge_d), fmt(cut_d))
    tok_d = tok_d - s
    redis.call('HSET', win, 'tok_d', tok_d, 'edge_d', fmt(cut_d))
    local old = redis.call('ZRANGEBYSCORE', ev, '-inf', fmt(cut_d))
    for i = 1, #old, 500 do
      local part = {unpack(old, i, math.min(i + 499, #old))}
      redis.call('HDEL', tok, unpack(part))
      redis.call('HDEL', open, unpack(part))
    end
    redis.call('ZREMRANGEBYSCORE', ev, '-inf', fmt(cut_d))
  end
  return now, req_m, tok_m, tok_d, tonumber(w[6])
end
local function wait(now, span, used, target, by_tokens)
  local ids = redis.call('ZRANGEBYSCORE', ev, '(' .. fmt(now - span), '+inf', 'WITHSCORES')
  local remaining, w, pending = used, 0, 0
  for i = 1, #ids, 2 do
    if redis.call('HEXISTS', open, ids[i]) == 1 then pending = pending + 1 end
    if remaining > target then
      local amount = 1
      if by_tokens then amount = tonumber(redis.call('HGET', tok, ids[i]) or '0') end
      remaining = remaining - amount
      w = tonumber(ids[i + 1]) + span - now
    end
  end
  if w < 0 then w = 0 end
  return fmt(w), pending
end
"""

# ARGV: now, lease_now, lease_until, owner, rid, rpm, tpm, tpd, prompt, max_tokens, minute, day
# -> {admitted (1/0), limit, used, reserve, retry_after, pending}
_LUA_ACQUIRE = _LUA_COMMON + """
local now, lease_now, lease_until, owner, rid = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local rpm, tpm, tpd = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local prompt, max_tokens = tonumber(ARGV[9]), tonumber(ARGV[10])
local minute, day = tonumber(ARGV[11]), tonumber(ARGV[12])
sweep(lease_now)
local req_m, tok_m, tok_d, avg
now, req_m, tok_m, tok_d, avg = window(now, minute, day)
if rpm > 0 and req_m >= rpm then
  local w, pending = wait(now, minute, req_m, rpm - 1, false)
  return {0, 'max_requests_per_minute', req_m, 0, w, pending}
end
local est
if max_tokens > 0 then est = prompt + max_tokens
elseif avg then est = prompt + math.ceil(avg)
else
  est = nil
  if tpm > 0 then est = tpm - tok_m end
  if tpd > 0 and (est == nil or tpd - tok_d < est) then est = tpd - tok_d end
  if est == nil or est < prompt then est = prompt end
end
local checks = {{'max_tokens_per_minute', tpm, tok_m, minute}, {'max_tokens_per_day', tpd, tok_d, day}}
for _, c in ipairs(checks) do
  if c[2] > 0 and c[3] > 0 and c[3] + est > c[2] then
    local target = c[2] - est
    if target < 0 then target = 0 end
    local w, pending = wait(now, c[4], c[3], target, true)
    return {0, c[1], c[3], est, w, pending}
  end
end
redis.call('ZADD', ev, fmt(now), rid)
redis.call('HSET', tok, rid, est)
redis.call('HSET', open, rid, owner)
redis.call('HINCRBY', win, 'req_m', 1)
redis.call('HINCRBY', win, 'tok_m', est)
redis.call('HINCRBY', win, 'tok_d', est)
redis.call('ZADD', own, lease_until, owner)
return {1, '', 0, est, '0', 0}
"""

# ARGV: rid, tokens ('' keeps the estimate), output_tokens ('' for a failed call), weight
_LUA_SETTLE = _LUA_COMMON + """
local rid = ARGV[1]
redis.call('HDEL', open, rid)
local t = redis.call('ZSCORE', ev, rid)
if ARGV[2] ~= '' and t then
  local tokens = tonumber(ARGV[2])
  adjust(tonumber(t), tokens - tonumber(redis.call('HGET', tok, rid) or '0'))
  redis.call('HSET', tok, rid, tokens)
end
if ARGV[3] ~= '' then
  local x = tonumber(ARGV[3])
  local avg = redis.call('HGET', win, 'avg_out')
  if avg then x = tonumber(avg) + tonumber(ARGV[4]) * (x - tonumber(avg)) end
  redis.call('HSET', win, 'avg_out', tostring(x))
end
return 1
"""

# ARGV: lease_now, lease_until, owner, slot, cap -> {admitted, live}
_LUA_SLOT = _LUA_COMMON + """
sweep(ARGV[1])
local live = redis.call('HLEN', slots)
if live >= tonumber(ARGV[5]) then return {0, live} end
redis.call('HSET', slots, ARGV[4], ARGV[3])
redis.call('ZADD', own, ARGV[2], ARGV[3])
return {1, live}
"""

# ARGV: now, lease_now, minute, day -> {req_m, tok_m, tok_d, live}
_LUA_USAGE = _LUA_COMMON + """
sweep(ARGV[2])
local _, req_m, tok_m, tok_d = window(tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[4]))
return {req_m, tok_m, tok_d, redis.call('HLEN', slots)}
"""

# ARGV: lease_until, owner, then slot ids to restore
_LUA_RENEW = _LUA_COMMON + """
redis.call('ZADD', own, ARGV[1], ARGV[2])
for i = 3, #ARGV do redis.call('HSETNX', slots, ARGV[i], ARGV[2]) end
return 1
"""

# ARGV: owner: close its reservations (keeping their estimates) and free its slots
_LUA_DROP = _LUA_COMMON + """
local o = redis.call('HGETALL', open)
for i = 1, #o, 2 do if o[i + 1] == ARGV[1] then redis.call('HDEL', open, o[i]) end end
local s = redis.call('HGETALL', slots)
for i = 1, #s, 2 do if s[i + 1] == ARGV[1] then redis.call('HDEL', slots, s[i]) end end
redis.call('ZREM', own, ARGV[1])
return 1
"""


def safe_url(url: str) -> str:
    """``url`` without its user name and password (safe for messages)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    # the port as written (``parts.port`` raises on one that is not a number)
    port = parts.netloc.rpartition("@")[2].rpartition("]")[2].partition(":")[2]
    if port:
        host += f":{port}"
    return f"{parts.scheme}://{host}{parts.path}"


class RedisLimits(LimitBackend):
    """Windows, reservations and slots in Redis, shared by every host using the same server and prefix.

    Each operation is one Lua script (atomic on the server). Keys are
    ``<prefix>:{<definition id>}:<part>``; events expire from Redis with the day window.

    Args:
        url: ``redis://[user:password@]host:port/db``, ``rediss://…`` or ``unix:///path?db=N``.
        prefix: key prefix (default ``nslang:limits``); hosts sharing a limit use the same one.
        client: an existing ``redis.Redis`` client instead of ``url`` (tests, embedding).
        clock, minute, day, lease_ttl: see :class:`LimitBackend`.

    Raises (from every operation):
        AIWorkerError: code 6, the server cannot be reached or refused the command (the message names
            the URL without its password).
    """

    def __init__(self, url: str = "", *, prefix: str = "nslang:limits", client: Any = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.url = url
        self.prefix = prefix
        self._client = client
        self._scripts: dict[str, Any] = {}
        self._client_lock = threading.Lock()

    def _after_fork(self) -> None:
        self._client_lock = threading.Lock()
        if self.url:
            self._client = None
            self._scripts = {}

    def _connect(self) -> Any:
        """The client (made from ``url`` on first use; call with ``_client_lock`` held).

        Raises:
            ConfigurationError: code 18, ``url`` is malformed (e.g. a port that is not a number).
        """
        import redis

        if self._client is None:
            try:
                self._client = redis.Redis.from_url(self.url)
            except ValueError as e:  # redis-py's URL parsing; its messages never quote the password
                raise ConfigurationError(f"rate-limit store {safe_url(self.url)}: {e}") from None
        return self._client

    def _run(self, name: str, key: str, args: Sequence[Any]) -> Any:
        import redis

        with self._client_lock:
            self._connect()
            script = self._scripts.get(name)
            if script is None:
                source = {"acquire": _LUA_ACQUIRE, "settle": _LUA_SETTLE, "slot": _LUA_SLOT, "usage": _LUA_USAGE,
                          "renew": _LUA_RENEW, "drop": _LUA_DROP}[name]
                script = self._scripts[name] = self._client.register_script(source)
        base = f"{self.prefix}:{{{key}}}"
        keys = [f"{base}:{part}" for part in ("ev", "tok", "open", "win", "own", "slots")]
        try:
            return script(keys=keys, args=list(args))
        except redis.RedisError as e:
            where = safe_url(self.url) if self.url else "the Redis client"
            raise AIWorkerError(f"rate-limit store {where}: {type(e).__name__}: {e}") from None

    def _acquire(self, key: str, rid: str, caps: tuple[int, int, int], prompt_tokens: int,
                 max_tokens: int) -> Decision:
        lease_now = time.time()
        r = self._run("acquire", key, [repr(self.clock()), repr(lease_now), repr(lease_now + self.lease_ttl),
                                       self.owner, rid, *caps, prompt_tokens, max_tokens, self.minute, self.day])
        admitted, limit, used, est, wait, pending = r
        if admitted:
            return Decision(True, reserve=int(est))
        return Decision(False, limit.decode(), int(used), int(est), float(wait), int(pending))

    def _settle(self, key: str, rid: str, reserved: int, tokens: int | None, output_tokens: int | None) -> None:
        self._run("settle", key, [rid, "" if tokens is None else tokens,
                                  "" if output_tokens is None else output_tokens, AVERAGE_WEIGHT])

    def _acquire_slot(self, key: str, slot: str, cap: int) -> Decision:
        lease_now = time.time()
        admitted, live = self._run("slot", key, [repr(lease_now), repr(lease_now + self.lease_ttl), self.owner,
                                                 slot, cap])
        return ADMITTED if admitted else Decision(False, "max_concurrent_active_instances", int(live))

    def _release_slot(self, key: str, slot: str) -> None:
        self._run_plain(key, lambda c, k: c.hdel(k["slots"], slot))

    def _run_plain(self, key: str, fn: Callable[[Any, dict[str, str]], Any]) -> Any:
        import redis

        base = f"{self.prefix}:{{{key}}}"
        keys = {part: f"{base}:{part}" for part in ("ev", "tok", "open", "win", "own", "slots")}
        with self._client_lock:
            client = self._connect()
        try:
            return fn(client, keys)
        except redis.RedisError as e:
            where = safe_url(self.url) if self.url else "the Redis client"
            raise AIWorkerError(f"rate-limit store {where}: {type(e).__name__}: {e}") from None

    def _usage(self, key: str) -> tuple[int, int, int, int]:
        r = self._run("usage", key, [repr(self.clock()), repr(time.time()), self.minute, self.day])
        return int(r[0]), int(r[1]), int(r[2]), int(r[3])

    def _forget(self, key: str) -> None:
        self._run_plain(key, lambda c, k: c.delete(*k.values()))

    def _renew(self, keys: list[str], slots: dict[str, str]) -> None:
        for key in keys:
            mine = [slot for slot, k in slots.items() if k == key]
            self._run("renew", key, [repr(self._lease()), self.owner, *mine])

    def _drop_owner(self) -> None:
        if self._client is None:
            return
        with self._hold_lock:
            keys = set(self._open) | set(self._slots.values())
        for key in keys:
            self._run("drop", key, [self.owner])


# ============================================================================ choosing a backend


def open_backend(sandbox_dir: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None,
                 clock: Callable[[], float] | None = None, lock_timeout: float = 30.0) -> LimitBackend:
    """The backend for a sandbox: ``$NSLANG_LIMITS_URL``, else ``url`` in ``ai_worker_limits.json`` in the
    sandbox, else the SQLite file ``ai_worker_limits.sqlite3`` in the sandbox.

    URLs: ``redis://…``, ``rediss://…``, ``unix://…`` (Redis), ``memory`` (this process only),
    ``sqlite`` (the sandbox file, the default).

    Raises:
        ConfigurationError: code 18, an unknown URL scheme or an unreadable settings file.
    """
    env = os.environ if environ is None else environ
    url = env.get(ENV_URL, "").strip()
    prefix = "nslang:limits"
    where = f"${ENV_URL}"
    settings = Path(sandbox_dir) / SETTINGS_FILE
    if not url and settings.is_file():
        where = str(settings)
        try:
            data = json.loads(settings.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            url = str(data.get("url") or "").strip()
            prefix = str(data.get("prefix") or prefix)
        except (OSError, ValueError) as e:
            raise ConfigurationError(f"rate-limit settings {settings}: {e}") from None
    scheme = url.split(":", 1)[0].lower() if url else "sqlite"
    if scheme == "sqlite":
        return SQLiteLimits(Path(sandbox_dir) / LIMITS_FILE, clock=clock, lock_timeout=lock_timeout)
    if scheme == "memory":
        return SQLiteLimits(":memory:", clock=clock)
    if scheme in ("redis", "rediss", "unix"):
        return RedisLimits(url, prefix=prefix, clock=clock)
    raise ConfigurationError(f"{where}: unsupported rate-limit store '{safe_url(url) if '://' in url else scheme}' "
                             "(use redis://, rediss://, unix://, memory or sqlite)")


# ============================================================================ the manager's limiter


class Ticket:
    """An admitted request's reservation; settle it with the real usage (or leave the ``with`` block).

    Use as a context manager: leaving the block without :meth:`settle` (an exception inside the
    call) closes the reservation at its estimate.
    """

    __slots__ = ("_backend", "key", "rid", "reserved", "_done")

    def __init__(self, backend: LimitBackend | None, key: str = "", rid: str = "", reserved: int = 0) -> None:
        self._backend = backend
        self.key = key
        self.rid = rid
        self.reserved = reserved
        self._done = backend is None

    def settle(self, input_tokens: int, output_tokens: int, success: bool) -> None:
        """Replace the estimate by the real usage (tokens); a successful call feeds the output average."""
        if not self._done:
            self._done = True
            assert self._backend is not None
            self._backend.settle(self.key, self.rid, self.reserved, input_tokens + output_tokens,
                                 output_tokens if success else None)

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._done:
            self._done = True
            assert self._backend is not None
            self._backend.settle(self.key, self.rid, self.reserved, None, None)


#: The ticket of a definition without request or token limits: settling it does nothing.
NO_TICKET = Ticket(None)


def _span(seconds: float) -> str:
    return "24 h" if seconds == DAY else f"{seconds:g} s"


class RateLimiter:
    """The manager's side of the limits: policies, estimates, waiting, error messages.

    Args:
        backend: a :class:`LimitBackend`, or a zero-argument factory called on the first limited call
            (so an unlimited workload never opens a store).
        time_left: seconds left before the run's deadline, or None for no deadline (the interpreter's
            ``--timeout``); waits never go past it.
        sleep: how to wait (``time.sleep``; injectable for tests).
    """

    def __init__(self, backend: LimitBackend | Callable[[], LimitBackend], *,
                 time_left: Callable[[], float | None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._backend = backend if isinstance(backend, LimitBackend) else None
        self._factory = None if isinstance(backend, LimitBackend) else backend
        self._open_lock = threading.Lock()
        self._time_left = time_left
        self._sleep = sleep

    @property
    def backend(self) -> LimitBackend:
        """The backend (opened on first use)."""
        b = self._backend
        if b is None:
            with self._open_lock:
                if self._backend is None:
                    assert self._factory is not None
                    self._backend = self._factory()
                b = self._backend
        return b

    def admit(self, d: AIWorkerDefinition, messages: Iterable[Any], settings: Mapping[str, Any]) -> Ticket:
        """Admit one request of definition ``d`` (a stateless task or a chat turn), reserving its tokens.

        Args:
            d: the definition (its ``rate_limits`` and ids).
            messages: the messages to send (objects with ``content``), for the prompt estimate.
            settings: the call's settings (``max_tokens``).

        Returns:
            :data:`NO_TICKET` when ``d`` has no request or token limit, else a :class:`Ticket` to settle.

        Raises:
            RateLimitedError: code 20, a limit is reached (after waiting, with ``on_limit: "wait"``).
            StoreError / AIWorkerError: code 6, the store cannot be used.
        """
        p = d.rate_limits
        if not (p.max_requests_per_minute or p.max_tokens_per_minute or p.max_tokens_per_day):
            return NO_TICKET
        caps = (p.max_requests_per_minute, p.max_tokens_per_minute, p.max_tokens_per_day)
        prompt = sum(len(m.content) for m in messages) // 4
        cap = settings.get("max_tokens")
        max_tokens = cap if isinstance(cap, int) and not isinstance(cap, bool) and cap > 0 else 0
        backend = self.backend
        waited = 0.0
        while True:
            decision, rid = backend.acquire(d.definition_id, caps, prompt, max_tokens)
            if decision.admitted:
                return Ticket(backend, d.definition_id, rid, decision.reserve)
            waited += self._wait_or_raise(d, decision, waited)

    def acquire_instance(self, d: AIWorkerDefinition, instance_id: str) -> None:
        """Take a live-instance slot for a new instance of ``d`` (no-op without
        ``max_concurrent_active_instances``: instances spawned while the definition had no cap hold no
        slot and are not counted if a cap is set later).

        Raises:
            RateLimitedError: code 20, the definition's live instances (in every process sharing the
                store) reach the limit (after waiting, with ``on_limit: "wait"``).
        """
        cap = d.rate_limits.max_concurrent_active_instances
        if not cap:
            return
        backend = self.backend
        waited = 0.0
        while True:
            decision = backend.acquire_instance(d.definition_id, instance_id, cap)
            if decision.admitted:
                return
            waited += self._wait_or_raise(d, decision, waited)

    def release_instance(self, instance_id: str) -> None:
        """Give back the slot of a retired instance (no-op when it holds none)."""
        if self._backend is not None:
            self._backend.release_instance(instance_id)

    def usage(self, d: AIWorkerDefinition) -> dict[str, int]:
        """See :meth:`LimitBackend.usage`; zeros for a definition without any limit (nothing is recorded
        for it, and no store is opened)."""
        p = d.rate_limits
        if not (p.max_requests_per_minute or p.max_tokens_per_minute or p.max_tokens_per_day
                or p.max_concurrent_active_instances):
            return {"requests_last_minute": 0, "tokens_last_minute": 0, "tokens_last_day": 0, "live_instances": 0}
        return self.backend.usage(d.definition_id)

    def forget(self, definition_id: str) -> None:
        """Drop a removed definition's windows and slots (when this process has opened the store)."""
        if self._backend is not None:
            self._backend.forget(definition_id)

    def close(self) -> None:
        """Release this process's slots and reservations and stop the lease heartbeat."""
        if self._backend is not None:
            self._backend.close()

    def _wait_or_raise(self, d: AIWorkerDefinition, decision: Decision, waited: float) -> float:
        """Sleep before the next attempt and return how long, or raise RateLimitedError."""
        p = d.rate_limits
        name = decision.limit
        retry = decision.retry_after
        if name == "max_concurrent_active_instances":
            cap = p.max_concurrent_active_instances
            what = f"limit {name}={cap} reached ({decision.used} live instances)"
            frees = "it frees when an instance is retired"
        else:
            cap = getattr(p, name)
            unit = "requests" if name == LIMIT_NAMES[0] else "tokens"
            span = _span(self.backend.day if name == LIMIT_NAMES[2] else self.backend.minute)
            need = f"; this call needs ~{decision.reserve:,} tokens" if unit == "tokens" else ""
            what = f"rate limit {name}={cap} reached ({decision.used:,} {unit} in the last {span}{need})"
            frees = f"it frees in {retry:.1f} s" if retry is not None else "it frees when a call completes"
        prefix = f"AI worker definition '{d.name}' ({d.definition_id}): {what}"
        if p.on_limit is OnLimit.WAIT:
            budget: float | None = p.max_wait_s - waited if p.max_wait_s else None
            left = self._time_left() if self._time_left is not None else None
            if left is not None and (budget is None or left < budget):
                budget, why = left, "the run's time limit"
            else:
                why = f"max_wait_s={p.max_wait_s:g}"
            # a reservation in flight may settle below its estimate and free the window early
            hopeless = retry is not None and decision.pending == 0 and budget is not None and retry > budget
            if budget is None or (budget > 0 and not hopeless):
                pause = POLL_S if retry is None or decision.pending else max(retry, 0.001)
                pause = min(pause, POLL_S * 4, budget if budget is not None else pause)
                self._sleep(pause)
                return pause
            raise RateLimitedError(f"{prefix}; {frees}, after {why} (waited {waited:.1f} s)",
                                   definition_id=d.definition_id, limit=name, retry_after=retry)
        raise RateLimitedError(f"{prefix}; {frees}", definition_id=d.definition_id, limit=name, retry_after=retry)
