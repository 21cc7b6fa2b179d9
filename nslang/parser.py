"""Source text → :class:`nslang.ast.Program`: Lark LALR parse, then the AST transformer.

Lark's errors become :class:`~nslang.errors.NSSyntaxError` (code 15) with ``file:line:col`` and a
readable list of what was expected. Parse results are cached by content hash in the platformdirs user
cache directory (``parse_cache=False`` or env ``NSLANG_NO_CACHE=1`` to skip), so re-running an
unchanged script skips parsing; a corrupt cache entry is ignored and rebuilt. An entry is ``marshal`` data
whose procedure bodies are decoded only when first used (:mod:`nslang._astcodec`, issue 16 item 3).
Entries hold script text (an inline API key, perhaps): the directory is kept at mode 0700 and entries at
0600 (issue 10 item 2).

>>> prog = parse('func main() means\\n  emit "hi"\\nendfunc\\n', name="demo.ns", use_cache=False)
>>> prog.procedures[0].name
'main'
"""

from __future__ import annotations

import gc
import os
import sys

from . import ast as A
from .errors import NSError, NSSyntaxError
from .source import Span, remember_source

TYPE_CHECKING = False  # typing stays off the start-up path (issue 16 item 3)
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable
    from pathlib import Path
    from typing import Any

__all__ = ["is_incomplete", "parse"]

_CACHE_VERSION = b"nslang-ast-2"


def parse(text: str, *, name: str = "<string>", use_cache: bool = True,
          tick: Callable[[], None] | None = None) -> A.Program:
    """Parse NeuroScript source.

    Args:
        text: the source.
        name: source name used in spans and error messages (usually the file path).
        use_cache: look up / store the result in the on-disk parse cache.
        tick: called every few thousand grammar rules while parsing; an error it raises (the run's
            timeout, for ``tool.script.LoadScript``) stops the parse.

    Returns:
        The :class:`~nslang.ast.Program`.

    Raises:
        NSSyntaxError: the text does not parse (code 15), with the position of the problem.
        NSValidationError: it parses but the builder rejects it (bad escape, empty metadata key,
            duplicate procedure: code 42).
    """
    remember_source(name, text)
    if text.endswith("\\") or text.endswith("\\\r"):
        lines = text.splitlines()
        raise NSSyntaxError("line continuation '\\' at end of file", span=Span(name, len(lines), len(lines[-1])))
    key = None
    if use_cache and not os.environ.get("NSLANG_NO_CACHE"):
        key = _cache_key(text, name)
        cached = _cache_get(key)
        if cached is not None:
            return cached
    prog = _parse_uncached(text, name, tick)
    if key is not None:
        _cache_put(key, prog)
    return prog


def _parse_uncached(text: str, name: str, tick: Callable[[], None] | None = None) -> A.Program:
    import lark

    from ._lark import get_inline_parser, parse_inline
    from ._transformer import ToAST

    if not text.endswith("\n"):
        text += "\n"
    parser, callbacks = get_inline_parser()
    builder = ToAST(name)
    if tick is not None:
        builder.apply = _ticking(builder.apply, tick)  # type: ignore[method-assign]
    callbacks.current = builder
    # The parse allocates tens of thousands of objects (tokens, nodes, spans) and frees none: the cyclic
    # garbage collector would run over and over for nothing (it creates no cycles). Measured on the
    # 11,007-line parse_big benchmark: ~10 % of the parse (issue 16 item 4). A host that turned the
    # collector off keeps it off.
    collecting = gc.isenabled()
    if collecting:
        gc.disable()
    try:
        prog: A.Program = parse_inline(parser, text)
    except lark.exceptions.UnexpectedInput as e:
        raise _syntax_error(e, text, name, parser) from None
    except lark.exceptions.VisitError as e:
        if isinstance(e.orig_exc, NSError):
            raise e.orig_exc from None
        if isinstance(e.orig_exc, RecursionError):
            raise NSSyntaxError("the source is nested too deeply", code=38, span=Span(name, 1, 1)) from None
        raise
    except RecursionError:
        raise NSSyntaxError("the source is nested too deeply", code=38, span=Span(name, 1, 1)) from None
    finally:
        callbacks.current = None
        if collecting:
            gc.enable()
    return prog


