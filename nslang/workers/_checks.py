"""Validation helpers of the worker manager: key spellings, definition rules, statuses, records.

Everything here raises :class:`~nslang.workers.errors.InvalidArgumentError` (code 4) or
:class:`~nslang.workers.errors.NotSupportedError` (code 30) with a message naming the field, and
never echoes a value that could be a key.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from ..terminal import escape_controls
from .errors import InvalidArgumentError, NotSupportedError, describe_validation_error
from .models import (
    FINAL_STATUSES,
    AIWorkerDefinition,
    AIWorkerInstanceStatus,
    AIWorkerProvider,
    APIKeySourceMethod,
    PerformanceRecord,
)

__all__ = [
    "COST_KEYS",
    "DEFINITION_KEYS",
    "RECORD_KEYS",
    "SYSTEM_FIELDS",
    "canonical",
    "check_definition",
    "check_name",
    "final_status",
    "instance_status",
    "name_key",
    "usage_arg",
    "validate_definition",
    "validate_record",
]

#: Longest definition name, in characters (after NFC normalisation).
MAX_NAME_CHARS = 128
#: Keys of ``cost_metrics`` (USD).
COST_KEYS = ("input_cost_per_token", "output_cost_per_token", "cache_read_cost_per_token",
             "cache_write_cost_per_token", "per_call")
#: Fields the system manages; Add and Update refuse them.
SYSTEM_FIELDS = frozenset({"aggregate_performance_summary", "created_timestamp", "modified_timestamp"})
HTTP_PROVIDERS = frozenset({AIWorkerProvider.OPENAI, AIWorkerProvider.ANTHROPIC, AIWorkerProvider.GOOGLE,
                            AIWorkerProvider.OLLAMA, AIWorkerProvider.LOCAL})
NUMERIC_SETTINGS = ("temperature", "top_p", "max_tokens", "timeout_s", "max_retries", "cache_ttl_s", "max_cost_usd",
                    "max_prompt_chars")
FINAL_ALIASES = {
    "completed": AIWorkerInstanceStatus.RETIRED_COMPLETED,
    "complete": AIWorkerInstanceStatus.RETIRED_COMPLETED,
    "done": AIWorkerInstanceStatus.RETIRED_COMPLETED,
    "exhausted": AIWorkerInstanceStatus.RETIRED_EXHAUSTED,
    "cancelled": AIWorkerInstanceStatus.RETIRED_EXHAUSTED,
    "canceled": AIWorkerInstanceStatus.RETIRED_EXHAUSTED,
    "error": AIWorkerInstanceStatus.RETIRED_ERROR,
    "failed": AIWorkerInstanceStatus.RETIRED_ERROR,
}


def field_names(model: type[BaseModel]) -> dict[str, str]:
    """Every accepted spelling of a model's keys (snake_case, camelCase, Go's) → field name."""
    out: dict[str, str] = {}
    for name, info in model.model_fields.items():
        out[name] = name
        head, *rest = name.split("_")
        out[head + "".join(p[:1].upper() + p[1:] for p in rest)] = name
        alias = info.validation_alias
        for choice in getattr(alias, "choices", ()):
            if isinstance(choice, str):
                out[choice] = name
    return out


DEFINITION_KEYS = field_names(AIWorkerDefinition)
RECORD_KEYS = field_names(PerformanceRecord)


def canonical(data: Mapping[str, Any], keys: dict[str, str], what: str) -> dict[str, Any]:
    """``data`` with its keys in snake_case; unknown keys are errors (code 4)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = keys.get(str(key))
        if name is None:
            known = ", ".join(sorted(set(keys.values())))
            raise InvalidArgumentError(f"{what}: unknown field '{key}' (fields: {known})")
        if name in out:
            raise InvalidArgumentError(f"{what}: field '{name}' given twice")
        out[name] = value
    return out


