"""Definition names are validated and numbers are finite (issue 10 item 7).

Attacks replayed: a name carrying an OSC/ANSI sequence, path separators, a 10,000-character name,
``Bot`` added beside ``bot``; ``inf`` / ``NaN`` in ``base_config``, ``metadata``, ``cost_metrics``,
``rate_limits`` (they used to be stored as ``null``). Definitions files written before these rules
still load, bad names included.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from workers_helpers import add_test_worker

from nslang.errors import ErrorCode
from nslang.workers import AIWorkerManager, InvalidArgumentError
from nslang.workers.store import DEFINITIONS_FILE

OSC = "\x1b]0;pwned\x07"


@pytest.mark.parametrize("name", [
    "evil" + OSC,
    "red\x1b[31m",
    "nul\x00",
    "tab\there",
    "line\nbreak",
    "del\x7f",
    "c1\x9b2J",
    "rtl\u202eexe.txt",
    "sep\u2028",
    "ok\u200b",  # zero-width space: looked exactly like "ok" in every table (adversarial review)
    "o\u200dk",
    "\ufeffok",
    "ok\u00ad",
    "a/b",
    "..\\x",
    " padded",
    "padded ",
    "",
    "   ",
    "x" * 129,
    "x" * 10_000,
])
def test_bad_names_are_refused_and_nothing_is_written(manager: AIWorkerManager, sandbox: Path, name: str) -> None:
    add_test_worker(manager, "ok")
    before = (sandbox / DEFINITIONS_FILE).read_bytes()
    with pytest.raises(InvalidArgumentError) as info:
        add_test_worker(manager, name)
    assert info.value.code == ErrorCode.ARG_MISMATCH
    assert "\x1b" not in info.value.message and "\x07" not in info.value.message
    assert len(info.value.message) < 300
    with pytest.raises(InvalidArgumentError):
        manager.update_definition("ok", {"name": name})
    assert (sandbox / DEFINITIONS_FILE).read_bytes() == before


def test_a_name_of_128_characters_and_unicode_names_are_fine(manager: AIWorkerManager) -> None:
    add_test_worker(manager, "x" * 128)
    add_test_worker(manager, "résumé writer 写作")
    assert {d.name for d in manager.list_definitions()} == {"x" * 128, "résumé writer 写作"}


def test_names_are_stored_nfc_and_found_in_either_form(manager: AIWorkerManager, sandbox: Path) -> None:
    def_id = add_test_worker(manager, "cafe\u0301")  # decomposed é
    assert manager.get_definition(def_id).name == "caf\u00e9"
    assert manager.get_definition("cafe\u0301").definition_id == def_id
    assert manager.get_definition("caf\u00e9").definition_id == def_id
    assert json.loads((sandbox / DEFINITIONS_FILE).read_text(encoding="utf-8"))[0]["name"] == "caf\u00e9"
    with pytest.raises(InvalidArgumentError, match="already exists"):
        add_test_worker(manager, "CAF\u00c9")


@pytest.mark.parametrize("other", ["Bot", "BOT", "bOt"])
def test_names_are_unique_ignoring_case(manager: AIWorkerManager, other: str) -> None:
    add_test_worker(manager, "bot")
    with pytest.raises(InvalidArgumentError, match="already exists .*'bot'.*ignoring case"):
        add_test_worker(manager, other)
    add_test_worker(manager, "helper")
    with pytest.raises(InvalidArgumentError, match="already exists"):
        manager.update_definition("helper", {"name": other})
    assert manager.update_definition("bot", {"name": other}).name == other  # renaming itself is fine
    with pytest.raises(InvalidArgumentError, match="already exists"):
        add_test_worker(manager, "bot")


def test_case_folding_covers_more_than_ascii(manager: AIWorkerManager) -> None:
    add_test_worker(manager, "Straße")
    with pytest.raises(InvalidArgumentError, match="already exists"):
        add_test_worker(manager, "STRASSE")


def test_a_definitions_file_with_bad_names_still_loads(sandbox: Path) -> None:
    """Data written before the rules is not lost: it loads, is found by its exact name, can be
    updated and renamed to a valid name."""
    sandbox.mkdir(parents=True)
    legacy = [
        {"name": "evil" + OSC, "provider": "test"},
        {"name": "bot", "provider": "test"},
        {"name": "Bot", "provider": "test"},
        {"name": "a/b " + "y" * 200, "provider": "test"},
    ]
    (sandbox / DEFINITIONS_FILE).write_text(json.dumps(legacy), encoding="utf-8")
    m = AIWorkerManager(sandbox, environ={})
    try:
        assert sorted(d.name for d in m.list_definitions()) == sorted(x["name"] for x in legacy)
        assert m.get_definition("Bot").name == "Bot" and m.get_definition("bot").name == "bot"
        # another field of a legacy definition can be changed without renaming it
        assert m.update_definition("evil" + OSC, {"capabilities": ["x"]}).name == "evil" + OSC
        assert m.update_definition("evil" + OSC, {"name": "evil"}).name == "evil"
        assert len(m.list_definitions()) == 4
    finally:
        m.close()


INF = math.inf


@pytest.mark.parametrize("fields,where", [
    ({"base_config": {"temperature": 0.5, "foo": INF}}, "base_config.foo"),
    ({"base_config": {"nested": [1, {"deep": -INF}]}}, "base_config.nested[1].deep"),
    ({"base_config": {"top_p": math.nan}}, "base_config.top_p"),
    ({"metadata": {"n": math.nan}}, "metadata.n"),
    ({"metadata": {"list": [INF]}}, "metadata.list[0]"),
    ({"cost_metrics": {"per_call": INF}}, "cost_metrics.per_call"),
    ({"rate_limits": {"max_requests_per_minute": INF}}, "rate_limits.max_requests_per_minute"),
])
def test_infinite_and_nan_numbers_are_refused(manager: AIWorkerManager, sandbox: Path, fields: dict[str, Any],
                                              where: str) -> None:
    add_test_worker(manager, "ok")
    before = (sandbox / DEFINITIONS_FILE).read_bytes()
    with pytest.raises(InvalidArgumentError) as info:
        add_test_worker(manager, "bad", **fields)
    assert where in info.value.message
    with pytest.raises(InvalidArgumentError) as info:
        manager.update_definition("ok", fields)
    assert where in info.value.message
    assert (sandbox / DEFINITIONS_FILE).read_bytes() == before


def test_the_script_attack_is_refused_with_a_catchable_error(tmp_path: Path) -> None:
    import io

    from nslang import Interpreter

    src = """
