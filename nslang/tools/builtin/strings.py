"""The ``str`` tool group: text functions, ``{{name}}`` formatting and regular expressions.

Upstream 0.4.2 registered these ungrouped (``Length``, ``Substring``, ``ToUpper`` …, spec/language.md
§8.5); HEAD moved them to the ``str`` group. Scripts write ``tool.str.<Name>``; the 0.4.2 names
are aliases. Lengths and indexes count Unicode code points (as ``len()`` does), never bytes.

Regular expressions use Python's ``re`` syntax, run by the ``regex`` package (close to Go's RE2 for
common patterns; replacement strings use ``\\1`` or ``\\g<name>``, not ``$1``). Patterns are limited
to 1000 characters, and a match runs at most until the run's deadline (``timeout_s``): a
catastrophic pattern such as ``(a|aa)+$`` ends the run with the timeout error (code 31), issue 10
item 6.

Results obey the value-size limit (``limits.max_value_bytes``, :mod:`nslang.limits`): ``Replace``,
``Join``, ``Concat``, ``Split``, ``SplitWords`` and ``ReplaceRegex`` refuse (code 37) before they
build a value over it.
"""

from __future__ import annotations

import concurrent.futures
import re
import threading
from collections.abc import Callable
from typing import Any

import regex

from ...errors import ErrorCode
from ...limits import (
    ELEMENT_BYTES,
    check_length,
    checked_display,
    expire,
    remaining_time,
    value_limit,
    value_too_large,
)
from ...values import interpolation_display
from ..registry import ToolContext, tool
from ._common import arg_error

__all__ = ["TOOLS"]

#: Longest regular expression accepted, in characters.
MAX_PATTERN_CHARS = 1000
#: CPU seconds a regular expression runs inline before it moves to a thread timed by the wall clock.
INLINE_REGEX_S = 0.05


def _text(v: Any, limit: int) -> str:
    return v if type(v) is str else checked_display(v, limit, "an element's display string")


def _check_items(ctx: ToolContext, n: int, what: str) -> None:
    """Code 37 when a list of ``n`` elements would exceed the value-size limit."""
    limit = value_limit(ctx.interpreter)
    if n * ELEMENT_BYTES > limit:
        raise value_too_large(what, n * ELEMENT_BYTES, limit)


def _joined(ctx: ToolContext, parts: list[str], separator: str) -> str:
    """``separator.join(parts)``, refused (code 37) before it is built when it would exceed the limit."""
    size = sum(map(len, parts)) + len(separator) * max(0, len(parts) - 1)
    check_length(size, value_limit(ctx.interpreter))
    return separator.join(parts)


_WORD = re.compile(r"\S+")


@tool("str", "Length", aliases=("Length",))
def length(input_string: str) -> int:
    """The number of Unicode code points in a string.

    Upstream 0.4.2 Length.

    Args:
        input_string: the text.

    Returns:
        Its length in code points ("héllo" has 5).

    Example:
        set n = tool.str.Length("héllo")
    """
    return len(input_string)


@tool("str", "Substring", aliases=("Substring",))
def substring(input_string: str, start_index: int, length: int | None = None) -> str:
    """Part of a string, by code point index and length.

    Upstream 0.4.2 Substring (``length`` was required there). A start beyond the end gives "",
    and a length past the end stops at the end.

    Args:
        input_string: the text.
        start_index: index of the first code point (0-based, not negative).
        length: how many code points (not negative); omitted: up to the end.

    Returns:
        The substring.

    Raises:
        8 (Bounds) a negative start_index or length.

    Example:
        set word = tool.str.Substring("hello world", 6, 5)
    """
    if start_index < 0:
        raise arg_error("start_index", f"must not be negative, got {start_index}", code=ErrorCode.BOUNDS)
    if length is None:
        return input_string[start_index:]
    if length < 0:
        raise arg_error("length", f"must not be negative, got {length}", code=ErrorCode.BOUNDS)
    return input_string[start_index : start_index + length]


@tool("str", "Split", aliases=("Split",))
def split(ctx: ToolContext, input_string: str, delimiter: str) -> list[str]:
    """Split a string at every occurrence of a delimiter.

    Upstream 0.4.2 Split. An empty delimiter splits into single code points.

    Args:
        input_string: the text.
        delimiter: the separator text.

    Returns:
        The parts, in order ("a,,b" split at "," gives ["a", "", "b"]; "" gives [""]).

    Example:
        set parts = tool.str.Split("a,b,c", ",")
    """
    parts = len(input_string) if delimiter == "" else input_string.count(delimiter) + 1
    _check_items(ctx, parts, "the list of parts")
    if delimiter == "":
        return list(input_string)
    return input_string.split(delimiter)


