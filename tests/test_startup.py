"""What a cached ``nslang run`` loads at start-up (issue 16 item 3): the command line read without
argparse when it can be, the cache directory found without platformdirs when the answer is certain, and
heavy modules kept off the run path. No timings here: speed is measured in ``bench/``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nslang import cli

RUN_LINES = [
    ["run", "a.ns"],
    ["run", "a.ns", "b.ns"],
    ["run", "--no-cache", "a.ns"],
    ["run", "a.ns", "b.ns", "--no-cache", "--debug"],
    ["run", "--print-result", "--approve-all", "x.ns", "--no-durable"],
    ["run", "--no-durable", "--durable", "x.ns"],
    ["run", "", "weird name.ns"],
]


@pytest.mark.parametrize("argv", RUN_LINES)
def test_quick_run_args_equal_argparse(argv: list[str]) -> None:
    """The quick reader gives exactly argparse's attributes (a new ``run`` option fails this test until
    :func:`nslang.cli._run_defaults` knows it)."""
    quick = cli._quick_run_args(argv)
    assert quick is not None
    assert vars(quick) == vars(cli._build_parser("run").parse_args(argv))


@pytest.mark.parametrize("argv", [
    ["run"], ["run", "--no-cache"], ["run", "a.ns", "--no-cache", "b.ns"], ["run", "a.ns", "--target", "f"],
    ["run", "-h"], ["run", "--", "a.ns"], ["run", "--no-c", "a.ns"], ["run", "-x.ns"], ["check", "a.ns"], [],
])
def test_other_command_lines_go_to_argparse(argv: list[str]) -> None:
    assert cli._quick_run_args(argv) is None


def test_interleaved_files_are_still_a_usage_error(tmp_path: Path) -> None:
    import io

    f = tmp_path / "a.ns"
    f.write_text('func main() means\n  emit "x"\nendfunc\n', encoding="utf-8")
    err = io.StringIO()
    assert cli.main(["run", str(f), "--no-cache", str(f)], stdout=io.StringIO(), stderr=err) == 64
    assert "unrecognized arguments" in err.getvalue()


@pytest.mark.parametrize("env", [
    {"XDG_CACHE_HOME": "/tmp/xdg-cache"},
    {"XDG_CACHE_HOME": "", "HOME": "/home/someone"},
    {"XDG_CACHE_HOME": None, "HOME": "/home/someone/"},
    {"XDG_CACHE_HOME": "relative/dir", "HOME": "/home/someone"},
])
def test_user_cache_dir_matches_platformdirs(env: dict[str, str | None], monkeypatch: pytest.MonkeyPatch) -> None:
    from platformdirs import user_cache_dir

    from nslang._private_paths import user_cache_dir as ours

    for k, v in env.items():
        if v is None:
            monkeypatch.delenv(k, raising=False)
        else:
            monkeypatch.setenv(k, v)
    assert ours() == user_cache_dir("nslang", appauthor=False)


def test_cached_run_keeps_heavy_modules_off_the_run_path(tmp_path: Path) -> None:
    """A cached one-line run imports none of these (each costs start-up time; see the commit messages)."""
    script = tmp_path / "hello.ns"
    script.write_text('func main() means\n  emit "ready"\nendfunc\n', encoding="utf-8")
    code = ("import sys\nfrom nslang.cli import main\n"
            f"main(['run', {str(script)!r}])\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in {'argparse', 'pickle', 'platformdirs', "
            "'pathlib', 'lark', 'shutil', 'concurrent', 'logging', 'typing', 'dataclasses', 'inspect', 'enum', "
            "'re', 'threading', 'functools', 'collections', 'datetime', 'contextlib', 'importlib', 'types', 'math', "
            "'nslang'} and not m.startswith('nslang.') "
            "or m.startswith(('nslang.workers', 'nslang.llm', 'nslang._lark', 'nslang._transformer', "
            "'nslang.tools'))))")
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                           timeout=120).stdout for _ in range(2)]  # the first one fills the parse cache
    assert runs[1].splitlines() == ["ready", "['nslang']"]
