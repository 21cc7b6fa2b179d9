"""Build the Lark parser once per process (memoized), with Lark's own on-disk cache of the tables.

Only this module, :mod:`nslang.parser` and :mod:`nslang._transformer` import ``lark`` (house rule 1).
"""

from __future__ import annotations

import functools
import os
from typing import Any

from ._resources import grammar_path

__all__ = ["get_parser"]


def _cache_file() -> str | bool:
    """Where Lark keeps its compiled tables: the platformdirs user cache dir, or no cache."""
    if os.environ.get("NSLANG_NO_CACHE"):
        return False
    try:
        from platformdirs import user_cache_dir

        d = user_cache_dir("nslang", appauthor=False)
        os.makedirs(d, exist_ok=True)
        return os.path.join(d, "lark-grammar.cache")
    except OSError:
        return False


@functools.lru_cache(maxsize=None)
def get_parser(strict: bool = False) -> Any:
    """The LALR(1) parser (contextual lexer, positions propagated) built from ``neuroscript.lark``.

    ``strict=True`` (used by a test) makes Lark fail on any terminal collision; it needs ``interegular``.
    """
    import lark

    text = grammar_path().read_text(encoding="utf-8")
    options: dict[str, Any] = dict(parser="lalr", lexer="contextual", propagate_positions=True,
                                   maybe_placeholders=True)
    if strict:
        return lark.Lark(text, strict=True, **options)
    cache = _cache_file()
    try:
        return lark.Lark(text, cache=cache, **options)
    except (OSError, EOFError, ValueError, TypeError, AttributeError):
        # a corrupt cache file: rebuild without it (Lark rewrites it next time)
        if isinstance(cache, str):
            try:
                os.unlink(cache)
            except OSError:
                pass
        return lark.Lark(text, **options)
