"""``nslang workers list|perf|show`` on corrupt or hostile worker data files (issue 10 item 5): a file
nested 100,000 deep, a number past Python's digit limit, a file that is a directory, a record whose
cost is not a number. Each ends in a clear error naming the file and a non-zero exit code, or in a
table that shows ``-`` for the bad cell; never a Python traceback or "internal error".
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from nslang.cli import main

DEFS = "ai_worker_definitions.json"
LOG = "ai_worker_performance_data.json"
DEEP = "[" * 100_000 + "]" * 100_000
LONG_NUMBER = "7" * 5000

SCRIPT = '''func main() means
  call tool.AIWorkerDefinition.Add(name: "w1", provider: "test")
  set r = tool.AIWorker.ExecuteStatelessTask("w1", "hello")
endfunc
'''


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("workers")
    script = root / "add.ns"
    script.write_text(SCRIPT, encoding="utf-8")
    box = root / "box"
    code, _out, err = _cli("run", "--no-cache", "--sandbox", str(box), str(script))
    assert code == 0, err
    assert '"cost_incurred":0.0' in (box / LOG).read_text(encoding="utf-8")
    return box


def _replace(name: str, old: str, new: str) -> Callable[[Path], None]:
    def corrupt(box: Path) -> None:
        text = (box / name).read_text(encoding="utf-8")
        assert old in text
        (box / name).write_text(text.replace(old, new, 1), encoding="utf-8")

    return corrupt


def _overwrite(name: str, content: str) -> Callable[[Path], None]:
    return lambda box: (box / name).write_text(content, encoding="utf-8")


def _directory(name: str) -> Callable[[Path], None]:
    def corrupt(box: Path) -> None:
        (box / name).unlink()
        (box / name).mkdir()

    return corrupt


#: name → (how to corrupt the sandbox, the file every error must name)
BROKEN = {
    "log nested 100k deep": (_overwrite(LOG, DEEP), LOG),
    "record nested 100k deep": (_replace(LOG, '"supervisor_feedback":null', f'"supervisor_feedback":{DEEP}'), LOG),
    "log number past the digit limit": (_replace(LOG, '"duration_ms":0', f'"duration_ms":{LONG_NUMBER}'), LOG),
    "log is a directory": (_directory(LOG), LOG),
    "definitions nested 100k deep": (_overwrite(DEFS, DEEP), DEFS),
    "definitions number past the digit limit": (
        _replace(DEFS, '"max_requests_per_minute": 0', f'"max_requests_per_minute": {LONG_NUMBER}'), DEFS),
    "definitions file is a directory": (_directory(DEFS), DEFS),
}

#: records the table can still show: the bad cell reads "-"
ODD_COST = {
    "cost is a string": '"abc"',
    "cost is a list": "[1]",
    "cost is a number past the float range": "1" + "0" * 400,
}


def _copy(healthy: Path, tmp_path: Path) -> Path:
    box = tmp_path / "box"
    shutil.copytree(healthy, box)
    return box


@pytest.mark.parametrize("action", [["list"], ["perf"], ["show", "w1"]], ids=["list", "perf", "show"])
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_corrupt_file_is_a_clear_error_naming_it(case: str, action: list[str], healthy: Path,
                                                    tmp_path: Path) -> None:
    box = _copy(healthy, tmp_path)
    corrupt, culprit = BROKEN[case]
    corrupt(box)
    code, out, err = _cli("workers", *action, "--sandbox", str(box))
    assert code == 70, (out, err)
    assert str(box / culprit) in err
    assert err.startswith("error ") and "internal error" not in err and "Traceback" not in err
    assert len(err) < 1000  # the message names the file; it never quotes the content


@pytest.mark.parametrize("case", sorted(ODD_COST))
def test_a_cost_that_is_not_a_number_shows_a_dash(case: str, healthy: Path, tmp_path: Path) -> None:
    box = _copy(healthy, tmp_path)
    _replace(LOG, '"cost_incurred":0.0', f'"cost_incurred":{ODD_COST[case]}')(box)
    code, out, err = _cli("workers", "perf", "--sandbox", str(box))
    assert code == 0, err
    header, row = out.splitlines()
    end = header.index("COST $") + len("COST $")  # a right-aligned column
    assert row[:end].split()[-1] == "-"
    for action in (["list"], ["show", "w1"]):
        code, _out, err = _cli("workers", *action, "--sandbox", str(box))
        assert code == 0 and err == "", err


ODD_VALUES = ['"x"', "[1]", "1e999", "1" + "0" * 400, "true"]


@pytest.mark.parametrize("value", ODD_VALUES)
def test_an_odd_value_in_any_log_field_never_crashes(value: str, healthy: Path, tmp_path: Path) -> None:
    """Every field of a performance log entry (and of its record) replaced by a value of the wrong type
    or size: the tables still print, or a clear error names the file (found: a 400-digit duration
    overflowed the average; ``performance_records: 1e999`` was iterated)."""
    import re

    log = (healthy / LOG).read_text(encoding="utf-8")
    fields = sorted(set(re.findall(r'"(\w+)":', log)))
    assert "duration_ms" in fields and "performance_records" in fields
    for i, field in enumerate(fields):
        box = tmp_path / f"box{i}"
        shutil.copytree(healthy, box)
        pattern = rf'("{field}":)(\{{[^{{}}]*\}}|\[[^\[\]]*\]|"[^"]*"|[^,}}\]]*)'
        (box / LOG).write_text(re.sub(pattern, lambda m: m.group(1) + value, log), encoding="utf-8")
        for action in (["list"], ["perf"]):
            code, _out, err = _cli("workers", *action, "--sandbox", str(box))
            assert "internal error" not in err and "Traceback" not in err, (field, err)
            assert code == 0 or str(box / LOG) in err, (field, err)


def test_performance_records_that_are_not_a_list_are_skipped(healthy: Path, tmp_path: Path) -> None:
    """``performance_records: 1e999`` in a hand-edited log: the record reader skips the entry (it used to
    iterate the float: TypeError), and ``workers perf`` still answers."""
    import re

    from nslang.workers import AIWorkerManager

    box = _copy(healthy, tmp_path)
    log = (box / LOG).read_text(encoding="utf-8")
    (box / LOG).write_text(re.sub(r'"performance_records":\[.*\]\}', '"performance_records":1e999}', log,
                                  flags=re.S), encoding="utf-8")
    assert '"performance_records":1e999}' in (box / LOG).read_text(encoding="utf-8")
    mgr = AIWorkerManager(box)
    try:
        assert mgr.get_performance_records("w1") == []
    finally:
        mgr.close()
    code, out, err = _cli("workers", "perf", "--sandbox", str(box))
    assert code == 0 and out == "no performance records\n", err
