"""The interactive NeuroScript prompt (``nslang repl``, or ``nslang`` with no arguments).

Built on prompt-toolkit the way ptpython is (house rule 14): the language's own parser decides when
input is complete, a Pygments lexer (:mod:`nslang.highlight`) colours it, a completer offers
keywords, variables, procedures and ``tool.`` names with their signatures, and history persists in a
file in the platformdirs user data directory, readable by its owner only (0600, directory 0700).

What you type:

* **Statements** (``set``, ``emit``, ``call``, ``if … endif``, ``for each … endfor``, ``must``, …) run
  at once in one persistent scope: the input is the body of a command block run against the
  interpreter's globals, so ``set x = 1`` defines a global that later inputs see.
* **Definitions** (``func … endfunc``, ``on event … endon``, ``command … endcommand``) are loaded;
  a procedure defined again replaces the old one (so does an event handler with the same ``named``).
* **A bare expression** (``x + 1``, ``greet("Ada")``, ``tool.str.ToUpper("a")``) shows its value.
  This is a REPL-only convenience, not NeuroScript syntax: a line that does not parse as a statement
  is evaluated as an expression. Values are shown as source literals, so strings are quoted
  (``"5"``) and differ from numbers (``5``); lists and maps show their elements the same way.
* **Several lines**: Enter runs the input when it parses; while a block is unfinished (an ``if``
  without ``endif``, a ``func`` without ``endfunc``, a ``\\`` continuation, an open raw string) it
  starts a new, indented line instead. Alt-Enter (Esc, Enter) always inserts a new line. Pasted
  input may mix definitions and statements; its parts run in order.
* **REPL commands** start with ``:`` (``:help`` lists them).

Ctrl-C cancels the input being typed (or interrupts a running statement); Ctrl-D on an empty line
exits. No error ends the session: NeuroScript errors print with their code and a caret under the
position, and the state (variables, procedures) stays as it was after the last statement that ran.
Unexpected Python exceptions print one line (a traceback only with ``--debug``).

Everything the REPL itself shows (values, notes, errors, ``:vars``, ``:funcs``, ``:tools``,
``:workers``) goes through :func:`nslang.terminal.escape_controls`, so an escape sequence in a value
or a name is shown escaped instead of driving the terminal; what ``emit`` writes is the program's
output and is written as is (issue 10 item 7).

The loop is testable without a terminal: :class:`Repl` accepts prompt-toolkit ``input``/``output``
objects (``create_pipe_input()`` and ``DummyOutput()``) and a text stream for results, and
:meth:`Repl.execute` is the pure "text in, display text out" step the loop uses.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from prompt_toolkit.completion import CompleteEvent, Completer, Completion, PathCompleter
from prompt_toolkit.document import Document

from . import __version__
from . import ast as A
from .errors import NSError, NSRuntimeError, NSSyntaxError, NSValidationError, out_of_memory
from .highlight import BLOCK_CLOSERS, BLOCK_OPENERS, NeuroScriptLexer
from .source import Span, remember_source
from .terminal import escape_controls

if TYPE_CHECKING:  # pragma: no cover
    from prompt_toolkit import PromptSession
    from prompt_toolkit.input import Input
    from prompt_toolkit.key_binding import KeyBindings
    from prompt_toolkit.output import Output

    from .interpreter import Interpreter

__all__ = ["Repl", "ReplCompleter", "default_history_path", "format_value", "private_history_file", "run_repl"]

PROMPT = "ns> "
CONTINUATION = "... "
INDENT = "  "
#: Hidden global that receives the value of a bare expression (removed right after).
_VALUE_VAR = "__repl_value__"
_EXPR_PREFIX = f"set {_VALUE_VAR} = "

#: First words that make a line a statement (so a syntax error there is not retried as an expression).
_STATEMENT_WORDS = frozenset({"set", "call", "return", "emit", "must", "mustbe", "fail", "clear_error", "clear",
                              "ask", "break", "continue", "if", "else", "while", "for", "on", "endif", "endfor",
                              "endwhile", "endon", "endfunc", "endcommand", "means"})

COMMANDS: dict[str, str] = {
    ":help": "[TOPIC]  this help; a reference topic: language, tools, workers, errors, cli, embedding",
    ":load": "FILE  load a script: define its procedures and handlers, run its command blocks",
    ":vars": "global variables with their types and values",
    ":funcs": "loaded procedures with their signatures",
    ":tools": "[FILTER]  tools with their signatures (FILTER: part of a name)",
    ":workers": "AI worker definitions: status, rate-window usage, cost so far",
    ":reset": "forget all variables, procedures and handlers (a fresh interpreter)",
    ":quit": "leave the REPL (also :exit, Ctrl-D)",
}

HELP = f"""\
nslang {__version__}: an interactive NeuroScript prompt.

  set x = 40 + 2          statements run at once; variables persist between inputs
  x * 2                   a bare expression shows its value (REPL only; strings are shown quoted)
  func f(needs a) means   blocks continue over several lines until they are complete;
    return a * 2          a procedure defined again replaces the old one
  endfunc
  call f(1)  /  f(1)      call a procedure (statement / expression)
  tool.str.ToUpper("hi")  call a tool; type tool. and press Tab to see them all

Commands:
{chr(10).join(f"  {name:<9} {text}" for name, text in COMMANDS.items())}