def check_name(name: str) -> str:
    """A new definition name, NFC-normalised; code 4 unless it is a usable name (issue 10 item 7).

    A name is non-empty, has no leading or trailing whitespace, no control characters (none of the
    characters :func:`~nslang.terminal.escape_controls` escapes: C0, DEL, C1, bidirectional
    controls, line separators), no invisible format character (Unicode category Cf: zero-width
    space or joiner, BOM, soft hyphen…, which would make two names look alike), no ``/`` or ``\\``,
    and at most :data:`MAX_NAME_CHARS` (128) characters. Uniqueness (case-insensitive, see
    :func:`name_key`) is checked by the manager.
    Names already in a definitions file are not checked here: they load as they are.
    """
    name = unicodedata.normalize("NFC", name)
    shown = escape_controls(name)[:80]
    if not name.strip():
        raise InvalidArgumentError("an AI worker definition needs a non-empty name")
    if escape_controls(name) != name:
        raise InvalidArgumentError(f"AI worker definition name '{shown}' contains control characters")
    hidden = next((ch for ch in name if unicodedata.category(ch) == "Cf"), None)
    if hidden is not None:  # zero-width spaces and joiners, BOM…: "bot\u200b" would look like "bot"
        raise InvalidArgumentError(f"AI worker definition name '{shown}' contains an invisible character "
                                   f"(U+{ord(hidden):04X})")
    if "/" in name or "\\" in name:
        raise InvalidArgumentError(f"AI worker definition name '{shown}' contains a path separator (/ or \\)")
    if name != name.strip():
        raise InvalidArgumentError(f"AI worker definition name '{shown}' starts or ends with whitespace")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidArgumentError(f"AI worker definition name '{shown}…' is {len(name)} characters long "
                                   f"(at most {MAX_NAME_CHARS})")
    return name