@tool("str", "SplitWords", aliases=("SplitWords",))
def split_words(ctx: ToolContext, input_string: str) -> list[str]:
    """Split a string at runs of whitespace, dropping empty parts.

    Upstream 0.4.2 SplitWords.

    Args:
        input_string: the text.

    Returns:
        The words (an empty list for blank text).

    Example:
        set words = tool.str.SplitWords("  the quick  fox ")
    """
    max_items = value_limit(ctx.interpreter) // ELEMENT_BYTES
    if len(input_string) // 2 + 1 <= max_items:  # cannot have too many words
        return input_string.split()
    words: list[str] = []
    for m in _WORD.finditer(input_string):
        if len(words) >= max_items:
            _check_items(ctx, len(words) + 1, "the list of words")
        words.append(m.group())
    return words


@tool("str", "Join", aliases=("Join",))
def join(ctx: ToolContext, string_list: list[Any], separator: str = "") -> str:
    """Join the elements of a list into one string.

    Upstream 0.4.2 Join (which required a list of strings). Elements that are not strings are
    joined by their display strings (as ``+`` and ``emit`` show them).

    Args:
        string_list: the elements to join.
        separator: put between elements.

    Returns:
        The joined text.

    Example:
        set csv = tool.str.Join(["a", "b", 3], ",")
    """
    limit = value_limit(ctx.interpreter)
    return _joined(ctx, [_text(x, limit) for x in string_list], separator)


@tool("str", "Concat", aliases=("Concat",))
def concat(ctx: ToolContext, strings_list: list[Any]) -> str:
    """Concatenate the elements of a list (display strings for non-strings).

    Upstream 0.4.2 Concat.

    Args:
        strings_list: the elements.

    Returns:
        All elements joined without a separator.

    Example:
        set s = tool.str.Concat(["ab", "cd", 1])
    """
    limit = value_limit(ctx.interpreter)
    return _joined(ctx, [_text(x, limit) for x in strings_list], "")


@tool("str", "Replace", aliases=("Replace",))
def replace(ctx: ToolContext, input_string: str, old_substring: str, new_substring: str, count: int = -1) -> str:
    """Replace occurrences of a substring.

    Upstream 0.4.2 Replace (``count`` was required there).

    Args:
        input_string: the text.
        old_substring: what to replace.
        new_substring: what to put instead.
        count: at most this many replacements, from the left; -1 (the default) replaces all.

    Returns:
        The new text.

    Raises:
        4 a count below -1.

    Example:
        set s = tool.str.Replace("a-b-c", "-", "+")
    """
    if count < -1:
        raise arg_error("count", f"must be -1 (all) or a count of replacements, got {count}")
    growth = len(new_substring) - len(old_substring)
    if growth > 0:
        n = input_string.count(old_substring)
        if count != -1:
            n = min(n, count)
        check_length(len(input_string) + n * growth, value_limit(ctx.interpreter))
    return input_string.replace(old_substring, new_substring, count)


@tool("str", "Contains", aliases=("Contains",))
def contains(input_string: str, substring: str) -> bool:
    """Whether a string contains a substring.

    Upstream 0.4.2 Contains.

    Args:
        input_string: the text.
        substring: the text to look for (every string contains "").

    Returns:
        true or false.

    Example:
        set failed = tool.str.Contains(line, "ERROR")
    """
    return substring in input_string


@tool("str", "HasPrefix", aliases=("HasPrefix",))
def has_prefix(input_string: str, prefix: str) -> bool:
    """Whether a string starts with a prefix.

    Upstream 0.4.2 HasPrefix.

    Args:
        input_string: the text.
        prefix: the expected beginning.

    Returns:
        true or false.

    Example:
        set is_comment = tool.str.HasPrefix(line, "#")
    """
    return input_string.startswith(prefix)


@tool("str", "HasSuffix", aliases=("HasSuffix",))
def has_suffix(input_string: str, suffix: str) -> bool:
    """Whether a string ends with a suffix.

    Upstream 0.4.2 HasSuffix.

    Args:
        input_string: the text.
        suffix: the expected ending.

    Returns:
        true or false.

    Example:
        set is_md = tool.str.HasSuffix(name, ".md")
    """
    return input_string.endswith(suffix)


@tool("str", "IndexOf")
def index_of(input_string: str, substring: str) -> int:
    """Position of the first occurrence of a substring, in code points.

    nslang addition.

    Args:
        input_string: the text.
        substring: the text to look for.

    Returns:
        The index of its first occurrence, or -1 when it does not occur.

    Example:
        set at = tool.str.IndexOf("key=value", "=")
    """
    return input_string.find(substring)


