"""The ``nslang`` command line: ``run``, ``check``, ``fmt``, ``tools``, ``repl``, ``workers``.

``main(argv) -> int`` never calls ``sys.exit`` (house rule 15). Exit codes (spec Part 1): 0 success,
64 usage error, 65 syntax or validation error, 70 runtime error. Errors print the NeuroScript error
code, message, ``file:line:col``, the source line with a caret and the NeuroScript call stack, never a
Python traceback unless ``--debug``. Error reports and tool listings go through
:func:`nslang.terminal.escape_controls` (control characters shown escaped; issue 10 item 7); what a
script emits is its output and is written as is.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from . import __version__
from .errors import NSError, NSRuntimeError, NSSyntaxError, NSValidationError, UsageError
from .terminal import escape_controls

__all__ = ["main"]

EXIT_OK, EXIT_USAGE, EXIT_SYNTAX, EXIT_RUNTIME = 0, 64, 65, 70
_COMMANDS = ("run", "check", "fmt", "tools", "repl", "workers")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageExit(f"{self.prog}: {message}\n{self.format_usage().strip()}")


class _UsageExit(Exception):
    pass


def _build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; ``only`` builds just that subcommand (start-up: building all costs ~3 ms)."""
    p = _Parser(prog="nslang", description="NeuroScript interpreter (nslang).")
    p.add_argument("--version", action="version", version=f"nslang {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    if only in (None, "run"):
        run = sub.add_parser("run", help="load script files and run their command blocks (or main)")
        run.add_argument("files", nargs="+", metavar="FILE", help="NeuroScript files, loaded in order")
        run.add_argument("--target", metavar="PROC", help="procedure to call instead of the command blocks / main")
        run.add_argument("--arg", action="append", default=[], metavar="VALUE",
                         help="argument for the target procedure (repeatable; passed as a string)")
        run.add_argument("--sandbox", metavar="DIR", help="sandbox directory for file tools and AI-worker data")
        run.add_argument("--worker", metavar="NAME", help="default AI worker definition for 'ask PROMPT'")
        run.add_argument("--timeout", type=float, metavar="SECONDS", help="wall-clock limit of the run")
        run.add_argument("--max-steps", type=int, metavar="N", help="limit on executed statements")
        run.add_argument("--max-depth", type=int, metavar="N", help="call depth limit (default 1000)")
        run.add_argument("--no-cache", action="store_true", help="do not use the parse cache")
        run.add_argument("--durable", action=argparse.BooleanOptionalAction, default=True,
                         help="fsync AI-worker records and definitions on every write (default: on; "
                              "--no-durable is faster and survives a killed process, not a power loss)")
        run.add_argument("--debug", action="store_true", help="show Python tracebacks of errors")

    if only in (None, "check"):
        chk = sub.add_parser("check", help="parse and validate files without running them")
        chk.add_argument("files", nargs="+", metavar="FILE")
        chk.add_argument("--debug", action="store_true")

    if only in (None, "fmt"):
        fmt = sub.add_parser("fmt", help="print files in canonical formatting")
        fmt.add_argument("files", nargs="+", metavar="FILE")
        fmt.add_argument("--check", action="store_true", help="exit 1 if a file is not canonically formatted")
        fmt.add_argument("--write", "-w", action="store_true", help="rewrite the files in place")
        fmt.add_argument("--debug", action="store_true")

    if only in (None, "tools"):
        tools = sub.add_parser("tools", help="list tools with their signatures")
        tools.add_argument("filter", nargs="?", default="", help="only tools whose name contains this")
        tools.add_argument("--help-text", "-l", action="store_true", help="full help for each tool")

    if only in (None, "repl"):
        repl = sub.add_parser("repl", help="interactive prompt (also: nslang with no arguments)")
        repl.add_argument("--sandbox", metavar="DIR")
        repl.add_argument("--worker", metavar="NAME")
        repl.add_argument("--debug", action="store_true")

    if only in (None, "workers"):
        wk = sub.add_parser("workers", help="AI worker definitions, summaries and performance records")
        wk.add_argument("action", choices=["list", "show", "perf"])
        wk.add_argument("name", nargs="?", help="definition name or id (show, perf)")
        wk.add_argument("--sandbox", metavar="DIR")
        wk.add_argument("--limit", type=int, default=20, help="how many records (perf)")
    return p


def main(argv: Sequence[str] | None = None, *, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list:
        args_list = ["repl"]
    try:
        with contextlib.redirect_stdout(out):  # --help and --version print through argparse
            only = args_list[0] if args_list and args_list[0] in _COMMANDS else None
            args = _build_parser(only).parse_args(args_list)
    except _UsageExit as e:
        err.write(f"{e}\n")
        return EXIT_USAGE
    except SystemExit as e:  # --help / --version
        return int(e.code or 0)
    if args.command is None:
        args.command = "repl"
        args.sandbox = args.worker = None
        args.debug = False
    debug = getattr(args, "debug", False)
    try:
        if args.command == "run":
            return _run(args, out, err)
        if args.command == "check":
            return _check(args, out, err)
        if args.command == "fmt":
            return _fmt(args, out, err)
        if args.command == "tools":
            return _tools(args, out, err)
        if args.command == "repl":
            from .repl import run_repl

            return run_repl(sandbox_dir=args.sandbox, default_worker=args.worker, debug=debug,
                            stdout=stdout, stdin=None)
        if args.command == "workers":
            from .cli_workers import workers_command

            return workers_command(args, out, err)
    except UsageError as e:
        err.write(f"nslang: {escape_controls(e.message)}\n")
        return EXIT_USAGE
    except NSError as e:
        _report(e, err, debug)
        return EXIT_SYNTAX if isinstance(e, (NSSyntaxError, NSValidationError)) else EXIT_RUNTIME
    except KeyboardInterrupt:
        err.write("nslang: interrupted\n")
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as e:  # the CLI boundary: an nslang bug must not look like a script error
        if debug:
            import traceback

            err.write(escape_controls("".join(traceback.format_exception(e)), keep="\n"))
        else:
            err.write(f"nslang: internal error: {type(e).__name__}: {escape_controls(str(e))} "
                      "(run with --debug for details)\n")
        return EXIT_RUNTIME
    return EXIT_USAGE  # pragma: no cover


def _report(e: NSError, err: IO[str], debug: bool) -> None:
    err.write(escape_controls(e.render(), keep="\n") + "\n")
    if debug:
        import traceback

        err.write(escape_controls("".join(traceback.format_exception(e)), keep="\n"))


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, not a script") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None


def _run(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from .interpreter import Interpreter
    from .parser import parse

    if args.no_cache:
        os.environ["NSLANG_NO_CACHE"] = "1"
    interp = Interpreter(sandbox_dir=args.sandbox, stdout=out, stderr=err, timeout_s=args.timeout,
                         max_steps=args.max_steps, max_call_depth=args.max_depth, default_worker=args.worker,
                         durable=args.durable)
    progs = [parse(_read(f), name=f, use_cache=not args.no_cache) for f in args.files]
    for prog in progs:
        interp.load_program(prog)
    try:
        interp.run(args.target, args.arg)
    finally:
        interp.close()
        try:
            out.flush()
        except (OSError, ValueError):
            pass
    return EXIT_OK


def _check(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from .interpreter import Interpreter
    from .parser import parse

    interp = Interpreter(stdout=out, stderr=err)
    worst = EXIT_OK
    for f in args.files:
        try:
            interp.load_program(parse(_read(f), name=f, use_cache=False))
            out.write(f"{f}: ok\n")
        except (NSSyntaxError, NSValidationError) as e:
            _report(e, err, args.debug)
            worst = EXIT_SYNTAX
    return worst


def _fmt(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    """Canonical formatting from the AST. Comments are not part of the AST, so a file with comments
    is never rewritten (``--write`` skips it with a message; printing it warns)."""
    from .parser import parse
    from .unparse import unparse

    changed = 0
    for f in args.files:
        text = _read(f)
        formatted = unparse(parse(text, name=f, use_cache=False))
        comments = _count_comments(text) if formatted != text else 0
        if args.check:
            if formatted != text:
                out.write(f"{f}: would reformat\n")
                changed += 1
        elif args.write:
            if formatted != text and comments:
                err.write(f"nslang: {f}: not rewritten: the formatter would drop its {comments} comment(s)\n")
                changed += 1
            elif formatted != text:
                Path(f).write_text(formatted, encoding="utf-8")
                out.write(f"{f}: reformatted\n")
        else:
            if comments:
                err.write(f"nslang: warning: {f}: the formatted text leaves out its {comments} comment(s)\n")
            out.write(formatted)
    return 1 if changed else EXIT_OK


def _count_comments(text: str) -> int:
    """How many ``#``, ``--`` and ``//`` comments the source holds (the formatter drops them)."""
    try:
        from pygments.token import Comment  # type: ignore[import-untyped,unused-ignore]

        from .highlight import NeuroScriptLexer
    except ImportError:  # pragma: no cover - pygments is a dependency
        return 0
    return sum(1 for _i, tok, _v in NeuroScriptLexer().get_tokens_unprocessed(text) if tok is Comment.Single)


def _tools(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from .interpreter import Interpreter

    text = format_tools(Interpreter(stdout=out), args.filter, long=args.help_text)
    if not text:
        err.write(f"nslang: no tool matches {args.filter!r}\n")
        return EXIT_OK
    out.write(text)
    return EXIT_OK


def format_tools(interp: Any, needle: str = "", *, long: bool = False) -> str:
    """The tool listing of ``nslang tools`` and the REPL's ``:tools``: one signature per line.

    ``needle`` keeps tools whose name or alias contains it (case-insensitive); when none does, tools
    whose description mentions it. ``long`` adds each tool's description, arguments, result, example
    and error conditions.
    """
    needle = needle.lower().removeprefix("tool.")
    tools = interp.tools.all()

    def by_name(t: Any) -> bool:
        s = t.spec
        return needle in s.full_name.lower() or any(needle in a.lower() for a in s.aliases)

    chosen = [t for t in tools if by_name(t)] if needle else tools
    if needle and not chosen:
        chosen = [t for t in tools if needle in t.spec.description.lower()]
    lines: list[str] = []
    for t in chosen:
        s = t.spec
        lines.append(s.signature())
        if not long:
            continue
        if s.description:
            lines.append(f"    {s.description}")
        width = max((len(a.name) for a in s.args), default=0)
        for a in s.args:
            opt = "" if a.required else " (optional)"
            lines.append(f"    {a.name.ljust(width)}  {a.type}{opt}{': ' + a.description if a.description else ''}")
        if s.return_help:
            lines.append(f"    returns: {s.return_help}")
        if s.example:
            lines.append(f"    example: {s.example}")
        if s.error_conditions:
            lines.append(f"    errors: {s.error_conditions}")
        if s.aliases:
            lines.append(f"    aliases: {', '.join(s.aliases)}")
        lines.append("")
    return escape_controls("\n".join(lines).rstrip("\n") + "\n", keep="\n") if lines else ""


_ = NSRuntimeError
