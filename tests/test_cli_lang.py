"""Command-line papercuts of issue 15 item 5: ``run --print-result``, ``nslang info``, and an
explanation for every option of every subcommand."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from nslang.cli import _COMMANDS, _build_parser, main


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_print_result_of_a_target(tmp_path: Path) -> None:
    f = tmp_path / "lib.ns"
    f.write_text('func double(needs n) means\n  return n * 2\nendfunc\n\nfunc main() means\n  emit "main"\n'
                 'endfunc\n', encoding="utf-8")
    assert run_cli("run", "--sandbox", str(tmp_path), "--target", "double", "--arg", "21", "--print-result",
                   str(f)) == (0, "42\n", "")  # the string "21" reads as a number
    assert run_cli("run", "--sandbox", str(tmp_path), "--print-result", str(f)) == (0, "main\nmain\n", "")
    assert run_cli("run", "--sandbox", str(tmp_path), "--target", "double", "--arg", "2", str(f)) == (0, "", "")


def test_print_result_with_command_blocks_prints_nothing_more(tmp_path: Path) -> None:
    f = tmp_path / "c.ns"
    f.write_text("command\n  emit 1\nendcommand\n", encoding="utf-8")
    assert run_cli("run", "--sandbox", str(tmp_path), "--print-result", str(f)) == (0, "1\n", "")


def test_info_names_the_paths(tmp_path: Path) -> None:
    code, out, err = run_cli("info", "--sandbox", str(tmp_path))
    assert code == 0 and err == ""
    lines = dict(line.split(None, 1) if not line.startswith(("worker", "performance", "parse", "REPL")) else
                 (line[:22].strip(), line[22:].strip()) for line in out.splitlines())
    assert lines["nslang"].strip()
    assert lines["sandbox"].startswith(f"{tmp_path}  (from --sandbox)")
    assert lines["worker definitions"].startswith(str(tmp_path / "ai_worker_definitions.json"))
    assert lines["performance records"].startswith(str(tmp_path / "ai_worker_performance_data.json"))
    assert "parse cache" in lines and "REPL history" in lines


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = _build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_subcommand_is_built() -> None:
    assert set(_subparsers()) == set(_COMMANDS)


@pytest.mark.parametrize("command", _COMMANDS)
def test_every_option_has_help(command: str) -> None:
    sub = _subparsers()[command]
    for action in sub._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"nslang {command}: {action.option_strings or action.dest} has no help text"
    code, out, _err = run_cli(command, "--help")
    assert code == 0 and "options:" in out
