"""The ``nslang`` command line: ``run``, ``check``, ``fmt``, ``tools``, ``repl``, ``workers``, ``help``, ``info``.

``main(argv) -> int`` never calls ``sys.exit`` (house rule 15). Exit codes (spec Part 1): 0 success,
64 usage error, 65 syntax or validation error, 70 runtime error. Errors print the NeuroScript error
code, message, ``file:line:col``, the source line with a caret and the NeuroScript call stack, never a
Python traceback unless ``--debug``. Error reports and tool listings go through
:func:`nslang.terminal.escape_controls` (control characters shown escaped; issue 10 item 7); what a
script emits is its output and is written as is.
"""

from __future__ import annotations

import os
import sys

from . import __version__
from .errors import NSError, NSRuntimeError, NSSyntaxError, NSValidationError, UsageError, out_of_memory
from .terminal import escape_controls

TYPE_CHECKING = False  # typing stays off the start-up path (issue 16 item 3)
if TYPE_CHECKING:  # pragma: no cover
    import argparse
    from collections.abc import Sequence
    from typing import IO, Any

__all__ = ["main"]

EXIT_OK, EXIT_USAGE, EXIT_SYNTAX, EXIT_RUNTIME = 0, 64, 65, 70
_COMMANDS = ("run", "check", "fmt", "tools", "repl", "workers", "help", "info")


class _UsageExit(Exception):
    pass


#: ``nslang run`` options that take no value: option -> (attribute, value). With only these and the files,
#: :func:`_quick_run_args` reads the command line without argparse (issue 16 item 3: building the parser
#: imports argparse, gettext, locale and shutil and costs ~7 ms of a 1-line run).
_RUN_FLAGS = {"--no-cache": ("no_cache", True), "--debug": ("debug", True), "--print-result": ("print_result", True),
              "--approve-all": ("approve_all", True), "--durable": ("durable", True),
              "--no-durable": ("durable", False)}


def _run_defaults() -> dict[str, Any]:
    """The attributes of a parsed ``nslang run`` command line without options (as argparse sets them)."""
    return dict(command="run", target=None, arg=[], sandbox=None, worker=None, timeout=None, approve=[],
                approve_all=False, max_cost=None, record=None, replay=None, max_steps=None, max_depth=None,
                max_loop_iterations=None, print_result=False, max_value_bytes=None, no_cache=False,
                durable=True, debug=False)