@tool("str", "ToUpper", aliases=("ToUpper",))
def to_upper(input_string: str) -> str:
    """Upper-case a string (Unicode rules: "straße" becomes "STRASSE").

    Upstream 0.4.2 ToUpper.

    Args:
        input_string: the text.

    Returns:
        The upper-case text.

    Example:
        set s = tool.str.ToUpper("hello")
    """
    return input_string.upper()


@tool("str", "ToLower", aliases=("ToLower",))
def to_lower(input_string: str) -> str:
    """Lower-case a string (Unicode rules).

    Upstream 0.4.2 ToLower.

    Args:
        input_string: the text.

    Returns:
        The lower-case text.

    Example:
        set s = tool.str.ToLower("HeLLo")
    """
    return input_string.lower()


@tool("str", "TrimSpace", aliases=("TrimSpace",))
def trim_space(input_string: str) -> str:
    """Remove leading and trailing whitespace (spaces, tabs, newlines, Unicode spaces).

    Upstream 0.4.2 TrimSpace.

    Args:
        input_string: the text.

    Returns:
        The trimmed text.

    Example:
        set s = tool.str.TrimSpace("  padded \\n")
    """
    return input_string.strip()


@tool("str", "LineCount", aliases=("LineCount",))
def line_count(content_string: str) -> int:
    """Count the lines of a text.

    Upstream 0.4.2 LineCount: "" has 0 lines, "a" and "a\\n" have 1, "a\\nb" has 2.

    Args:
        content_string: the text.

    Returns:
        The number of lines.

    Example:
        set n = tool.str.LineCount(text)
    """
    if not content_string:
        return 0
    n = content_string.count("\n")
    return n if content_string.endswith("\n") else n + 1


_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def _lookup(values: dict[str, Any], name: str) -> tuple[bool, Any]:
    if name in values:
        return True, values[name]
    cur: Any = values
    for part in name.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return False, None
    return True, cur


@tool("str", "Format")
def format_(template: str, values: dict[str, Any] | None = None) -> str:
    """Fill ``{{name}}`` placeholders in a template from a map.

    nslang addition. Spaces inside the braces are ignored (``{{ name }}``); a dotted name
    (``{{user.name}}``) looks into nested maps when the map has no key with the dots. Values are
    shown by their display strings, with nil shown as "nil" (as in string interpolation).
    Text outside placeholders is copied unchanged.

    Args:
        template: the text with placeholders.
        values: a map from placeholder names to values.

    Returns:
        The filled-in text.

    Raises:
        9 (KeyNotFound) a placeholder names a key the map does not have; 4 an empty placeholder.

    Example:
        set msg = tool.str.Format("Hello {{name}}, you are {{age}}", {"name": "Ada", "age": 36})
    """
    vals = values or {}

    def fill(m: re.Match[str]) -> str:
        name = m.group(1)
        if not name:
            raise arg_error("template", f"has an empty placeholder {m.group(0)!r} at index {m.start()}")
        found, v = _lookup(vals, name)
        if not found:
            known = ", ".join(sorted(vals)) or "none"
            raise arg_error("values", f"has no value for placeholder {{{{{name}}}}} (keys: {known})",
                            code=ErrorCode.KEY_NOT_FOUND)
        return interpolation_display(v)

    return _PLACEHOLDER.sub(fill, template)


# ----------------------------------------------------------------------------------------------
# Regular expressions


def _compile(pattern: str) -> Any:
    if len(pattern) > MAX_PATTERN_CHARS:
        raise arg_error("pattern", f"is {len(pattern)} characters long; the limit is {MAX_PATTERN_CHARS}")
    try:
        return regex.compile(pattern)
    except regex.error as e:
        where = f" at position {e.pos}" if e.pos is not None else ""
        raise arg_error("pattern", f"is not a valid regular expression: {e.msg}{where}") from None
    except (RecursionError, OverflowError) as e:
        raise arg_error("pattern", f"is too complex: {type(e).__name__}") from None


def _bounded(ctx: ToolContext, run: Callable[[dict[str, Any]], Any]) -> Any:
    """``run(options)``, a regular expression call given ``regex`` keyword options, ended by the run's
    deadline with its timeout error (code 31, not catchable).

    ``regex`` times its ``timeout`` in CPU seconds, which a loaded machine stretches in wall-clock
    time. So an expression first runs inline for at most :data:`INLINE_REGEX_S`; one that needs
    longer runs again on a helper thread with the GIL released, and the run waits for it by the wall
    clock. A thread left behind stops at its own (CPU) timeout.
    """
    left = remaining_time(ctx.interpreter)
    if left is None:
        return run({})
    try:
        return run({"timeout": min(left, INLINE_REGEX_S)})  # nearly every expression ends here
    except TimeoutError:
        if left <= INLINE_REGEX_S:
            expire(ctx.interpreter)
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def work() -> None:
        try:
            future.set_result(run({"timeout": left, "concurrent": True}))
        except BaseException as e:  # boundary: re-raised by the waiting caller
            future.set_exception(e)

    threading.Thread(target=work, name="nslang-regex", daemon=True).start()
    try:
        return future.result(timeout=remaining_time(ctx.interpreter))
    except (TimeoutError, concurrent.futures.TimeoutError):
        expire(ctx.interpreter)


