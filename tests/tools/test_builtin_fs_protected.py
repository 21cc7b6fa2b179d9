"""A script cannot clobber nslang's own files in the sandbox (issue 10 item 3).

The attack: ``tool.fs.Write("ai_worker_performance_data.json", "garbage")`` and
``tool.fs.Write("ai_worker_definitions.json", "[]")`` succeeded and wiped history and definitions.
Every changing fs tool, every path spelling, links and directories holding the files are replayed
here against a sandbox that a real :class:`AIWorkerManager` populated; nothing may change.
"""

from __future__ import annotations

import io
import os
import pathlib
from typing import Any

import pytest

from nslang import Interpreter
from nslang.errors import ErrorCode
from nslang.llm.base import override_allow_model_requests
from nslang.tools.builtin import _sandbox
from nslang.workers import AIWorkerManager
from nslang.workers.perflog import PERFORMANCE_FILE
from nslang.workers.sandbox_files import PROTECTED_PATTERNS, is_protected_name
from nslang.workers.store import DEFINITIONS_FILE

RO = ErrorCode.READ_ONLY


def _snapshot(d: pathlib.Path) -> dict[str, object]:
    """Every path below ``d`` with its content, inode and link count (directories: None; links: target)."""
    out: dict[str, object] = {}
    for root, dirs, files in os.walk(d):
        for name in dirs + files:
            p = os.path.join(root, name)
            rel = os.path.relpath(p, d)
            st = os.lstat(p)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = None
            else:
                out[rel] = (pathlib.Path(p).read_bytes(), st.st_ino, st.st_nlink)
    return out


@pytest.fixture
def worker_sandbox(sandbox: pathlib.Path) -> pathlib.Path:
    """The sandbox after a real manager wrote a definition, a task record and a torn-tail repair."""
    with override_allow_model_requests(False):
        m = AIWorkerManager(sandbox, environ={})
        m.add_definition({"name": "w", "provider": "test"})
        m.execute_stateless_task("w", "hello")
        log = sandbox / PERFORMANCE_FILE
        data = log.read_bytes()  # a killed append leaves a torn tail instead of the closing ']'
        log.write_bytes(data[: data.rindex(b"]")].rstrip() + b',\n{"entry_kind": "rec')
        m2 = AIWorkerManager(sandbox, environ={})
        m2.execute_stateless_task("w", "again")  # repairs the tail, saving it aside as .torn-*
        m.close()
        m2.close()
    (sandbox / "mine.txt").write_text("mine")
    return sandbox


def test_every_file_the_worker_subsystem_creates_is_protected(worker_sandbox: pathlib.Path) -> None:
    names = {p.name for p in worker_sandbox.iterdir()} - {"mine.txt"}
    assert {DEFINITIONS_FILE, PERFORMANCE_FILE} <= names  # (locks are taken on these files: no .lock file)
    assert any(".torn-" in n for n in names)
    assert all(is_protected_name(n) for n in names), names
    # temporaries of the atomic writes (store.atomic_write, fs.Write) and the summaries checkpoint
    for n in (f".{DEFINITIONS_FILE}.k3j2h1.tmp", ".nslang-tmp-0123abcd", "ai_worker_summaries.json"):
        assert is_protected_name(n)


SPELLINGS = [
    DEFINITIONS_FILE,
    PERFORMANCE_FILE,
    f"./{DEFINITIONS_FILE}",
    f".//{PERFORMANCE_FILE}",
    f"sub/../{DEFINITIONS_FILE}",
    f"{DEFINITIONS_FILE}/",
    "AI_WORKER_DEFINITIONS.JSON",
    "Ai_Worker_Performance_Data.Json",
    "ａｉ_worker_definitions.json",  # full-width letters (NFKC)
    "ai\u200d_worker_definitions.json",  # an invisible zero-width joiner
    f"{DEFINITIONS_FILE}.lock",
    f"{PERFORMANCE_FILE}.LOCK",
    f"{PERFORMANCE_FILE}.torn-20260101T000000-1",
    f".{DEFINITIONS_FILE}.abc123.tmp",
    ".nslang-tmp-0123",
    ".NSLang-state",
    "ai_worker_summaries.json",
    "ai_worker_dir/inner.txt",
]