Keys: Tab completes (keywords, variables, procedures, tool names with signatures) and indents at the
start of a line; Enter runs complete input, or starts a new indented line inside an unfinished block;
Alt-Enter always inserts a new line; Up/Down walk the history (saved between sessions);
Ctrl-R searches it; Ctrl-C cancels the input or interrupts a running statement; Ctrl-D exits."""


# ================================================================================================
# Values as the REPL shows them


def format_value(v: Any, _seen: frozenset[int] = frozenset()) -> str:
    """A value as a NeuroScript literal where one exists: strings quoted (``"5"`` vs ``5``), nil as
    ``nil``, lists and maps with their elements formatted the same way.

    >>> format_value(["a", 1, None, {"k": True}])
    '["a", 1, nil, {"k": true}]'
    """
    from .unparse import _string
    from .values import ErrorValue, EventValue, display

    t = type(v)
    if t is str:
        return _string(v)
    if v is None:
        return "nil"
    if t is bool:
        return "true" if v else "false"
    if t is ErrorValue:
        return f"<error {format_value(v.get('code'))}: {v.message}>"
    if isinstance(v, (list, dict)):
        if id(v) in _seen:
            return "[...]" if isinstance(v, list) else "{...}"
        seen = _seen | {id(v)}
        if isinstance(v, list):
            return "[" + ", ".join(format_value(x, seen) for x in v) + "]"
        inner = ", ".join(f"{_string(str(k))}: {format_value(x, seen)}" for k, x in v.items())
        return ("<event " if t is EventValue else "") + "{" + inner + "}" + (">" if t is EventValue else "")
    if t is int or t is float:
        return display(v)
    text = display(v)
    if text.startswith("<"):
        return text
    from .values import type_name

    return f"<{type_name(v)} {text}>"


def _short(text: str, width: int) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...] | None = None) -> str:
    """Left-aligned columns separated by two spaces (the last column is not padded)."""
    allrows = [tuple(escape_controls(c) for c in r) for r in ([header] if header else []) + list(rows)]
    if not allrows:
        return ""
    ncols = max(len(r) for r in allrows)
    widths = [max((len(r[i]) for r in allrows if i < len(r)), default=0) for i in range(ncols)]
    out = []
    for r in allrows:
        cells = [c.ljust(widths[i]) if i < len(r) - 1 else c for i, c in enumerate(r)]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def proc_signature(p: A.Procedure) -> str:
    """``name(needs a, b optional c returns r)``."""
    return p.signature().removeprefix("procedure ")


# ================================================================================================
# Splitting input into definitions and statements


@dataclass
class _Chunk:
    kind: str  # "top" (func / on event / command / metadata) or "stmt" (statements: a command body)
    start: int  # 1-based line of its first line in the whole input
    lines: list[str]
    closed: bool = True

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _words(line: str) -> list[str]:
    return line.strip().split(None, 2)


def _is_neutral(line: str) -> bool:
    s = line.strip()
    return not s or s.startswith(("#", "--", "//"))


def _opens_top(line: str) -> str | None:
    """The closing keyword when ``line`` starts a top-level item, else None."""
    w = _words(line)
    if not w:
        return None
    if w[0] == "func" or w[0].startswith("func("):
        return "endfunc"
    if w[0] == "command":
        return "endcommand"
    if w[0] == "on" and len(w) > 1 and w[1].startswith("event"):
        return "endon"
    if w[0] == "::" or w[0].startswith("::"):
        return ""  # metadata: joins the next item
    return None


def split_input(text: str) -> list[_Chunk]:
    """Cut REPL input into consecutive parts: top-level items and runs of statements.

    Purely line-based (keywords at the start of lines). Input with a multi-line raw string is not
    cut (one part, its kind from its first line).
    """
    lines = text.split("\n")
    if "```" in text or "'''" in text:
        first = next((ln for ln in lines if not _is_neutral(ln)), "")
        return [_Chunk("top" if _opens_top(first) is not None else "stmt", 1, lines)]
    chunks: list[_Chunk] = []
    cur: _Chunk | None = None
    closer = ""
    depth = 0
    pending: list[str] = []
    pending_start = 0
    for no, line in enumerate(lines, 1):
        w = _words(line)
        first = w[0] if w else ""
        if cur is not None and cur.kind == "top" and not cur.closed:
            cur.lines.append(line)
            if closer == "endon" and first == "on":
                depth += 1
            elif first == closer:
                depth -= 1
                if depth == 0:
                    cur.closed = True
                    cur = None
            continue
        if _is_neutral(line) or first.startswith("::"):
            if not pending:
                pending_start = no
            pending.append(line)
            continue
        close = _opens_top(line)
        if close:
            cur = _Chunk("top", pending_start if pending else no, pending + [line], closed=False)
            chunks.append(cur)
            closer, depth = close, 1
        else:
            if cur is None or cur.kind != "stmt":
                cur = _Chunk("stmt", pending_start if pending else no, [])
                chunks.append(cur)
            cur.lines.extend(pending + [line])
        pending = []
    if pending:
        if chunks and (chunks[-1].kind == "stmt" or chunks[-1].closed):
            chunks[-1].lines.extend(pending)
        elif not chunks and any(ln.strip().startswith("::") for ln in pending):
            chunks.append(_Chunk("top", pending_start, pending))
        elif chunks:
            chunks[-1].lines.extend(pending)
    return chunks




def _open_raw_string(text: str) -> bool:
    return text.count("```") % 2 == 1 or text.count("'''") % 2 == 1


# ================================================================================================
# Shifting positions of code parsed inside a wrapper


def _shift_span(s: Span, line: int, dline: int, dcol: int) -> Span:
    def col(ln: int, c: int) -> int:
        return max(1, c + dcol) if ln == line else c

    return s.replace(line=s.line + dline, column=col(s.line, s.column),
                     end_line=s.end_line + dline if s.end_line else 0,
                     end_column=col(s.end_line, s.end_column) if s.end_column else 0)


def _shift(node: Any, line: int, dline: int, dcol: int) -> Any:
    """A copy of an AST (sub)tree with every span moved ``dline`` lines, and on ``line`` ``dcol``
    columns (the wrapper text the REPL adds before the user's input)."""
    if isinstance(node, Span):
        return _shift_span(node, line, dline, dcol)
    if isinstance(node, tuple):
        return tuple(_shift(x, line, dline, dcol) for x in node)
    if isinstance(node, A.Node):
        changes = {f: _shift(getattr(node, f), line, dline, dcol) for f in A.fields(node)}
        return A.replace(node, **changes)
    return node


# ================================================================================================
# The REPL


class _IncompleteError(Exception):
    """Internal: the input ended inside a block."""


class _Stream:
    """The interpreter's output stream in the REPL: writes through, remembers the last character."""

    def __init__(self, target: IO[str]) -> None:
        self.target = target
        self.last = "\n"

    def write(self, text: str) -> int:
        if text:
            self.last = text[-1]
        self.target.write(text)
        try:
            self.target.flush()
        except (OSError, ValueError):
            pass
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        return bool(getattr(self.target, "isatty", lambda: False)())


class _Stdin:
    """The interpreter's input stream in the REPL: reading a line (echoed by the terminal, newline
    included) puts the output back at the start of a line."""

    def __init__(self, source: IO[str], stream: _Stream) -> None:
        self.source = source
        self.stream = stream

    def readline(self, size: int = -1) -> str:
        line = self.source.readline(size)
        self.stream.last = "\n"
        return line

    def read(self, size: int = -1) -> str:
        text = self.source.read(size)
        self.stream.last = "\n"
        return text

    def isatty(self) -> bool:
        return bool(getattr(self.source, "isatty", lambda: False)())


def default_history_path() -> Path:
    """``$NSLANG_HISTORY``, else ``repl_history`` in the platformdirs user data dir for "nslang"."""
    env = os.environ.get("NSLANG_HISTORY")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("nslang", appauthor=False)) / "repl_history"