class _Args:
    """The options of a quick ``run`` (as argparse's Namespace; ``types`` stays off start-up)."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


def _quick_run_args(argv: list[str]) -> _Args | None:
    """``run FILE… `` with at most the value-less options of :data:`_RUN_FLAGS` before or after the files,
    parsed as argparse would; None for anything else (argparse then parses it, or reports the error)."""
    if len(argv) < 2 or argv[0] != "run":
        return None
    args = _run_defaults()
    files: list[str] = []
    ended = False  # the files were followed by an option: no more files (argparse: one group of FILEs)
    for a in argv[1:]:
        if a.startswith("-"):
            if a not in _RUN_FLAGS:
                return None
            attr, value = _RUN_FLAGS[a]
            args[attr] = value
            ended = bool(files)
        elif ended:
            return None
        else:
            files.append(a)
    if not files:
        return None
    return _Args(files=files, **args)


def _build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; ``only`` builds just that subcommand (start-up: building all costs ~3 ms)."""
    import argparse

    class _Parser(argparse.ArgumentParser):
        def error(self, message: str) -> None:  # type: ignore[override]
            raise _UsageExit(f"{self.prog}: {message}\n{self.format_usage().strip()}")

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
        run.add_argument("--approve", action="append", default=[], metavar="PATTERN",
                         help="approve AI workers' calls of matching side-effect tools, e.g. fs.Write or fs.* "
                              "(repeatable; without it, a terminal asks and other runs refuse)")
        run.add_argument("--approve-all", action="store_true",
                         help="approve every side-effect tool call of AI workers (unattended runs)")
        run.add_argument("--max-cost", type=float, metavar="USD",
                         help="cost budget of the run's model calls, in USD (worst case checked before each call)")
        rec = run.add_mutually_exclusive_group()
        rec.add_argument("--record", metavar="FILE.jsonl", help="write every model exchange to FILE (no API keys)")
        rec.add_argument("--replay", metavar="FILE.jsonl",
                         help="answer every model call from a --record file, with no network")
        run.add_argument("--max-steps", type=int, metavar="N", help="limit on executed statements")
        run.add_argument("--max-depth", type=_max_depth, metavar="N",
                         help="call depth limit (default 1000, at most 100000)")
        run.add_argument("--max-loop-iterations", type=int, metavar="N",
                         help="passes of one while / for each loop before error 37 (default 1000000; 0: no limit)")
        run.add_argument("--print-result", action="store_true",
                         help="print the return value of the procedure that ran (--target, or main)")
        run.add_argument("--max-value-bytes", type=int, metavar="N",
                         help="largest single string, list or map, in bytes (default 67108864 = 64 MiB)")
        run.add_argument("--no-cache", action="store_true", help="do not use the parse cache")
        run.add_argument("--durable", action=argparse.BooleanOptionalAction, default=True,
                         help="fsync AI-worker records and definitions on every write (default: on; "
                              "--no-durable is faster and survives a killed process, not a power loss)")
        run.add_argument("--debug", action="store_true", help="show Python tracebacks of errors")

    if only in (None, "check"):
        chk = sub.add_parser("check", help="find mistakes in files without running them",
                             description="Parse each file and check it statically: unknown tools, undefined "
                                         "procedures, wrong arity, unknown named arguments (errors); variables "
                                         "read before any assignment, unreachable code (warnings). Each file is "
                                         "checked on its own unless --together is given. Exit 65 on errors.")
        chk.add_argument("files", nargs="+", metavar="FILE", help="NeuroScript files to check")
        chk.add_argument("--strict", action="store_true", help="warnings fail the check too (exit 65)")
        chk.add_argument("--together", action="store_true",
                         help="check the files as one program loaded in order (as 'nslang run' does), "
                              "e.g. a library and the script that uses it")
        chk.add_argument("--debug", action="store_true", help="show Python tracebacks of errors")

    if only in (None, "fmt"):
        fmt = sub.add_parser("fmt", help="print files in canonical formatting",
                             description="Canonical layout (two-space indentation, canonical spacing) that keeps "
                                         "comments, blank-line groups and \\ continuations. Files that do not "
                                         "parse are reported and left alone.")
        fmt.add_argument("files", nargs="+", metavar="FILE", help="NeuroScript files to format")
        fmt.add_argument("--check", action="store_true", help="exit 1 if a file is not canonically formatted")
        fmt.add_argument("--write", "-w", action="store_true", help="rewrite the files in place")
        fmt.add_argument("--debug", action="store_true", help="show Python tracebacks of errors")

    if only in (None, "tools"):
        tools = sub.add_parser("tools", help="list tools with their signatures")
        tools.add_argument("filter", nargs="?", default="", help="only tools whose name contains this")
        tools.add_argument("--help-text", "-l", action="store_true", help="full help for each tool")

    if only in (None, "repl"):
        repl = sub.add_parser("repl", help="interactive prompt (also: nslang with no arguments)")
        repl.add_argument("--sandbox", metavar="DIR", help="sandbox directory for file tools and AI-worker data")
        repl.add_argument("--worker", metavar="NAME", help="default AI worker definition for 'ask PROMPT'")
        repl.add_argument("--debug", action="store_true", help="show Python tracebacks of errors")

    if only in (None, "workers"):
        wk = sub.add_parser("workers", help="AI worker definitions, summaries and performance records")
        wk.add_argument("action", choices=["list", "show", "perf"],
                        help="list: every definition; show: one definition and its summary; perf: records")
        wk.add_argument("name", nargs="?", help="definition name or id (show, perf)")
        wk.add_argument("--sandbox", metavar="DIR", help="sandbox directory holding the AI-worker data")
        wk.add_argument("--limit", type=int, default=20, help="how many records (perf)")
        wk.add_argument("-v", "--verbose", action="store_true",
                        help="perf: also the steps of tool-calling tasks (model calls and tool calls)")

    if only in (None, "help"):
        hp = sub.add_parser("help", help="the nslang reference (topics: language, tools, workers, errors, cli, "
                                         "embedding)")
        hp.add_argument("topic", nargs="?", help="a topic; without it, the list of topics")

    if only in (None, "info"):
        info = sub.add_parser("info", help="version, sandbox, cache and history paths, worker data files")
        info.add_argument("--sandbox", metavar="DIR", help="show this sandbox directory instead of the default")
    return p