def _ticking(apply: Callable[[str, list[Any]], Any], tick: Callable[[], None]) -> Callable[[str, list[Any]], Any]:
    count = 0

    def ticking_apply(data: str, children: list[Any]) -> Any:
        nonlocal count
        count += 1
        if count & 4095 == 0:
            tick()
        return apply(data, children)

    return ticking_apply


_FRIENDLY = {"_NL": "end of line", "$END": "end of file", "NAME": "a name", "NUMBER": "a number",
             "STRING": "a string", "METADATA": "a ':: key: value' line", "RAW_STRING": "a ``` string",
             "RAW_STRING3": "a ''' string"}


def _describe_terminal(name: str, parser: Any) -> str:
    if name in _FRIENDLY:
        return _FRIENDLY[name]
    try:
        term = parser.get_terminal(name)
        if term.pattern.type == "str":
            return repr(term.pattern.value)
    except (KeyError, AttributeError):
        pass
    return name.lower()


def _syntax_error(e: Any, text: str, name: str, parser: Any) -> NSSyntaxError:
    import lark

    line = getattr(e, "line", 1) or 1
    col = getattr(e, "column", 1) or 1
    expected: set[str] = set()
    if isinstance(e, lark.exceptions.UnexpectedToken):
        tok = e.token
        if tok.type == "$END":
            what = "end of file"
            lines = text.splitlines() or [""]
            line, col = len(lines), len(lines[-1]) + 1
        elif tok.type == "_NL":
            what = "end of line"
        else:
            what = repr(str(tok))
        expected = set(e.expected or ())
    elif isinstance(e, lark.exceptions.UnexpectedCharacters):
        ch = text[e.pos_in_stream] if e.pos_in_stream < len(text) else ""
        what = "'\\' (a line continuation must be the last character of its line)" if ch == "\\" else repr(ch)
        expected = set(e.allowed or ())
    elif isinstance(e, lark.exceptions.UnexpectedEOF):
        what = "end of file"
        expected = set(e.expected or ())
    else:
        what = "input"
    names = sorted({_describe_terminal(t, parser) for t in expected})
    msg = f"unexpected {what}"
    hint = _hint(text, line, col, what)
    if hint.startswith(_INSTEAD):  # a hint that says what to write: no list of tokens
        hint, names = hint[len(_INSTEAD):], []
    if names:
        shown = ", ".join(names[:12]) + (", …" if len(names) > 12 else "")
        msg += f"; expected {shown}"
    if hint:
        msg += f" ({hint})"
    return NSSyntaxError(msg, span=Span(name, line, col, line, col + 1))


_INSTEAD = "\0"  # marks a hint that replaces the list of expected tokens
# patterns of _hint (an error path): compiled by ``re`` on first use, not at start-up
_ASSIGNMENT = r"\s*[A-Za-z_]\w*\s*(\[[^\]]*\]|\.\w+)*\s*=(?!=)"
_BARE_CALL = r"\s*(tool\s*\.\s*)?[A-Za-z_][\w.]*\s*\("


def _hint(text: str, line: int, col: int, what: str) -> str:
    """A hint for a common mistake on the failing line (issue 15: ``x = 5``, ``greet("ada")``, a
    ``func`` header without ``means``); prefixed with ``_INSTEAD`` when it replaces the token list."""
    import re

    from ._transformer import KEYWORDS

    lines = text.splitlines()
    src = lines[line - 1] if 0 < line <= len(lines) else ""
    word = src.strip().split(" ", 1)[0] if src.strip() else ""
    if word == "func" and not re.search(r"\bmeans\b", src) and not src.rstrip().endswith("\\"):
        return _INSTEAD + "a procedure header ends with 'means', e.g. 'func greet(needs who) means'"
    if word == "func" and re.search(r"\bmeans\s+\S", src) and not re.search(r"\bmeans\s*(#|--|//)", src):
        return _INSTEAD + "nothing may follow 'means' on its line: start the body on the next line"
    if word.lower() in ("elseif", "elif", "elsif") or re.match(r"\s*else\s+if\b", src):
        return _INSTEAD + ("there is no 'elseif' or 'else if' on one line: write 'else', then the 'if' on "
                           "the next line inside it, with its own 'endif'")
    if what not in ("end of line", "end of file") and not (word.lower() in KEYWORDS and word != "tool"):
        if re.match(_ASSIGNMENT, src):
            name = src.split("=", 1)[0].strip()
            return _INSTEAD + f"to assign, write 'set {name} = …'"
        if re.match(_BARE_CALL, src):
            callee = src.strip().split("(", 1)[0].replace(" ", "")
            return _INSTEAD + (f"a call on its own line needs 'call': write 'call {callee}(…)', "
                               f"or 'set result = {callee}(…)' to keep its value")
        if src.index(word) + 1 == col:
            return _INSTEAD + "a statement starts with a keyword such as set, call, emit or if; an expression " \
                              "alone is not a statement"
    if word and word.lower() in {"func", "set", "emit", "endfunc", "if", "endif", "call", "return", "while"} \
            and word != word.lower():
        return f"keywords are lower-case: write '{word.lower()}'"
    if what in ("'command'", "'func'") and ("'func'" in text or "command" in text):
        return ("a file holds either procedures (func, on event) or command blocks, not both: put the "
                "command block in its own file and run both files (nslang run lib.ns main.ns)")
    if what.startswith("'.'"):
        return "dot access works only on the left of 'set'; use m[\"key\"]"
    return ""


