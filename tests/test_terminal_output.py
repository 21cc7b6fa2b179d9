"""Nothing nslang prints in a view reaches the terminal as a control sequence (issue 10 item 7).

The attack: a definition named ``evil\\x1b]0;pwned\\x07`` (an OSC "set window title") reached the
terminal raw through ``nslang workers list``. Replayed here against every view: the workers tables,
``nslang tools``, CLI error reports, and the REPL's values, tables, notes and errors. What ``emit``
writes is program output and stays as it is.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from nslang import Interpreter
from nslang.cli import format_tools, main
from nslang.llm.base import override_allow_model_requests
from nslang.repl import Repl
from nslang.terminal import escape_controls
from nslang.workers import AIWorkerManager
from nslang.workers.store import DEFINITIONS_FILE

OSC = "\x1b]0;pwned\x07"
HOSTILE = f"evil{OSC}\x1b[2J\x9b31m\u202egnp.exe\x7f"
#: What must never reach a terminal: C0 controls but newline, DEL, C1, bidi controls, separators.
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def assert_clean(text: str) -> None:
    m = RAW.search(text)
    assert m is None, f"raw {m.group()!r} at {m.start()} in {text!r}"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


# ---------------------------------------------------------------------------------------------
# the escaping function


@pytest.mark.parametrize("raw,shown", [
    ("plain text, é, 写, emoji 👍🏽", "plain text, é, 写, emoji 👍🏽"),
    (OSC, "\\u001b]0;pwned\\u0007"),
    ("a\nb\tc\rd", "a\\nb\\tc\\rd"),
    ("\x00\x7f\x9b\x85", "\\u0000\\u007f\\u009b\\u0085"),
    ("\u202e\u2066\u200f\u2028", "\\u202e\\u2066\\u200f\\u2028"),
    ("\ud800", "\\ud800"),
])
def test_escape_controls(raw: str, shown: str) -> None:
    assert escape_controls(raw) == shown
    assert_clean(escape_controls(raw))


def test_escape_controls_keeps_what_it_is_told_to() -> None:
    assert escape_controls("line 1\nline\x1b 2", keep="\n") == "line 1\nline\\u001b 2"


# ---------------------------------------------------------------------------------------------
# nslang workers list / show / perf


@pytest.fixture
def hostile_sandbox(tmp_path: Path) -> Path:
    """A definitions file written before names were validated, and records with hostile replies."""
    box = tmp_path / "box"
    box.mkdir()
    legacy = [{"name": HOSTILE, "provider": "custom", "model_name": f"m{OSC}", "interaction_models": ["both"],
               "base_config": {"custom_provider": "evil", "note": OSC}, "capabilities": [OSC],
               "metadata": {"k": OSC}}]
    (box / DEFINITIONS_FILE).write_text(json.dumps(legacy), encoding="utf-8")
    with override_allow_model_requests(False):
        m = AIWorkerManager(box, environ={})
        m.register_custom_provider("evil", lambda messages, settings: f"reply {OSC}\x1b[31mred\x9b")
        [d] = m.list_definitions()
        m.execute_stateless_task(d.definition_id, "hi")
        m.close()
    return box


def test_workers_list_show_perf_escape_names_and_replies(hostile_sandbox: Path) -> None:
    box = str(hostile_sandbox)
    code, out, err = run_cli("workers", "list", "--sandbox", box)
    assert code == 0, err
    assert_clean(out)
    assert "evil\\u001b]0;pwned\\u0007" in out
    code, out, err = run_cli("workers", "show", HOSTILE, "--sandbox", box)
    assert code == 0, err
    assert_clean(out)
    assert out.splitlines()[0] == escape_controls(HOSTILE)
    code, out, err = run_cli("workers", "perf", "--sandbox", box)
    assert code == 0, err
    assert_clean(out)
    assert "reply \\u001b]0;pwned" in out
    for argv in (("show", "nobody"), ("perf", "nobody")):
        code, out, err = run_cli("workers", *argv, "--sandbox", box)
        assert code == 64
        assert_clean(err)
        assert "evil\\u001b" in err  # the known names are listed, escaped


# ---------------------------------------------------------------------------------------------
# nslang tools, nslang run errors, emit


def test_tool_listing_is_escaped(tmp_path: Path) -> None:
    interp = Interpreter(sandbox_dir=tmp_path)

    @interp.tool("evil")
    def shout(text: str) -> str:
        """Shout \x1b]0;pwned\x07 loudly.

        Args:
            text: what \x9b2J to shout.
        """
        return text

    listing = format_tools(interp, "evil", long=True)
    assert "Shout \\u001b]0;pwned\\u0007 loudly" in listing
    assert_clean(listing)


def test_cli_error_reports_are_escaped_but_emit_is_not(tmp_path: Path) -> None:
    f = tmp_path / "s.ns"
    f.write_text('func main() means\n  emit "out\\u001b[1mbold"\n  fail "boom \\u001b]0;pwned\\u0007"\nendfunc\n',
                 encoding="utf-8")
    code, out, err = run_cli("run", str(f), "--sandbox", str(tmp_path))
    assert code == 70
    assert out == "out\x1b[1mbold\n"  # program output, written as is
    assert_clean(err)
    assert "boom \\u001b]0;pwned\\u0007" in err


def test_cli_syntax_error_with_control_characters_in_the_source(tmp_path: Path) -> None:
    f = tmp_path / "s.ns"
    f.write_text("command\n  set x\x1b]0;pwned\x07 = 1\nendcommand\n", encoding="utf-8")
    code, _out, err = run_cli("run", str(f))
    assert code == 65
    assert_clean(err)


# ---------------------------------------------------------------------------------------------
# the REPL


def _repl(tmp_path: Path, color: bool = False) -> Repl:
    return Repl(stdout=io.StringIO(), history_file=tmp_path / "history", color=color, sandbox_dir=tmp_path / "box")


def _hostile_session(r: Repl) -> list[str]:
    shown = [
        r.execute('set s = "' + HOSTILE.replace("\x1b", "\\u001b").replace("\x07", "\\u0007")
                  .replace("\x9b", "\\u009b").replace("\u202e", "\\u202e").replace("\x7f", "\\u007f") + '"'),
        r.execute("s"),
        r.execute('[s, {"k": s}, tool.Error.New(1, s)]'),
        r.execute("tool.Error.New(s, s)"),
        r.execute(":vars"),
        r.execute('fail s'),
        r.execute('func f(needs a) means\n  fail a\nendfunc'),
        r.execute("f(s)"),
        r.execute(":funcs"),
        r.execute(":" + OSC),
        r.execute(":load " + OSC),
        r.execute('call tool.AIWorkerDefinition.Add(name: "w", provider: "test", capabilities: [s])'),
        r.execute(":workers"),
    ]
    return shown


def test_repl_views_escape_control_characters(tmp_path: Path) -> None:
    box = tmp_path / "box"
    box.mkdir()
    (box / DEFINITIONS_FILE).write_text(json.dumps([{"name": HOSTILE, "provider": "test"}]), encoding="utf-8")
    r = _repl(tmp_path)
    shown = _hostile_session(r)
    for text in shown:
        assert_clean(text)
    assert "\\u001b]0;pwned\\u0007" in shown[1]
    assert "boom" not in shown[5] and "\\u001b" in shown[5]
    assert "evil\\u001b]0;pwned" in shown[-1]
    r.close()


def test_repl_colour_codes_are_the_only_escape_sequences(tmp_path: Path) -> None:
    box = tmp_path / "box"
    box.mkdir()
    (box / DEFINITIONS_FILE).write_text(json.dumps([{"name": HOSTILE, "provider": "test"}]), encoding="utf-8")
    r = _repl(tmp_path, color=True)
    for text in _hostile_session(r):
        assert_clean(re.sub(r"\x1b\[[0-9;]*m", "", text))
    r.close()


def test_repl_emit_is_program_output(tmp_path: Path) -> None:
    r = _repl(tmp_path)
    assert r.execute('emit "\\u001b[1mbold"') == ""
    out: Any = r.stdout
    assert out.getvalue() == "\x1b[1mbold\n"
    r.close()


def test_event_handler_failure_warnings_are_escaped(tmp_path: Path) -> None:
    f = tmp_path / "s.ns"
    f.write_text('on event "tick\\u001b]0;pwned\\u0007" do\n  fail "boom \\u009b2J"\nendon\n\n'
                 'func main() means\n  call tool.Event.Emit("tick\\u001b]0;pwned\\u0007", {})\n'
                 '  emit "done"\nendfunc\n',
                 encoding="utf-8")
    code, out, err = run_cli("run", str(f), "--sandbox", str(tmp_path))
    assert (code, out) == (0, "done\n")
    assert "warning: error in 'on event" in err and "boom \\u009b2J" in err
    assert_clean(err)


def test_debug_tracebacks_are_escaped_too(tmp_path: Path) -> None:
    f = tmp_path / "s.ns"
    f.write_text('func main() means\n  fail "boom \\u001b]0;pwned\\u0007"\nendfunc\n', encoding="utf-8")
    code, _out, err = run_cli("run", str(f), "--sandbox", str(tmp_path), "--debug")
    assert code == 70 and "Traceback" in err
    assert_clean(err)
