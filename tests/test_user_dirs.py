"""The suite never writes to the real user directories (issue 10, item 8): every platformdirs
directory nslang uses resolves inside the temporary tree that conftest sets up, in this process and
in a child process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def user_dirs_root() -> Path:
    """The temporary tree that tests/conftest.py set up for the run (parent of every XDG directory)."""
    import os

    root = Path(os.environ["XDG_CACHE_HOME"]).parent
    assert root.name.startswith("nslang-test-home-"), root
    return root


def _dirs_here() -> list[Path]:
    from platformdirs import user_cache_dir, user_config_dir, user_data_dir

    return [Path(f("nslang", appauthor=False)) for f in (user_cache_dir, user_data_dir, user_config_dir)]


def test_platformdirs_point_into_the_temporary_tree() -> None:
    root = user_dirs_root().resolve()
    for d in _dirs_here():
        assert d.resolve().is_relative_to(root), d


def test_parse_cache_and_history_paths_are_temporary() -> None:
    from nslang import parser, repl

    root = user_dirs_root().resolve()
    cache = parser._cache_dir()
    assert cache is not None and cache.resolve().is_relative_to(root)
    assert repl.default_history_path().resolve().is_relative_to(root)


def test_child_processes_inherit_the_temporary_tree() -> None:
    code = "from platformdirs import user_cache_dir; print(user_cache_dir('nslang', appauthor=False))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert Path(out).resolve().is_relative_to(user_dirs_root().resolve())
