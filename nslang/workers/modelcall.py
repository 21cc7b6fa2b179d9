"""One model call, the way every task and chat turn makes it: fallback, replay, response cache, budget
check, request, recording, price (issue 14 items 3-7).

:meth:`ModelCaller.call` is the single per-call hook: a stateless task or a chat turn calls it once;
a tool-calling loop calls it once per model call, passing the task's spend so far. For each candidate
definition (the primary, then its ``fallback`` names in order):

1. hash the request (:func:`~nslang.workers.cassette.request_key`);
2. when replaying, answer from the recording (a miss is an error); else, with ``base_config.cache:
   true``, answer from the response cache when it holds the request (cost 0, ``cached``);
3. otherwise check the budgets against the call's worst case
   (:func:`~nslang.workers.economics.check_budget`: task, definition per day, run; the task's spend so
   far, not logged yet, counts toward the daily budget too; so do the worst cases of this manager's
   calls in flight, reserved until the call is priced) and call the model (with the tool
   declarations, when the call offers tools);
4. record the exchange when recording; store a successful answer in the cache when caching;
5. on a failure that a retry could not fix (HTTP 408/409/429/5xx, timeout, connection failure:
   :func:`falls_back`) go on to the next candidate; any other failure ends the call.

Nothing here holds a lock while a model answers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._redact import scrub
from ..errors import LLMError, LLMHTTPError, NSRuntimeError, UsageError
from ..llm.base import LLMConnectionError, LLMTimeoutError, Message, Model, ModelResponse
from ..llm.messages import ToolDeclaration
from ..llm.streaming import TokenRelay, TokenSink
from .cassette import DEFAULT_CACHE_TTL_S, Exchange, Recorder, Replayer, ResponseCache, request_key
from .economics import Cost, DailySpend, Usage, check_budget, price_call, task_limit, worst_case
from .errors import BudgetExceededError, RateLimitedError
from .keys import sanitize_error
from .models import AIWorkerDefinition

__all__ = ["CallOutcome", "Candidate", "ModelCaller", "falls_back"]


@dataclass(frozen=True)
class Candidate:
    """A definition ready to serve a call.

    Attributes:
        definition: the definition.
        settings: its effective settings (``base_config`` ⊕ the call's overrides).
        key: its API key, or None.
        model: its model; None when replaying (no model is built, no key is needed).
        admit: for a fallback definition, admits the call under its rate limits and returns the ticket
            to settle (:meth:`nslang.workers.limits.RateLimiter.admit`); None when the caller did.
    """

    definition: AIWorkerDefinition
    settings: dict[str, Any]
    key: str | None = field(repr=False)
    model: Model | None
    admit: Callable[[], Any] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class CallOutcome:
    """What one model call produced.

    Attributes:
        response: the answer, or None when the call failed.
        error: the failure (already scrubbed of the key), or None.
        served_by: the candidate that answered (or failed last).
        usage: token counts (input and output estimated as characters / 4 when not reported).
        estimated: the provider reported no usage.
        cost: USD and price source (0 for a cache hit).
        cached: answered from the response cache.
        fallback_errors: ``"<definition>: <message>"`` of each candidate that failed before.
        request_key: the request hash of the answering candidate ("" when no replay, response cache
            or recording needed it).
    """

    response: ModelResponse | None
    error: NSRuntimeError | None
    served_by: Candidate
    usage: Usage
    estimated: bool
    cost: Cost
    cached: bool
    fallback_errors: tuple[str, ...]
    request_key: str


def falls_back(err: NSRuntimeError) -> bool:
    """Whether ``err`` lets the next ``fallback`` definition serve: a timeout, a connection failure, an
    HTTP 408/409/429/5xx that survived the retries, or a fallback definition's own rate limit."""
    if isinstance(err, (LLMTimeoutError, LLMConnectionError, RateLimitedError)):
        return True
    return isinstance(err, LLMHTTPError) and (err.status in (408, 409, 429) or err.status >= 500)


def _answered(resp: ModelResponse) -> bool:
    """Whether ``resp`` is an answer: text, or tool calls (issue 12)."""
    return bool(resp.tool_calls) or (isinstance(resp.text, str) and bool(resp.text.strip()))


def _usage(resp: ModelResponse, messages: Sequence[Message], text: str) -> tuple[Usage, bool]:
    estimated = resp.input_tokens is None or resp.output_tokens is None
    tin = resp.input_tokens if resp.input_tokens is not None else sum(len(m.content) for m in messages) // 4
    tout = resp.output_tokens if resp.output_tokens is not None else len(text) // 4
    return Usage(tin, tout, resp.cache_read_tokens or 0, resp.cache_write_tokens or 0,
                 resp.reasoning_tokens or 0), estimated


class ModelCaller:
    """Makes model calls for one manager (module docstring). Thread-safe.

    Args:
        cache: the sandbox's response cache.
        daily: per-definition spend of the last 24 h (fed from the performance log).
        max_cost_usd: the run budget in USD, or None.
        recorder: where exchanges are recorded, or None.
        replayer: the recording that answers every request, or None.
    """

    def __init__(self, cache: ResponseCache, daily: DailySpend, *, max_cost_usd: float | None = None,
                 recorder: Recorder | None = None, replayer: Replayer | None = None) -> None:
        self.cache = cache
        self.daily = daily
        self.max_cost_usd = max_cost_usd
        self.recorder = recorder
        self.replayer = replayer
        self._lock = threading.Lock()
        self._run_spent = 0.0
        # worst cases of the calls in flight (admitted, not yet priced): the run's, and each definition's
        self._run_pending = 0.0
        self._day_pending: dict[str, float] = {}

    @property
    def run_spent(self) -> float:
        """USD spent by this manager's calls (the run budget's spend)."""
        with self._lock:
            return self._run_spent

    def _check(self, c: Candidate, messages: Sequence[Message], task_spent: float,
               held: list[tuple[str, float]]) -> None:
        """Check the budgets and reserve the call's worst case under the run and daily budgets until
        :meth:`_release` (so concurrent calls cannot all pass against the same spend)."""
        d = c.definition
        task = task_limit(c.settings, f"worker definition '{d.name}'")
        day = d.rate_limits.max_cost_usd_per_day or None
        if task is None and day is None and self.max_cost_usd is None:
            return  # no budget: no worst case to price
        cost = worst_case(d, messages, c.settings)
        check_budget("task", f"task budget max_cost_usd (worker '{d.name}')", task_spent, cost, task)
        spent_today = self.daily.spent(d.definition_id) if day is not None else 0.0
        with self._lock:
            if day is not None:  # the task's earlier calls (a tool-calling loop) are not logged yet: counted here
                check_budget("definition", f"daily budget rate_limits.max_cost_usd_per_day of worker definition "
                             f"'{d.name}'", spent_today + task_spent + self._day_pending.get(d.definition_id, 0.0),
                             cost, day)
            check_budget("run", "run budget (--max-cost / Interpreter(max_cost_usd=...))",
                         self._run_spent + self._run_pending, cost, self.max_cost_usd)
            self._run_pending += cost.usd
            self._day_pending[d.definition_id] = self._day_pending.get(d.definition_id, 0.0) + cost.usd
            held.append((d.definition_id, cost.usd))

    def _release(self, held: list[tuple[str, float]]) -> None:
        """Drop the worst cases :meth:`_check` reserved (the call is priced, or failed)."""
        with self._lock:
            for definition_id, usd in held:
                self._run_pending = max(0.0, self._run_pending - usd)
                left = self._day_pending.get(definition_id, 0.0) - usd
                if left > 1e-12:
                    self._day_pending[definition_id] = left
                else:
                    self._day_pending.pop(definition_id, None)

    def _answer(self, c: Candidate, messages: Sequence[Message], key: str, task_spent: float,
                tools: Sequence[ToolDeclaration], held: list[tuple[str, float]],
                on_token: TokenSink | None = None) -> Exchange:
        """The answer of candidate ``c`` from the recording, the cache or the model (steps 2-3); the model
        streams to ``on_token`` (redacted of ``c``'s key) when it is given."""
        d = c.definition
        if self.replayer is not None:
            ex = self.replayer.peek(key)
            if ex is None or not ex.cached:  # a budget refusal replays as one: it was never recorded
                self._check(c, messages, task_spent, held)
            if ex is None:
                raise self.replayer.miss(key, d.name, d.provider.value, d.model_name, messages)
            self.replayer.take(key)
            return ex
        caching = c.settings.get("cache") is True
        if caching:
            ttl = c.settings.get("cache_ttl_s")
            hit = self.cache.get(key, float(ttl) if isinstance(ttl, (int, float)) else DEFAULT_CACHE_TTL_S)
            if hit is not None:
                return Exchange(hit, None, cached=True)
        self._check(c, messages, task_spent, held)
        if c.model is None:  # pragma: no cover - a model is always built when not replaying
            raise UsageError("no model to call")
        relay = TokenRelay([on_token], [c.key]) if on_token is not None else None
        try:
            # tools and on_token only when used: a host's model written before them keeps working
            kwargs: dict[str, Any] = {}
            if relay is not None:
                kwargs["on_token"] = relay
            if tools:
                kwargs["tools"] = tools
            resp = c.model.request(messages, c.settings, **kwargs)
        except NSRuntimeError as e:
            return Exchange(None, e)
        except UsageError:  # host misuse (e.g. model requests switched off): not a task failure
            raise
        except Exception as e:  # boundary: any provider failure becomes code 16
            return Exchange(None, LLMError(f"provider '{d.provider.value}' failed: {type(e).__name__}: {e}"))
        finally:
            if relay is not None:
                relay.finish("")  # what the scrubber held back at the end of the stream
        if caching and _answered(resp):
            self.cache.put(key, resp, c.key)
        return Exchange(resp, None)

    def _admitted(self, c: Candidate, messages: Sequence[Message], key: str, task_spent: float,
                  tools: Sequence[ToolDeclaration], held: list[tuple[str, float]],
                  on_token: TokenSink | None) -> Exchange:
        """:meth:`_answer` under ``c.admit``'s rate-limit ticket when it has one, settled with the usage."""
        if c.admit is None:
            return self._answer(c, messages, key, task_spent, tools, held, on_token)
        with c.admit() as ticket:
            ex = self._answer(c, messages, key, task_spent, tools, held, on_token)
            r = ex.response if not ex.cached else None  # a cache hit used no tokens
            ticket.settle((r.input_tokens or 0) if r else 0, (r.output_tokens or 0) if r else 0, ex.error is None)
        return ex

    def call(self, primary: Candidate, messages: Sequence[Message], fallback: Callable[[str], Candidate], *,
             task_spent: float = 0.0, tools: Sequence[ToolDeclaration] = (),
             on_token: TokenSink | None = None) -> CallOutcome:
        """Make one model call (module docstring).

        Args:
            primary: the definition asked first.
            messages: the conversation to send.
            fallback: builds the candidate of a ``fallback`` definition name (may raise, e.g. no key).
            task_spent: USD the current task has spent already (its ``max_cost_usd`` budget); a
                tool-calling loop passes the cost of its earlier model calls.
            tools: tool declarations offered with the request (part of the request hash; issue 12).
            on_token: when given, the model streams its reply to it piece by piece (issue 14 item 2); a
                cached or replayed answer is not streamed (the caller shows it whole). A streamed
                reply's tool calls are folded by the wire format, as in a non-streamed one.

        Returns:
            The outcome; a model failure is returned in ``error``, not raised.

        Raises:
            BudgetExceededError: the first candidate's call would exceed a budget (nothing was sent).
            ReplayMissError: replaying, and the recording has no answer for the request.
            UsageError: model requests are switched off.
        """
        held: list[tuple[str, float]] = []  # worst cases reserved under the budgets, released once priced
        try:
            return self._call(primary, messages, fallback, task_spent, tools, held, on_token)
        finally:
            self._release(held)

    def _call(self, primary: Candidate, messages: Sequence[Message], fallback: Callable[[str], Candidate],
              task_spent: float, tools: Sequence[ToolDeclaration], held: list[tuple[str, float]],
              on_token: TokenSink | None) -> CallOutcome:
        names = list(primary.definition.fallback)
        c = primary
        failures: list[str] = []
        while True:
            # the hash serves the replay, the cache and the recording only (~50 µs: skipped without them)
            if self.replayer is not None or self.recorder is not None or c.settings.get("cache") is True:
                key, request = request_key(c.definition.provider.value, c.definition.model_name, messages,
                                           c.settings, tools, key=c.key)
            else:
                key, request = "", {}
            exchanged = False  # refusals are not exchanges: never recorded
            try:
                ex = self._admitted(c, messages, key, task_spent, tools, held, on_token)
                exchanged = True
            except BudgetExceededError as e:
                if not failures:
                    raise
                ex = Exchange(None, LLMError(f"fallback refused: {e.message}"))
            except RateLimitedError as e:  # only a fallback is admitted here
                ex = Exchange(None, e)
            err = sanitize_error(ex.error, c.key) if ex.error is not None else None
            if exchanged and self.recorder is not None:
                self.recorder.write(key, c.definition.name, request, ex.response, err, c.key, cached=ex.cached)
            if err is None or not falls_back(err) or not names:
                break
            failures.append(scrub(f"{c.definition.name}: {err.message}", [c.key]))
            try:
                c = fallback(names.pop(0))
            except NSRuntimeError as e:
                err = e
                break
        return self._outcome(c, ex.response, err, messages, ex.cached, failures, key)

    def _outcome(self, c: Candidate, resp: ModelResponse | None, err: NSRuntimeError | None,
                 messages: Sequence[Message], cached: bool, failures: list[str], key: str) -> CallOutcome:
        if err is not None and failures:
            err.message += " (after fallback: " + "; ".join(failures) + ")"
            err.args = (err.message,)
        if resp is None or err is not None:
            return CallOutcome(None, err, c, Usage(), False, Cost(0.0, "unknown"), False, tuple(failures), key)
        text = resp.text if isinstance(resp.text, str) else ""
        usage, estimated = _usage(resp, messages, text)
        if cached:
            return CallOutcome(resp, None, c, Usage(), False, Cost(0.0, "cache"), True, tuple(failures), key)
        cost = price_call(c.definition, usage, model_used=resp.model or "", succeeded=_answered(resp))
        with self._lock:
            self._run_spent += cost.usd
        return CallOutcome(resp, None, c, usage, estimated, cost, False, tuple(failures), key)