def private_history_file(path: Path) -> Path:
    """Prepare the history file ``path``: mode 0600, created if missing; its directory is created with
    mode 0700 if missing, and tightened to 0700 when it is nslang's own user data directory. The
    history can hold an inline API key typed at the prompt (issue 10 item 2).

    Raises:
        OSError: the file or its directory cannot be created or its mode changed.
    """
    from platformdirs import user_data_dir

    from ._private_paths import private_dir, private_file

    if path.parent == Path(user_data_dir("nslang", appauthor=False)) or not path.parent.exists():
        private_dir(path.parent)
    return private_file(path)


class Repl:
    """One interactive session.

    Args:
        input: prompt-toolkit input (default: the terminal; tests pass ``create_pipe_input()``).
        output: prompt-toolkit output (default: the terminal; tests pass ``DummyOutput()``).
        stdout: text stream for results and for what scripts ``emit`` (default ``sys.stdout``).
        sandbox_dir: the interpreter's sandbox directory (see :class:`~nslang.Interpreter`).
        default_worker: AI worker definition used by ``ask PROMPT``.
        debug: show Python tracebacks of internal errors.
        history_file: where history is kept; ``None`` for :func:`default_history_path`, ``False`` for
            no persistent history.
        interpreter: use this interpreter instead of creating one (``:reset`` then creates a new one
            with the same sandbox and worker).
        complete_while_typing: open the completion menu while typing (Tab always opens it).
        color: colour errors and notes (default: when ``stdout`` is a terminal and ``NO_COLOR`` is unset).
        stdin: where ``tool.io.Input`` reads (default ``sys.stdin``).
    """

    def __init__(self, *, input: Input | None = None, output: Output | None = None, stdout: IO[str] | None = None,
                 sandbox_dir: str | os.PathLike[str] | None = None, default_worker: str | None = None,
                 debug: bool = False, history_file: str | os.PathLike[str] | bool | None = None,
                 interpreter: Interpreter | None = None, complete_while_typing: bool = True,
                 color: bool | None = None, stdin: IO[str] | None = None) -> None:
        self.input = input
        self.output = output
        self.stdout: IO[str] = stdout if stdout is not None else sys.stdout
        self.stdin = stdin
        self.stream = _Stream(self.stdout)
        self.sandbox_dir = sandbox_dir
        self.default_worker = default_worker
        self.debug = debug
        self.history_file = history_file
        self.complete_while_typing = complete_while_typing
        if color is None:
            color = self.stream.isatty() and not os.environ.get("NO_COLOR")
        self.color = color
        self.done = False
        self.count = 0
        #: exit status of the last input: 0, 65 (syntax/validation), 70 (runtime/internal), 130 (Ctrl-C)
        self.last_status = 0
        self.interp: Interpreter = interpreter if interpreter is not None else self._new_interpreter()
        self.interp.commands_track_last = True  # `last` carries from one input to the next
        self._session: PromptSession[str] | None = None

    def _new_interpreter(self) -> Interpreter:
        from .interpreter import Interpreter
        from .workers.policy import PatternApprover, ask_on_terminal

        stdin = _Stdin(self.stdin if self.stdin is not None else sys.stdin, self.stream)

        def ask(request: Any) -> str:  # an AI worker's side-effect tool call: yes / no / always (issue 12)
            return ask_on_terminal(request, stdin, self.stream)  # type: ignore[arg-type]

        approver = PatternApprover(ask=ask if stdin.isatty() else None)
        interp = Interpreter(sandbox_dir=self.sandbox_dir, stdout=self.stream, stderr=self.stream,  # type: ignore[arg-type]
                           stdin=stdin, default_worker=self.default_worker, approve=approver)  # type: ignore[arg-type]
        interp.echo_asks = True  # `ask` without `into` shows the reply as it arrives (issue 14 item 2)
        return interp

    # ------------------------------------------------------------------------------ the pure step

    def needs_more(self, text: str) -> bool:
        """True when ``text`` is an unfinished block: Enter should start a new line, not run it."""
        if not text.strip() or text.lstrip().startswith(":"):
            return False
        if _open_raw_string(text):
            return True
        chunks = split_input(text)
        if not chunks:
            return False
        last = chunks[-1]
        if last.kind == "top":
            from .parser import is_incomplete

            return is_incomplete("\n" * (last.start - 1) + last.text)
        try:
            self._parse_statements(last, "<repl-check>")
        except _IncompleteError:
            return True
        except NSError:
            return False
        return False

    def execute(self, text: str) -> str:
        """Run one input; return what to show after it (a value, a note, an error; may be empty).

        What the code emits while it runs goes to the output stream directly, as it happens. Never
        raises (``KeyboardInterrupt`` included): errors are returned as text.
        """
        if not text.strip():
            return ""
        if text.lstrip().startswith(":"):
            self.last_status = 0
            try:
                return self._command(text.strip())
            except (KeyboardInterrupt, Exception) as e:  # the REPL loop is the one place that catches all
                return self._failure(e)
        self.count += 1
        name = f"<input-{self.count}>"
        results: list[str] = []
        failure: BaseException | None = None
        self.last_status = 0
        try:
            chunks = split_input(text)
            for chunk in chunks:
                out = self._run_chunk(chunk, name, text)
                if out and (len(chunks) == 1 or chunk.kind == "stmt"):
                    results.append(out)  # "defined f" notes only for a single definition
        except BaseException as e:  # noqa: B036 - the REPL loop is the one place that catches everything
            if isinstance(e, (SystemExit, GeneratorExit)):
                raise
            failure = e
        finally:
            self.interp.globals.pop(_VALUE_VAR, None)
            remember_source(name, text)  # parse() remembered the wrapped text under this name
        if failure is not None:
            results.append(self._failure(failure))
        return "\n".join(results)

    def _failure(self, e: BaseException) -> str:
        if isinstance(e, KeyboardInterrupt):
            self.last_status = 130
            return self._note("interrupted")
        if isinstance(e, MemoryError):
            e = out_of_memory()
        if isinstance(e, NSError):
            self.last_status = 65 if isinstance(e, (NSSyntaxError, NSValidationError)) else 70
            return self._error(e)
        self.last_status = 70
        return self._internal(e)

    # ------------------------------------------------------------------------------ running input

    def _run_chunk(self, chunk: _Chunk, name: str, whole: str) -> str:
        if chunk.kind == "top":
            return self._run_definitions(chunk, name, whole)
        try:
            prog = self._parse_statements(chunk, name)
        except _IncompleteError:
            raise NSSyntaxError("unexpected end of input: a block is not closed (missing endif, endfor, endwhile "
                                "or endon?)", span=self._end_span(chunk, name)) from None
        except NSSyntaxError as stmt_error:
            last_line = chunk.start + len(chunk.lines) - 1
            if len(chunk.lines) > 1 and stmt_error.span is not None and stmt_error.span.line == last_line:
                # statements followed by a bare expression (pasted input): run them, then show it
                head = _Chunk("stmt", chunk.start, chunk.lines[:-1])
                try:
                    head_prog = self._parse_statements(head, name)
                except (NSError, _IncompleteError):
                    raise stmt_error from None
                self._run_program(head_prog, name, whole)
                return self._run_chunk(_Chunk("stmt", last_line, chunk.lines[-1:]), name, whole)
            first = _words(chunk.lines[0])
            if first and first[0] in _STATEMENT_WORDS:
                raise
            try:
                prog = self._parse_statements(chunk, name, prefix=_EXPR_PREFIX)
            except _IncompleteError:
                raise stmt_error from None
            except NSSyntaxError as expr_error:
                if expr_error.span is not None and stmt_error.span is not None \
                        and expr_error.span.line == stmt_error.span.line \
                        and expr_error.span.column == stmt_error.span.column:
                    raise stmt_error from None
                if "; expected" not in stmt_error.message:  # it has a hint (x = 5: use set)
                    raise stmt_error from None
                raise expr_error from None
            self._run_program(prog, name, whole)
            return escape_controls(format_value(self.interp.globals.pop(_VALUE_VAR, None)))
        self._run_program(prog, name, whole)
        return ""

    def _end_span(self, chunk: _Chunk, name: str) -> Span:
        last_line = chunk.start + len(chunk.lines) - 1
        return Span(name, last_line, len(chunk.lines[-1]) + 1)

    def _parse_statements(self, chunk: _Chunk, name: str, prefix: str = "") -> A.Program:
        """Parse a run of statements as the body of a command block, keeping their real positions.

        Raises:
            _IncompleteError: the input ended inside a block.
            NSSyntaxError: it does not parse (positions relative to the whole input).
        """
        from .parser import parse

        body_lines = list(chunk.lines)
        body_lines[0] = prefix + body_lines[0]
        body = "\n".join(body_lines)
        start = chunk.start
        if start >= 2:
            wrapped, dline = "\n" * (start - 2) + "command\n" + body + "\nendcommand\n", 0
        else:
            wrapped, dline = "command\n" + body + "\nendcommand\n", -1
        last_line = start + len(chunk.lines) - 1 - dline  # in the wrapped text
        try:
            prog = parse(wrapped, name=name, use_cache=False)
        except NSSyntaxError as e:
            if e.span is not None and e.span.line > last_line:
                raise _IncompleteError() from None
            if e.span is not None:
                e.span = _shift_span(e.span, start - dline, dline, -len(prefix))
            raise
        except NSError as e:
            if e.span is not None:
                e.span = _shift_span(e.span, start - dline, dline, -len(prefix))
            raise
        if dline or prefix:
            prog = _shift(prog, start - dline, dline, -len(prefix))
        return prog

    def _run_program(self, prog: A.Program, name: str, whole: str) -> None:
        remember_source(name, whole)
        interp = self.interp
        interp.load_program(prog)
        self._run_loaded()

    def _run_loaded(self) -> None:
        """Run the command blocks just loaded (none: nothing happens)."""
        try:
            self.interp.run()
        except NSRuntimeError as e:
            e.stack[:] = [f for f in e.stack if not f.procedure.startswith("command block")]
            raise

    def _run_definitions(self, chunk: _Chunk, name: str, whole: str) -> str:
        from .parser import parse

        prog = parse("\n" * (chunk.start - 1) + chunk.text, name=name, use_cache=False)
        remember_source(name, whole)
        return self._install(prog)

    def _install(self, prog: A.Program) -> str:
        """Load a program, replacing procedures (and named event handlers) of the same name."""
        from .unparse import _string, unparse_expr

        interp = self.interp
        table = interp.procedures_table
        replaced = {p.name: table.pop(p.name) for p in prog.procedures if p.name in table}
        try:
            interp.load_program(prog)
        except BaseException:
            table.update(replaced)
            raise
        # a named handler defined again replaces the old one (the new one was appended last)
        for h in prog.event_handlers:
            if h.handler_name is not None:
                same = [x for x in interp.events if x.name == h.handler_name]
                for old in same[:-1]:
                    interp.events.remove(old)
        notes = []
        for p in prog.procedures:
            verb = "redefined" if p.name in replaced else "defined"
            notes.append(f"{verb} {proc_signature(p)}")
        for h in prog.event_handlers:
            what = f" named {_string(h.handler_name)}" if h.handler_name else ""
            notes.append(f"handler for event {unparse_expr(h.event)}{what}")
        if prog.commands:
            self._run_loaded()
        return self._note("\n".join(notes)) if notes else ""

    # ------------------------------------------------------------------------------ output helpers

    def _paint(self, text: str, code: str) -> str:
        """``text`` escaped (:func:`~nslang.terminal.escape_controls`), then coloured when colour is on."""
        text = escape_controls(text, keep="\n")
        return f"\x1b[{code}m{text}\x1b[0m" if self.color and text else text

    def _note(self, text: str) -> str:
        return "\n".join(self._paint(line, "2") for line in text.split("\n")) if text else ""

    def _error(self, e: NSError) -> str:
        text = e.render()
        head, _, rest = text.partition("\n")
        out = self._paint(head, "31;1") + ("\n" + escape_controls(rest, keep="\n") if rest else "")
        if self.debug:
            out += "\n" + escape_controls("".join(traceback.format_exception(e)).rstrip(), keep="\n")
        return out

    def _internal(self, e: BaseException) -> str:
        if self.debug:
            return escape_controls("".join(traceback.format_exception(e)).rstrip(), keep="\n")
        msg = str(e).split("\n", 1)[0]
        return self._paint(f"internal error: {type(e).__name__}: {msg} (start the REPL with --debug for the "
                           "traceback)", "31")

    # ------------------------------------------------------------------------------ : commands

    def _command(self, text: str) -> str:
        cmd, _, arg = text.partition(" ")
        arg = arg.strip()
        cmd = cmd.lower()
        matches = [c for c in COMMANDS if c.startswith(cmd)] if cmd not in (":exit", ":q") else [":quit"]
        if len(matches) > 1 and cmd not in COMMANDS:
            return f"ambiguous command {escape_controls(cmd)}: {', '.join(matches)}"
        if not matches:
            return f"unknown command {escape_controls(cmd)} (:help lists the commands)"
        cmd = matches[0] if cmd not in COMMANDS else cmd
        if cmd == ":help":
            if arg:
                from .reference import topic

                try:
                    return topic(arg, self.interp.tools).rstrip("\n")
                except KeyError:
                    return topic().rstrip("\n")
            return HELP + f"\n\nSandbox (files, AI worker data): {escape_controls(str(self.interp.sandbox_dir))}"
        if cmd == ":quit":
            self.done = True
            return ""
        if cmd == ":reset":
            self.close()
            self.interp = self._new_interpreter()
            return self._note("state cleared: no variables, procedures or handlers")
        if cmd == ":vars":
            return self._vars()
        if cmd == ":funcs":
            return self._funcs()
        if cmd == ":tools":
            from .cli import format_tools

            return format_tools(self.interp, arg).rstrip("\n") or f"no tools match {escape_controls(repr(arg))}"
        if cmd == ":workers":
            from .cli_workers import workers_overview

            return workers_overview(lambda: self.interp.workers)
        if cmd == ":load":
            return self._load(arg)
        return f"unknown command {cmd}"  # pragma: no cover

    def _vars(self) -> str:
        from .interpreter import TYPE_CONSTANTS
        from .reference import prompt_globals
        from .values import type_name

        predefined = {**TYPE_CONSTANTS, **prompt_globals()}
        rows = []
        for k, v in self.interp.globals.items():
            if k == "last" or (k in predefined and v == predefined[k]):
                continue
            rows.append((k, type_name(v), _short(format_value(v), 70)))
        if not rows:
            return self._note("no variables yet (set x = 1 defines one)")
        return _table(sorted(rows), ("name", "type", "value"))

    def _funcs(self) -> str:
        rows = []
        for _name, cp in sorted(self.interp.procedures_table.items(), key=lambda kv: kv[0].lower()):
            node = cp.node
            rows.append((proc_signature(node), node.span.location()))
        from .unparse import _string

        handlers = [(f"on event {_string(h.event)}" + (f" named {_string(h.name)}" if h.name else ""),
                     h.node.span.location())
                    for h in self.interp.events]
        if not rows and not handlers:
            return self._note("no procedures yet (func f() means … endfunc defines one)")
        out = _table(rows, ("procedure", "defined at")) if rows else ""
        if handlers:
            out += ("\n\n" if out else "") + _table(handlers, ("event handler", "defined at"))
        return out

    def _load(self, arg: str) -> str:
        from .parser import parse

        if not arg:
            return "usage: :load FILE"
        path = Path(arg.strip("'\"")).expanduser()
        shown = escape_controls(str(path))
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return f"no such file: {shown}"
        except IsADirectoryError:
            return f"{shown} is a directory, not a script"
        except UnicodeDecodeError as e:
            return f"{shown} is not UTF-8 text ({e.reason} at byte {e.start})"
        except OSError as e:
            return f"cannot read {shown}: {e.strerror}"
        prog = parse(text, name=str(path), use_cache=False)
        self.interp.globals.pop("last", None)  # a loaded file starts with last = nil
        self._install(prog)
        summary = f"loaded {path}: {len(prog.procedures)} procedure(s), {len(prog.event_handlers)} handler(s)"
        if prog.commands:
            summary += f", ran {len(prog.commands)} command block(s)"
        return self._note(summary)

    # ------------------------------------------------------------------------------ the loop

    def _write_result(self, text: str) -> None:
        if not text:
            return
        if self.stream.last != "\n":
            self.stream.write("\n")
        self.stream.write(text + "\n")

    def session(self) -> PromptSession[str]:
        """The prompt-toolkit session (created on first use)."""
        if self._session is None:
            self._session = self._make_session()
        return self._session

    def _make_session(self) -> PromptSession[str]:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
        from prompt_toolkit.history import FileHistory, History, InMemoryHistory
        from prompt_toolkit.lexers import PygmentsLexer
        from prompt_toolkit.shortcuts import CompleteStyle

        history: History = InMemoryHistory()
        if self.history_file is not False:
            path = default_history_path() if self.history_file in (None, True) else \
                Path(self.history_file).expanduser()  # type: ignore[arg-type]
            try:
                history = FileHistory(str(private_history_file(path)))
            except OSError:
                pass
        return PromptSession(
            message=[("class:prompt", PROMPT)],
            multiline=True,
            prompt_continuation=lambda width, line_no, soft: [("class:continuation", CONTINUATION.rjust(width))],
            lexer=PygmentsLexer(NeuroScriptLexer),
            completer=ReplCompleter(self),
            complete_while_typing=self.complete_while_typing,
            complete_style=CompleteStyle.COLUMN,
            history=history,
            auto_suggest=AutoSuggestFromHistory(),
            key_bindings=self._key_bindings(),
            style=_style(),
            include_default_pygments_style=False,
            enable_open_in_editor=True,
            tempfile_suffix=".ns",
            input=self.input,
            output=self.output,
        )

    def _key_bindings(self) -> KeyBindings:
        from prompt_toolkit.filters import Condition, has_completions
        from prompt_toolkit.key_binding import KeyBindings

        kb = KeyBindings()
        repl = self

        @kb.add("enter")
        @kb.add("c-j")
        def _enter(event: Any) -> None:
            buf = event.current_buffer
            state = buf.complete_state
            if state is not None and state.current_completion is not None:
                buf.apply_completion(state.current_completion)
                return
            if state is not None:
                buf.cancel_completion()
            doc = buf.document
            if doc.is_cursor_at_the_end and not repl.needs_more(doc.text):
                if "\n" in doc.text:
                    _reindent_closer(buf)
                buf.validate_and_handle()
                return
            _newline_and_indent(buf)

        @kb.add("escape", "enter")
        def _newline(event: Any) -> None:
            _newline_and_indent(event.current_buffer)

        at_line_start = Condition(lambda: not _current_app_buffer_line().strip())

        @kb.add("tab", filter=at_line_start & ~has_completions)
        def _indent(event: Any) -> None:
            event.current_buffer.insert_text(INDENT)

        return kb

    def close(self) -> None:
        """Release what the interpreter holds open (the AI workers' HTTP client)."""
        close = getattr(self.interp, "close", None)
        if close is not None:
            try:
                close()
            except Exception:  # noqa: S110 - leaving the REPL must not fail
                pass

    def run(self) -> int:
        """The read-eval-print loop; returns the exit code (0) when the user leaves."""
        session = self.session()
        self.stream.write(f"nslang {__version__} (NeuroScript). :help for help, Ctrl-D to exit.\n")
        try:
            while not self.done:
                try:
                    text = session.prompt()
                except KeyboardInterrupt:
                    continue
                except EOFError:
                    break
                result = self.execute(text)
                if self.last_status == 130 and self.stream.isatty():
                    self.stream.write("\n")  # after the terminal's ^C echo
                self._write_result(result)
        finally:
            self.close()
        return 0


