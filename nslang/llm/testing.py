"""Offline models: the ``test`` provider and the ``custom`` (Python callable) provider adapter.

Neither sends anything over the network, so scripts, examples and tests run with no API key and no
connection (spec ai_workers.md Part 1 "LLM providers").

* :class:`TestModel` (provider ``test``) is **not an LLM**. It answers deterministically:
  the reply to a conversation whose last user turn is ``P`` and which holds ``n`` user turns is
  ``"<model_name> reply <n>: P"``; token counts are word counts (input: all words of all messages
  sent; output: words of the reply). Settings it understands: ``max_tokens`` (cut the reply to that
  many words, finish reason ``length``), ``test_reply`` (answer with this fixed text instead) and
  ``test_error`` (fail with code 16 and this message, to rehearse error handling offline). Streamed
  (``on_token``), it hands the reply over word by word (each word with the space before it).
* :class:`FunctionModel` (provider ``custom``) calls a Python function registered through the
  embedding API (``Interpreter.register_provider(name, fn)``)::

      fn(messages: list[dict(role, content)], settings: dict) -> str | dict

  A dict result has ``text`` and optionally ``input_tokens``, ``output_tokens`` (ints),
  ``finish_reason`` and ``model``. Token counts it does not report are estimated by the manager.
  Streamed (``on_token``), the function's whole reply is handed over in one piece when it returns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import LLMError, NSRuntimeError
from .base import LLMTimeoutError, Message, Model, ModelResponse, ProviderConfig
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
                on_token: TokenSink | None = None) -> ModelResponse:
        """Answer ``"<model> reply <n>: <last user turn>"`` with word-count token usage.

        Raises:
            LLMError: code 16 when ``settings["test_error"]`` is set (its text is the message).
        """
        error = settings.get("test_error")
        if error:
            raise LLMError(f"test provider: {error}")
        user_turns = [m for m in messages if m.role == "user"]
        prompt = user_turns[-1].content if user_turns else ""
        fixed = settings.get("test_reply")
        text = str(fixed) if fixed is not None else f"{self._model_name} reply {len(user_turns)}: {prompt}"
        words = text.split()
        finish = "stop"
        limit = settings.get("max_tokens")
        if isinstance(limit, int) and not isinstance(limit, bool) and 0 < limit < len(words):
            words = words[:limit]
            text = " ".join(words)
            finish = "length"
        input_tokens = sum(len(m.content.split()) for m in messages)
        if on_token is not None:
            for i, word in enumerate(text.split(" ")):
                piece = word if i == 0 else " " + word
                if piece:
                    on_token(piece)
        return ModelResponse(text, input_tokens, len(words), finish, self._model_name)


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
                on_token: TokenSink | None = None) -> ModelResponse:
        """Call the function and turn its result into a :class:`ModelResponse`.

        Raises:
            LLMError: the function raised (code 16; NeuroScript errors it raises pass through
                unchanged), or returned something other than a string or a dict with ``text``.
            LLMTimeoutError: the function raised ``TimeoutError`` (code 31).
        """
        who = f"custom provider '{self._name}'"
        try:
            result = self._function([m.to_dict() for m in messages], dict(settings))
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
            text = result.get("text", result.get("content"))
            if not isinstance(text, str):
                raise LLMError(f"{who} returned a dict without a string 'text'")
            if on_token is not None and text:
                on_token(text)
            return ModelResponse(
                text,
                _tokens(result.get("input_tokens"), who, "input_tokens"),
                _tokens(result.get("output_tokens"), who, "output_tokens"),
                str(result.get("finish_reason") or "stop"),
                str(result.get("model") or self._model_name),
            )
        raise LLMError(f"{who} returned {type(result).__name__}; expected a string or a dict with 'text'")


def _tokens(value: Any, who: str, key: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value != int(value):
        raise LLMError(f"{who} returned {key}={value!r}; expected a non-negative integer")
    return int(value)
