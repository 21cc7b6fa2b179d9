"""The summaries checkpoint: per-definition running totals up to a byte offset of the performance log
(issue 11 item 5).

``<sandbox>/ai_worker_summaries.json`` lets a process open a sandbox without reading the whole
performance log: it loads the totals the checkpoint holds and folds only the entries appended after
its offset. The log stays the source of truth (ai_workers.md Part 1): the checkpoint is a cache that
is

* **verified** before use: the log must still hold the bytes the checkpoint was made from (same
  length up to the offset, same first and last 4 KiB before it; see
  :class:`~nslang.workers.perflog.LogPosition`);
* **rebuilt** from the whole log when it is missing, damaged (not JSON, a wrong field, an unknown
  version: a warning is logged) or no longer matches the log (replaced, rewritten, cut shorter);
* **refreshed** by any process that has read or appended at least :data:`CHECKPOINT_EVERY` bytes of
  log past the checkpoint on disk, so an open never reads more than about that much log;
* written atomically (temporary file + rename) under the performance log's lock, so it always
  describes a prefix of the log exactly, whoever writes it and whenever a writer is killed.

Layout (JSON object)::

    {"version": 1,
     "log": {"offset": 73400320, "entries": 100000, "fingerprint": "…"},
     "summaries": {"<definition_id>": {"attempted": 99990, "successful": 99001, "duration_ms": …,
                   "tokens": …, "cost": 1.23, "quality_sum": 0.0, "rated": 0,
                   "last_activity": "2026-01-02T03:04:05+00:00", "spawned": 3}, …}}
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from .perflog import LogPosition, PerformanceLog
from .store import atomic_write
from .summaries import SummaryAccumulator

__all__ = ["CHECKPOINT_EVERY", "CHECKPOINT_FILE", "SummariesCheckpoint", "read_checkpoint", "write_checkpoint"]

CHECKPOINT_FILE = "ai_worker_summaries.json"
#: bytes of log past the checkpoint after which a process rewrites it (about 1,400 records)
CHECKPOINT_EVERY = 1 << 20
_VERSION = 1
_MAX_BYTES = 64 << 20  # a checkpoint bigger than this is not ours: rebuild instead of reading it

logger = logging.getLogger("nslang.workers")


class SummariesCheckpoint:
    """The checkpoint file of one sandbox and the log offset it is known to cover.

    Args:
        path: ``<sandbox>/ai_worker_summaries.json``.
        durable: ``fsync`` its writes.
    """

    def __init__(self, path: Path, durable: bool) -> None:
        self.path = path
        self.durable = durable
        self.covered = 0  # log offset the checkpoint on disk covers, as far as this process knows

    def refresh(self, log: PerformanceLog, summaries: Callable[[], dict[str, SummaryAccumulator]],
                state: AbstractContextManager[Any]) -> None:
        """Rewrite the checkpoint once :data:`CHECKPOINT_EVERY` bytes of log were folded past it.

        Args:
            log: the performance log the summaries were folded from.
            summaries: returns the current accumulators (read while holding ``state``).
            state: the lock guarding them.
        """
        if log.end - self.covered < CHECKPOINT_EVERY:
            return

        def write(pos: LogPosition) -> None:  # under the log's lock: no entry is folded meanwhile
            found = read_checkpoint(self.path)
            if found is not None and found[0].offset >= pos.offset and log.matches(found[0]):
                self.covered = found[0].offset  # another process wrote a newer one
                return
            with state:
                ok = write_checkpoint(self.path, pos, summaries(), self.durable)
            if ok:
                self.covered = pos.offset

        log.at_position(write)


def read_checkpoint(path: Path) -> tuple[LogPosition, dict[str, SummaryAccumulator]] | None:
    """The checkpoint's log position and accumulators; None when it is missing or damaged (a damaged
    one is logged as a warning and left for the next write to replace)."""
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as e:
        logger.warning("summaries checkpoint %s cannot be read (%s); rebuilding the summaries from the "
                       "performance log", path, e.strerror or e)
        return None
    try:
        if len(data) > _MAX_BYTES:
            raise ValueError("too large")
        obj = json.loads(data)
        if not isinstance(obj, dict) or obj.get("version") != _VERSION:
            raise ValueError("unknown version")
        log = obj.get("log")
        summaries = obj.get("summaries")
        if not isinstance(log, dict) or not isinstance(summaries, dict):
            raise ValueError("missing log or summaries")
        offset, entries, fingerprint = log.get("offset"), log.get("entries"), log.get("fingerprint")
        for v in (offset, entries):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError("bad log position")
        if not isinstance(fingerprint, str):
            raise ValueError("bad fingerprint")
        accs = {str(k): SummaryAccumulator.from_json(v) for k, v in summaries.items()}
    except (ValueError, RecursionError) as e:  # json.JSONDecodeError is a ValueError
        logger.warning("summaries checkpoint %s is damaged (%s); rebuilding the summaries from the "
                       "performance log", path, e)
        return None
    return LogPosition(offset, True, entries, fingerprint), accs


def write_checkpoint(path: Path, position: LogPosition, accumulators: dict[str, SummaryAccumulator],
                     durable: bool) -> bool:
    """Replace the checkpoint atomically; returns False (with a warning) when it cannot be written,
    which costs only a longer next open."""
    obj: dict[str, Any] = {
        "version": _VERSION,
        "log": {"offset": position.offset, "entries": position.entries, "fingerprint": position.fingerprint},
        "summaries": {k: acc.to_json() for k, acc in accumulators.items()},
    }
    data = (json.dumps(obj, ensure_ascii=True, separators=(",", ":"), allow_nan=False) + "\n").encode("ascii")
    try:
        atomic_write(path, data, durable=durable)
    except (OSError, ValueError) as e:
        logger.warning("summaries checkpoint %s cannot be written (%s)", path, getattr(e, "strerror", None) or e)
        return False
    return True