def _current_app_buffer_line() -> str:
    from prompt_toolkit.application.current import get_app

    return str(get_app().current_buffer.document.current_line_before_cursor)


_CLOSERS = frozenset(BLOCK_CLOSERS - {"else"})


def _is_opener(line: str) -> bool:
    w = _words(line)
    if not w or w[0] not in BLOCK_OPENERS or w[0] == "else":
        return False
    return w[0] != "on" or line.split("#")[0].rstrip().endswith("do")


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _matching_indent(above: list[str]) -> str | None:
    """Indentation of the opener that a closing line (``endif``, ``else``…) after ``above`` closes."""
    depth = 0
    for line in reversed(above):
        w = _words(line)
        if not w:
            continue
        if w[0] in _CLOSERS:
            depth += 1
        elif _is_opener(line):
            if depth == 0:
                return _indent_of(line)
            depth -= 1
    return None


def _reindent_closer(buf: Any) -> str:
    """Move a just-typed closing line (``endif``, ``else``…) to its opener's indentation; returns the
    line's indentation afterwards."""
    doc = buf.document
    line = doc.current_line
    indent = _indent_of(line)
    w = _words(line)
    if w and w[0] in BLOCK_CLOSERS and doc.is_cursor_at_the_end_of_line:
        want = _matching_indent(doc.lines[: doc.cursor_position_row])
        if want is not None and want != indent:
            start = doc.cursor_position - len(doc.current_line_before_cursor)
            text = doc.text[:start] + want + line.lstrip() + doc.text[start + len(line):]
            buf.document = Document(text, start + len(want) + len(line.lstrip()))
            return want
    return indent


