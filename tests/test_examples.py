"""Every example in ``examples/`` runs through ``nslang run`` and prints exactly what is recorded here.

Multi-file examples run together: ``lib_<name>.ns`` is a library loaded before ``use_<name>.ns``.
``workers_*`` examples belong to the AI-worker suite (tests/workers/) and are not run here.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from nslang.cli import main

EXAMPLES = Path(__file__).parents[1] / "examples"

#: Extra ``nslang run`` options an example needs (its ``:: usage:`` line shows them).
FLAGS: dict[str, list[str]] = {
    "agent_files": ["--approve", "fs.Write"],
}

#: Example (file stem; for multi-file examples the ``use_`` script) → its exact stdout.
EXPECTED: dict[str, str] = {
    "hello": """\
Hello, NeuroScript!
2 + 3 * 4 = 14
""",
    "text_report": """\
=== Text report ===
lines                  3
words                 31
distinct words        20
longest word     friends
average length      3.74

Top words:
  the       5  #####
  dog       3  ###
  fox       3  ###
  quick     3  ###
  brown     2  ##

Used once: a, and, are, away, dogs, foxes, friends, jumps, lazy, no, not, over, red, runs, sleeps
""",
    "recursion": """\
Hanoi with 3 disks: 7 moves
A->C A->B C->B A->C B->A B->C A->C
Permutations of [a, b, c]: 6
  abc
  acb
  bac
  bca
  cab
  cba
Quicksort: [4, 4, 8, 15, 16, 23, 33, 42]
Power set of [1, 2, 3]: [[], [1], [2], [1, 2], [3], [1, 3], [2, 3], [1, 2, 3]]
""",
    "error_handling": """\
Summing ages:
  skipped: age of Bob is not a number: unknown (code 1)
  skipped: must condition failed: is_map(record) (code 5)
  skipped: must condition failed: age >= 0 (code 5)
  skipped: key 'age' not found in map (code 9)
  4 bad record(s)
  total = 77
Error values:
  10 / 4 = 2.5
  error: cannot divide 10 by zero [E_DIV]
Propagation to the caller:
  average = 2.5
  main caught: division by zero
  main caught: must safe_divide(1, 0): got an error value (code E_DIV): cannot divide 1 by zero
done
""",
    "events": """\
[billing] charge Ada 14.5
[shipping] pack 2 item(s) for order #1
order #1 reached 2 handler(s)
[audit] event: audit: shipping goes on strike
[billing] charge Bob 30
order #2 reached 1 handler(s)
[billing] refund order #2 (sent by support desk)
nobody listened: 0 handler(s)
""",
    "agent_files": """\
The archivist works:
  step 1: fs.List ok
  step 2: fs.Read ok
  step 2: fs.Read ok
  step 3: fs.Write ok
  step 4: fs.Delete -> refused: the call of fs.Delete was not approved
Answer: I wrote summary.md.
Model calls: 5, tool calls: 5
summary.md: Monday: parser shipped, two bugs fixed. Tuesday: tool-calling loop written.
notes kept: 2
""",
    "use_geometry": """\
distance (0,0)-(3,4) = 5
circle r=2: area 12.57
rectangle 3x5: area 15, perimeter 16
triangle: area 8
total area of 3 shapes: 19.93
still have corner: {"x": 3, "y": 4}
""",
}


def _runs() -> dict[str, list[Path]]:
    """Example name → files to pass to ``nslang run``, in order."""
    runs: dict[str, list[Path]] = {}
    for path in sorted(EXAMPLES.glob("*.ns")):
        stem = path.stem
        if stem.startswith("workers_") or stem.startswith("lib_"):
            continue
        files = [path]
        if stem.startswith("use_"):
            lib = EXAMPLES / f"lib_{stem[len('use_') :]}.ns"
            assert lib.exists(), f"{path.name} needs {lib.name}"
            files.insert(0, lib)
        runs[stem] = files
    return runs


RUNS = _runs()


@pytest.mark.parametrize("name", sorted(RUNS))
def test_example(name: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["run", *FLAGS.get(name, []), *map(str, RUNS[name])], stdout=out, stderr=err)
    assert (code, err.getvalue()) == (0, "")
    assert name in EXPECTED, f"record the output of examples/{name}.ns in EXPECTED"
    assert out.getvalue() == EXPECTED[name]


def test_enough_examples() -> None:
    assert len(RUNS) >= 5
    assert set(EXPECTED) <= set(RUNS), "EXPECTED names an example that no longer exists"
    assert set(FLAGS) <= set(RUNS), "FLAGS names an example that no longer exists"


def test_every_library_example_is_used() -> None:
    for lib in EXAMPLES.glob("lib_*.ns"):
        assert (EXAMPLES / f"use_{lib.stem[len('lib_') :]}.ns").exists(), lib.name
