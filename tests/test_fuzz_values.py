"""Fuzzing the value walks with hypothesis, deep data included (issue 10 items 4 and 5).

Random values (scalars, lists, maps, error values; shared and self-containing containers; chains
thousands of levels deep) go through equality, display, the Python conversions of the embedding API,
the JSON tools and the list tools. Every walk must terminate with a result or an NSError, never a
RecursionError or another Python exception, and agree with itself (a value equals its copy; a
round trip through Python keeps it equal). ``NSLANG_FUZZ_EXAMPLES`` sets the number of examples per
test (default 100).
"""

from __future__ import annotations

import io
import math
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nslang import Interpreter
from nslang.errors import NSError
from nslang.values import ErrorValue, display, equal, from_python, to_python

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**30), 10**30), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.sampled_from(["1", "1.0", "-0", "nan", "true", ""]),
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=4), children, max_size=4),
        st.builds(lambda m: ErrorValue(code=1, message=m), children),
    )


VALUES = st.recursive(SCALARS, _containers, max_leaves=25)


@st.composite
def deep_values(draw: st.DrawFn) -> Any:
    """A random value wrapped in a chain of up to 5,000 lists and maps, sometimes shared or cyclic."""
    v = draw(VALUES)
    depth = draw(st.one_of(st.integers(0, 50), st.integers(0, 5_000)))
    kinds = draw(st.lists(st.sampled_from(["list", "map", "pair"]), min_size=1, max_size=3))
    for i in range(depth):
        kind = kinds[i % len(kinds)]
        if kind == "pair" and i < 10:  # a shared sublist (not more: the display doubles at every pair)
            v = [v, v]
        else:
            v = [v] if kind == "list" else {"k": v}
    if draw(st.booleans()) and isinstance(v, list):
        v.append(v)  # contains itself
    return v


def _copy(v: Any) -> Any:
    return from_python(to_python(v))


FUZZ = settings(max_examples=int(os.environ.get("NSLANG_FUZZ_EXAMPLES", "100")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(v=deep_values())
def test_walks_terminate_and_agree(v: Any) -> None:
    text = display(v)
    assert isinstance(text, str)
    assert len(display(v, 40)) < len(text) + 1
    c = _copy(v)
    if not _has_nan(v):
        assert equal(v, v)
        assert equal(v, c)
    assert isinstance(display(c), str)


@FUZZ
@given(v=deep_values(), w=deep_values())
def test_equality_is_symmetric(v: Any, w: Any) -> None:
    assert equal(v, w) == equal(w, v)


@FUZZ
@given(v=deep_values())
def test_tools_on_deep_values_fail_only_with_nserror(v: Any) -> None:
    it = Interpreter(stdout=io.StringIO(), stderr=io.StringIO(), load_stdlib=False)
    it.load("""
func probe(needs v) means
  emit v == v
  emit tool.list.Contains([1, v], v)
  emit len(tool.list.Unique([v, v]))
  emit "" + v
  set t = tool.json.Stringify(v)
  emit tool.json.Parse(t) == v
endfunc
""")
    try:
        it.call("probe", v)
    except NSError:
        pass


def _has_nan(v: Any) -> bool:
    todo, seen = [v], set()
    while todo:
        x = todo.pop()
        if isinstance(x, float) and math.isnan(x):
            return True
        if isinstance(x, (list, dict)) and id(x) not in seen:
            seen.add(id(x))
            todo.extend(x.values() if isinstance(x, dict) else x)
    return False
