"""The built-in tools called from NeuroScript scripts through the real Interpreter (and the CLI)."""

from __future__ import annotations

import io
import pathlib
import textwrap
import time
from typing import Any

import pytest

if not hasattr(pytest.importorskip("nslang"), "Interpreter"):  # pragma: no cover - until the core lands
    pytest.skip("nslang.Interpreter is not available yet", allow_module_level=True)

from nslang import Interpreter  # noqa: E402
from nslang.errors import ErrorCode, NSError  # noqa: E402


def run(sandbox: pathlib.Path, body: str, stdin: str = "", **kwargs: Any) -> str:
    """Run ``body`` inside a command block; return what it printed."""
    out = io.StringIO()
    interp = Interpreter(sandbox_dir=sandbox, stdout=out, stdin=io.StringIO(stdin), **kwargs)
    interp.load("command\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), "  ") + "\nendcommand\n")
    interp.run()
    return out.getvalue()


def run_error(sandbox: pathlib.Path, body: str, **kwargs: Any) -> NSError:
    with pytest.raises(NSError) as info:
        run(sandbox, body, **kwargs)
    return info.value


def test_file_round_trip_and_listing(sandbox: pathlib.Path) -> None:
    out = run(sandbox, """
        call tool.fs.Write("notes/a.txt", "line 1\\nline 2\\n")
        call tool.FS.Append("notes/a.txt", "line 3\\n")
        emit tool.fs.Read("notes/a.txt")
        emit tool.fs.LineCount("notes/a.txt")
        set entries = tool.fs.List("notes")
        emit entries[0]["name"] + " " + entries[0]["size_bytes"]
        emit tool.fs.Stat(path: "notes")["is_dir"]
    """)
    assert out == "line 1\nline 2\nline 3\n\n3\na.txt 21\ntrue\n"
    assert (sandbox / "notes" / "a.txt").read_text() == "line 1\nline 2\nline 3\n"


def test_sandbox_violation_is_a_catchable_script_error(sandbox: pathlib.Path, tmp_path: pathlib.Path) -> None:
    out = run(sandbox, """
        on error do
          emit "caught: " + system_error_message
          clear_error
        endon
        call tool.fs.Write("../escaped.txt", "x")
    """)
    assert out.startswith("caught: tool.fs.Write: argument 'filepath': path '../escaped.txt' leaves the sandbox")
    assert not (tmp_path / "escaped.txt").exists()


def test_tool_errors_carry_codes_and_positions(sandbox: pathlib.Path) -> None:
    err = run_error(sandbox, 'set x = tool.fs.Read("missing.txt")')
    assert err.code == ErrorCode.FILE_NOT_FOUND
    assert err.span is not None and err.span.line == 2
    err = run_error(sandbox, "set x = tool.str.ToUpper(42)")
    assert err.code == ErrorCode.ARG_MISMATCH
    assert "tool.str.ToUpper" in err.message and "'input_string'" in err.message
    err = run_error(sandbox, "set x = tool.math.Divide(1, 0)")
    assert err.code == ErrorCode.DIVISION_BY_ZERO
    err = run_error(sandbox, 'set x = tool.list.Sort([1, "a"])')
    assert err.code == ErrorCode.TYPE


def test_string_math_list_map_json_tools(sandbox: pathlib.Path) -> None:
    out = run(sandbox, """
        emit tool.str.Format("{{who}} has {{n}} items", {"who": "Ada", "n": 3})
        emit tool.Length("héllo")
        emit tool.str.Join(tool.str.Split("a,b,c", ","), "+")
        emit tool.math.Add(2, 3) + tool.Multiply(2, 2)
        emit tool.list.Append([1, 2], 3)
        emit tool.map.Get({"a": 1}, "b", "none")
        emit tool.json.Parse('{"k": [1, 2]}')["k"][1]
        emit tool.json.Stringify(tool.map.Merge({"a": 1}, {"b": 2}))
        emit tool.str.ReplaceRegex("a1b22", "[0-9]+", "#")
    """)
    assert out.splitlines() == ["Ada has 3 items", "5", "a+b+c", "9", "[1, 2, 3]", "none", "2",
                                '{"a":1,"b":2}', "a#b#"]


def test_print_and_input(sandbox: pathlib.Path) -> None:
    out = run(sandbox, """
        set name = tool.io.Input("Name? ")
        call tool.io.Print("hello", name, 42)
        call tool.Print(["a", "b"])
        set eof = tool.Input()
        emit typeof eof
    """, stdin="Ada\n")
    assert out == "Name? hello Ada 42\na b\nnil\n"


def test_time_tools_and_sleep_respects_the_timeout(sandbox: pathlib.Path) -> None:
    out = run(sandbox, """
        set t = tool.time.Parse("2024-05-01T12:30:00Z")
        emit tool.time.Format(t, "%d.%m.%Y")
        emit tool.time.Diff(t, tool.time.Add(t, 90))
        emit typeof tool.time.Now()
    """)
    assert out.splitlines() == ["01.05.2024", "90", "timedate"]
    start = time.monotonic()
    err = run_error(sandbox, "call tool.time.Sleep(30)", timeout_s=0.2)
    assert err.code == ErrorCode.TIMEOUT
    assert time.monotonic() - start < 5


def test_tools_help_lists_every_tool_with_its_signature(sandbox: pathlib.Path) -> None:
    from nslang.tools.builtin.meta import signature

    out = io.StringIO()
    interp = Interpreter(sandbox_dir=sandbox, stdout=out)
    interp.load("command\n  emit tool.meta.ToolsHelp()\nendcommand\n")
    interp.run()
    text = out.getvalue()
    tools = interp.tools.all()
    assert len(tools) > 80
    for t in tools:
        assert f"`{signature(t.spec)}`" in text, t.spec.full_name
    assert "tool.script.LoadScript" in text and "tool.fs.Read(filepath: string) -> string" in text


def test_cli_run_of_tools_help(sandbox: pathlib.Path, tmp_path: pathlib.Path) -> None:
    cli = pytest.importorskip("nslang.cli")
    script = tmp_path / "help.ns"
    script.write_text("command\n  emit tool.meta.ToolsHelp(\"fs\")\nendcommand\n")
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["run", str(script), "--sandbox", str(sandbox)], stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    assert "`tool.fs.Walk(path?: string = \".\") -> slice_any`" in out.getvalue()


def test_cli_run_sandbox_violation_exit_code(sandbox: pathlib.Path, tmp_path: pathlib.Path) -> None:
    cli = pytest.importorskip("nslang.cli")
    script = tmp_path / "bad.ns"
    script.write_text('command\n  emit tool.fs.Read("/etc/passwd")\nendcommand\n')
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["run", str(script), "--sandbox", str(sandbox)], stdout=out, stderr=err)
    assert code == 70
    assert "34" in err.getvalue() and "absolute" in err.getvalue()
    assert "root:" not in out.getvalue()
