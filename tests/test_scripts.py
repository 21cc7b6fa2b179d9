"""Golden scripts: every ``tests/scripts/<feature>/<case>.ns`` runs through ``nslang run``.

Inline expectations (Crafting Interpreters style), written as NeuroScript comments:

* ``# expect: <line>``: the next expected line of stdout (in file order; one space after the colon
  is dropped, the rest is exact; ``# expect:`` alone is an empty line).
* ``# expect error <code> at <line>:<col>`` or ``# expect error <code>``: the run fails with that
  NeuroScript error code (and position). ``at <file>:<line>:<col>`` names another file (relative to
  the script) when the error is in a file loaded with ``load-first``. The exit code is derived: 65
  for codes 15 (Syntax) and 42 (Duplicate), raised while loading, else 70.
* ``# expect exit <n>``: overrides the derived exit code (e.g. a code-15 error raised at run time by
  ``tool.LoadScript`` exits with 70).
* ``# expect stderr: <text>``: stderr must contain this text (e.g. a warning about an error inside an
  ``on event`` handler). Without an expected error or stderr text, stderr must be empty.
* ``# args: <cli arguments>``: extra arguments for ``nslang run`` placed before the file
  (e.g. ``--max-depth 50``).
* ``# load-first: <file>``: another file (relative to the script) loaded before this one.

Files whose name starts with ``_`` are helpers (loaded by ``load-first``), not tests.

Every run checks stdout exactly, the exit code, and that no Python traceback reaches stderr. An
expected error must appear in stderr as ``error <code> (`` and ``--> <file>:<line>:<col>``.
"""

from __future__ import annotations

import io
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nslang.cli import main

SCRIPTS = Path(__file__).parent / "scripts"

_EXPECT_OUT = re.compile(r"#\s*expect:( ?)(.*)$")
_EXPECT_ERR = re.compile(r"#\s*expect error (\d+)(?: at (?:([^\s:]+):)?(\d+):(\d+))?\s*$")
_EXPECT_EXIT = re.compile(r"#\s*expect exit (\d+)\s*$")
_EXPECT_STDERR = re.compile(r"#\s*expect stderr: (.*)$")
_ARGS = re.compile(r"#\s*args:(.*)$")
_LOAD_FIRST = re.compile(r"#\s*load-first:\s*(\S+)\s*$")


@dataclass
class Expectation:
    """What one golden script expects."""

    stdout: list[str] = field(default_factory=list)
    error_code: int | None = None
    error_pos: tuple[int, int] | None = None
    error_file: str | None = None
    exit_code: int | None = None
    stderr: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    load_first: list[str] = field(default_factory=list)

    @property
    def expected_exit(self) -> int:
        if self.exit_code is not None:
            return self.exit_code
        if self.error_code is None:
            return 0
        return 65 if self.error_code in (15, 42) else 70


def parse_expectations(text: str) -> Expectation:
    """Read the ``# expect…`` directives of a golden script."""
    exp = Expectation()
    for line in text.splitlines():
        if m := _EXPECT_OUT.search(line):
            exp.stdout.append(m.group(2))
        elif m := _EXPECT_ERR.search(line):
            assert exp.error_code is None, "only one '# expect error' per script"
            exp.error_code = int(m.group(1))
            exp.error_file = m.group(2)
            if m.group(3):
                exp.error_pos = (int(m.group(3)), int(m.group(4)))
        elif m := _EXPECT_EXIT.search(line):
            exp.exit_code = int(m.group(1))
        elif m := _EXPECT_STDERR.search(line):
            exp.stderr.append(m.group(1))
        elif m := _ARGS.search(line):
            exp.args.extend(shlex.split(m.group(1)))
        elif m := _LOAD_FIRST.search(line):
            exp.load_first.append(m.group(1))
    return exp


def _cases() -> list[Path]:
    return sorted(p for p in SCRIPTS.rglob("*.ns") if not p.name.startswith("_"))


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """Run ``nslang`` in-process; returns (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("path", _cases(), ids=lambda p: p.relative_to(SCRIPTS).with_suffix("").as_posix())
def test_script(path: Path) -> None:
    exp = parse_expectations(path.read_text(encoding="utf-8"))
    files = [str(path.parent / f) for f in exp.load_first] + [str(path)]
    code, stdout, stderr = run_cli(["run", *exp.args, *files])

    assert "Traceback" not in stderr, stderr
    expected_out = "".join(line + "\n" for line in exp.stdout)
    assert stdout == expected_out, f"stdout differs\n--- stderr ---\n{stderr}"
    assert code == exp.expected_exit, f"exit code {code}, expected {exp.expected_exit}\n--- stderr ---\n{stderr}"
    if exp.error_code is not None:
        assert f"error {exp.error_code} (" in stderr, stderr
        if exp.error_pos is not None:
            line, col = exp.error_pos
            where = path.parent / exp.error_file if exp.error_file else path
            assert f"--> {where}:{line}:{col}\n" in stderr, stderr
    for text in exp.stderr:
        assert text in stderr, stderr
    if exp.error_code is None and not exp.stderr:
        assert stderr == "", stderr


def test_corpus_is_large_enough() -> None:
    assert len(_cases()) >= 120


def test_every_case_has_an_expectation() -> None:
    for p in _cases():
        exp = parse_expectations(p.read_text(encoding="utf-8"))
        assert exp.stdout or exp.error_code is not None, f"{p} expects nothing"
