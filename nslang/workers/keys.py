"""API key resolution and redaction (ai_workers.md Part 1 "API keys", §2.11 fixed).

Methods: ``env_var`` (``value`` names the variable), ``inline`` (the key itself, held in memory
by the manager and never written to disk by nslang), ``config_path`` (``value`` is a file holding the
key, or a JSON file with ``key_path`` naming the key inside it; relative paths are relative to the
sandbox), ``none``. ``vault`` is refused (code 30).

A key never appears in any output, log line, error message or exception text: displays use
:func:`redact` (``****`` plus the last 4 characters) and :func:`scrub` removes a key from any text
coming back from a provider. Keys are resolved lazily, at call time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import LLMHTTPError, NSRuntimeError
from .errors import ConfigurationError, InvalidArgumentError, NotSupportedError
from .models import AIWorkerDefinition, APIKeySourceMethod

__all__ = ["is_redacted", "redact", "resolve_api_key", "sanitize_error", "scrub"]

REDACTED_PREFIX = "****"


def redact(secret: str) -> str:
    """``****`` plus the last 4 characters; just ``****`` for keys shorter than 12 characters."""
    if len(secret) >= 12:
        return REDACTED_PREFIX + secret[-4:]
    return REDACTED_PREFIX


def is_redacted(value: str) -> bool:
    """True for a value produced by :func:`redact` (never a usable key)."""
    return value.startswith(REDACTED_PREFIX)


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every occurrence of each secret (4+ characters) replaced by its redaction."""
    for s in secrets:
        if s and len(s) >= 4 and s in text:
            text = text.replace(s, redact(s))
    return text


def resolve_api_key(definition: AIWorkerDefinition, *, inline_secret: str | None,
                    environ: Mapping[str, str], base_dir: Path) -> str | None:
    """The API key of ``definition``, or None when it needs none.

    Args:
        definition: the worker definition.
        inline_secret: the in-memory key of an ``inline`` definition (None when not held).
        environ: environment variables (``os.environ`` normally).
        base_dir: directory relative ``config_path`` paths are resolved against (the sandbox).

    Raises:
        InvalidArgumentError: ``env_var``/``config_path`` without a ``value`` (code 4).
        ConfigurationError: the variable is unset or empty, the key file is missing, unreadable or
            lacks the key, or an inline key is not held in memory (code 18). The message names the
            definition and the variable or file, never the key.
        NotSupportedError: method ``vault`` (code 30).
    """
    auth = definition.auth
    who = f"AI worker definition '{definition.name}'"
    method = auth.method
    if method is APIKeySourceMethod.NONE:
        return None
    if method is APIKeySourceMethod.ENV_VAR:
        if not auth.value:
            raise InvalidArgumentError(f"{who}: API key method 'env_var' but no environment variable named "
                                       "in auth.value")
        key = environ.get(auth.value, "")
        if not key:
            raise ConfigurationError(
                f"{who}: API key not found: environment variable '{auth.value}' is not set or empty"
            )
        return key
    if method is APIKeySourceMethod.INLINE:
        if inline_secret is None:
            if not auth.value:
                return None
            raise ConfigurationError(
                f"{who}: its inline API key is not available in this process (nslang keeps inline keys in "
                "memory only and never writes them to disk); set it again with "
                "tool.AIWorkerDefinition.Update(definition_id, {\"auth\": {\"method\": \"inline\", \"value\": …}}) "
                "or use an env_var or config_path key"
            )
        return inline_secret or None
    if method is APIKeySourceMethod.CONFIG_PATH:
        return _read_key_file(who, auth.value, auth.key_path, base_dir)
    raise NotSupportedError(f"{who}: API key method '{method.value}' is not supported by nslang "
                            "(use env_var, inline, config_path or none)")


def _read_key_file(who: str, value: str, key_path: str, base_dir: Path) -> str:
    if not value:
        raise InvalidArgumentError(f"{who}: API key method 'config_path' but no file named in auth.value")
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
        raise ConfigurationError(f"{who}: API key file '{path}' cannot be read: {reason}") from None
    if key_path:
        try:
            data: Any = json.loads(text)
        except ValueError as e:
            # The decoder's message gives only a position, never the content.
            raise ConfigurationError(f"{who}: API key file '{path}' is not valid JSON "
                                     f"(line {getattr(e, 'lineno', '?')})") from None
        for part in key_path.split("."):
            if not isinstance(data, dict) or part not in data:
                raise ConfigurationError(f"{who}: key path '{key_path}' not found in API key file '{path}'")
            data = data[part]
        if not isinstance(data, str) or not data.strip():
            raise ConfigurationError(f"{who}: key path '{key_path}' in '{path}' does not hold a non-empty string")
        return data.strip()
    key = text.strip()
    if not key:
        raise ConfigurationError(f"{who}: API key file '{path}' is empty")
    return key


def sanitize_error(err: NSRuntimeError, key: str | None) -> NSRuntimeError:
    """Remove an API key from an error (message, HTTP body, chained causes) before anyone sees it."""
    if not key:
        return err
    texts = [err.message, str(err)]
    cause: BaseException | None = err.__cause__ or err.__context__
    while cause is not None and len(texts) < 20:
        texts.append(str(cause))
        texts.append(repr(cause))
        cause = cause.__cause__ or cause.__context__
    if isinstance(err, LLMHTTPError):
        texts.append(err.body)
    if not any(key in t for t in texts):
        return err
    err.message = scrub(err.message, [key])
    err.args = (err.message,)
    if isinstance(err, LLMHTTPError):
        err.body = scrub(err.body, [key])
    err.__cause__ = None
    err.__context__ = None
    err.__suppress_context__ = True
    return err
