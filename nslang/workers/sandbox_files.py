"""The files nslang keeps in a sandbox directory, which scripts may read but never change (issue 10 item 3).

The AI worker subsystem stores its data in the sandbox, the directory the ``fs`` tools work in: the
definitions file and the performance log (:mod:`.store`, :mod:`.perflog`), their ``.lock`` files,
``.torn-*`` files saved aside by a log repair, the temporary files of atomic writes, and whatever
checkpoint or state file comes next. A script that writes, appends to, moves, deletes or creates
over one of them would wipe history and definitions, so the sandbox path resolver
(:func:`nslang.tools.builtin._sandbox.resolve`) refuses every change to a path with a component that
matches :data:`PROTECTED_PATTERNS` (code 11, ReadOnly). Reading stays allowed.

A new internal file needs no change here when its name falls under a pattern (``ai_worker_*`` for
worker data, ``.nslang*`` for anything else); otherwise add one line to :data:`PROTECTED_PATTERNS`.

This module imports nothing from nslang, so the file tools can consult it without loading the
worker subsystem.
"""

from __future__ import annotations

import fnmatch
import re
import unicodedata

__all__ = ["PROTECTED_PATTERNS", "is_protected_name", "name_key"]

#: Shell-style patterns, lower case, matched against :func:`name_key` of every path component.
PROTECTED_PATTERNS: tuple[str, ...] = (
    "ai_worker_*",  # definitions, performance log, their .lock and .torn-* files, summaries checkpoint
    ".ai_worker_*",  # temporaries of store.atomic_write (.<file name>.<random>.tmp)
    ".nslang*",  # any other internal file: fs.Write temporaries (.nslang-tmp-*), caches, state
)


_MATCH = re.compile("|".join(fnmatch.translate(p) for p in PROTECTED_PATTERNS), re.DOTALL).match


def name_key(name: str) -> str:
    """The form of a file name that protection compares: NFKC-normalised, case-folded, without the
    invisible format characters (Unicode category Cf, e.g. zero-width joiners) that some file systems
    ignore. So ``AI_Worker_Definitions.JSON``, a full-width ``ａｉ_worker_…`` and a name with a hidden
    U+200D all compare equal to ``ai_worker_…``."""
    if name.isascii():
        return name.lower()
    text = unicodedata.normalize("NFKC", name).casefold()
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def is_protected_name(name: str) -> bool:
    """Whether one path component (a file or directory name, no separators) is an internal name."""
    return _MATCH(name_key(name)) is not None
