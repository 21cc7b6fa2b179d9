"""The interactive REPL: the pure ``Repl.execute`` step, the prompt-toolkit loop driven through a pipe
input, completion, commands, and the non-interactive (piped) mode."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from nslang.repl import Repl, ReplCompleter, format_value, run_piped, split_input

FUNC = "func double(needs n returns r) means\n  return n * 2\nendfunc"


@pytest.fixture
def repl(tmp_path: Path) -> Repl:
    return Repl(stdout=io.StringIO(), history_file=tmp_path / "history", color=False)


def emitted(r: Repl) -> str:
    """What the code emitted so far (and clear it)."""
    buf = r.stdout
    assert isinstance(buf, io.StringIO)
    text = buf.getvalue()
    buf.seek(0)
    buf.truncate()
    return text


def drive(keys: str | list[str], tmp_path: Path, gap: float = 0.2, **kwargs: object) -> tuple[str, Repl]:
    """Run the whole prompt loop on ``keys`` typed at a pipe input; returns (all output, repl).

    ``keys`` may be a list: its parts are typed ``gap`` seconds apart (for keys whose effect is
    asynchronous in prompt-toolkit, such as Tab completion and loading the history file; a loaded
    machine needs a longer gap).
    """
    parts = [keys] if isinstance(keys, str) else keys
    out = io.StringIO()
    with create_pipe_input() as inp:
        def feed() -> None:
            for i, part in enumerate(parts):
                if i:
                    time.sleep(gap)
                inp.send_text(part)
            inp.close()  # end of input = Ctrl-D at the prompt

        r = Repl(input=inp, output=DummyOutput(), stdout=out, history_file=tmp_path / "history", color=False,
                 complete_while_typing=False, **kwargs)  # type: ignore[arg-type]
        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        assert r.run() == 0
        feeder.join(5)
    return out.getvalue(), r


# ---------------------------------------------------------------------------------------------
# execute: statements, expressions, definitions


def test_statements_run_in_a_persistent_scope(repl: Repl) -> None:
    assert repl.execute("set x = 40 + 2") == ""
    assert repl.execute("emit x") == ""
    assert emitted(repl) == "42\n"
    assert repl.execute("set x = x + 1") == ""
    assert repl.interp.get_global("x") == 43


def test_bare_expression_shows_its_value_with_strings_quoted(repl: Repl) -> None:
    repl.execute('set s = "5"')
    repl.execute("set n = 5")
    assert repl.execute("s") == '"5"'
    assert repl.execute("n") == "5"
    assert repl.execute("n / 2") == "2.5"
    assert repl.execute('[1, "a", nil, {"k": true}]') == '[1, "a", nil, {"k": true}]'
    assert repl.execute('"tab\\there"') == '"tab\\there"'
    assert repl.execute("nil") == "nil"
    assert repl.execute('tool.str.ToUpper("hi")') == '"HI"'
    assert repl.execute("typeof n") == '"number"'
    assert "__repl_value__" not in repl.interp.globals  # the helper variable never lingers


def test_names_that_start_with_a_keyword(repl: Repl) -> None:
    repl.execute("func caller(needs n returns r) means\n  return n + 1\nendfunc")
    assert repl.execute("caller(1)") == "2"
    repl.execute("set format = 3")
    repl.execute("set iffy = 4")
    assert repl.execute("format") == "3"
    assert not repl.needs_more("iffy")
    assert repl.execute("iffy + format") == "7"


def test_multiline_function_then_call(repl: Repl) -> None:
    assert repl.execute(FUNC) == "defined double(needs n returns r)"
    assert repl.execute("double(21)") == "42"
    assert repl.execute("call double(1)") == ""
    assert repl.execute("set y = double(4)") == ""
    assert repl.interp.get_global("y") == 8


def test_redefining_a_procedure_replaces_it(repl: Repl) -> None:
    repl.execute(FUNC)
    repl.execute("func caller(needs n) means\n  return double(n)\nendfunc")
    assert repl.execute(FUNC.replace("n * 2", "n * 3")) == "redefined double(needs n returns r)"
    assert repl.execute("double(2)") == "6"
    assert repl.execute("caller(2)") == "6"  # callers see the new definition


def test_blocks_and_loops(repl: Repl) -> None:
    repl.execute("set total = 0")
    assert repl.execute("for each i in [1, 2, 3]\n  set total = total + i\nendfor") == ""
    assert repl.execute("total") == "6"
    repl.execute('if total > 5\n  emit "big"\nelse\n  emit "small"\nendif')
    assert emitted(repl) == "big\n"


def test_pasted_input_mixing_definitions_and_statements(repl: Repl) -> None:
    out = repl.execute('func hi() means\n  emit "hi"\nendfunc\ncall hi()\nset z = 3\nz')
    assert emitted(repl) == "hi\n"
    assert out == "3"
    assert "hi" in repl.interp.procedures


def test_event_handler_defined_again_replaces_the_named_one(repl: Repl) -> None:
    handler = 'on event "ping" named "h" do\n  emit "pong{}"\nendon'
    assert 'handler for event "ping" named "h"' in repl.execute(handler.format(1))
    repl.execute(handler.format(2))
    assert repl.interp.emit_event("ping") == 1
    assert emitted(repl) == "pong2\n"


# ---------------------------------------------------------------------------------------------
# errors never end the session


def test_syntax_error_has_code_and_caret_and_the_state_survives(repl: Repl) -> None:
    repl.execute("set x = 1")
    out = repl.execute("set y = ")
    assert out.startswith("error 15 (Syntax):")
    assert "<input-2>:1:9" in out
    assert "   1 | set y = " in out and out.rstrip().endswith("^")
    assert repl.last_status == 65
    assert repl.execute("x") == "1"
    assert repl.last_status == 0


def test_error_positions_are_those_of_the_input(repl: Repl) -> None:
    out = repl.execute("set a = 1\nset b = a + nope")
    assert "error 9 (KeyNotFound)" in out
    assert "<input-1>:2:13" in out
    assert "   2 | set b = a + nope" in out
    out = repl.execute("1 + nope")  # a bare expression: columns as typed
    assert "<input-2>:1:5" in out and "\n     |     ^^^^" in out


def test_runtime_error_in_a_procedure_shows_the_call_stack(repl: Repl) -> None:
    repl.execute(FUNC)
    out = repl.execute('emit double("x")')
    assert out.startswith("error 7 (Type)")
    assert "call stack" in out and "in double, called at <input-2>:1:6" in out
    assert "command block" not in out  # the REPL's wrapper is not shown
    assert repl.last_status == 70
    assert repl.execute("double(5)") == "10"


def test_must_and_unknown_things(repl: Repl) -> None:
    assert repl.execute("must 1 > 2").startswith("error 5 (MustFailed)")
    assert "did you mean 'double'" in (repl.execute(FUNC) and repl.execute("doubel(1)"))
    assert repl.execute("tool.nope.Nothing()").startswith("error 3 (ToolNotFound)")


def test_unclosed_block_given_to_execute_is_an_error(repl: Repl) -> None:
    out = repl.execute("if true\n  emit 1")
    assert out.startswith("error 15") and "not closed" in out


def test_statement_keyword_errors_are_not_retried_as_expressions(repl: Repl) -> None:
    out = repl.execute("emit")
    assert "error 15" in out and "<input-1>:1:" in out
    assert "return" in repl.execute("return 1")


def test_python_exception_is_one_line_unless_debug(repl: Repl, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_a: object, **_k: object) -> None:
        raise ValueError("boom")

    monkeypatch.setattr(repl.interp, "run", boom)
    out = repl.execute("emit 1")
    assert out.startswith("internal error: ValueError: boom") and "\n" not in out
    repl.debug = True
    out = repl.execute("emit 1")
    assert "Traceback" in out and "ValueError: boom" in out
    monkeypatch.undo()
    assert repl.execute("1 + 1") == "2"


def test_io_input_reads_the_repl_stdin(tmp_path: Path) -> None:
    r = Repl(stdout=io.StringIO(), stdin=io.StringIO("Ada\n"), history_file=False, color=False)
    assert r.execute('tool.io.Input("name? ")') == '"Ada"'
    assert emitted(r) == "name? "
    assert r.stream.last == "\n"  # the echoed newline ended the prompt's line


def test_keyboard_interrupt_while_running_keeps_the_session(repl: Repl) -> None:
    @repl.interp.tool("host")
    def stop() -> None:
        raise KeyboardInterrupt

    repl.execute("set kept = 1")
    assert repl.execute("call tool.host.Stop()") == "interrupted"
    assert repl.last_status == 130
    assert repl.execute("kept") == "1"


# ---------------------------------------------------------------------------------------------
# when Enter continues the input


@pytest.mark.parametrize("text", [
    "func f() means", "func f() means\n  emit 1", "if x > 1", "for each i in [1]\n  if i\n    emit i\n  endif",
    "while true", 'on event "e" do', "command", "set x = 1 + \\", "emit ```raw\nstring", "set x = 1\nif x",
    "on error do",
])
def test_needs_more(repl: Repl, text: str) -> None:
    assert repl.needs_more(text)


@pytest.mark.parametrize("text", [
    "", "set x = 1", "emit 1", "x + 1", "set x = ", "func f(", "if x\nendif", FUNC, ":help", "endif",
    "emit ```raw```", "# a comment",
])
def test_does_not_need_more(repl: Repl, text: str) -> None:
    assert not repl.needs_more(text)


def test_split_input() -> None:
    parts = split_input(f"set a = 1\n\n{FUNC}\n# note\ncall double(a)\nemit 2")
    assert [(p.kind, p.start) for p in parts] == [("stmt", 1), ("top", 2), ("stmt", 6)]
    assert parts[1].text.strip().startswith("func double")


# ---------------------------------------------------------------------------------------------
# REPL commands


def test_help_and_unknown_command(repl: Repl) -> None:
    text = repl.execute(":help")
    for cmd in (":load", ":vars", ":funcs", ":tools", ":workers", ":reset", ":quit"):
        assert cmd in text
    assert "unknown command :nope" in repl.execute(":nope")
    assert repl.execute(":h") == text  # unique prefixes work
    assert f"Sandbox (files, AI worker data): {repl.interp.sandbox_dir}" in text


def test_vars_and_funcs(repl: Repl) -> None:
    assert "no variables" in repl.execute(":vars")
    repl.execute('set name = "Ada"')
    repl.execute("set items = [1, 2]")
    table = repl.execute(":vars")
    assert table.splitlines()[0].split() == ["name", "type", "value"]
    assert any(line.split()[:3] == ["name", "string", '"Ada"'] for line in table.splitlines())
    assert "TYPE_STRING" not in table
    repl.execute(FUNC)
    funcs = repl.execute(":funcs")
    assert "double(needs n returns r)" in funcs and "<input-3>:1:1" in funcs


def test_tools_command(repl: Repl) -> None:
    out = repl.execute(":tools str.to")
    assert out.splitlines() == ["tool.str.ToLower(input_string: string) -> string",
                                "tool.str.ToUpper(input_string: string) -> string"]
    assert "no tools match" in repl.execute(":tools zzzz")


def test_reset_and_quit(repl: Repl) -> None:
    repl.execute("set x = 1")
    repl.execute(FUNC)
    assert "cleared" in repl.execute(":reset")
    assert "x" not in repl.interp.globals and "double" not in repl.interp.procedures
    assert repl.execute(":quit") == "" and repl.done


def test_load_defines_procedures_and_runs_command_blocks(repl: Repl, tmp_path: Path) -> None:
    lib = tmp_path / "lib.ns"
    lib.write_text("func triple(needs n returns r) means\n  return n * 3\nendfunc\n", encoding="utf-8")
    out = repl.execute(f":load {lib}")
    assert "1 procedure(s)" in out
    assert repl.execute("triple(3)") == "9"
    assert "1 procedure(s)" in repl.execute(f":load {lib}")  # loading again replaces the procedures
    main = tmp_path / "main.ns"
    main.write_text("command\n  emit triple(2)\n  set loaded = true\nendcommand\n", encoding="utf-8")
    assert "ran 1 command block(s)" in repl.execute(f":load {main}")
    assert emitted(repl) == "6\n"
    assert repl.execute("loaded") == "true"
    assert "no such file" in repl.execute(f":load {tmp_path / 'missing.ns'}")
    assert repl.execute(":load") == "usage: :load FILE"
    bad = tmp_path / "bad.ns"
    bad.write_text("func oops( means\nendfunc\n", encoding="utf-8")
    out = repl.execute(f":load {bad}")
    assert out.startswith("error 15") and "bad.ns:1:" in out


def test_workers_command_without_and_with_definitions(repl: Repl) -> None:
    assert "no AI worker definitions" in repl.execute(":workers")
    repl.execute('call tool.AIWorkerDefinition.Add(name: "helper", provider: "test", '
                 'interaction_models: ["both"], rate_limits: {"max_requests_per_minute": 10})')
    repl.execute('ask "helper", "hello" into reply')
    table = repl.execute(":workers")
    header, row = table.splitlines()[:2]
    assert header.split()[:4] == ["NAME", "PROVIDER/MODEL", "STATUS", "LIVE"]
    cells = row.split()
    assert cells[0] == "helper" and cells[2] == "active" and cells[4] == "1/10"


def test_workers_command_degrades_without_the_package(repl: Repl, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "nslang.workers", None)  # import fails
    assert "not available" in repl.execute(":workers")


# ---------------------------------------------------------------------------------------------
# completion


def complete(r: Repl, text: str, requested: bool = True) -> list[tuple[str, str]]:
    c = ReplCompleter(r)
    doc = Document(text, len(text))
    event = CompleteEvent(completion_requested=requested)
    return [(x.text, x.display_meta_text) for x in c.get_completions(doc, event)]


def test_completes_variables_procedures_and_keywords(repl: Repl) -> None:
    repl.execute("set counter = 1")
    repl.execute(FUNC)
    got = dict(complete(repl, "emit co"))
    assert got["counter"] == "number 1"
    assert "continue" in got and got["continue"] == "keyword"
    assert list(got)[0] == "counter"  # variables first
    assert complete(repl, "call dou") == [("double", "double(needs n returns r)")]
    assert ("while", "keyword") in complete(repl, "wh")


def test_completes_tool_names_with_signatures(repl: Repl) -> None:
    got = complete(repl, "emit tool.str.ToU")
    assert got == [("str.ToUpper", "(input_string: string) -> string")]
    assert len(complete(repl, "set x = tool.")) > 50


def test_no_completion_inside_strings_comments_or_numbers(repl: Repl) -> None:
    repl.execute("set counter = 1")
    assert complete(repl, 'emit "co') == []
    assert complete(repl, "emit 1 # co") == []
    assert complete(repl, "emit 1.5") == []
    assert complete(repl, "emit x", requested=False) == []  # nothing matches: no menu while typing
    assert complete(repl, "emit {{cou")[0][0] == "counter"


def test_completes_commands(repl: Repl) -> None:
    assert [t for t, _ in complete(repl, ":w")] == [":workers"]
    assert {t for t, _ in complete(repl, ":tools s")} == {"str", "script"}


# ---------------------------------------------------------------------------------------------
# the prompt loop through prompt-toolkit's pipe input


def test_loop_multiline_function_error_and_recovery(tmp_path: Path) -> None:
    keys = ("set x = 2\r"
            "func f(needs a) means\r"  # Enter inside an unfinished block starts a new line
            "return a * x\r"
            "endfunc\r"
            "f(5)\r"
            "set y = \r"  # a syntax error
            "y\r"  # a runtime error
            "x\r")  # the state is intact
    out, r = drive(keys, tmp_path)
    lines = out.splitlines()
    assert lines[0].startswith("nslang ")
    assert "defined f(needs a)" in lines
    assert "10" in lines
    assert any(line.startswith("error 15 (Syntax)") for line in lines)
    assert any(line.startswith("error 9 (KeyNotFound)") for line in lines)
    assert lines[-1] == "2"
    # the function body was indented automatically and endfunc put back at its level
    assert r.interp.procedures["f"].body


def test_loop_auto_indent(tmp_path: Path) -> None:
    keys = "func g() means\rif true\remit 1\rendif\rendfunc\r"
    _out, _r = drive(keys, tmp_path)
    history = (tmp_path / "history").read_text(encoding="utf-8")
    assert "+func g() means\n+  if true\n+    emit 1\n+  endif\n+endfunc\n" in history


def test_loop_ctrl_c_cancels_the_current_input(tmp_path: Path) -> None:
    out, r = drive("set lost = 1\x03set kept = 2\r", tmp_path)
    assert "lost" not in r.interp.globals
    assert r.interp.get_global("kept") == 2


def test_loop_ctrl_d_exits(tmp_path: Path) -> None:
    out = io.StringIO()
    with create_pipe_input() as inp:
        inp.send_text("emit 1\r\x04emit 2\r")
        r = Repl(input=inp, output=DummyOutput(), stdout=out, history_file=False, color=False)
        assert r.run() == 0
    assert out.getvalue().splitlines()[1:] == ["1"]


def test_loop_quit_command(tmp_path: Path) -> None:
    out, r = drive("emit 1\r:quit\remit 2\r", tmp_path)
    assert out.splitlines()[1:] == ["1"] and r.done


def test_loop_tab_completion(tmp_path: Path) -> None:
    out, _r = drive(["set counter = 7\remit coun\t", "\r"], tmp_path, gap=1.0)
    assert out.splitlines()[-1] == "7"


def test_history_persists_between_sessions(tmp_path: Path) -> None:
    drive("set first = 1\r", tmp_path)
    _out, r = drive(["", "\x1b[A", "\r"], tmp_path, gap=1.0)  # Up recalls the previous session's input
    assert r.interp.get_global("first") == 1
    assert "+set first = 1" in (tmp_path / "history").read_text(encoding="utf-8")


def test_history_path_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from nslang.repl import default_history_path

    monkeypatch.setenv("NSLANG_HISTORY", str(tmp_path / "h"))
    assert default_history_path() == tmp_path / "h"


# ---------------------------------------------------------------------------------------------
# piped (non-terminal) input and values


def test_piped_input_runs_like_typed_input() -> None:
    out = io.StringIO()
    code = run_piped(io.StringIO(f"set x = 3\n{FUNC}\ndouble(x)\nemit \"done\"\n"), out)
    assert code == 0
    assert out.getvalue() == "defined double(needs n returns r)\n6\ndone\n"
    out = io.StringIO()
    assert run_piped(io.StringIO("emit nope\nemit 1\n"), out) == 70
    assert run_piped(io.StringIO("set = 1\n"), io.StringIO()) == 65


def test_format_value_cycles_and_special_values() -> None:
    loop: list[object] = [1]
    loop.append(loop)
    assert format_value(loop) == "[1, [...]]"
    assert format_value(1.5) == "1.5" and format_value(True) == "true"
    from nslang.values import ErrorValue, ProcedureRef

    assert format_value(ErrorValue({"code": 5, "message": "bad"})) == "<error 5: bad>"
    assert format_value(ProcedureRef("f")) == "<function f>"


@pytest.fixture(autouse=True)
def _no_user_history(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("NSLANG_HISTORY", str(tmp_path / "default-history"))
    yield


def test_ask_without_into_prints_the_reply_as_it_arrives(tmp_path: Path) -> None:
    """Issue 14 item 2: the REPL shows an `ask` reply piece by piece; `ask … into x` shows nothing."""
    pieces: list[str] = []

    class Recording(io.StringIO):
        def write(self, text: str) -> int:
            pieces.append(text)
            return super().write(text)

    r = Repl(stdout=Recording(), history_file=False, color=False, sandbox_dir=tmp_path)
    r.execute('call tool.AIWorkerDefinition.Add(name: "t", provider: "test", model_name: "m", '
              'interaction_models: ["both"], base_config: {"stream": true})')
    pieces.clear()
    assert r.execute('ask "t", "one two three"') == ""
    assert "".join(pieces) == "m reply 1: one two three\n"
    assert pieces[:3] == ["m", " reply", " 1:"]  # the pieces as the model sent them
    pieces.clear()
    assert r.execute('ask "t", "quiet" into x') == "" and pieces == []
    assert r.execute("x") == '"m reply 1: quiet"'
