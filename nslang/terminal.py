"""Text for a terminal: control characters made visible (issue 10 item 7).

Names, values and messages can come from a script, a definitions file or a model's reply. Printed raw,
an ANSI/OSC escape sequence in them would drive the user's terminal (recolour it, set its title,
rewrite what is already on screen, plant a hyperlink, or on some terminals echo text back as input).
Every view nslang prints on a terminal therefore goes through :func:`escape_controls`: the
``nslang workers list/show/perf`` tables, ``nslang tools``, error reports of the CLI and the REPL, and
everything the REPL shows (values, ``:vars``, ``:funcs``, ``:tools``, ``:workers``, notes).

What a script writes with ``emit`` or ``tool.io.Print`` is the program's output and is written as is.
"""

from __future__ import annotations

__all__ = ["escape_controls"]

#: C0 controls, DEL, C1 controls (0x9b is CSI on some terminals), lone surrogates (not encodable),
#: the Unicode bidirectional controls ("Trojan Source": text shown in another order than it is
#: stored) and the line/paragraph separators. Compiled on first use (~0.8 ms: off the start-up path of
#: a run that prints no error, issue 16 item 3), then from ``re``'s cache.
_UNSAFE = "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
_SHORT = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def escape_controls(text: str, keep: str = "") -> str:
    """``text`` with every control character replaced by a visible escape.

    ``\\n``, ``\\t`` and ``\\r`` become those two characters; any other unsafe character becomes
    ``\\uXXXX`` (the NeuroScript string escape, so a quoted value stays a valid literal). Printable
    text, including every other non-ASCII character, is kept.

    Args:
        text: what is about to be printed.
        keep: control characters to leave as they are, e.g. ``"\\n"`` for a multi-line message.

    Returns:
        The escaped text (``text`` itself when there was nothing to escape).
    """
    import re

    unsafe = re.compile(_UNSAFE)
    if not unsafe.search(text):
        return text

    def esc(m: re.Match[str]) -> str:
        ch = m.group()
        if ch in keep:
            return ch
        return _SHORT.get(ch) or f"\\u{ord(ch):04x}"

    return unsafe.sub(esc, text)