def main(argv: Sequence[str] | None = None, *, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list:
        args_list = ["repl"]
    try:
        args: Any = _quick_run_args(args_list)
        if args is None:
            import contextlib

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
        if args.command in ("help", "info"):
            from .cli_help import help_command, info_command

            return (help_command if args.command == "help" else info_command)(args, out, err)
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
    except MemoryError:  # outside a run (parsing a huge file…): the same clean error 37 as inside one
        _report(out_of_memory(), err, debug)
        return EXIT_RUNTIME
    except Exception as e:  # the CLI boundary: an nslang bug must not look like a script error
        if debug:
            import traceback

            err.write(escape_controls("".join(traceback.format_exception(e)), keep="\n"))
        else:
            err.write(f"nslang: internal error: {type(e).__name__}: {escape_controls(str(e))} "
                      "(run with --debug for details)\n")
        return EXIT_RUNTIME
    return EXIT_USAGE  # pragma: no cover


def _max_depth(text: str) -> int:
    """``--max-depth N``: an integer from 1 to MAX_CALL_DEPTH (else a usage error, exit 64)."""
    import argparse

    from ._stack import MAX_CALL_DEPTH

    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= n <= MAX_CALL_DEPTH:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_CALL_DEPTH} (deeper recursion is not "
                                         f"supported), got {n}")
    return n


def _report(e: NSError, err: IO[str], debug: bool) -> None:
    err.write(escape_controls(e.render(), keep="\n") + "\n")
    if debug:
        import traceback

        err.write(escape_controls("".join(traceback.format_exception(e)), keep="\n"))


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, not a script") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None


