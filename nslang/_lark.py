"""Build the Lark parser once per process (memoized), with Lark's own on-disk cache of the tables.

Only this module, :mod:`nslang.parser` and :mod:`nslang._transformer` import ``lark`` (house rule 1).
"""

from __future__ import annotations

import functools
import os
import sys
import weakref

from ._resources import grammar_file, grammar_path

TYPE_CHECKING = False  # typing stays off the start-up path (issue 16 item 3)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

__all__ = ["get_inline_parser", "get_parser", "parse_inline"]


class _WholeWords:
    """Lark post-lexer whose only job is ``always_accept = ("NAME",)``.

    The contextual lexer offers a state only the terminals its parser state accepts. At the start of
    a statement no NAME is acceptable, so ``caller(2)`` would lex as the keyword ``call`` followed by
    ``er(2)``. With NAME always on offer, Lark lexes the whole word (a keyword only when the word is
    exactly the keyword), so ``caller`` is one NAME and a clear syntax error, as upstream's ANTLR lexer
    does.
    """

    always_accept = ("NAME",)

    def process(self, stream: Any) -> Any:
        return stream


def _cache_file() -> str | bool:
    """Where Lark keeps its compiled parse tables: the platformdirs user cache dir, or no cache.

    This is not the parse cache of scripts (``--no-cache`` does not affect it): the tables depend only
    on the grammar, and Lark keys the file by the grammar's hash. The directory is kept at mode 0700
    and the file at 0600, like the parse cache beside it (issue 10 item 2).
    """
    try:
        from ._private_paths import private_dir, user_cache_dir

        d = private_dir(user_cache_dir())  # mode 0700 (issue 10 item 2)
        return os.path.join(d, "lark-grammar.cache")
    except OSError:
        return False


def _saved_tables(rebuild: bool = False) -> bytes:
    """``get_parser().save()``: the LALR tables for :func:`get_inline_parser`, kept in nslang's private
    cache dir as ``lark-inline-<hash>.pickle`` (mode 0600), keyed by the grammar text, Lark's version and
    Python's. A hit spares building :func:`get_parser` from Lark's own cache and saving it again:
    ~35 ms of a cold run (issue 16 item 4). ``rebuild``: ignore the file (it did not load) and write it
    again.
    """
    import io

    import lark

    try:  # the built-in module avoids loading OpenSSL through hashlib
        from _sha256 import sha256  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover
        from hashlib import sha256
    with open(grammar_file(), "rb") as f:
        grammar = f.read()
    h = sha256(b"nslang-inline-1\0" + grammar)
    h.update(f"\0{lark.__version__}\0{sys.version_info[:2]}".encode())
    path = None
    try:
        from ._private_paths import private_dir, user_cache_dir

        path = os.path.join(private_dir(user_cache_dir()), f"lark-inline-{h.hexdigest()[:32]}.pickle")
        if not rebuild:
            with open(path, "rb") as f:
                return f.read()
    except OSError:
        pass
    buf = io.BytesIO()
    get_parser().save(buf)
    data = buf.getvalue()
    if path is not None:
        from ._private_paths import create_private

        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            with create_private(tmp) as f:  # mode 0600
                f.write(data)
            os.replace(tmp, path)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        _forget_other_tables(path)
    return data


def _forget_other_tables(keep: str) -> None:
    """Delete the ``lark-inline-*.pickle`` files of other grammars or Lark versions beside ``keep``."""
    d, name = os.path.split(keep)
    try:
        old = [e.path for e in os.scandir(d) if e.name.startswith("lark-inline-") and e.name.endswith(".pickle")
               and e.name != name]
    except OSError:
        return
    for p in old:
        try:
            os.unlink(p)
        except OSError:
            pass


