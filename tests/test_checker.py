"""``nslang check`` (issue 15 item 3): a golden corpus of mistakes with the expected diagnostics, plus
several files in one call.

Each ``tests/checks/<case>.ns`` lists what ``nslang check`` must print, in order:

* ``# diag: <line>:<col>: <severity> <code>: <message>``: one diagnostic of this file (``CHECKS`` in
  the message stands for the directory of the corpus);
* ``# ok``: no diagnostic (the file is reported ``ok``);
* ``# args: …``: options placed before the file (e.g. ``--strict``).

The exit code is derived: 65 when there is an error, or a warning under ``--strict``; else 0.
"""

from __future__ import annotations

import io
import re
import shlex
from pathlib import Path

import pytest

from nslang.checker import CODES
from nslang.cli import main

CHECKS = Path(__file__).parent / "checks"
CASES = sorted(CHECKS.glob("*.ns"))
_DIAG = re.compile(r"#\s*diag: (.*)$")


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_check_corpus(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    args = [a for line in text.splitlines() if (m := re.search(r"#\s*args:(.*)$", line))
            for a in shlex.split(m.group(1))]
    want = [f"{path}:{m.group(1).replace('CHECKS', str(CHECKS))}" for line in text.splitlines()
            if (m := _DIAG.search(line))]
    assert want or "# ok" in text, f"{path} expects nothing"
    code, out, err = run_cli("check", *args, str(path))
    assert err == ""
    lines = out.splitlines()
    if not want:
        assert lines == [f"{path}: ok"]
        assert code == 0
        return
    assert lines[:-1] == want
    errors = sum(" error " in w for w in want)
    warnings = len(want) - errors
    assert lines[-1] == f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}"
    assert code == (65 if errors or (warnings and "--strict" in args) else 0)


def test_every_code_is_in_the_corpus() -> None:
    seen = "".join(p.read_text(encoding="utf-8") for p in CASES)
    for code in CODES:
        assert f" {code}: " in seen, code


def test_independent_files_with_a_main_each(tmp_path: Path) -> None:
    a, b = tmp_path / "a.ns", tmp_path / "b.ns"
    a.write_text("func main() means\n  emit 1\nendfunc\n", encoding="utf-8")
    b.write_text("func main() means\n  emit tool.str.Uppr(1)\nendfunc\n", encoding="utf-8")
    code, out, err = run_cli("check", str(a), str(b))
    assert code == 65 and err == ""
    assert out.splitlines() == [
        f"{a}: ok",
        f"{b}:2:8: error E101: unknown tool 'tool.str.Uppr'; did you mean tool.str.ToUpper?",
        "1 error, 0 warnings",
    ]
    code, out, err = run_cli("check", "--together", str(a), str(b))
    assert code == 65 and "error 42" in err and "already defined" in err


def test_together_sees_the_library(tmp_path: Path) -> None:
    lib, use = tmp_path / "lib.ns", tmp_path / "use.ns"
    lib.write_text("func double(needs n) means\n  return n * 2\nendfunc\n", encoding="utf-8")
    use.write_text("command\n  emit double(2)\n  emit double(1, 2)\nendcommand\n", encoding="utf-8")
    code, out, _err = run_cli("check", str(use), str(lib))
    assert code == 65
    assert f"{use}:2:8: error E102: procedure 'double' is not defined in this file (it is in {lib}: check " \
           "them with --together)" in out
    code, out, _err = run_cli("check", "--together", str(lib), str(use))
    assert code == 65
    assert out.splitlines() == [
        f"{use}:3:8: error E103: procedure 'double' takes 1 argument, got 2 (defined at {lib}:1:1)",
        f"{lib}: ok",
        "1 error, 0 warnings",
    ]


def test_syntax_error_is_reported_and_other_files_still_checked(tmp_path: Path) -> None:
    bad, good = tmp_path / "bad.ns", tmp_path / "good.ns"
    bad.write_text("func main() means\n  emit (\nendfunc\n", encoding="utf-8")
    good.write_text("func main() means\n  emit 1\nendfunc\n", encoding="utf-8")
    code, out, err = run_cli("check", str(bad), str(good))
    assert code == 65 and "error 15" in err and out == f"{good}: ok\n"


@pytest.mark.parametrize("example", sorted((Path(__file__).parents[1] / "examples").glob("*.ns")),
                         ids=lambda p: p.name)
def test_examples_have_no_errors(example: Path) -> None:
    lib = example.parent / "lib_geometry.ns"
    files = [str(lib), str(example)] if example.name == "use_geometry.ns" else [str(example)]
    code, out, _err = run_cli("check", "--strict", "--together", *files)
    assert code == 0, out
