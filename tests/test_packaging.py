"""The grammar and the stdlib are found by the same resource helper the runtime uses, both in an
installed wheel and in an editable install / source checkout (architecture.md packaging decision)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from nslang import _resources

ROOT = Path(__file__).resolve().parents[1]

PROBE = (
    "import nslang._resources as r; g = r.grammar_path(); s = r.stdlib_dir(); "
    "print(g); print(s); assert g.is_file() and (s / 'strings.ns').is_file()"
)


def test_source_checkout_finds_grammar_and_stdlib() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, cwd="/",
                         check=True).stdout.splitlines()
    assert Path(out[0]).is_file()
    assert Path(out[0]).name == "neuroscript.lark"


def test_grammar_is_the_top_level_file_in_a_checkout() -> None:
    # in this checkout the helper must not find a stale copy somewhere else
    if (ROOT / "nslang" / "_data").exists():
        pytest.skip("running from an installed tree")
    assert _resources.grammar_path() == ROOT / "grammar" / "neuroscript.lark"


def _fresh_venv(tmp: Path) -> Path:
    venv.EnvBuilder(with_pip=True, clear=True).create(tmp / "venv")
    return tmp / "venv" / "bin" / "python"


@pytest.mark.parametrize("editable", [False, True], ids=["wheel", "editable"])
def test_install_finds_grammar_and_stdlib(tmp_path: Path, editable: bool) -> None:
    if shutil.which("git") is None:
        pytest.skip("git not available")
    # install from a copy of the tracked sources so the working tree stays clean
    src = tmp_path / "src"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    for f in files:
        if (ROOT / f).is_file():
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, src / f)
    py = _fresh_venv(tmp_path)
    cmd = [str(py), "-m", "pip", "install", "--quiet", "--no-deps"] + (["-e", str(src)] if editable else [str(src)])
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        pytest.fail(f"pip install failed:\n{res.stdout}\n{res.stderr}")
    out = subprocess.run([str(py), "-c", PROBE], capture_output=True, text=True, cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    grammar = Path(out.stdout.splitlines()[0])
    if editable:
        assert grammar == src / "grammar" / "neuroscript.lark"
    else:
        assert "site-packages" in str(grammar) and grammar.parts[-3:] == ("_data", "grammar", "neuroscript.lark")