def _newline_and_indent(buf: Any) -> None:
    """New line; re-indent a just-typed closing line to its opener's level, and indent one level
    more after an opening line (or ``else``)."""
    line = buf.document.current_line
    indent = _reindent_closer(buf)
    w = _words(line)
    if _is_opener(line) or (w and w[0] == "else"):
        indent += INDENT
    buf.insert_text("\n" + indent)


def _style() -> Any:
    from prompt_toolkit.styles import Style

    return Style.from_dict({
        "prompt": "ansigreen bold",
        "continuation": "ansibrightblack",
        "pygments.keyword": "ansimagenta bold",
        "pygments.keyword.declaration": "ansiblue bold",
        "pygments.keyword.constant": "ansicyan",
        "pygments.keyword.namespace": "ansiblue",
        "pygments.keyword.reserved": "ansired",
        "pygments.operator.word": "ansimagenta",
        "pygments.name.function": "ansiblue",
        "pygments.name.namespace": "ansicyan",
        "pygments.name.builtin": "ansicyan",
        "pygments.name.constant": "ansicyan",
        "pygments.name.attribute": "ansiyellow",
        "pygments.literal.string": "ansigreen",
        "pygments.literal.string.escape": "ansiyellow",
        "pygments.literal.string.interpol": "ansiyellow bold",
        "pygments.literal.string.doc": "ansigreen",
        "pygments.literal.number": "ansiyellow",
        "pygments.comment": "ansibrightblack italic",
        "pygments.comment.special": "ansiyellow",
        "auto-suggestion": "ansibrightblack",
    })


