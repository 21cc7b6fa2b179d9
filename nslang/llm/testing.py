"""Offline models: the ``test`` provider and the ``custom`` (Python callable) provider adapter.

Neither sends anything over the network, so scripts, examples and tests run with no API key and no
connection (spec ai_workers.md Part 1 "LLM providers").

* :class:`TestModel` (provider ``test``) is **not an LLM**. It answers deterministically:
  the reply to a conversation whose last user turn is ``P`` and which holds ``n`` user turns is
  ``"<model_name> reply <n>: P"``; token counts are word counts (input: all words of all messages
  sent; output: words of the reply). Settings it understands: ``max_tokens`` (cut the reply to that
  many words, finish reason ``length``), ``test_reply`` (answer with this fixed text instead),
  ``test_replies`` (a list of texts: a conversation holding ``n`` user turns is answered with the
  ``n``-th, the last one once they run out; e.g. the programs of a code task, where each error fed
  back is a new user turn, issue 13) and ``test_error`` (fail with code 16 and this message, to
  rehearse error handling offline). Streamed (``on_token``), it hands the reply over word by word
  (each word with the space before it).

  Scripted tool calls (issue 12): ``test_tool_calls`` is a list of *rounds*; each round is a list of
  calls ``{"name": "fs.Read", "arguments": {"filepath": "a.txt"}}`` (``arguments`` may also be a
  string, sent as the raw JSON text, e.g. to rehearse malformed arguments). When tools are offered,
  the k-th reply after the last user turn (k counted from 0 by the assistant tool-call turns already
  in the conversation) asks for round k (ids ``call_<k>_<i>``, finish reason ``tool_calls``, output
  tokens: the words of the calls' JSON); once the rounds are used up it answers as above. The same
  script therefore always produces the same calls.
* :class:`FunctionModel` (provider ``custom``) calls a Python function registered through the
  embedding API (``Interpreter.register_provider(name, fn)``)::

      fn(messages: list[dict(role, content)], settings: dict) -> str | dict

  A dict result has ``text`` and optionally ``input_tokens``, ``output_tokens`` (ints),
  ``finish_reason`` and ``model``. Token counts it does not report are estimated by the manager.
  Tool calling (issue 12): when tools are offered, ``settings["tools"]`` lists them as
  ``{name, description, parameters}`` maps, and a dict result may carry ``tool_calls``: a list of
  ``{"id" (optional), "name", "arguments" (a map or a JSON string)}`` (``text`` may then be empty).
  Tool turns reach the function as ``{"role": "assistant", "content", "tool_calls": […]}`` and
  ``{"role": "tool", "content", "tool_call_id", "name", "is_error"}``.
  Streamed (``on_token``), the function's whole reply is handed over in one piece when it returns.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import LLMError, NSRuntimeError
from .base import LLMTimeoutError, Message, Model, ModelResponse, ProviderConfig
from .messages import ToolCall, ToolDeclaration, parse_arguments
from .streaming import TokenSink

__all__ = ["CustomProviderFunction", "FunctionModel", "TestModel", "create_test_model"]

#: The signature of a ``custom`` provider callable.
CustomProviderFunction = Callable[[list[dict[str, str]], dict[str, Any]], Any]


class TestModel(Model):
    """The offline, deterministic ``test`` provider. Not an LLM: it restates the prompt.

    Args:
        model_name: the name shown in replies and metrics (default ``test``).
    """

    __test__ = False  # not a pytest test class

    def __init__(self, model_name: str = "test") -> None:
        self._model_name = model_name or "test"

    @property
    def provider(self) -> str:
        return "test"

    @property
    def model_name(self) -> str:
        return self._model_name

    def request(self, messages: Sequence[Message], settings: Mapping[str, Any],
                on_token: TokenSink | None = None, tools: Sequence[ToolDeclaration] = ()) -> ModelResponse:
        """Answer ``"<model> reply <n>: <last user turn>"`` with word-count token usage, or the next
        round of ``test_tool_calls`` when tools are offered (module docstring).

        Raises:
            LLMError: code 16 when ``settings["test_error"]`` is set (its text is the message), when
                ``test_tool_calls`` is not a list of lists of ``{name, arguments}`` maps, or when
                ``test_replies`` is not a non-empty list of strings.
        """
        error = settings.get("test_error")
        if error:
            raise LLMError(f"test provider: {error}")
        input_tokens = sum(len(m.content.split()) for m in messages)
        rounds = settings.get("test_tool_calls")
        if tools and rounds:
            last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
            k = sum(1 for m in messages[last_user + 1:] if m.tool_calls)
            if not isinstance(rounds, list) or not all(isinstance(r, list) for r in rounds):
                raise LLMError("test provider: test_tool_calls must be a list of rounds (lists of calls)")
            if k < len(rounds):
                calls = tuple(_scripted_call(f"call_{k}_{i}", c) for i, c in enumerate(rounds[k]))
                out = len(json.dumps([c.to_dict() for c in calls], default=str).split())
                return ModelResponse("", input_tokens, out, "tool_calls", self._model_name, tool_calls=calls)
        user_turns = [m for m in messages if m.role == "user"]
        prompt = user_turns[-1].content if user_turns else ""
        fixed = settings.get("test_reply")
        scripted = settings.get("test_replies")
        if scripted is not None:
            if not isinstance(scripted, list) or not scripted or not all(isinstance(r, str) for r in scripted):
                raise LLMError("test provider: test_replies must be a non-empty list of strings")
            fixed = scripted[min(max(len(user_turns), 1), len(scripted)) - 1]
        text = str(fixed) if fixed is not None else f"{self._model_name} reply {len(user_turns)}: {prompt}"
        words = text.split()
        finish = "stop"
        limit = settings.get("max_tokens")
        if isinstance(limit, int) and not isinstance(limit, bool) and 0 < limit < len(words):
            words = words[:limit]
            text = " ".join(words)
            finish = "length"
        if on_token is not None:
            for i, word in enumerate(text.split(" ")):
                piece = word if i == 0 else " " + word
                if piece:
                    on_token(piece)
        return ModelResponse(text, input_tokens, len(words), finish, self._model_name)


def _scripted_call(call_id: str, call: Any) -> ToolCall:
    if not isinstance(call, Mapping) or not isinstance(call.get("name"), str):
        raise LLMError("test provider: each call in test_tool_calls must be a map with a string 'name'")
    args = call.get("arguments", {})
    return parse_arguments(call_id, call["name"], args)


def create_test_model(config: ProviderConfig) -> Model:
    """Provider factory for ``test`` (the worker manager's factory table points here)."""
    return TestModel(config.model_name or "test")


class FunctionModel(Model):
    """Adapter that makes a Python callable a :class:`Model` (provider ``custom``).

    Args:
        function: ``fn(messages, settings) -> str | dict`` (see the module docstring).
        name: the name it was registered under (for error messages).
        model_name: reported as the model when the function's result names none.
    """

    def __init__(self, function: CustomProviderFunction, *, name: str = "default", model_name: str = "") -> None:
        self._function = function
        self._name = name
        self._model_name = model_name or name

    @property
    def provider(self) -> str:
        return "custom"

    @property
    def model_name(self) -> str:
        return self._model_name

    def request(self, messages: Sequence[Message], settings: Mapping[str, Any],
                on_token: TokenSink | None = None, tools: Sequence[ToolDeclaration] = ()) -> ModelResponse:
        """Call the function and turn its result into a :class:`ModelResponse`.

        Raises:
            LLMError: the function raised (code 16; NeuroScript errors it raises pass through
                unchanged), or returned something other than a string or a dict with ``text``.
            LLMTimeoutError: the function raised ``TimeoutError`` (code 31).
        """
        who = f"custom provider '{self._name}'"
        passed = dict(settings)
        if tools:
            passed["tools"] = [{"name": t.name, "description": t.description, "parameters": dict(t.parameters)}
                               for t in tools]
        try:
            result = self._function([m.to_dict() for m in messages], passed)
        except NSRuntimeError:
            raise
        except TimeoutError as e:  # boundary: a host callable's timeout becomes code 31
            raise LLMTimeoutError(f"{who} timed out: {e or 'TimeoutError'}") from e
        except Exception as e:  # boundary: any failure of host code becomes code 16
            raise LLMError(f"{who} failed: {type(e).__name__}: {e}") from e
        if isinstance(result, str):
            if on_token is not None and result:
                on_token(result)
            return ModelResponse(result, None, None, "stop", self._model_name)
        if isinstance(result, Mapping):
            calls = _returned_calls(result.get("tool_calls"), who)
            text = result.get("text", result.get("content", "" if calls else None))
            if not isinstance(text, str):
                raise LLMError(f"{who} returned a dict without a string 'text'")
            if on_token is not None and text:
                on_token(text)
            return ModelResponse(
                text,
                _tokens(result.get("input_tokens"), who, "input_tokens"),
                _tokens(result.get("output_tokens"), who, "output_tokens"),
                str(result.get("finish_reason") or ("tool_calls" if calls else "stop")),
                str(result.get("model") or self._model_name),
                tool_calls=calls,
            )
        raise LLMError(f"{who} returned {type(result).__name__}; expected a string or a dict with 'text'")


def _returned_calls(value: Any, who: str) -> tuple[ToolCall, ...]:
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        raise LLMError(f"{who} returned tool_calls that is not a list")
    out = []
    for i, c in enumerate(value):
        if not isinstance(c, Mapping) or not isinstance(c.get("name"), str):
            raise LLMError(f"{who} returned a tool call that is not a map with a string 'name'")
        out.append(parse_arguments(str(c.get("id") or f"call_{i}"), c["name"], c.get("arguments")))
    return tuple(out)


def _tokens(value: Any, who: str, key: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value != int(value):
        raise LLMError(f"{who} returned {key}={value!r}; expected a non-negative integer")
    return int(value)