func main() means
  on error do
    emit system_error_code
    clear_error
  endon
  set big = 1e308 * 10
  call tool.AIWorkerDefinition.Add(name: "w", provider: "test", base_config: {"x": big})
  call tool.AIWorkerDefinition.Add(name: "w", provider: "test", metadata: {"x": 0 - big})
  call tool.AIWorkerDefinition.Add(name: "bot", provider: "test")
  call tool.AIWorkerDefinition.Add(name: "Bot", provider: "test")
  call tool.AIWorkerDefinition.Add(name: "x\\u001b]0;pwned\\u0007", provider: "test")
  emit len(tool.AIWorkerDefinition.List())
endfunc
"""
    out = io.StringIO()
    interp = Interpreter(sandbox_dir=tmp_path, stdout=out)
    interp.load(src)
    interp.run()
    interp.close()
    assert out.getvalue().split() == ["4", "4", "4", "4", "1"]


def test_infinite_numbers_in_a_logged_record_are_refused(tmp_path: Path) -> None:
    """Same attack on AIWorker.LogPerformance: it was an opaque code 21 ("Out of range float values")."""
    import io

    from nslang import Interpreter

    src = """
func main() means
  on error do
    emit system_error_code + " " + system_error_message
    clear_error
  endon
  set id = tool.AIWorkerDefinition.Add(name: "w", provider: "test")
  set big = 1e308 * 10
  call tool.AIWorker.LogPerformance("t1", "x", id, "2025-01-01T10:00:00Z", "2025-01-01T10:00:02Z", 2000, \\
    true, {"q": big})
  call tool.AIWorker.LogPerformance("t2", "x", id, "2025-01-01T10:00:00Z", "2025-01-01T10:00:02Z", 2000, \\
    true, {}, {}, big)
  emit tool.AIWorker.GetPerformanceSummary("w")["total_tasks_attempted"]
endfunc
"""
    out = io.StringIO()
    interp = Interpreter(sandbox_dir=tmp_path, stdout=out)
    interp.load(src)
    interp.run()
    interp.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("4 ") and "input_context.q is inf" in lines[0]
    assert lines[1].startswith("4 ") and "cost_incurred is inf" in lines[1]
    assert lines[2] == "0"
