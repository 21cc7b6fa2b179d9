"""Filter maps of the List / ListActive / GetPerformanceRecords tools (ai_workers.md §2.3, §2.5, §2.9).

Keys are matched case-insensitively and with or without underscores (``model_name`` =
``modelName`` = ``modelname``). Unlike upstream, an unknown key or a value of the wrong type is an
error (code 4) instead of silently matching nothing (§6 V2).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .errors import InvalidArgumentError
from .models import AIWorkerDefinition, AIWorkerInstance, PerformanceRecord

__all__ = ["definition_filter", "instance_filter", "record_filter"]

Predicate = Callable[[Any], bool]


def _norm(key: str) -> str:
    return key.lower().replace("_", "")


def _str(what: str, key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{what} filter '{key}' needs a string, got {type(value).__name__}")
    return value


def _number(what: str, key: str, value: Any, integer: bool) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        if integer and isinstance(value, float) and not value.is_integer():
            raise InvalidArgumentError(f"{what} filter '{key}' needs an integer, got {value}")
        return float(value)
    if isinstance(value, str):
        try:
            n = float(value)
        except ValueError:
            pass
        else:
            if not integer or n.is_integer():
                return n
    raise InvalidArgumentError(f"{what} filter '{key}' needs a number, got {value!r}")


def _build(what: str, filters: Mapping[str, Any] | None, table: dict[str, Callable[[str, Any], Predicate]],
           ) -> Predicate:
    if not filters:
        return lambda _x: True
    preds: list[Predicate] = []
    for key, value in filters.items():
        maker = table.get(_norm(str(key)))
        if maker is None:
            known = ", ".join(sorted({k for k in _DISPLAY[what]}))
            raise InvalidArgumentError(f"unknown {what} filter '{key}' (known filters: {known})")
        preds.append(maker(str(key), value))
    return lambda x: all(p(x) for p in preds)


# -- definitions ----------------------------------------------------------------------------------


def _def_id(key: str, v: Any) -> Predicate:
    s = _str("definition", key, v)
    return lambda d: bool(d.definition_id == s)


def _def_name(key: str, v: Any) -> Predicate:
    s = _str("definition", key, v).lower()
    return lambda d: s in d.name.lower()


def _def_provider(key: str, v: Any) -> Predicate:
    s = _str("definition", key, v)
    return lambda d: bool(d.provider.value == s)


def _def_model(key: str, v: Any) -> Predicate:
    s = _str("definition", key, v).lower()
    return lambda d: s in d.model_name.lower()


def _def_status(key: str, v: Any) -> Predicate:
    s = _str("definition", key, v)
    return lambda d: bool(d.status.value == s)


def _def_interaction(key: str, v: Any) -> Predicate:
    s = _str("definition", key, v)
    return lambda d: s in [m.value for m in d.interaction_models]


def _def_capability(key: str, v: Any) -> Predicate:
    s = _str("definition", key, v).lower()
    return lambda d: s in [c.lower() for c in d.capabilities]


def _def_capabilities_all(key: str, v: Any) -> Predicate:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise InvalidArgumentError(f"definition filter '{key}' needs a list of strings")
    wanted = [x.lower() for x in v]
    return lambda d: all(w in [c.lower() for c in d.capabilities] for w in wanted)


_DEFINITION_KEYS: dict[str, Callable[[str, Any], Predicate]] = {
    "definitionid": _def_id, "id": _def_id, "name": _def_name, "provider": _def_provider,
    "modelname": _def_model, "status": _def_status, "interactionmodelscontains": _def_interaction,
    "interactionmodelcontains": _def_interaction, "capabilitiescontains": _def_capability,
    "capabilitiescontainsall": _def_capabilities_all,
}


def definition_filter(filters: Mapping[str, Any] | None) -> Callable[[AIWorkerDefinition], bool]:
    """A predicate for ``AIWorkerDefinition.List`` filters.

    Keys: ``definition_id``/``id`` (exact), ``name`` and ``model_name`` (case-insensitive substring),
    ``provider``, ``status`` (exact), ``interaction_models_contains``, ``capabilities_contains``
    (case-insensitive), ``capabilities_contains_all`` (a list; ``[]`` matches all).

    Raises:
        InvalidArgumentError: unknown key or wrong value type (code 4).
    """
    return _build("definition", filters, _DEFINITION_KEYS)


# -- instances ------------------------------------------------------------------------------------


def _inst_id(key: str, v: Any) -> Predicate:
    s = _str("instance", key, v)
    return lambda i: bool(i.instance_id == s)


def _inst_def(key: str, v: Any) -> Predicate:
    s = _str("instance", key, v)
    return lambda i: bool(i.definition_id == s)


def _inst_status(key: str, v: Any) -> Predicate:
    s = _str("instance", key, v)
    return lambda i: bool(i.status.value == s)


_INSTANCE_KEYS: dict[str, Callable[[str, Any], Predicate]] = {
    "instanceid": _inst_id, "id": _inst_id, "definitionid": _inst_def, "status": _inst_status,
}


def instance_filter(filters: Mapping[str, Any] | None) -> Callable[[AIWorkerInstance], bool]:
    """A predicate for ``AIWorkerInstance.ListActive`` filters: ``instance_id``/``id``,
    ``definition_id``, ``status`` (all exact).

    Raises:
        InvalidArgumentError: unknown key or wrong value type (code 4).
    """
    return _build("instance", filters, _INSTANCE_KEYS)


# -- performance records ----------------------------------------------------------------------------


def _rec_task(key: str, v: Any) -> Predicate:
    s = _str("record", key, v)
    return lambda r: bool(r.task_id == s)


def _rec_instance(key: str, v: Any) -> Predicate:
    s = _str("record", key, v)
    if s == "stateless":
        return lambda r: bool(r.instance_id.startswith("stateless-"))
    return lambda r: bool(r.instance_id == s)


def _rec_def(key: str, v: Any) -> Predicate:
    s = _str("record", key, v)
    return lambda r: bool(r.definition_id == s)


def _rec_success(key: str, v: Any) -> Predicate:
    if not isinstance(v, bool):
        raise InvalidArgumentError(f"record filter '{key}' needs a boolean, got {type(v).__name__}")
    return lambda r: bool(r.success is v)


def _cmp(field: str, greater: bool, integer: bool) -> Callable[[str, Any], Predicate]:
    def make(key: str, v: Any) -> Predicate:
        n = _number("record", key, v, integer)
        if greater:
            return lambda r: bool(getattr(r, field) > n)
        return lambda r: bool(getattr(r, field) < n)

    return make


_RECORD_KEYS: dict[str, Callable[[str, Any], Predicate]] = {
    "taskid": _rec_task, "instanceid": _rec_instance, "definitionid": _rec_def, "success": _rec_success,
    "durationmsgt": _cmp("duration_ms", True, True), "durationmslt": _cmp("duration_ms", False, True),
    "costincurredgt": _cmp("cost_incurred", True, False), "costincurredlt": _cmp("cost_incurred", False, False),
}


def record_filter(filters: Mapping[str, Any] | None) -> Callable[[PerformanceRecord], bool]:
    """A predicate for ``AIWorker.GetPerformanceRecords`` filters (§2.9): ``task_id``,
    ``instance_id`` (``"stateless"`` matches every stateless task), ``definition_id``, ``success``
    (bool), ``duration_ms_gt``/``_lt`` (integer ms), ``cost_incurred_gt``/``_lt`` (USD).

    Raises:
        InvalidArgumentError: unknown key or wrong value type (code 4).
    """
    return _build("record", filters, _RECORD_KEYS)


_DISPLAY = {
    "definition": ["definition_id", "name", "provider", "model_name", "status", "interaction_models_contains",
                   "capabilities_contains", "capabilities_contains_all"],
    "instance": ["instance_id", "definition_id", "status"],
    "record": ["task_id", "instance_id", "definition_id", "success", "duration_ms_gt", "duration_ms_lt",
               "cost_incurred_gt", "cost_incurred_lt"],
}