CHANGES = [
    ("fs.Write", lambda p: [p, "garbage"]),
    ("fs.Write", lambda p: [p, "[]"]),
    ("fs.Append", lambda p: [p, "x"]),
    ("fs.Delete", lambda p: [p]),
    ("fs.Delete", lambda p: [p, True]),
    ("fs.Mkdir", lambda p: [p]),
    ("fs.Move", lambda p: [p, "stolen.json"]),
    ("fs.Move", lambda p: ["mine.txt", p]),
]


@pytest.mark.parametrize("path", SPELLINGS)
@pytest.mark.parametrize("tool,args", CHANGES, ids=[f"{t}-{i}" for i, (t, _a) in enumerate(CHANGES)])
def test_changes_to_internal_files_are_refused_whatever_the_spelling(
    fails: Any, worker_sandbox: pathlib.Path, tool: str, args: Any, path: str
) -> None:
    (worker_sandbox / "sub").mkdir()
    before = _snapshot(worker_sandbox)
    err = fails(tool, *args(path))
    assert err.code == RO, err.message
    assert "can be read but not changed" in err.message and "ai_worker_*" in err.message
    assert _snapshot(worker_sandbox) == before


def test_reading_internal_files_stays_allowed(call: Any, worker_sandbox: pathlib.Path) -> None:
    text = call("fs.Read", DEFINITIONS_FILE)
    assert '"name": "w"' in text
    assert call("fs.Stat", PERFORMANCE_FILE)["type"] == "file"
    assert len(call("fs.Hash", "./" + PERFORMANCE_FILE)) == 64
    assert call("fs.LineCount", DEFINITIONS_FILE) > 1
    assert DEFINITIONS_FILE in [e["name"] for e in call("fs.List", ".")]


@pytest.mark.parametrize("name", ["my_ai_worker_notes.txt", "ai-worker.txt", "nslang.txt", "x.nslang", "ai_workers"])
def test_similar_ordinary_names_are_not_protected(call: Any, sandbox: pathlib.Path, name: str) -> None:
    call("fs.Write", name, "ok")
    call("fs.Append", name, "!")
    call("fs.Move", name, name + ".moved")
    call("fs.Delete", name + ".moved")
    assert not (sandbox / name).exists()


def test_symbolic_links_to_internal_files_cannot_be_written_through(
    call: Any, fails: Any, worker_sandbox: pathlib.Path
) -> None:
    os.symlink(DEFINITIONS_FILE, worker_sandbox / "defs.json")
    os.symlink(".", worker_sandbox / "here", target_is_directory=True)
    before = (worker_sandbox / DEFINITIONS_FILE).read_bytes()
    assert fails("fs.Write", "defs.json", "[]").code == RO
    assert fails("fs.Append", "defs.json", "x").code == RO
    assert fails("fs.Write", f"here/{DEFINITIONS_FILE}", "[]").code == RO
    assert fails("fs.Delete", f"here/here/{PERFORMANCE_FILE}").code == RO
    assert fails("fs.Move", "mine.txt", f"here/{PERFORMANCE_FILE}.lock").code == RO
    # a dangling link that would create a protected file
    os.symlink("ai_worker_summaries.json", worker_sandbox / "later.json")
    assert fails("fs.Write", "later.json", "{}").code == RO
    assert not (worker_sandbox / "ai_worker_summaries.json").exists()
    # the link itself is the script's own: reading through it and removing it are fine
    assert call("fs.Read", "defs.json") == before.decode()
    call("fs.Delete", "defs.json")
    assert (worker_sandbox / DEFINITIONS_FILE).read_bytes() == before