def _run(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:

    # --no-cache reaches every parse of the run (stdlib, LoadScript) through the environment, for this
    # run only: an embedding host or a test calling main() twice keeps its own setting afterwards
    previous = os.environ.get("NSLANG_NO_CACHE")
    if args.no_cache:
        os.environ["NSLANG_NO_CACHE"] = "1"
    try:
        return _run_files(args, out, err)
    finally:
        if previous is None:
            os.environ.pop("NSLANG_NO_CACHE", None)
        else:
            os.environ["NSLANG_NO_CACHE"] = previous


def _run_files(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from .interpreter import Interpreter
    from .parser import parse

    interp = Interpreter(sandbox_dir=args.sandbox, stdout=out, stderr=err, timeout_s=args.timeout,
                         max_steps=args.max_steps, max_call_depth=args.max_depth, default_worker=args.worker,
                         max_loop_iterations=args.max_loop_iterations, durable=args.durable,
                         approve=_approver(args, err), max_cost_usd=args.max_cost, record=args.record,
                         replay=args.replay, max_value_bytes=args.max_value_bytes)
    interp.echo_asks = True  # `ask` without `into` prints the reply as it arrives (issue 14 item 2)
    progs = [parse(_read(f), name=f, use_cache=not args.no_cache) for f in args.files]
    for prog in progs:
        interp.load_program(prog)
    try:
        result = interp.run(args.target, args.arg)
        if args.print_result and (args.target is not None or not any(p.commands for p in progs)):
            from .values import display, from_python

            out.write(display(from_python(result)) + "\n")
    finally:
        interp.close()
        try:
            out.flush()
        except (OSError, ValueError):
            pass
    return EXIT_OK


def _approver(args: argparse.Namespace, err: IO[str]) -> Any:
    """``--approve`` / ``--approve-all``; other side-effect calls are asked about when stdin and
    stderr are a terminal, else refused (issue 12 item 3). The
    :class:`~nslang.workers.policy.PatternApprover` is built on the first request (a run that makes
    none does not import the workers package: ~2 ms of start-up, issue 16 item 3)."""
    import _thread

    interactive = sys.stdin.isatty() and getattr(err, "isatty", lambda: False)()
    approver: Any = None
    lock = _thread.allocate_lock()  # Map's threads: one approver, so one question at a time

    def approve(request: Any) -> bool:
        nonlocal approver
        with lock:
            if approver is None:
                from .workers.policy import PatternApprover, ask_on_terminal

                ask = None
                if interactive:
                    def ask(request: Any) -> str:
                        return ask_on_terminal(request, sys.stdin, err)
                approver = PatternApprover(list(args.approve), args.approve_all, ask)
        return approver(request)  # type: ignore[no-any-return]

    return approve


def _check(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    """Static checks (:mod:`.checker`); each file alone, or all as one program with ``--together``."""
    from .checker import check_program
    from .interpreter import RESOLVER_CONSTANTS, Interpreter, _stdlib_index
    from .parser import parse
    from .reference import PROMPT_GLOBALS

    worst = EXIT_OK
    progs = []
    for f in args.files:
        try:
            progs.append(parse(_read(f), name=f, use_cache=False))
        except (NSSyntaxError, NSValidationError) as e:
            _report(e, err, args.debug)
            worst = EXIT_SYNTAX
    with Interpreter(stdout=out, stderr=err) as interp:
        if args.together:
            try:
                for prog in progs:
                    interp.load_program(prog)  # duplicate procedures across files (code 42)
            except NSValidationError as e:
                _report(e, err, args.debug)
                return EXIT_SYNTAX
        groups = [progs] if args.together else [[p] for p in progs]
        predefined = [*interp.globals, *PROMPT_GLOBALS, *RESOLVER_CONSTANTS]
        stdlib = list(_stdlib_index())
        errors = warnings = 0
        defined_in = {p.name: prog.source for prog in progs for p in prog.procedures}
        for group in groups:
            elsewhere = {k: v for k, v in defined_in.items() if all(v != g.source for g in group)}
            diags = check_program(group, interp.tools, stdlib=stdlib, predefined=predefined, elsewhere=elsewhere)
            for d in diags:
                out.write(d.render() + "\n")
            errors += sum(d.severity == "error" for d in diags)
            warnings += sum(d.severity == "warning" for d in diags)
            for prog in group:
                if not any(d.span.source == prog.source for d in diags):
                    out.write(f"{prog.source}: ok\n")
    if errors or warnings:
        out.write(f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}\n")
    if errors or (warnings and args.strict):
        worst = EXIT_SYNTAX
    return worst


def _fmt(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    """Canonical layout that keeps comments, blank-line groups and continuations (:mod:`.formatter`)."""
    from .formatter import FormatError, format_source

    changed = worst = 0
    for f in args.files:
        text = _read(f)
        try:
            formatted = format_source(text, name=f)
        except FormatError as e:  # every other file is still formatted
            err.write(f"nslang: {e.message}\n")
            worst = max(worst, 1)
            continue
        except (NSSyntaxError, NSValidationError) as e:
            _report(e, err, args.debug)
            worst = EXIT_SYNTAX
            continue
        if args.check:
            if formatted != text:
                out.write(f"{f}: would reformat\n")
                changed += 1
        elif args.write:
            if formatted != text:
                with open(f, "w", encoding="utf-8") as fh:
                    fh.write(formatted)
                out.write(f"{f}: reformatted\n")
        else:
            out.write(formatted)
    return worst or (1 if changed else EXIT_OK)


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