@functools.cache
def get_inline_parser() -> tuple[Any, Any]:
    """(parser, callbacks): the same parser with the AST builder embedded (no parse tree is built).

    Set ``callbacks.current = ToAST(source_name)`` before each ``parse_inline(parser, text)``. Loaded
    from the tables of :func:`get_parser` (Lark cannot cache a parser that has an embedded transformer),
    kept by :func:`_saved_tables`; a damaged file of them is ignored and written again.
    """
    import io

    import lark

    from ._transformer import InlineCallbacks

    callbacks = InlineCallbacks()
    for rebuild in (False, True):
        data = _saved_tables(rebuild)
        try:
            # Lark's own cache loader (Lark.__init__ with cache=...) calls _load with these options
            inst = lark.Lark.__new__(lark.Lark)
            parser = inst._load(io.BytesIO(data), transformer=callbacks, postlex=_WholeWords())
        except Exception:  # damaged saved tables (or a Lark without _load(…, transformer=)): once more
            continue
        _streamline(parser)
        return parser, callbacks
    # a Lark that cannot load saved tables with a transformer: build the tables again
    text = grammar_path().read_text(encoding="utf-8")
    return lark.Lark(text, parser="lalr", lexer="contextual", keep_all_tokens=True, maybe_placeholders=True,
                     transformer=callbacks, postlex=_WholeWords()), callbacks


class _RuleKey:
    """Stands for a Lark ``Rule`` in the LALR table and the callbacks dict: the same ``origin`` and
    ``expansion``, with the built-in identity ``__hash__``/``__eq__`` instead of ``Rule``'s Python ones;
    ``size``, ``name`` and ``callback`` are what :func:`parse_inline` needs on a reduction."""

    __slots__ = ("origin", "expansion", "rule", "size", "name", "callback", "passthrough")

    def __init__(self, rule: Any) -> None:
        self.origin = rule.origin
        self.expansion = rule.expansion
        self.rule = rule
        self.size = len(rule.expansion)
        self.name = rule.origin.name
        self.callback: Any = None
        #: a one-symbol ``?rule``: the reduction only changes the parser state, the value stays
        self.passthrough = False

    def __repr__(self) -> str:
        return repr(self.rule)


def _streamline(parser: Any) -> None:
    """Make Lark's LALR loop cheaper on each reduction, keeping what it computes (issue 16 item 4).

    A literal in an expression is reduced through the dozen precedence levels of the grammar (``?or_expr:
    and_expr`` …): parse_big makes 344,281 reductions for 80,572 tokens. For each one Lark's loop calls
    ``Rule.__hash__`` (the callbacks dict), ``Rule.__eq__`` (an ``assert``) and, for a one-symbol ``?rule``,
    ``ExpandSingleChild.__call__``, three Python calls. Here the table and the dict use :class:`_RuleKey`
    (C-level hash and equality), and a one-symbol ``?rule``'s callback becomes ``itemgetter(0)`` (what
    ExpandSingleChild returns for one child). Measured: about 10 % of a cold parse of parse_big.

    Only a parser laid out as Lark 1.1-1.3 lays it out is changed; any other is left as it is.
    """
    from operator import itemgetter

    from lark.parse_tree_builder import ExpandSingleChild
    from lark.parsers.lalr_analysis import Reduce

    try:
        inner = parser.parser.parser.parser  # Lark -> ParsingFrontend -> LALR_Parser -> _Parser
        callbacks, states = inner.callbacks, inner.parse_table.states
    except AttributeError:  # pragma: no cover - another Lark layout
        return
    if not isinstance(callbacks, dict) or not isinstance(states, dict):  # pragma: no cover
        return
    keys: dict[int, _RuleKey] = {}
    fast: dict[Any, Any] = {}
    for rule, cb in callbacks.items():
        if isinstance(rule, str):  # a terminal's callback
            fast[rule] = cb
            continue
        key = keys[id(rule)] = _RuleKey(rule)
        key.passthrough = type(cb) is ExpandSingleChild and key.size == 1
        fast[key] = key.callback = itemgetter(0) if key.passthrough else cb
    new_states = {}
    for state, actions in states.items():
        row = {}
        for tok, (action, arg) in actions.items():
            if action is Reduce:
                if id(arg) not in keys:  # pragma: no cover - a rule without callback: leave Lark's parser alone
                    return
                arg = keys[id(arg)]
            row[tok] = (action, arg)
        new_states[state] = row
    inner.parse_table.states = new_states
    inner.callbacks = fast


