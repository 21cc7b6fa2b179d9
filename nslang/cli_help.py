"""``nslang help [TOPIC]`` and ``nslang info``: the shipped reference and where nslang keeps its files.

Both are plain functions of the parsed arguments, called by :mod:`nslang.cli` (issue 15 items 4 and 5).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import IO

from . import __version__

__all__ = ["help_command", "info_command"]


def help_command(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    """Print a reference topic (``nslang/docs``), or the list of topics. Unknown topic: exit 64."""
    from .reference import topic

    try:
        out.write(topic(args.topic or ""))
    except KeyError:
        err.write(f"nslang: no help topic {args.topic!r}\n{topic()}")
        return 64
    return 0


def _file_line(label: str, path: Path | None) -> str:
    if path is None:
        return f"{label:<22} (none)\n"
    if path.is_file():
        state = f"{path.stat().st_size} bytes"
    elif path.is_dir():
        state = "directory"
    else:
        state = "not created yet"
    return f"{label:<22} {path}  ({state})\n"


def info_command(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    """Version, Python, sandbox directory, parse and compiled-code caches, REPL history and the AI worker
    data files."""
    from .cli_workers import PERFORMANCE_FILE
    from .interpreter import Interpreter
    from .parser import _cache_dir
    from .repl import default_history_path
    from .workers.store import DEFINITIONS_FILE

    with Interpreter(sandbox_dir=args.sandbox, stdout=out, stderr=err) as interp:
        sandbox = interp.sandbox_dir
    source = "--sandbox" if args.sandbox else "$NSLANG_SANDBOX" if os.environ.get("NSLANG_SANDBOX") else \
        "user data directory"
    out.write(f"{'nslang':<22} {__version__}\n")
    out.write(f"{'python':<22} {sys.version.split()[0]} ({sys.executable})\n")
    out.write(f"{'sandbox':<22} {sandbox}  (from {source})\n")
    out.write(_file_line("worker definitions", sandbox / DEFINITIONS_FILE))
    out.write(_file_line("performance records", sandbox / PERFORMANCE_FILE))
    cache = None if os.environ.get("NSLANG_NO_CACHE") else _cache_dir()
    out.write(_file_line("parse cache", cache))
    out.write(_file_line("compiled-code cache", None if cache is None else cache.parent / "code"))
    out.write(_file_line("REPL history", default_history_path()))
    return 0