# ================================================================================================
# Completion


_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
_TOOL_RE = re.compile(r"\btool\s*\.\s*([A-Za-z0-9_.]*)$")


class ReplCompleter(Completer):
    """Completes REPL commands, keywords, variables, procedures and ``tool.`` names.

    Each completion carries meta text: the value's type and value for a variable, the signature for
    a procedure or a tool.
    """

    def __init__(self, repl: Repl) -> None:
        self.repl = repl
        self._tools_for: int | None = None
        self._tools: list[tuple[str, str, str]] = []
        self._paths = PathCompleter(expanduser=True)

    def _tool_entries(self) -> list[tuple[str, str, str]]:
        interp = self.repl.interp
        if self._tools_for != id(interp):
            entries = []
            for t in interp.tools.all():
                s = t.spec
                sig = s.signature()
                head = f"tool.{s.full_name}"
                entries.append((s.full_name, sig[len(head):] if sig.startswith(head) else sig, s.description))
            self._tools, self._tools_for = entries, id(interp)
        return self._tools

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterator[Completion]:
        text = document.text_before_cursor
        if text.lstrip().startswith(":") and "\n" not in text:
            yield from self._command_completions(text.lstrip(), complete_event)
            return
        if _inside_string_or_comment(text):
            return
        line = document.current_line_before_cursor
        m = _TOOL_RE.search(line)
        if m:
            typed = m.group(1)
            low = typed.lower()
            for name, sig, _desc in self._tool_entries():
                if name.lower().startswith(low):
                    yield Completion(name, start_position=-len(typed), display=name, display_meta=sig)
            return
        m = _WORD_RE.search(line)
        word = m.group(0) if m else ""
        before = line[: len(line) - len(word)]
        if before.endswith(".") or (not word and line and (line[-1].isalnum() or line[-1] in "._")):
            return
        if not complete_event.completion_requested and len(word) < 2:
            return  # while typing, the menu opens from the second letter (Tab opens it at once)
        yield from (Completion(name, start_position=-len(word), display_meta=meta)
                    for name, meta in self._word_candidates(word))

    def _word_candidates(self, word: str) -> Iterable[tuple[str, str]]:
        from ._transformer import KEYWORDS
        from .interpreter import TYPE_CONSTANTS
        from .reference import PROMPT_GLOBALS
        from .values import short_repr, type_name

        interp = self.repl.interp
        low = word.lower()
        seen: set[str] = set()
        out: list[tuple[int, str, str]] = []

        def add(rank: int, name: str, meta: str) -> None:
            if name not in seen and name.lower().startswith(low) and name != word and name != _VALUE_VAR:
                seen.add(name)
                out.append((rank, name, meta))

        for k, v in list(interp.globals.items()):
            rank = 4 if k in TYPE_CONSTANTS else 0
            add(rank, k, f"{type_name(v)} {short_repr(v, 40)}")
        for k in PROMPT_GLOBALS:
            add(4, k, "string (a predefined prompt)")
        for name, cp in list(interp.procedures_table.items()):
            add(1, name, proc_signature(cp.node))
        for k in sorted(KEYWORDS):
            add(2, k, "tool call: tool.group.Name(…)" if k == "tool" else "keyword")
        for name in _stdlib_names():
            add(3, name, "stdlib procedure")
        out.sort(key=lambda t: (t[0], t[1].lower()))
        return [(name, meta) for _r, name, meta in out]

    def _command_completions(self, text: str, event: CompleteEvent) -> Iterator[Completion]:
        cmd, sep, arg = text.partition(" ")
        if not sep:
            for name, desc in COMMANDS.items():
                if name.startswith(cmd.lower()):
                    yield Completion(name, start_position=-len(cmd), display_meta=desc)
            return
        if cmd.lower() == ":load":
            yield from self._paths.get_completions(Document(arg.lstrip(), len(arg.lstrip())), event)
        elif cmd.lower() == ":tools":
            groups = sorted({name.split(".")[0] for name, _s, _d in self._tool_entries()})
            for g in groups:
                if g.lower().startswith(arg.lower()):
                    yield Completion(g, start_position=-len(arg), display_meta="tool group")