class _Tables(dict):  # type: ignore[type-arg]
    """What :func:`parse_inline` reads besides the LALR table. As a dict, the contextual lexer's per-state
    scanners, flattened: parser state -> (compiled alternations, ignored terminal types, terminal types
    that may contain a newline, keywords, other terminal callbacks), filled on first use of a state (Lark
    compiles a state's scanner only when it is first used, too).

    Keywords: terminal type -> {text: keyword type}, what Lark's ``UnlessCallback`` on NAME does with a
    regular expression per token (a NAME whose text is exactly a keyword the state accepts becomes that
    keyword), as a dict look-up; only for keywords that are plain strings without flags, else the
    callback stays (24,516 NAME tokens in parse_big)."""

    def __init__(self, contextual: Any, states: dict[Any, dict[str, Any]]) -> None:
        from lark.parsers.lalr_analysis import Shift

        super().__init__()
        #: every reduction of the LALR table uses a _RuleKey (:func:`_streamline` changed it)
        self.streamlined = all(type(arg) is _RuleKey for row in states.values() for action, arg in row.values()
                               if action is not Shift)
        self.lexers = contextual.lexers
        self.by_lexer: dict[int, tuple[Any, Any, Any, Any, Any]] = {}
        #: (state below, top state, terminal) -> the top state after the one-symbol ``?rule`` reductions
        #: that terminal causes there (parse_inline's memo: a literal climbs a dozen precedence levels)
        self.chains: dict[tuple[Any, Any, str], Any] = {}

    def __missing__(self, state: Any) -> tuple[Any, Any, Any, Any, Any]:
        basic = self.lexers[state]
        entry = self.by_lexer.get(id(basic))
        if entry is None:
            mres = tuple(basic.scanner._mres)  # builds the scanner and basic.callback
            keywords, callbacks = _keywords(basic.callback)
            entry = self.by_lexer[id(basic)] = (mres, basic.ignore_types, basic.newline_types, keywords, callbacks)
        self[state] = entry
        return entry


def _keywords(callbacks: dict[str, Any]) -> tuple[dict[str, dict[str, str]], dict[str, Any]]:
    """Lark's terminal callbacks split into keyword tables (see :class:`_Tables`) and the others."""
    try:
        from lark.lexer import PatternStr, UnlessCallback
    except ImportError:  # pragma: no cover - another Lark layout: Lark's callbacks run
        return {}, callbacks

    keywords: dict[str, dict[str, str]] = {}
    others: dict[str, Any] = {}
    for ttype, cb in callbacks.items():
        terminals = getattr(getattr(cb, "scanner", None), "terminals", None)
        if type(cb) is UnlessCallback and terminals is not None and all(
                type(t.pattern) is PatternStr and not t.pattern.flags for t in terminals):
            keywords[ttype] = {t.pattern.value: t.name for t in terminals}
        else:
            others[ttype] = cb
    return keywords, others


_TABLES: weakref.WeakKeyDictionary[Any, _Tables | None] = weakref.WeakKeyDictionary()


def _tables_of(frontend: Any) -> _Tables | None:
    """The :class:`_Tables` of the contextual lexer behind ``frontend`` (its only post-lexer being
    :class:`_WholeWords`), or None when the layout is not Lark 1.1-1.3's."""
    try:
        return _TABLES[frontend]
    except KeyError:
        pass
    tables = None
    try:
        connector = frontend.lexer
        if type(connector.postlexer) is _WholeWords and isinstance(connector.lexer.lexers, dict):
            tables = _Tables(connector.lexer, frontend.parser.parser.parse_table.states)
    except AttributeError:  # pragma: no cover - another Lark layout
        pass
    _TABLES[frontend] = tables
    return tables