def test_hard_links_to_internal_files_cannot_be_changed(call: Any, fails: Any, worker_sandbox: pathlib.Path) -> None:
    (worker_sandbox / "nested").mkdir()
    os.link(worker_sandbox / PERFORMANCE_FILE, worker_sandbox / "perf.json")
    os.link(worker_sandbox / DEFINITIONS_FILE, worker_sandbox / "nested" / "defs.json")
    before = _snapshot(worker_sandbox)
    assert fails("fs.Append", "perf.json", "garbage").code == RO
    assert fails("fs.Write", "perf.json", "garbage").code == RO
    assert fails("fs.Append", "nested/defs.json", "garbage").code == RO
    assert _snapshot(worker_sandbox) == before
    # a hard link between two of the script's own files is no concern
    os.link(worker_sandbox / "mine.txt", worker_sandbox / "mine2.txt")
    call("fs.Append", "mine2.txt", "!")
    assert (worker_sandbox / "mine.txt").read_text() == "mine!"


def test_directories_holding_internal_files_cannot_be_deleted_or_moved(
    call: Any, fails: Any, worker_sandbox: pathlib.Path
) -> None:
    # a second sandbox nested in this one (nslang run --sandbox work/inner) holds a manager's files
    inner = worker_sandbox / "work" / "inner"
    with override_allow_model_requests(False):
        m = AIWorkerManager(inner, environ={})
        m.add_definition({"name": "x", "provider": "test"})
        m.close()
    before = _snapshot(worker_sandbox)
    err = fails("fs.Delete", "work", True)
    assert err.code == RO and f"inner/{DEFINITIONS_FILE}" in err.message
    assert fails("fs.Move", "work", "gone").code == RO
    assert fails("fs.Move", "work/inner", "gone").code == RO
    assert _snapshot(worker_sandbox) == before
    # an ordinary tree is deleted and moved as before
    (worker_sandbox / "tmp" / "a").mkdir(parents=True)
    (worker_sandbox / "tmp" / "a" / "f.txt").write_text("f")
    call("fs.Move", "tmp", "tmp2")
    call("fs.Delete", "tmp2", True)
    assert not (worker_sandbox / "tmp2").exists()


def test_the_resolver_protects_by_default(worker_sandbox: pathlib.Path, interp: Any) -> None:
    """A new tool that calls resolve() without saying it only reads is protected too."""
    with pytest.raises(Exception) as info:
        _sandbox.resolve(interp, "path", "AI_worker_definitions.json")
    assert getattr(info.value, "code", None) == RO
    assert _sandbox.resolve(interp, "path", DEFINITIONS_FILE, mutate=False).parts == (DEFINITIONS_FILE,)


def test_patterns_are_lower_case_globs() -> None:
    assert all(p == p.lower() and p.endswith("*") for p in PROTECTED_PATTERNS)


def test_the_issue_attack_script_is_refused_and_catchable(tmp_path: pathlib.Path) -> None:
    """The reported attack, as a script: both writes fail with code 11 and the worker data survives."""
    src = """
func main() means
  set id = tool.AIWorkerDefinition.Add(name: "keeper", provider: "test")
  ask "keeper", "remember me" into answer
  on error do
    emit "refused " + system_error_code
    clear_error
  endon
  call tool.fs.Write("ai_worker_performance_data.json", "garbage")
  call tool.fs.Write("ai_worker_definitions.json", "[]")
endfunc
"""
    out = io.StringIO()
    with override_allow_model_requests(False):
        interp = Interpreter(sandbox_dir=tmp_path, stdout=out)
        interp.load(src, name="attack.ns")
        interp.run()
        interp.close()
    assert out.getvalue().splitlines() == ["refused 11", "refused 11"]
    with override_allow_model_requests(False):
        m = AIWorkerManager(tmp_path, environ={})
        [d] = m.list_definitions()
        assert d.name == "keeper"
        assert d.aggregate_performance_summary is not None
        assert d.aggregate_performance_summary.total_tasks_attempted == 1
        m.close()