def _inside_string_or_comment(text: str) -> bool:
    """Would a letter typed at the end of ``text`` be part of a string or a comment?"""
    from pygments.token import Comment, String  # type: ignore[import-untyped,unused-ignore]

    last = None
    for _i, tok, _v in NeuroScriptLexer().get_tokens_unprocessed(text + "Z"):
        last = tok
    return last is not None and (last in String or last in Comment) and last is not String.Interpol


_STDLIB: list[str] | None = None


def _stdlib_names() -> list[str]:
    global _STDLIB  # a cache of files shipped with nslang, not interpreter state
    if _STDLIB is None:
        try:
            from .interpreter import _stdlib_index

            _STDLIB = sorted(_stdlib_index())
        except Exception:  # pragma: no cover - a broken install: no stdlib completions
            _STDLIB = []
    return _STDLIB


# ================================================================================================
# Entry point


def run_repl(*, sandbox_dir: str | os.PathLike[str] | None = None, default_worker: str | None = None,
             debug: bool = False, history_file: str | os.PathLike[str] | bool | None = None,
             stdout: IO[str] | None = None, stdin: IO[str] | None = None) -> int:
    """Start the interactive prompt (``nslang repl``); returns the exit code.

    When standard input is not a terminal (``nslang < session.txt``, ``echo 'emit 1' | nslang``) the
    input is read line by line and run exactly as typed input would be, without prompts, colours or
    history; the exit code is then that of the last input that failed (65 or 70), else 0.
    """
    src = stdin if stdin is not None else sys.stdin
    out = stdout if stdout is not None else sys.stdout
    if not src.isatty():
        return run_piped(src, out, sandbox_dir=sandbox_dir, default_worker=default_worker, debug=debug)
    return Repl(sandbox_dir=sandbox_dir, default_worker=default_worker, debug=debug, history_file=history_file,
                stdout=out).run()


def run_piped(src: IO[str], out: IO[str], **kwargs: Any) -> int:
    """Run REPL input read from ``src`` (not a terminal), writing results to ``out``."""
    repl = Repl(stdout=out, color=False, history_file=False, **kwargs)
    status = 0
    buf: list[str] = []

    def flush() -> None:
        nonlocal status, buf
        text = "\n".join(buf)
        buf = []
        if text.strip():
            repl._write_result(repl.execute(text))
            status = repl.last_status or status

    try:
        for line in src:
            buf.append(line.rstrip("\r\n"))
            if not repl.needs_more("\n".join(buf)):
                flush()
            if repl.done:
                return status
        flush()
    finally:
        repl.close()
    return status