#: the fields of Lark 1.1-1.3's Token, which parse_inline sets itself
_TOKEN_FIELDS = ("type", "start_pos", "value", "line", "column", "end_line", "end_column", "end_pos")


def parse_inline(parser: Any, text: str) -> Any:
    """``parser.parse(text)`` for the parser of :func:`get_inline_parser`, with Lark's contextual lexer
    and LALR loop (``BasicLexer.next_token``, ``ParserState.feed_token``) run inline in one loop
    (issue 16 item 4): no generator, method calls or ``LineCounter`` per token, and each reduction's
    size, result name and callback read from its :class:`_RuleKey`.

    Same tokens (type, value and positions), results and exceptions as ``parser.parse``: where no
    terminal of the current parser state matches, Lark's own lexer is run at that position to raise its
    ``UnexpectedCharacters`` or ``UnexpectedToken``; an unexpected token is Lark's ``UnexpectedToken``
    with the same expected terminals. A parser laid out otherwise is parsed by Lark itself.
    """
    from lark.exceptions import UnexpectedToken
    from lark.lexer import Token
    from lark.parsers.lalr_analysis import Shift
    from lark.parsers.lalr_parser_state import ParseConf, ParserState

    try:
        frontend = parser.parser
        lalr = frontend.parser.parser
        conf = ParseConf(lalr.parse_table, lalr.callbacks, "start")
        thread = frontend._make_lexer_thread(text)
        lex_state = thread.state
        line_ctr = lex_state.line_ctr
    except AttributeError:  # pragma: no cover - another Lark layout
        return parser.parse(text)
    tables = _tables_of(frontend)
    if tables is None or not tables.streamlined or line_ctr.char_pos != 0:  # pragma: no cover
        return parser.parse(text)
    state = ParserState(conf, thread)  # Lark's lexer reads state.position on the error path
    state_stack, value_stack = state.state_stack, state.value_stack
    states, end_state = conf.states, conf.end_state
    on_token = {k: v for k, v in conf.callbacks.items() if type(k) is str}  # terminal callbacks (none today)
    table, chains = tables, tables.chains
    new_token = str.__new__
    plain_tokens = getattr(Token, "__slots__", None) == _TOKEN_FIELDS

    def expected(st: Any) -> set[str]:
        return {s for s in states[st] if s.isupper()}

    token = None
    pos, end, line, line_start = 0, len(text), 1, 0
    while pos < end:
        mres, ignore, newline_types, keywords, on_terminal = table[state_stack[-1]]
        for mre in mres:
            m = mre.match(text, pos, end)
            if m:
                break
        else:  # Lark's lexer, from this position, raises the error it would have raised
            line_ctr.char_pos, line_ctr.line, line_ctr.line_start_pos = pos, line, line_start
            line_ctr.column = pos - line_start + 1
            lex_state.last_token = token
            for _ in thread.lex(state):  # pragma: no cover - it matches nothing here: raises
                break
            raise AssertionError("Lark's lexer accepted what nslang's did not")  # pragma: no cover
        value = m.group(0)
        ttype = m.lastgroup
        start, start_line, start_column = pos, line, pos - line_start + 1
        pos += len(value)
        if ttype in newline_types:  # as LineCounter.feed
            n = value.count("\n")
            if n:
                line += n
                line_start = start + value.rindex("\n") + 1
        if ttype in ignore:
            if ttype in on_terminal:  # pragma: no cover - no ignored terminal has a callback here
                on_terminal[ttype](Token(ttype, value, start, start_line, start_column, line,
                                         pos - line_start + 1, pos))
            continue
        if ttype in keywords:  # e.g. NAME "set" -> SET
            ttype = keywords[ttype].get(value, ttype)
        if plain_tokens:  # what Token(ttype, value, start, …) builds, without its two Python frames
            token = new_token(Token, value)
            token.type, token.start_pos, token.value, token.line, token.column = ttype, start, value, start_line, \
                start_column
            token.end_line, token.end_column, token.end_pos = line, pos - line_start + 1, pos
        else:  # pragma: no cover - a Lark whose Token has other fields
            token = Token(ttype, value, start, start_line, start_column, line, pos - line_start + 1, pos)
        if ttype in on_terminal:
            token = on_terminal[ttype](token)
            ttype = token.type
        while True:  # as ParserState.feed_token
            st = state_stack[-1]
            try:
                action, arg = states[st][ttype]
            except KeyError:
                raise UnexpectedToken(token, expected(st), state=state,  # type: ignore[no-untyped-call]
                                      interactive_parser=None) from None
            if action is Shift:
                state_stack.append(arg)
                value_stack.append(on_token[ttype](token) if ttype in on_token else token)
                break
            if arg.passthrough:  # e.g. or_expr -> and_expr: a new state over the same value
                below = state_stack[-2]
                key = (below, st, ttype)
                top = chains.get(key)
                if top is None:  # follow the chain of such reductions once for this (states, token)
                    top = st
                    while True:
                        action, arg = states[top].get(ttype, (Shift, None))
                        if action is Shift or not arg.passthrough:
                            break
                        top = states[below][arg.name][1]
                    chains[key] = top
                state_stack[-1] = top
                continue
            size = arg.size
            if size:
                children = value_stack[-size:]
                del state_stack[-size:]
                del value_stack[-size:]
            else:
                children = []
            value_stack.append(arg.callback(children))
            state_stack.append(states[state_stack[-1]][arg.name][1])
    end_token = Token.new_borrow_pos("$END", "", token) if token else Token("$END", "", 0, 1, 1)
    while True:  # reductions at the end of the input, as feed_token(end, is_end=True)
        st = state_stack[-1]
        try:
            action, arg = states[st]["$END"]
        except KeyError:
            raise UnexpectedToken(end_token, expected(st), state=state,  # type: ignore[no-untyped-call]
                                  interactive_parser=None) from None
        if action is Shift:  # pragma: no cover - LALR tables never shift $END
            raise AssertionError("shift of $END")
        if arg.passthrough:
            state_stack[-1] = states[state_stack[-2]][arg.name][1]
            if state_stack[-1] == end_state:  # pragma: no cover - the start rule is not a ?rule
                return value_stack[-1]
            continue
        size = arg.size
        if size:
            children = value_stack[-size:]
            del state_stack[-size:]
            del value_stack[-size:]
        else:
            children = []
        value_stack.append(arg.callback(children))
        state_stack.append(states[state_stack[-1]][arg.name][1])
        if state_stack[-1] == end_state:
            return value_stack[-1]


