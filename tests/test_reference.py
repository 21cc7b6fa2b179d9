"""The reference shipped in the package (issue 15 item 4): ``nslang help [TOPIC]``, ``:help TOPIC`` in
the REPL, every tool and every error code documented, and no tool help pointing outside the package."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from nslang.checker import CODES
from nslang.cli import main
from nslang.errors import ErrorCode
from nslang.interpreter import Interpreter
from nslang.reference import TOPICS, prompt, topic
from nslang.repl import Repl

README = Path(__file__).resolve().parents[1] / "README.md"


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("name", list(TOPICS))
def test_every_topic_exists_and_is_substantial(name: str) -> None:
    code, out, err = run_cli("help", name)
    assert code == 0 and err == ""
    assert out.startswith("# ") and len(out) > 1500
    assert out == topic(name.upper())  # case-insensitive


def test_index_lists_the_topics() -> None:
    code, out, _err = run_cli("help")
    assert code == 0
    for name in TOPICS:
        assert re.search(rf"^  {name}\s", out, re.M)


def test_unknown_topic_is_a_usage_error() -> None:
    code, out, err = run_cli("help", "nope")
    assert code == 64 and out == "" and "no help topic 'nope'" in err and "language" in err


def test_tools_topic_lists_every_registered_tool_with_its_signature() -> None:
    with Interpreter(load_stdlib=False) as interp:
        text = topic("tools", interp.tools)
        tools = interp.tools.all()
        assert len(tools) > 80
        for t in tools:
            assert t.spec.signature() in text


def test_tools_topic_follows_the_registry() -> None:
    with Interpreter(load_stdlib=False) as interp:
        @interp.tool("host", "FreshTool")
        def fresh(x: int) -> int:
            """A tool registered by the host."""
            return x

        assert "tool.host.FreshTool(x: int) -> int\n    A tool registered by the host." in topic("tools", interp.tools)


def test_errors_topic_has_every_error_code_and_checker_code() -> None:
    text = topic("errors")
    for code in ErrorCode:
        assert re.search(rf"^\| {int(code)} \| {code.title} \| ", text, re.M), code
    for code in CODES:
        assert f"| {code} |" in text


def test_cli_topic_mentions_every_subcommand_and_run_option() -> None:
    text = topic("cli")
    from nslang.cli import _COMMANDS, _build_parser

    for cmd in _COMMANDS:
        assert f"nslang {cmd}" in text, cmd
    run = _build_parser("run")._subparsers._group_actions[0].choices["run"]  # type: ignore[union-attr]
    for action in run._actions:
        for opt in action.option_strings:
            if opt not in ("-h", "--help", "--debug"):
                assert opt in text, opt


def test_no_tool_help_points_outside_the_package() -> None:
    with Interpreter(load_stdlib=False) as interp:
        for t in interp.tools.all():
            s = t.spec
            blob = " ".join([s.description, s.return_help, s.example, s.error_conditions,
                             *(a.description for a in s.args)])
            assert "spec/" not in blob and "§" not in blob, s.full_name


def test_repl_help_topic() -> None:
    repl = Repl(stdout=io.StringIO(), history_file=False, color=False)
    assert repl.execute(":help errors").startswith("# Errors")
    assert "tool.str.ToUpper(input_string: string) -> string" in repl.execute(":help tools")
    assert "language" in repl.execute(":help nothing-like-this")
    assert ":load" in repl.execute(":help")


def test_readme_links_to_the_reference() -> None:
    text = README.read_text(encoding="utf-8")
    assert "nslang help" in text
    assert "../shared/spec" not in text


def test_prompts_are_shipped() -> None:
    assert "endfunc" in prompt("develop") and "on error" in prompt("execute")
    with pytest.raises(KeyError):
        prompt("other")