def name_key(name: str) -> str:
    """What definition names are compared by for uniqueness: NFC-normalised and case-folded, so
    ``Bot`` and ``bot`` (or a decomposed ``é``) are the same name."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def _non_finite(value: Any) -> tuple[str, float] | None:
    """(path, number) of the first infinite or NaN float anywhere inside ``value`` (iterative walk)."""
    stack: list[tuple[str, Any]] = [("", value)]
    seen: set[int] = set()
    while stack:
        path, v = stack.pop()
        if isinstance(v, float):
            if not math.isfinite(v):
                return path, v
            continue
        if isinstance(v, (BaseModel, Mapping, list, tuple)):
            if id(v) in seen:
                continue
            seen.add(id(v))
        if isinstance(v, BaseModel):
            items: Any = ((k, getattr(v, k)) for k in type(v).model_fields)
        elif isinstance(v, Mapping):
            items = v.items()
        elif isinstance(v, (list, tuple)):
            stack.extend((f"{path}[{i}]", x) for i, x in enumerate(v))
            continue
        else:
            continue
        stack.extend((f"{path}.{k}" if path else str(k), x) for k, x in items)
    return None


def check_definition(d: AIWorkerDefinition) -> None:
    """Rules beyond the model's types: name, model_name for HTTP providers, key source, cost keys,
    settings, and no infinite or NaN number anywhere (JSON cannot store them; issue 10 item 7)."""
    who = f"AI worker definition '{escape_controls(d.name)}'"
    if not d.name.strip():
        raise InvalidArgumentError("an AI worker definition needs a non-empty name")
    bad_number = _non_finite(d)
    if bad_number is not None:
        path, number = bad_number
        raise InvalidArgumentError(f"{who}: {escape_controls(path)} is {number!r}; infinity and NaN cannot be "
                                   "stored in JSON (they would be saved as null): use a finite number")
    if d.provider in HTTP_PROVIDERS and not d.model_name:
        raise InvalidArgumentError(f"{who}: model_name is required for provider '{d.provider.value}'")
    if d.provider is AIWorkerProvider.LOCAL and not d.base_config.get("base_url"):
        raise InvalidArgumentError(f"{who}: provider 'local' needs base_config.base_url (an OpenAI-compatible "
                                   "server such as llama.cpp, vLLM or LM Studio)")
    method = d.auth.method
    if method is APIKeySourceMethod.VAULT:
        raise NotSupportedError(f"{who}: API key method 'vault' is not supported by nslang "
                                "(use env_var, inline, config_path or none)")
    if method in (APIKeySourceMethod.ENV_VAR, APIKeySourceMethod.CONFIG_PATH) and not d.auth.value:
        what = "environment variable name" if method is APIKeySourceMethod.ENV_VAR else "key file path"
        raise InvalidArgumentError(f"{who}: auth method '{method.value}' needs auth.value (the {what})")
    if d.auth.key_path and method is not APIKeySourceMethod.CONFIG_PATH:
        raise InvalidArgumentError(f"{who}: auth.key_path is only used with method 'config_path'")
    bad = sorted(set(d.cost_metrics) - set(COST_KEYS))
    if bad:
        raise InvalidArgumentError(f"{who}: unknown cost_metrics key(s) {', '.join(bad)} "
                                   f"(known: {', '.join(COST_KEYS)}; prices in USD)")
    for key in NUMERIC_SETTINGS:
        v = d.base_config.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
            raise InvalidArgumentError(f"{who}: base_config.{key} must be a non-negative number")
    cp = d.base_config.get("custom_provider")
    if cp is not None and not isinstance(cp, str):
        raise InvalidArgumentError(f"{who}: base_config.custom_provider must be a string")
    if not isinstance(d.base_config.get("cache", False), bool):
        raise InvalidArgumentError(f"{who}: base_config.cache must be true or false")
    if d.name in d.fallback or any(not f.strip() for f in d.fallback):
        raise InvalidArgumentError(f"{who}: fallback must list other definitions' names (not itself, not empty)")

def validate_definition(fields: dict[str, Any], what: str) -> AIWorkerDefinition:
    """Build a definition model, turning pydantic errors into code 4 errors naming the fields."""
    try:
        return AIWorkerDefinition.model_validate(fields)
    except ValidationError as e:
        raise InvalidArgumentError(f"{what}: {describe_validation_error(e)}") from None


def instance_status(value: Any) -> AIWorkerInstanceStatus:
    """The status enum member for ``value`` (code 4 listing the valid ones otherwise)."""
    try:
        return AIWorkerInstanceStatus(value)
    except ValueError:
        known = ", ".join(s.value for s in AIWorkerInstanceStatus)
        raise InvalidArgumentError(f"unknown instance status {value!r} (known: {known})") from None


def final_status(value: str | None) -> AIWorkerInstanceStatus:
    """A Retire final status: ``retired_completed`` by default; short forms accepted; code 4 otherwise."""
    if value is None or value == "":
        return AIWorkerInstanceStatus.RETIRED_COMPLETED
    if not isinstance(value, str):
        raise InvalidArgumentError("final_status must be a string")
    alias = FINAL_ALIASES.get(value.lower())
    if alias is not None:
        return alias
    status = instance_status(value)
    if status not in FINAL_STATUSES:
        known = ", ".join(sorted(s.value for s in FINAL_STATUSES))
        raise InvalidArgumentError(f"'{value}' is not a final status (use one of: {known})")
    return status


def usage_arg(usage: Mapping[str, Any] | None) -> tuple[int, int]:
    """(input_tokens, output_tokens) of a ``final_session_token_usage`` map."""
    if usage is None:
        return 0, 0
    if not isinstance(usage, Mapping):
        raise InvalidArgumentError("final_session_token_usage must be a map {input_tokens, output_tokens}")
    out = []
    for key in ("input_tokens", "output_tokens"):
        v = usage.get(key, 0)
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise InvalidArgumentError(f"final_session_token_usage.{key} must be a non-negative integer")
        out.append(v)
    unknown = set(usage) - {"input_tokens", "output_tokens", "total_tokens"}
    if unknown:
        raise InvalidArgumentError(f"final_session_token_usage: unknown key(s) {', '.join(sorted(unknown))}")
    return out[0], out[1]


def validate_record(fields: dict[str, Any], what: str) -> PerformanceRecord:
    """Build a performance record model (code 4 naming the fields on failure, or an infinite or NaN
    number anywhere in it: JSON cannot store them)."""
    try:
        record = PerformanceRecord.model_validate(fields)
    except ValidationError as e:
        raise InvalidArgumentError(f"{what}: {describe_validation_error(e)}") from None
    bad_number = _non_finite(record)
    if bad_number is not None:
        path, number = bad_number
        raise InvalidArgumentError(f"{what}: {escape_controls(path)} is {number!r}; infinity and NaN cannot be stored "
                                   "in JSON: use a finite number")
    return record
