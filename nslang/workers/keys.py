"""API key resolution and protection (ai_workers.md Part 1 "API keys", §2.11 fixed; issue 10 items 1-2).

Methods: ``env_var`` (``value`` names the variable), ``inline`` (the key itself, held in memory
by the manager and never written to disk by nslang), ``config_path`` (``value`` is a file holding the
key, or a JSON file with ``key_path`` naming the key inside it), ``none``. ``vault`` is refused (code 30).

Where a key file may live (``config_path``), see :func:`key_file_location`:

* a **relative** path is inside the sandbox, under the ``fs`` tools' rules
  (:func:`nslang.tools.builtin._sandbox.resolve`: no ``..`` above the sandbox, no symbolic link leading out);
* an **absolute** (or ``~``) path must lie inside the user's nslang configuration directory,
  platformdirs ``user_config_dir("nslang")`` (e.g. ``~/.config/nslang``), symbolic links resolved;
* anything else is refused (code 18) with one message that shows no content and does not say whether
  the path exists. The file must be a regular file of at most :data:`MAX_KEY_FILE_BYTES`, opened
  without following a symbolic link swapped in after the check.

Every key, whatever its source, has surrounding whitespace stripped (a CRLF ``.env`` file); a key that
still contains a control character (or any non-printable character) is refused, the error naming the
definition and the variable or file, never the value.

A key never appears in any output, log line, error message or exception text: displays use
:func:`~nslang._redact.redact` (``****`` plus the last 4 characters) and :func:`~nslang._redact.scrub`
removes every form of a key from any text coming back from a provider (:func:`sanitize_error` for errors).
Keys are resolved lazily, at call time.
"""

from __future__ import annotations

import json
import os
import stat
import types
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .._redact import contains_secret, is_redacted, redact, scrub
from ..errors import LLMHTTPError, NSRuntimeError, ToolError
from ..tools.builtin import _sandbox
from .errors import AIWorkerError, ConfigurationError, InvalidArgumentError, NotSupportedError
from .models import AIWorkerDefinition, APIKeySourceMethod

__all__ = ["MAX_KEY_FILE_BYTES", "check_key_file_location", "clean_key", "is_redacted", "key_file_location",
           "known_keys", "redact", "resolve_api_key", "sanitize_error", "scrub", "user_config_dir"]

#: The largest key file nslang reads (bytes); a bigger file is refused unread.
MAX_KEY_FILE_BYTES = 64 * 1024


def user_config_dir() -> Path:
    """The user's nslang configuration directory (platformdirs ``user_config_dir("nslang")``)."""
    from platformdirs import user_config_dir as _dir

    return Path(_dir("nslang", appauthor=False))


def clean_key(key: str, who: str, source: str, error: type[AIWorkerError] = ConfigurationError) -> str:
    """``key`` without surrounding whitespace; refused when empty or holding a non-printable character.

    Args:
        key: the key as found.
        who: names the definition in messages.
        source: names where the key came from (``environment variable 'X'``), for messages.
        error: the error class raised (ConfigurationError, code 18; InvalidArgumentError, code 4, when
            the key is being set).

    Raises:
        ``error``: the key is empty, or contains a control (or other non-printable) character; the
            message names ``who`` and ``source``, never the key.
    """
    key = key.strip()
    if not key:
        raise error(f"{who}: the API key in {source} is empty")
    if not key.isprintable():
        raise error(f"{who}: the API key in {source} contains a control character (e.g. a line break or a "
                    "carriage return inside the key); fix the key, its value is not shown")
    return key


