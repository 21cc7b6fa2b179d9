"""Readers for streamed model replies, shared by the four wire formats (issue 14 item 2).

A streamed reply arrives as raw bytes in chunks of any size: a chunk may end inside a UTF-8
character, inside a line, or between the ``\\r`` and ``\\n`` of a line break. The readers here turn
those chunks into whole units and nothing else:

* :func:`iter_sse` yields :class:`SSEEvent` objects (Server-Sent Events as the WHATWG HTML standard
  parses them: ``event``, ``data`` (several ``data`` lines joined by ``\\n``), ``id``; comment lines
  starting with ``:`` are skipped; a line ends at ``\\r\\n``, ``\\n`` or ``\\r``) for OpenAI Chat
  Completions, Anthropic Messages and Gemini ``streamGenerateContent?alt=sse``;
* :func:`iter_lines` yields the non-empty lines of an NDJSON body (Ollama ``/api/chat``).

Bytes are decoded with an incremental UTF-8 decoder (a character split across chunks is joined;
invalid bytes become U+FFFD), so no reader ever sees half a character. What each event *means* is
left to the wire-format module, which folds the events into the same response object its
non-streaming path validates, so both paths share one mapping (house rule 12).

:data:`TokenSink` is the callback type that receives each piece of reply text as it arrives.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

__all__ = ["SSEEvent", "TokenRelay", "TokenSink", "iter_lines", "iter_sse", "iter_text_lines"]

#: A line break in an event stream (U+2028 and other Unicode breaks are data, not breaks).
_BREAK = re.compile(r"\r\n|\r|\n")

#: Receives each piece of reply text (a ``str``, never empty) as the provider streams it.
TokenSink = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched Server-Sent Event.

    Attributes:
        event: the ``event:`` field, ``"message"`` when the server sent none.
        data: the ``data:`` lines joined by ``\\n``.
        id: the last ``id:`` field seen, or ``""``.
    """

    event: str
    data: str
    id: str = ""


def iter_text_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """The lines of a UTF-8 byte stream, without their line breaks (``\\r\\n``, ``\\n`` or ``\\r``).

    A final line without a line break is yielded too. Chunk boundaries may fall anywhere, inside a
    character or between ``\\r`` and ``\\n``.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    for chunk in chunks:
        pending += decoder.decode(chunk)
        pos = 0
        for m in _BREAK.finditer(pending):
            if m.group() == "\r" and m.end() == len(pending):
                break  # maybe the first half of \r\n: wait for the next chunk
            yield pending[pos:m.start()]
            pos = m.end()
        pending = pending[pos:]
    pending += decoder.decode(b"", final=True)
    if pending:
        lines = _BREAK.split(pending)
        yield from lines[:-1] if lines[-1] == "" else lines


def iter_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """The non-blank lines of an NDJSON byte stream (one JSON document each), stripped."""
    for line in iter_text_lines(chunks):
        if line.strip():
            yield line.strip()


def iter_sse(chunks: Iterable[bytes]) -> Iterator[SSEEvent]:
    """The events of a ``text/event-stream`` byte stream.

    An event is dispatched at a blank line when it has data; an event still open when the stream
    ends is dispatched too (some servers omit the last blank line). Unknown fields and ``retry`` are
    ignored.
    """
    event = ""
    data: list[str] = []
    last_id = ""
    for line in iter_text_lines(chunks):
        if not line:
            if data:
                yield SSEEvent(event or "message", "\n".join(data), last_id)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id" and "\0" not in value:
            last_id = value
    if data:
        yield SSEEvent(event or "message", "\n".join(data), last_id)


class TokenRelay:
    """Hands one call's reply text to callbacks, redacted (issue 14 item 2).

    Called with each streamed piece, it passes the pieces on through a
    :class:`~nslang._redact.StreamScrubber` (a key split across pieces is still redacted);
    :meth:`finish` passes on what the scrubber held back, or, for a call that did not stream, the
    whole reply once. So a callback always receives the reply text exactly once, in pieces or whole.

    Args:
        sinks: the callbacks, called in order with each non-empty piece.
        secrets: what must never reach them (the call's API key).
    """

    def __init__(self, sinks: Iterable[TokenSink], secrets: Iterable[str | None]) -> None:
        from .._redact import StreamScrubber

        self._sinks = tuple(sinks)
        self._scrubber = StreamScrubber(secrets)
        #: True once a streamed piece arrived
        self.streamed = False

    def _deliver(self, text: str) -> None:
        if text:
            for sink in self._sinks:
                sink(text)

    def __call__(self, piece: str) -> None:
        self.streamed = True
        self._deliver(self._scrubber.feed(piece))

    def finish(self, reply: str) -> None:
        """End of the call: the held-back end of a stream, or ``reply`` (already redacted) if nothing streamed."""
        self._deliver(self._scrubber.flush() if self.streamed else reply)