@functools.cache
def get_parser(strict: bool = False) -> Any:
    """The LALR(1) parser (contextual lexer, positions propagated) built from ``neuroscript.lark``.

    ``strict=True`` (used by a test) makes Lark fail on any terminal collision; it needs ``interegular``.
    """
    import lark

    text = grammar_path().read_text(encoding="utf-8")
    # keep_all_tokens: keyword and punctuation tokens stay in the tree so the transformer can compute
    # rule positions from them (much cheaper than propagate_positions); it drops them itself.
    options: dict[str, Any] = dict(parser="lalr", lexer="contextual", keep_all_tokens=True,
                                   maybe_placeholders=True, postlex=_WholeWords())
    if strict:
        return lark.Lark(text, strict=True, **options)
    cache = _cache_file()
    try:
        parser = lark.Lark(text, cache=cache, **options)
    except (OSError, EOFError, ValueError, TypeError, AttributeError):
        # a corrupt cache file: rebuild without it (Lark rewrites it next time)
        if isinstance(cache, str):
            try:
                os.unlink(cache)
            except OSError:
                pass
        return lark.Lark(text, **options)
    if isinstance(cache, str):
        from ._private_paths import private_file

        try:
            private_file(cache)  # Lark writes it with the default mode: 0600
        except OSError:
            pass
    return parser