def resolve_api_key(definition: AIWorkerDefinition, *, inline_secret: str | None,
                    environ: Mapping[str, str], base_dir: Path, config_dir: Path | None = None) -> str | None:
    """The API key of ``definition`` (whitespace stripped), or None when it needs none.

    Args:
        definition: the worker definition.
        inline_secret: the in-memory key of an ``inline`` definition (None when not held).
        environ: environment variables (``os.environ`` normally).
        base_dir: the sandbox: relative ``config_path`` paths are resolved inside it.
        config_dir: the user's nslang configuration directory (default :func:`user_config_dir`).

    Raises:
        InvalidArgumentError: ``env_var``/``config_path`` without a ``value`` (code 4).
        ConfigurationError: the variable is unset or empty, the key file is outside the allowed places,
            missing, unreadable, too large or lacks the key, an inline key is not held in memory, or the
            key contains a control character (code 18). The message names the definition and the
            variable or file, never the key.
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
        if not key.strip():
            raise ConfigurationError(
                f"{who}: API key not found: environment variable '{auth.value}' is not set or empty"
            )
        return clean_key(key, who, f"environment variable '{auth.value}'")
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
        return clean_key(inline_secret, who, "auth.value (inline)") if inline_secret else None
    if method is APIKeySourceMethod.CONFIG_PATH:
        return _read_key_file(who, auth.value, auth.key_path, base_dir,
                              user_config_dir() if config_dir is None else config_dir)
    raise NotSupportedError(f"{who}: API key method '{method.value}' is not supported by nslang "
                            "(use env_var, inline, config_path or none)")


def key_file_location(who: str, value: str, sandbox: Path, config_dir: Path) -> _sandbox.SPath:
    """Check where the key file ``value`` is before anything touches it (see the module docstring).

    Returns:
        The checked path (its ``root`` is the resolved sandbox or configuration directory).

    Raises:
        ConfigurationError: the path is outside both places, through ``..`` or a symbolic link
            (code 18). The same message whether or not the path exists; no content is read.
    """
    refused = ConfigurationError(
        f"{who}: API key file '{value}' is not in a place key files may be read from: give a path relative "
        f"to the sandbox directory (no '..' above it, no symbolic link leading out of it) or a file inside "
        f"the nslang configuration directory {config_dir}"
    )
    rel, root = value, sandbox
    if value.startswith("~") or os.path.isabs(value):
        # relative to the configuration directory; a '..' left in it is refused below like any other
        try:
            rel = os.path.relpath(os.path.realpath(os.path.expanduser(value)), os.path.realpath(config_dir))
        except (RuntimeError, ValueError):  # no home directory for '~', a NUL byte, another drive
            raise refused from None
        root = config_dir
    try:
        return _sandbox.resolve(types.SimpleNamespace(sandbox_dir=root), "auth.value", rel, allow_root=False)
    except ToolError:
        raise refused from None


def check_key_file_location(definition: AIWorkerDefinition, sandbox: Path, config_dir: Path | None = None) -> None:
    """Refuse a ``config_path`` definition whose key file is outside the allowed places when it is added
    or updated (it is checked again at every call; nothing is read here).

    Raises:
        ConfigurationError: see :func:`key_file_location` (code 18).
    """
    auth = definition.auth
    if auth.method is APIKeySourceMethod.CONFIG_PATH and auth.value:
        key_file_location(f"AI worker definition '{definition.name}'", auth.value, sandbox,
                          user_config_dir() if config_dir is None else config_dir)


def _read_key_file(who: str, value: str, key_path: str, sandbox: Path, config_dir: Path) -> str:
    if not value:
        raise InvalidArgumentError(f"{who}: API key method 'config_path' but no file named in auth.value")
    sp = key_file_location(who, value, sandbox, config_dir)
    source = f"file '{value}'"
    try:
        with _sandbox.open_dir(sp, sp.parts[:-1]) as d:
            fd = _sandbox.open_file(d, sp.name, os.O_RDONLY | _sandbox.O_NONBLOCK)
            with os.fdopen(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    raise ConfigurationError(f"{who}: API key {source} is not a regular file")
                data = f.read(MAX_KEY_FILE_BYTES + 1)
        text = data.decode("utf-8-sig")  # a byte order mark (Notepad, PowerShell 5 Out-File) is not the key
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
        raise ConfigurationError(f"{who}: API key {source} cannot be read: {reason}") from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise ConfigurationError(f"{who}: API key {source} is larger than {MAX_KEY_FILE_BYTES} bytes")
    if not key_path:
        return clean_key(text, who, source)
    try:
        found: Any = json.loads(text)
    except ValueError as e:
        # The decoder's message gives only a position, never the content.
        raise ConfigurationError(f"{who}: API key {source} is not valid JSON "
                                 f"(line {getattr(e, 'lineno', '?')})") from None
    except RecursionError:
        raise ConfigurationError(f"{who}: API key {source} is not a usable JSON file (nested too deeply)") from None
    for part in key_path.split("."):
        if not isinstance(found, dict) or part not in found:
            raise ConfigurationError(f"{who}: key path '{key_path}' not found in API key {source}")
        found = found[part]
    if not isinstance(found, str):
        raise ConfigurationError(f"{who}: key path '{key_path}' in API key {source} does not hold a string")
    return clean_key(found, who, f"{source} (key path '{key_path}')")


def known_keys(raw: Iterable[Mapping[str, Any]], *, environ: Mapping[str, str], sandbox: Path) -> list[str]:
    """The keys that the definitions in ``raw`` (a definitions file's objects) resolve to in this process,
    for redacting text written before nslang redacted everything (e.g. ``nslang workers perf`` on an old
    performance log). Definitions that are invalid or resolve to no key are skipped."""
    found: list[str] = []
    for obj in raw:
        try:
            d = AIWorkerDefinition.model_validate(obj)
            inline = d.auth.value if d.auth.method is APIKeySourceMethod.INLINE else None
            key = resolve_api_key(d, inline_secret=inline, environ=environ, base_dir=sandbox)
        except (ValueError, NSRuntimeError):  # pydantic's ValidationError is a ValueError
            continue
        if key and not is_redacted(key):
            found.append(key)
    return found


def sanitize_error(err: NSRuntimeError, key: str | None) -> NSRuntimeError:
    """Remove every form of an API key from an error (message, HTTP body, chained causes) before anyone
    sees it; when a cause held the key, the chain is dropped."""
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
    if not any(contains_secret(t, [key]) for t in texts):
        return err
    err.message = scrub(err.message, [key])
    err.args = (err.message,)
    if isinstance(err, LLMHTTPError):
        err.body = scrub(err.body, [key])
    err.__cause__ = None
    err.__context__ = None
    err.__suppress_context__ = True
    return err
