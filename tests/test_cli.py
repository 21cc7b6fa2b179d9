"""The ``nslang`` command line through ``main([...])``: exit codes (0 / 64 / 65 / 70), output, the
``tools`` and ``workers`` subcommands, and a ``python -m nslang`` smoke test."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nslang import __version__
from nslang.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the parse cache of ``nslang run`` in a temporary directory."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def script(tmp_path: Path, text: str, name: str = "s.ns") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# ---------------------------------------------------------------------------------------------
# run / check / exit codes


def test_run_command_blocks(tmp_path: Path) -> None:
    f = script(tmp_path, 'command\n  set x = 6 * 7\n  emit "x is " + x\nendcommand\n')
    assert run_cli("run", f) == (0, "x is 42\n", "")


def test_run_main_with_target_and_args(tmp_path: Path) -> None:
    f = script(tmp_path, 'func main() means\n  emit "main"\nendfunc\n\n'
                         'func greet(needs who) means\n  emit "hi " + who\nendfunc\n')
    assert run_cli("run", f)[:2] == (0, "main\n")
    assert run_cli("run", f, "--target", "greet", "--arg", "Ada")[:2] == (0, "hi Ada\n")


def test_syntax_error_exits_65_with_a_caret(tmp_path: Path) -> None:
    f = script(tmp_path, "command\n  set x = = 1\nendcommand\n")
    code, out, err = run_cli("run", f)
    assert code == 65 and out == ""
    assert err.startswith("error 15 (Syntax):")
    assert f"{f}:2:11" in err and "   2 |   set x = = 1" in err and "^" in err
    assert "Traceback" not in err


def test_runtime_error_exits_70_with_the_call_stack(tmp_path: Path) -> None:
    f = script(tmp_path, "func main() means\n  call helper()\nendfunc\n\n"
                         "func helper() means\n  emit 1 / 0\nendfunc\n")
    code, out, err = run_cli("run", f)
    assert code == 70
    assert err.startswith("error 14 (DivisionByZero)")
    assert "call stack" in err and "in helper" in err
    assert "Traceback" not in err
    code, _out, err = run_cli("run", f, "--debug")
    assert code == 70 and "Traceback" in err


@pytest.mark.parametrize("argv", [
    ["run"], ["run", "missing-file.ns"], ["frobnicate"], ["run", "--no-such-option", "x.ns"],
    ["fmt"], ["workers"], ["workers", "destroy"], ["run", "--max-steps", "many", "x.ns"],
])
def test_usage_errors_exit_64(argv: list[str]) -> None:
    code, out, err = run_cli(*argv)
    assert code == 64, (code, out, err)
    assert err.startswith("nslang")
    assert "Traceback" not in err


def test_directory_and_non_utf8_files_are_usage_errors(tmp_path: Path) -> None:
    assert run_cli("run", str(tmp_path))[0] == 64
    bad = tmp_path / "latin1.ns"
    bad.write_bytes(b"command\n  emit \"caf\xe9\"\nendcommand\n")
    code, _out, err = run_cli("run", str(bad))
    assert code == 64 and "not UTF-8" in err


def test_nothing_to_run_is_a_usage_error(tmp_path: Path) -> None:
    f = script(tmp_path, "func helper() means\n  emit 1\nendfunc\n")
    code, _out, err = run_cli("run", f)
    assert code == 64 and "nothing to run" in err


def test_check(tmp_path: Path) -> None:
    good = script(tmp_path, "func f() means\n  emit 1\nendfunc\n", "good.ns")
    bad = script(tmp_path, "func f() means\n  emit\nendfunc\n", "bad.ns")
    assert run_cli("check", good) == (0, f"{good}: ok\n", "")
    code, out, err = run_cli("check", good, bad)
    assert code == 65 and f"{good}: ok" in out and "error 15" in err and f"{bad}:2:" in err


def test_version_and_help_go_to_stdout() -> None:
    code, out, err = run_cli("--version")
    assert (code, out, err) == (0, f"nslang {__version__}\n", "")
    code, out, _err = run_cli("--help")
    assert code == 0 and "run" in out and "workers" in out and "fmt" in out
    code, out, _err = run_cli("workers", "--help")
    assert code == 0 and "list" in out


def test_no_arguments_starts_the_repl_reading_piped_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("set x = 20\nx + 1\n"))
    assert run_cli() == (0, "21\n", "")
    monkeypatch.setattr(sys, "stdin", io.StringIO("emit nope\n"))
    code, out, _err = run_cli("repl")
    assert code == 70 and "error 9" in out


# ---------------------------------------------------------------------------------------------
# tools


def test_tools_lists_signatures() -> None:
    code, out, err = run_cli("tools")
    lines = out.splitlines()
    assert code == 0 and err == ""
    assert "tool.fs.Read(filepath: string) -> string" in lines
    assert all(line.startswith("tool.") for line in lines)
    assert len(lines) > 50


def test_tools_filter_and_long_help() -> None:
    code, out, _err = run_cli("tools", "str.to")
    assert out.splitlines() == ["tool.str.ToLower(input_string: string) -> string",
                                "tool.str.ToUpper(input_string: string) -> string"]
    code, out, _err = run_cli("tools", "fs.read", "-l")
    assert code == 0 and out.startswith("tool.fs.Read(")
    assert "    filepath  string" in out and "example:" in out and "aliases: FS.Read" in out
    code, out, err = run_cli("tools", "no-such-tool-anywhere")
    assert code == 0 and out == "" and "no tool matches" in err


# ---------------------------------------------------------------------------------------------
# workers

WORKERS = '''command
  call tool.AIWorkerDefinition.Add(name: "summarizer", provider: "test", model_name: "echo", \\
    interaction_models: ["both"], rate_limits: {"max_requests_per_minute": 50}, \\
    cost_metrics: {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002})
  call tool.AIWorkerDefinition.Add(name: "critic", provider: "test", interaction_models: ["both"])
  for each i in [1, 2, 3]
    set r = tool.AIWorker.ExecuteStatelessTask("summarizer", "summarize item " + i)
  endfor
  ask "critic", "what do you think?" into answer
endcommand
'''


@pytest.fixture
def sandbox(tmp_path: Path) -> str:
    box = tmp_path / "box"
    f = script(tmp_path, WORKERS, "workers.ns")
    code, _out, err = run_cli("run", "--sandbox", str(box), f)
    assert code == 0, err
    return str(box)


def test_workers_list(sandbox: str) -> None:
    code, out, err = run_cli("workers", "list", "--sandbox", sandbox)
    assert code == 0, err
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "PROVIDER/MODEL", "STATUS", "REQ/1m", "TOK/1m", "TOK/24h", "TASKS", "OK",
                              "TOKENS", "COST", "$"]
    by_name = {r.split()[0]: r.split() for r in rows}
    assert by_name["summarizer"][1:4] == ["test/echo", "active", "3/50"]
    assert by_name["summarizer"][6:8] == ["3", "100%"]
    assert by_name["critic"][6] == "1"
    assert header.index("STATUS") == rows[0].index("active")  # aligned columns


def test_workers_show(sandbox: str) -> None:
    code, out, _err = run_cli("workers", "show", "summarizer", "--sandbox", sandbox)
    assert code == 0
    assert out.splitlines()[0] == "summarizer"
    assert "3 attempted, 3 succeeded, 0 failed (100.0% success)" in out
    assert "requests/1m     3/50" in out
    code, _out, err = run_cli("workers", "show", "nobody", "--sandbox", sandbox)
    assert code == 64 and "known: critic, summarizer" in err
    assert run_cli("workers", "show", "--sandbox", sandbox)[0] == 64


def test_workers_perf(sandbox: str) -> None:
    code, out, _err = run_cli("workers", "perf", "--sandbox", sandbox)
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split()[:4] == ["TIME", "(UTC)", "WORKER", "TASK"]
    assert [r.split()[2] for r in rows] == ["summarizer"] * 3 + ["critic"]  # oldest first
    assert "summarize item 3" in rows[2]
    code, out, _err = run_cli("workers", "perf", "summarizer", "--limit", "2", "--sandbox", sandbox)
    rows = out.splitlines()[1:]
    assert len(rows) == 2 and "summarize item 3" in rows[-1]
    assert run_cli("workers", "perf", "nobody", "--sandbox", sandbox)[0] == 64


def test_workers_on_an_empty_sandbox(tmp_path: Path) -> None:
    box = str(tmp_path / "empty")
    assert run_cli("workers", "list", "--sandbox", box) == (0, f"no AI worker definitions in {box}\n", "")
    code, out, _err = run_cli("workers", "perf", "--sandbox", box)
    assert code == 0 and "no performance records" in out
    assert not Path(box).exists()  # reading never creates anything


def test_workers_sandbox_from_environment(sandbox: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NSLANG_SANDBOX", sandbox)
    code, out, _err = run_cli("workers", "list")
    assert code == 0 and "summarizer" in out


def test_workers_corrupt_definitions_file_is_reported(tmp_path: Path) -> None:
    box = tmp_path / "box"
    box.mkdir()
    (box / "ai_worker_definitions.json").write_text("[{not json", encoding="utf-8")
    code, _out, err = run_cli("workers", "list", "--sandbox", str(box))
    assert code == 70 and "corrupt" in err and "Traceback" not in err
    assert (box / "ai_worker_definitions.json").read_text(encoding="utf-8") == "[{not json"


def _entry(i: int, def_id: str) -> dict[str, object]:
    ts = f"2025-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z"
    rec = {"task_id": f"task-{i:06d}", "definition_id": def_id, "timestamp_start": ts, "timestamp_end": ts,
           "duration_ms": i, "success": True, "llm_metrics": {"input_tokens": 1, "output_tokens": 2},
           "cost_incurred": 0.5, "output_summary": f"reply {i}"}
    return {"entry_kind": "stateless_task", "instance_id": f"stateless-{i}", "definition_id": def_id,
            "performance_records": [rec]}


def test_perf_reads_only_the_tail_of_a_big_log(tmp_path: Path) -> None:
    from nslang.cli_workers import tail_records

    log = tmp_path / "ai_worker_performance_data.json"
    with open(log, "w", encoding="utf-8") as f:
        # garbage at the start: never read, because the last records are found first
        f.write("[\n" + "#" * 200_000 + ",\n")
        f.write(",\n".join(json.dumps(_entry(i, "a" if i % 2 else "b"), separators=(",", ":"))
                           for i in range(20_000)))
        f.write("\n]\n")
    got = tail_records(log, 5)
    assert [r["task_id"] for r in got] == [f"task-{i:06d}" for i in range(19_995, 20_000)]
    got = tail_records(log, 3, {"b"})
    assert [r["task_id"] for r in got] == ["task-019994", "task-019996", "task-019998"]


def test_perf_tolerates_a_torn_tail_and_reads_go_era_layout(tmp_path: Path) -> None:
    from nslang.cli_workers import tail_records

    box = tmp_path / "box"
    box.mkdir()
    (box / "ai_worker_definitions.json").write_text(json.dumps([
        {"definition_id": "d1", "name": "old", "provider": "test"}]), encoding="utf-8")
    log = box / "ai_worker_performance_data.json"
    lines = [json.dumps(_entry(i, "d1"), separators=(",", ":")) for i in range(3)]
    log.write_text("[\n" + ",\n".join(lines) + ',\n{"entry_kind":"stat', encoding="utf-8")
    assert [r["task_id"] for r in tail_records(log, 10)] == ["task-000000", "task-000001", "task-000002"]
    # a Go-era, pretty-printed array (entries span lines): read through the manager instead
    log.write_text(json.dumps([_entry(i, "d1") for i in range(3)], indent=2), encoding="utf-8")
    code, out, err = run_cli("workers", "perf", "--sandbox", str(box))
    assert code == 0, err
    assert [r.split()[2] for r in out.splitlines()[1:]] == ["old"] * 3


# ---------------------------------------------------------------------------------------------
# python -m nslang


def test_python_m_nslang_smoke(tmp_path: Path) -> None:
    f = script(tmp_path, 'command\n  emit "hello from a subprocess"\nendcommand\n')
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "NSLANG_SANDBOX": str(tmp_path / "box"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "nslang", "run", f], capture_output=True, text=True, env=env,
                          timeout=60, cwd=tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "hello from a subprocess\n", "")
    proc = subprocess.run([sys.executable, "-m", "nslang", "--version"], capture_output=True, text=True, env=env,
                          timeout=60, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == f"nslang {__version__}"
    proc = subprocess.run([sys.executable, "-m", "nslang"], input="set x = 2\nx * 21\n", capture_output=True,
                          text=True, env=env, timeout=60, cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (0, "42\n")


def test_no_cache_flag_does_not_outlive_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`nslang run --no-cache` used to set NSLANG_NO_CACHE in the process for good, so a later run (or a
    host embedding main()) silently lost the parse cache."""
    monkeypatch.delenv("NSLANG_NO_CACHE", raising=False)
    script = tmp_path / "a.ns"
    script.write_text('func main() means\n  emit "x"\nendfunc\n', encoding="utf-8")
    assert main(["run", "--no-cache", str(script)]) == 0
    assert "NSLANG_NO_CACHE" not in os.environ
    monkeypatch.setenv("NSLANG_NO_CACHE", "keep")
    assert main(["run", "--no-cache", str(script)]) == 0
    assert os.environ["NSLANG_NO_CACHE"] == "keep"