def is_incomplete(text: str) -> bool:
    """True when ``text`` fails to parse only because it ends too early (an unfinished block).

    Used by the REPL to keep reading lines (spec: multiline-until-parses).
    """
    try:
        _parse_uncached(text, "<repl>")
    except NSSyntaxError as e:
        return "end of file" in e.message.split(";")[0]
    except NSError:
        return False
    return False


# ---- the on-disk parse cache -----------------------------------------------------------------


def _cache_root() -> str | None:
    """The parse cache directory, ``<user cache dir>/nslang/ast`` (a ``str``: no pathlib at start-up)."""
    from ._private_paths import user_cache_dir

    try:
        return os.path.join(user_cache_dir(), "ast")
    except Exception:  # pragma: no cover - platformdirs failure: no cache
        return None


def _cache_dir() -> Path | None:
    """:func:`_cache_root` as a ``Path`` (``nslang info``)."""
    root = _cache_root()
    if root is None:  # pragma: no cover
        return None
    from pathlib import Path

    return Path(root)


def _cache_key(text: str, name: str) -> str:
    from ._resources import grammar_file

    try:  # the built-in module avoids loading OpenSSL through hashlib (2 ms of start-up)
        from _sha256 import sha256
    except ImportError:  # pragma: no cover
        from hashlib import sha256
    h = sha256(_CACHE_VERSION + str(sys.version_info[:2]).encode())  # marshal's format is per version
    # the AST depends on the grammar and on the code that builds it: any change invalidates entries
    here = os.path.dirname(__file__)
    for dep in (grammar_file(),
                *(os.path.join(here, f) for f in ("_lark.py", "_transformer.py", "ast.py", "_astcodec.py"))):
        try:
            h.update(str(os.stat(dep).st_mtime_ns).encode())
        except OSError:
            pass
    h.update(name.encode("utf-8", "surrogatepass") + b"\0")
    h.update(text.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


_PRIVATE_DIRS: dict[str, str] = {}


def _private_cache_dir(d: str) -> str:
    """``d`` created or tightened to mode 0700 (its parent, nslang's cache dir, too), once per process:
    entries hold script text, so possibly an inline API key (issue 10 item 2)."""
    done = _PRIVATE_DIRS.get(d)
    if done is None:
        from ._private_paths import private_dir

        done = _PRIVATE_DIRS[d] = private_dir(d, parents=1)
    return done


def _cache_get(key: str) -> A.Program | None:
    d = _cache_root()
    if d is None:
        return None
    try:
        _private_cache_dir(d)
    except OSError:
        return None
    try:
        with open(os.path.join(d, key), "rb") as f:
            data = f.read()
    except OSError:
        return None
    from ._astcodec import decode

    return decode(data)  # None for a damaged entry: it is parsed again and rewritten


def _cache_put(key: str, prog: A.Program) -> None:
    d = _cache_root()
    if d is None:
        return
    from ._astcodec import encode
    from ._private_paths import create_private

    tmp = os.path.join(d, f".{key}.{os.getpid()}.tmp")
    try:
        data = encode(prog)
        _private_cache_dir(d)
        with create_private(tmp) as f:  # mode 0600
            f.write(data)
        os.replace(tmp, os.path.join(d, key))
    except (OSError, ValueError, TypeError, RecursionError):  # e.g. too deeply nested for marshal: not cached
        try:
            os.unlink(tmp)
        except OSError:
            pass
