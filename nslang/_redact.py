"""Removing secrets (API keys, auth header values) from text, in every form they take (issue 10 item 2).

:func:`scrub` is the one redaction function: the HTTP layer applies it to every error it builds, and the
AI worker manager to every text that leaves it (error messages, HTTP bodies, replies, record fields),
so results, records, logs, tool outputs, the REPL and the CLI views only ever see redacted text.

A secret is matched not only as written but in each form text can carry it in:

* raw;
* Python ``repr`` of a ``str`` or of its UTF-8 ``bytes`` (``\\r``, ``\\n``, ``\\x..``, ``\\u....``), and
  ``unicode_escape``;
* JSON string content (``\\"``, ``\\\\``, ``\\u....``; ASCII-only or not);
* URL-encoded (``quote`` with and without ``/`` kept, ``quote_plus``; upper- or lower-case hex);
* HTML-escaped (``&amp;``, ``&quot;``, ``&#x27;``).

Each occurrence becomes :func:`redact` of the secret (``****`` and its last 4 characters, or just
``****`` for a secret under 12 characters). Secrets shorter than :data:`MIN_SECRET_CHARS` are not
matched (they would erase ordinary text). Redact before truncating: a cut-off secret is not recognised.
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = ["MIN_SECRET_CHARS", "REDACTED_PREFIX", "StreamScrubber", "contains_secret", "is_redacted", "redact", "scrub",
           "scrub_value"]

REDACTED_PREFIX = "****"
#: Secrets shorter than this (characters) are never searched for in text.
MIN_SECRET_CHARS = 4

_PERCENT = re.compile(r"%[0-9A-F]{2}")


def redact(secret: str) -> str:
    """``****`` plus the last 4 characters; just ``****`` for secrets shorter than 12 characters."""
    if len(secret) >= 12:
        return REDACTED_PREFIX + secret[-4:]
    return REDACTED_PREFIX


def is_redacted(value: str) -> bool:
    """True for a value produced by :func:`redact` (never a usable key)."""
    return value.startswith(REDACTED_PREFIX)


def _forms(secret: str) -> set[str]:
    """Every spelling of ``secret`` that text may contain (see the module docstring)."""
    raw = secret.encode("utf-8", "surrogatepass")
    forms = {
        secret,
        repr(secret)[1:-1],
        repr(raw)[2:-1],
        secret.encode("unicode_escape").decode("ascii"),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        html.escape(secret),
        html.escape(secret, quote=False),
    }
    for encoded in (quote(raw, safe=""), quote(raw), quote_plus(raw, safe="")):
        forms.add(encoded)
        forms.add(_PERCENT.sub(lambda m: m.group().lower(), encoded))
    return {f for f in forms if len(f) >= MIN_SECRET_CHARS}


@functools.lru_cache(maxsize=64)
def _matcher(secrets: tuple[str, ...]) -> tuple[re.Pattern[str], dict[str, str]] | None:
    """One alternation over every form of every secret (longest first) and form → redacted text."""
    table: dict[str, str] = {}
    for s in secrets:
        for f in _forms(s):
            table.setdefault(f, redact(s))
    if not table:
        return None
    alternation = "|".join(re.escape(f) for f in sorted(table, key=len, reverse=True))
    return re.compile(alternation), table


def _key(secrets: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(sorted({s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_CHARS}))


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every form of each secret (4+ characters; None ignored) replaced by its redaction."""
    found = _matcher(_key(secrets))
    if found is None or not text:
        return text
    pattern, table = found
    return pattern.sub(lambda m: table[m.group()], text)


def contains_secret(text: str, secrets: Iterable[str | None]) -> bool:
    """Whether ``text`` holds any form of any of ``secrets`` (what :func:`scrub` would replace)."""
    found = _matcher(_key(secrets))
    return found is not None and bool(text) and found[0].search(text) is not None


def scrub_value(value: Any, secrets: Iterable[str | None]) -> Any:
    """``value`` with :func:`scrub` applied to every string in it (map keys included), through lists,
    tuples and maps (a map comes back as a ``dict``, a tuple as a ``list``); other values unchanged.
    ``value`` itself when no string holds a secret (nothing is copied).

    Raises:
        RecursionError: ``value`` nests deeper than the Python stack allows (callers bound the depth).
    """
    key = _key(secrets)
    if _matcher(key) is None:
        return value
    return _scrub_value(value, key)


def _scrub_value(value: Any, key: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return scrub(value, key)
    if isinstance(value, Mapping):
        items = [(_scrub_value(k, key), _scrub_value(v, key)) for k, v in value.items()]
        if all(k is a and v is b for (k, v), (a, b) in zip(items, value.items(), strict=True)):
            return value
        return dict(items)
    if isinstance(value, (list, tuple)):
        out = [_scrub_value(v, key) for v in value]
        return value if all(a is b for a, b in zip(out, value, strict=True)) else out
    return value


class StreamScrubber:
    """:func:`scrub` for text that arrives in pieces (a streamed model reply; issue 14 item 2).

    :meth:`feed` returns what can be shown now: the text so far, scrubbed, minus its longest end that
    could be the start of a secret (held until the next piece says); :meth:`flush` returns the rest.
    A secret split across pieces is therefore redacted like one that arrives whole.
    """

    def __init__(self, secrets: Iterable[str | None]) -> None:
        self._secrets = _key(secrets)
        self._forms = sorted({f for s in self._secrets for f in _forms(s)}, key=len, reverse=True)
        self._held = ""

    def feed(self, piece: str) -> str:
        """The scrubbed text that is safe to show after ``piece`` (may be empty)."""
        text = scrub(self._held + piece, self._secrets)
        hold = self._hold(text)
        self._held = text[len(text) - hold:] if hold else ""
        return text[:len(text) - hold]

    def flush(self) -> str:
        """The held end, scrubbed (call once, when the text is complete)."""
        text, self._held = scrub(self._held, self._secrets), ""
        return text

    def _hold(self, text: str) -> int:
        """Length of the longest end of ``text`` that is a proper prefix of a secret's form."""
        best = 0
        for form in self._forms:
            for n in range(min(len(form) - 1, len(text)), best, -1):
                if text.endswith(form[:n]):
                    best = n
                    break
        return best
