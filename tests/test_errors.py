"""How errors look to people: the rendered block (code, message, file:line:col, source line with a
caret, NeuroScript call stack), CLI exit codes, and tracebacks only with --debug."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from nslang import Interpreter
from nslang.cli import main
from nslang.errors import (
    ErrorCode,
    LLMError,
    NSError,
    NSRuntimeError,
    NSSyntaxError,
    NSValidationError,
    ResourceLimitError,
    ToolError,
    UsageError,
)
from nslang.source import Span, remember_source, render_error

SCRIPT = """\
func inner(needs m) means
  return m["missing"]
endfunc

func outer() means
  set result = inner({"a": 1})
  return result
endfunc

func main() means
  emit "start"
  call outer()
endfunc
"""


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "demo.ns"
    path.write_text(SCRIPT, encoding="utf-8")
    return path


# ---- rendering ------------------------------------------------------------------------------------


def test_runtime_error_render(script: Path) -> None:
    code, out, err = cli("run", str(script))
    assert code == 70
    assert out == "start\n"
    lines = err.splitlines()
    assert lines[0].startswith("error 9 (KeyNotFound): ")
    assert "'missing'" in lines[0]
    assert lines[1] == f"  --> {script}:2:10"
    assert lines[2].strip() == "|"
    assert lines[3] == '   2 |   return m["missing"]'
    caret_col = lines[4].index("^")
    assert lines[3][caret_col] == "m"  # the caret sits under the failing expression
    assert lines[4].rstrip().endswith("^" * len('m["missing"]'))
    assert "call stack (innermost first):" in lines
    stack = lines[lines.index("call stack (innermost first):") + 1 :]
    assert stack == [
        f"  in inner, called at {script}:6:16",
        f"  in outer, called at {script}:12:8",
        "  in main",
    ]
    assert "Traceback" not in err


def test_runtime_error_object(tmp_path: Path) -> None:
    interp = Interpreter(sandbox_dir=tmp_path, stdout=io.StringIO())
    interp.load(SCRIPT, name="demo.ns")
    with pytest.raises(NSRuntimeError) as info:
        interp.run()
    e = info.value
    assert e.code == ErrorCode.KEY_NOT_FOUND == 9
    assert e.code_name == "KeyNotFound"
    assert e.span is not None and (e.span.source, e.span.line, e.span.column) == ("demo.ns", 2, 10)
    assert [f.procedure for f in e.stack] == ["inner", "outer", "main"]
    assert str(e).startswith("NeuroScript error 9 (KeyNotFound): ")
    assert str(e).endswith("at demo.ns:2:10")


def test_syntax_error_render(tmp_path: Path) -> None:
    path = tmp_path / "bad.ns"
    path.write_text("func main() means\n  set x = (1 + \nendfunc\n", encoding="utf-8")
    code, out, err = cli("run", str(path))
    assert code == 65 and out == ""
    lines = err.splitlines()
    assert lines[0].startswith("error 15 (Syntax): unexpected end of line; expected ")
    assert lines[1] == f"  --> {path}:2:16"
    assert lines[3] == "   2 |   set x = (1 + "
    assert lines[4] == "     |" + " " * 16 + "^"
    assert "call stack" not in err and "Traceback" not in err


def test_validation_error_exit_code(tmp_path: Path) -> None:
    path = tmp_path / "meta.ns"
    path.write_text(":: : no key\nfunc main() means\n  emit 1\nendfunc\n", encoding="utf-8")
    code, _, err = cli("run", str(path))
    assert code == 65
    assert err.startswith("error 15 (Syntax): metadata line has an empty key")


def test_render_without_span_or_source() -> None:
    assert render_error(NSRuntimeError("plain", code=1)) == "error 1 (FailStatement): plain"
    e = NSRuntimeError("no text known", code=7, span=Span("never-remembered.ns", 3, 4))
    assert render_error(e) == "error 7 (Type): no text known\n  --> never-remembered.ns:3:4"


def test_render_caret_width_and_tabs() -> None:
    remember_source("tabs.ns", "func main() means\n\temit value\nendfunc\n")
    e = NSRuntimeError("undefined", code=9, span=Span("tabs.ns", 2, 7, 2, 12))
    lines = render_error(e).splitlines()
    assert lines[3] == "   2 |  emit value"
    assert lines[4] == "     |       ^^^^^"


def test_tool_specific_code_name() -> None:
    assert NSRuntimeError("x", code=1005).code_name == "ToolSpecific"
    assert ErrorCode(37).title == "ResourceExhaustion"
    assert ErrorCode(21).title == "ToolExecutionFailed"


# ---- tracebacks -----------------------------------------------------------------------------------


def test_no_traceback_without_debug(script: Path) -> None:
    _, _, err = cli("run", str(script))
    assert "Traceback" not in err and 'File "' not in err


def test_traceback_with_debug(script: Path) -> None:
    code, _, err = cli("run", "--debug", str(script))
    assert code == 70
    assert err.startswith("error 9 (KeyNotFound)")
    assert "Traceback (most recent call last):" in err


def test_deep_recursion_has_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "deep.ns"
    path.write_text(
        "func f(needs n) means\n  return f(n + 1)\nendfunc\n\nfunc main() means\n  call f(0)\nendfunc\n",
        encoding="utf-8",
    )
    code, _, err = cli("run", str(path))
    assert code == 70
    assert err.startswith("error 37 (ResourceExhaustion)")
    assert "RecursionError" not in err and "Traceback" not in err


# ---- exit codes of the CLI ------------------------------------------------------------------------


def test_exit_ok(tmp_path: Path) -> None:
    path = tmp_path / "ok.ns"
    path.write_text('func main() means\n  emit "fine"\nendfunc\n', encoding="utf-8")
    assert cli("run", str(path)) == (0, "fine\n", "")


def test_usage_errors_exit_64(tmp_path: Path) -> None:
    code, _, err = cli("run", str(tmp_path / "nope.ns"))
    assert code == 64 and "no such file" in err
    code, _, err = cli("run")
    assert code == 64
    code, _, err = cli("frobnicate")
    assert code == 64
    lib = tmp_path / "lib.ns"
    lib.write_text("func helper() means\n  emit 1\nendfunc\n", encoding="utf-8")
    code, _, err = cli("run", str(lib))
    assert code == 64 and "nothing to run" in err
    code, _, err = cli("run", "--target", "absent", str(lib))
    assert code == 64


def test_check_command(tmp_path: Path, script: Path) -> None:
    bad = tmp_path / "bad.ns"
    bad.write_text("func main() means\n  emit\nendfunc\n", encoding="utf-8")
    code, out, err = cli("check", str(script), str(bad))
    assert code == 65
    assert f"{script}: ok" in out
    assert f"--> {bad}:2:" in err


# ---- the hierarchy --------------------------------------------------------------------------------


def test_one_exception_root() -> None:
    for cls in (NSSyntaxError, NSValidationError, NSRuntimeError, ToolError, LLMError, ResourceLimitError, UsageError):
        assert issubclass(cls, NSError)
    assert issubclass(ToolError, NSRuntimeError) and issubclass(ResourceLimitError, NSRuntimeError)
    assert NSSyntaxError("x").code == 15
    assert ToolError("x").code == 21
    assert ResourceLimitError("x").catchable is False
    assert NSRuntimeError("x").catchable is True


def test_api_errors(interp: Interpreter) -> None:
    interp.load("func main() means\n  emit 1 / 0\nendfunc\n", name="api.ns")
    with pytest.raises(NSRuntimeError) as info:
        interp.call("nope")
    assert info.value.code == 2
    with pytest.raises(NSRuntimeError) as info:
        interp.run()
    assert info.value.code == 14 and info.value.span is not None and info.value.span.line == 2
    assert interp.stdout.getvalue() == ""  # type: ignore[attr-defined]