@tool("str", "Match")
def match(ctx: ToolContext, input_string: str, pattern: str) -> bool:
    """Whether a regular expression matches anywhere in a string.

    nslang addition. Anchor with ^ and $ to match the whole string.

    Args:
        input_string: the text to search.
        pattern: a Python ``re`` regular expression.

    Returns:
        true when the pattern matches somewhere.

    Raises:
        4 an invalid pattern, or a pattern or input over the length limits.

    Example:
        set valid = tool.str.Match(email, "^[^@]+@[^@]+$")
    """
    rx = _compile(pattern)
    return _bounded(ctx, lambda options: rx.search(input_string, **options)) is not None


@tool("str", "FindAll")
def find_all(ctx: ToolContext, input_string: str, pattern: str, limit: int = -1) -> list[str]:
    """All non-overlapping matches of a regular expression, left to right.

    nslang addition. Each element is the whole match (groups are not split out).

    Args:
        input_string: the text to search.
        pattern: a Python ``re`` regular expression.
        limit: at most this many matches; -1 (the default) for all.

    Returns:
        The matched texts (an empty list when nothing matches).

    Raises:
        4 an invalid pattern, a limit below -1, or a pattern or input over the length limits.

    Example:
        set numbers = tool.str.FindAll("a1 b22 c333", "[0-9]+")
    """
    if limit < -1:
        raise arg_error("limit", f"must be -1 (all) or a number of matches, got {limit}")
    rx = _compile(pattern)

    def find(options: dict[str, Any]) -> list[str]:
        out: list[str] = []
        for m in rx.finditer(input_string, **options):
            if limit != -1 and len(out) >= limit:
                break
            out.append(m.group(0))
            if len(out) % 65536 == 0:
                _check_items(ctx, len(out), "the list of matches")
        return out

    return _bounded(ctx, find)  # type: ignore[no-any-return]


@tool("str", "ReplaceRegex")
def replace_regex(ctx: ToolContext, input_string: str, pattern: str, replacement: str, count: int = -1) -> str:
    r"""Replace matches of a regular expression.

    nslang addition. In the replacement, \1 or \g<name> insert a group and \\ a backslash.
    Write the replacement as a raw string ('''…''') so that NeuroScript keeps the backslashes.

    Args:
        input_string: the text.
        pattern: a Python ``re`` regular expression.
        replacement: the replacement template.
        count: at most this many replacements; -1 (the default) replaces all.

    Returns:
        The new text.

    Raises:
        4 an invalid pattern or replacement (e.g. a group that does not exist), a count below -1,
        or a pattern or input over the length limits.

    Example:
        set s = tool.str.ReplaceRegex("2024-01-31", "([0-9]+)-([0-9]+)-([0-9]+)", '''\3.\2.\1''')
    """
    if count < -1:
        raise arg_error("count", f"must be -1 (all) or a count of replacements, got {count}")
    rx = _compile(pattern)
    if count == 0:
        return input_string
    limit = value_limit(ctx.interpreter)
    n = len(input_string)
    # the longest possible result: every position matches and every group reference expands to the input
    worst = n + (n + 1) * (len(replacement) + replacement.count("\\") * n)

    def substitute(options: dict[str, Any]) -> str:
        if worst <= limit:
            return rx.sub(replacement, input_string, count=max(count, 0), **options)  # type: ignore[no-any-return]
        size = n

        def measured(m: Any) -> str:  # the same template, measured match by match
            nonlocal size
            out: str = m.expand(replacement)
            size += len(out) - (m.end() - m.start())
            check_length(size, limit)
            return out

        return rx.sub(measured, input_string, count=max(count, 0), **options)  # type: ignore[no-any-return]

    try:
        return _bounded(ctx, substitute)  # type: ignore[no-any-return]
    except regex.error as e:
        raise arg_error("replacement", f"is not a valid replacement: {e.msg}") from None
    except IndexError as e:  # bad group reference
        raise arg_error("replacement", f"is not a valid replacement: {e}") from None


TOOLS: list[Any] = [
    length, substring, split, split_words, join, concat, replace, contains, has_prefix, has_suffix, index_of,
    to_upper, to_lower, trim_space, line_count, format_, match, find_all, replace_regex,
]
